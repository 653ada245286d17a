"""The fitted-map protocol: block maps, the alpha blend, block order, the needs-pairs tag."""

import threading

import numpy as np
import pytest
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import _NotAnArray

import sklearn_modgap
from sklearn_modgap import CentroidShift, ContrastiveAdapter, ReAlign
from sklearn_modgap._base import BaseAligner
from sklearn_modgap._maps import BlockMap, SpanMap, interpolate
from sklearn_modgap.datasets import make_modality_gap


def _unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class _Recorded(BaseAligner):
    """An aligner whose map is a given function: the driver is seen from outside."""

    def __init__(self, step=None, alpha=1.0, normalize=True):
        self.step = step
        self.alpha = alpha
        self.normalize = normalize

    def _fit(self, source, target):
        self.fitted_ = True

    def _source_map(self):
        return self.step


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    # 3 MiB of float64 rows: several blocks of the driver.
    return rng.standard_normal((6000, 64)) + 0.2


def test_no_aligner_overrides_the_base_transform_or_fit():
    aligners = [
        getattr(sklearn_modgap, name)
        for name in sklearn_modgap.__all__
        if isinstance(getattr(sklearn_modgap, name), type)
        and issubclass(getattr(sklearn_modgap, name), BaseAligner)
    ]
    assert len(aligners) == 8
    for aligner in aligners:
        for method in ("fit", "transform", "transform_target", "fit_transform", "_map_rows"):
            assert getattr(aligner, method) is getattr(BaseAligner, method), (aligner, method)


def test_interpolating_a_span_map_equals_the_blend_of_its_function(rows):
    direction = np.linspace(-1.0, 1.0, rows.shape[1])
    span = SpanMap(direction[None, :], lambda sq_norms, dots: (2.0, -np.ones_like(dots)))

    def function(block):
        return 2.0 * block - direction

    u = _unit(rows)
    for alpha in (0.0, 0.3, 1.0, 1.7):
        expected = _unit((1 - alpha) * u + alpha * (2.0 * u - direction))
        by_span = _Recorded(interpolate(span, alpha)).fit(rows, rows).transform(rows)
        by_function = _Recorded(interpolate(function, alpha)).fit(rows, rows).transform(rows)
        np.testing.assert_allclose(by_span, expected, atol=1e-12)
        np.testing.assert_allclose(by_function, expected, atol=1e-12)


def test_interpolate_keeps_the_identity_and_the_map_at_alpha_one():
    def function(block):
        return block

    assert interpolate(None, 0.5) is None
    assert interpolate(function, 1.0) is function
    blended = interpolate(BlockMap(function, in_order=True), 0.5)
    assert blended.in_order and not blended.normalized


def test_centroid_shift_blend_by_hand(rows):
    source, target = rows, rows[::-1] * 0.5 - 0.3
    u, t = _unit(source), _unit(target)
    gap = u.mean(axis=0) - t.mean(axis=0)
    out = CentroidShift(alpha=0.25).fit(source, target).transform(source)
    np.testing.assert_allclose(out, _unit(0.75 * u + 0.25 * (u - gap)), atol=1e-12)


def test_in_order_maps_see_their_blocks_in_order_on_one_thread(rows):
    calls = []

    def record(block):
        calls.append((threading.get_ident(), block[0, 0]))
        return block

    out = _Recorded(BlockMap(record, in_order=True)).fit(rows, rows).transform(rows)
    np.testing.assert_allclose(out, _unit(rows), atol=1e-12)
    assert len(calls) > 1
    assert len({thread for thread, _ in calls}) == 1
    firsts = [first for _, first in calls]
    expected = [first for first in _unit(rows)[:, 0] if first in firsts]
    assert firsts == expected


def test_a_normalized_map_is_written_as_it_is(rows):
    out = _Recorded(BlockMap(lambda block: 2.0 * block, normalized=True)).fit(rows, rows).transform(rows)
    np.testing.assert_allclose(out, 2.0 * _unit(rows), atol=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_every_map_checks_nan_in_its_pass(rows, normalize):
    bad = rows.copy()
    bad[4000, 3] = np.nan
    for step in (None, lambda block: block, BlockMap(lambda block: block, in_order=True)):
        fitted = _Recorded(step, normalize=normalize).fit(rows, rows)
        with pytest.raises(ValueError, match="NaN"):
            fitted.transform(bad)
    with pytest.raises(ValueError, match="NaN"):
        ReAlign(normalize=normalize).fit(rows, rows).transform(bad)


def test_needs_pairs_tag():
    assert get_tags(ContrastiveAdapter()).needs_pairs
    others = ("CentroidShift", "C3", "ReAlign", "MomentMatch", "RandomTargetReplacement", "SSP", "AnisoAlign")
    for name in others:
        assert not get_tags(getattr(sklearn_modgap, name)()).needs_pairs, name


def test_the_tag_makes_the_base_refuse_unpaired_samples(rows):
    class Paired(_Recorded):
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.needs_pairs = True
            return tags

    Paired().fit(rows, rows[::-1])
    with pytest.raises(ValueError, match="trains on pairs: the source has 6000 rows but the target has 5999"):
        Paired().fit(rows, rows[1:])
    with pytest.raises(ValueError, match="y is None: pass the paired target rows"):
        Paired().fit(rows)
    _Recorded().fit(rows, rows[1:])


def test_adapter_refuses_a_1d_target_that_is_not_an_array():
    # scikit-learn's check_transformer_data_not_an_array passes such a y.
    target, source = make_modality_gap(n_pairs=20, n_features=4, random_state=0)
    with pytest.raises(ValueError, match="needs y to be 2-D, got a 1-D array"):
        ContrastiveAdapter().fit(_NotAnArray(source), _NotAnArray(np.arange(20.0)))
