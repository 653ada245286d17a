"""Property tests of the estimator contract: invariances every aligner and metric must keep."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from sklearn_modgap import C3, CentroidShift, MomentMatch, ReAlign
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.metrics import (
    centroid_discrepancy,
    instance_consistency,
    modality_mixing,
    neighborhood_consistency,
    true_pair_cosine,
)

CLOSED_FORM = [CentroidShift, ReAlign, MomentMatch]
SEEDS = st.integers(0, 2**16)
FAST = settings(max_examples=8, deadline=None)


def _data(seed, n=60, d=8):
    target, source = make_modality_gap(n, d, random_state=seed)
    return target.astype(np.float64), source.astype(np.float64)


@pytest.mark.parametrize("Aligner", [*CLOSED_FORM, C3])
@FAST
@given(seed=SEEDS)
def test_pairing_and_row_order_of_the_fit_samples_change_nothing(Aligner, seed):
    target, source = _data(seed)
    rng = np.random.default_rng(seed)
    # C3 adds seeded noise: the same seed for both fits.
    make = (lambda: Aligner(random_state=0)) if Aligner is C3 else Aligner
    reference = make().fit(source, target).transform(source)
    shuffled = make().fit(source[rng.permutation(len(source))],
                             target[rng.permutation(len(target))]).transform(source)
    np.testing.assert_allclose(shuffled, reference, atol=1e-8)


@pytest.mark.parametrize("Aligner", CLOSED_FORM)
@FAST
@given(seed=SEEDS)
def test_orthogonal_rotation_commutes_with_closed_form_aligners(Aligner, seed):
    target, source = _data(seed)
    rotation = ortho_group.rvs(target.shape[1], random_state=seed)
    rotated = Aligner().fit(source @ rotation, target @ rotation).transform(source @ rotation)
    np.testing.assert_allclose(rotated, Aligner().fit(source, target).transform(source) @ rotation,
                               atol=1e-8)


@pytest.mark.parametrize("Aligner", CLOSED_FORM)
@FAST
@given(seed=SEEDS, scale=st.floats(1e-100, 1e100))
def test_row_scale_never_matters_with_normalize(Aligner, seed, scale):
    target, source = _data(seed)
    rng = np.random.default_rng(seed)
    row_scales = scale * rng.uniform(0.5, 2.0, size=(len(source), 1))
    scaled = Aligner().fit(source * row_scales, target * scale).transform(source * row_scales)
    np.testing.assert_allclose(scaled, Aligner().fit(source, target).transform(source), atol=1e-8)


@pytest.mark.parametrize("Aligner", CLOSED_FORM)
@FAST
@given(seed=SEEDS)
def test_float32_and_float64_agree(Aligner, seed):
    target, source = _data(seed)
    single = Aligner().fit(source.astype(np.float32), target.astype(np.float32)).transform(
        source.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, Aligner().fit(source, target).transform(source), atol=1e-4)


@FAST
@given(seed=SEEDS, k=st.integers(2, 10))
def test_metrics_stay_in_their_documented_ranges(seed, k):
    target, source = _data(seed)
    substitutes = CentroidShift().fit(source, target).transform(source)
    assert 0 <= centroid_discrepancy(target, substitutes) <= 2 + 1e-12
    for value in (true_pair_cosine(target, substitutes), instance_consistency(source, substitutes)):
        assert -1 - 1e-12 <= value <= 1 + 1e-12
    assert 0 <= neighborhood_consistency(source, substitutes, k=k) <= 1
    assert modality_mixing(target, substitutes, k=k) >= 0


@pytest.mark.parametrize("Aligner", CLOSED_FORM)
@pytest.mark.parametrize("bad", ["nan", "inf", "zero", "huge"])
def test_bad_rows_give_a_clear_error_never_a_silent_nan(Aligner, bad):
    target, source = _data(0)
    source = source.copy()
    source[5] = {"nan": np.nan, "inf": np.inf, "zero": 0.0, "huge": 1e200}[bad]
    # Huge rows normalise (rescaled first); unnormalised their squares overflow.
    aligner = Aligner(normalize=False) if bad == "huge" else Aligner()
    with pytest.raises(ValueError, match="NaN|infinity|zero norm|overflows"):
        aligner.fit(source, target).transform(source)


@pytest.mark.parametrize("Aligner", CLOSED_FORM)
def test_one_huge_row_is_normalised_like_its_unscaled_self(Aligner):
    target, source = _data(0)
    huge = source.copy()
    huge[5] *= 1e200
    np.testing.assert_allclose(Aligner().fit(huge, target).transform(huge),
                               Aligner().fit(source, target).transform(source), atol=1e-12)


@pytest.mark.parametrize("Aligner", CLOSED_FORM)
def test_tiny_rows_and_n_below_d_give_finite_results(Aligner):
    target, source = _data(1, n=10, d=32)
    out = Aligner().fit(source * 1e-100, target * 1e-100).transform(source * 1e-100)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-8)
