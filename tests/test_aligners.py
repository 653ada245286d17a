"""The estimator contract of DESIGN.md and the definitions of the closed-form aligners."""

import math
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import ortho_group
from sklearn.base import clone
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline

from sklearn_modgap import C3, CentroidShift, MomentMatch, RandomTargetReplacement, ReAlign
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.metrics import centroid_discrepancy, relative_geometry_consistency

ALIGNERS = [
    CentroidShift(),
    C3(random_state=0),
    C3(shift="target", random_state=0),
    C3(noise_std="auto", random_state=0),
    ReAlign(),
    MomentMatch(),
    RandomTargetReplacement(random_state=0),
]
IDS = ["CentroidShift", "C3", "C3-target", "C3-auto", "ReAlign", "MomentMatch", "RandomTargetReplacement"]
# Estimators whose output depends only on the fit sample's distribution, not its order.
ORDER_FREE = [a for a in ALIGNERS if not isinstance(a, RandomTargetReplacement)]


def unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def gap_data(n_source=120, n_target=90, d=8, seed=0):
    """Two clouds of different shape around different centres (no pairing)."""
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(n_source, d)) * np.linspace(0.5, 2.0, d) + 2.0
    target = rng.normal(size=(n_target, d)) @ rng.normal(size=(d, d)) * 0.4 - 1.0
    return source, target


@pytest.fixture
def data():
    return gap_data()


# ---------------------------------------------------------------- contract
@pytest.mark.parametrize("aligner", ALIGNERS, ids=IDS)
def test_fit_transform_equals_fit_then_transform(aligner, data):
    source, target = data
    np.testing.assert_array_equal(
        clone(aligner).fit_transform(source, target), clone(aligner).fit(source, target).transform(source)
    )


@pytest.mark.parametrize("aligner", ORDER_FREE, ids=IDS[:-1])
def test_fit_ignores_pairing_and_row_order(aligner, data):
    source, target = data
    rng = np.random.default_rng(1)
    reference = clone(aligner).fit(source, target).transform(source)
    shuffled = clone(aligner).fit(source[rng.permutation(len(source))], target[rng.permutation(len(target))])
    np.testing.assert_allclose(shuffled.transform(source), reference, atol=1e-10)


@pytest.mark.parametrize("aligner", ALIGNERS, ids=IDS)
def test_stacked_mode_equals_mode_b(aligner, data):
    source, target = data
    stacked = np.vstack([target[:40], source, target[40:]])
    domain = np.r_[-np.ones(40), np.ones(len(source)), -np.ones(len(target) - 40)]
    by_domain = clone(aligner).fit(stacked, sample_domain=domain)
    # Same rows in a different order: order-free aligners agree exactly.
    direct = clone(aligner).fit(source, np.vstack([target[:40], target[40:]]))
    np.testing.assert_allclose(by_domain.transform(source), direct.transform(source), atol=1e-10)
    # skada's convention: a 1-D y (labels) beside sample_domain is ignored.
    labelled = clone(aligner).fit(stacked, np.zeros(len(stacked)), sample_domain=domain)
    np.testing.assert_allclose(labelled.transform(source), direct.transform(source), atol=1e-10)


@pytest.mark.parametrize("aligner", ALIGNERS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(aligner, data, dtype):
    source, target = (A.astype(dtype) for A in data)
    fitted = clone(aligner).fit(source, target)
    assert fitted.transform(source).dtype == dtype
    assert fitted.transform_target(target).dtype == dtype
    # float32 in gives the float64 result to float32 precision: statistics are float64.
    if dtype == np.float32:
        wide = clone(aligner).fit(source.astype(np.float64), target.astype(np.float64))
        np.testing.assert_allclose(fitted.transform(source), wide.transform(source.astype(np.float64)), atol=1e-5)


@pytest.mark.parametrize("aligner", ALIGNERS, ids=IDS)
def test_substitutes_are_unit_norm(aligner, data):
    source, target = data
    Z = clone(aligner).fit(source, target).transform(source)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("aligner", ALIGNERS, ids=IDS)
def test_pickle_round_trip_gives_identical_output(aligner, data):
    source, target = data
    fitted = clone(aligner).fit(source, target)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(source), fitted.transform(source))
    np.testing.assert_array_equal(restored.transform_target(target), fitted.transform_target(target))


@pytest.mark.parametrize("aligner", ALIGNERS, ids=IDS)
def test_pandas_output_keeps_feature_names(aligner, data):
    source, target = data
    columns = [f"dim_{j}" for j in range(source.shape[1])]
    fitted = clone(aligner).set_output(transform="pandas").fit(
        pd.DataFrame(source, columns=columns), pd.DataFrame(target, columns=columns)
    )
    for out in (
        fitted.transform(pd.DataFrame(source, columns=columns)),
        fitted.transform_target(pd.DataFrame(target, columns=columns)),
    ):
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == columns
    assert list(fitted.get_feature_names_out()) == columns
    plain = clone(aligner).fit(source, target).transform(source)
    np.testing.assert_allclose(fitted.transform(pd.DataFrame(source, columns=columns)).to_numpy(), plain)


@pytest.mark.parametrize("aligner", ALIGNERS, ids=IDS)
def test_deterministic_for_a_fixed_random_state(aligner, data):
    source, target = data
    first = clone(aligner).fit(source, target)
    np.testing.assert_array_equal(first.transform(source), first.transform(source))
    np.testing.assert_array_equal(clone(aligner).fit(source, target).transform(source), first.transform(source))


@pytest.mark.parametrize("aligner", ALIGNERS, ids=IDS)
def test_alpha_zero_is_the_identity_up_to_normalization(aligner, data):
    source, target = data
    fitted = clone(aligner).set_params(alpha=0.0).fit(source, target)
    np.testing.assert_allclose(fitted.transform(source), unit(source), atol=1e-12)
    np.testing.assert_allclose(fitted.transform_target(target), unit(target), atol=1e-12)


def test_unequal_sizes_and_many_blocks_match_rowwise_definition():
    # More rows than one streaming block (2 MiB / (512 * 4 B) = 1024 rows).
    rng = np.random.default_rng(3)
    source = rng.normal(size=(3000, 512)).astype(np.float32) + 0.2
    target = rng.normal(size=(2200, 512)).astype(np.float32) - 0.1
    shift = CentroidShift().fit(source, target)
    expected = unit(unit(source.astype(np.float64)) - (shift.source_mean_ - shift.target_mean_))
    np.testing.assert_allclose(shift.transform(source), expected, atol=1e-6)
    # Block sums run in float32 BLAS, accumulated across blocks in float64.
    np.testing.assert_allclose(shift.source_mean_, unit(source.astype(np.float64)).mean(0), atol=1e-7)


def test_transform_does_not_special_case_fit_rows(data):
    source, target = data
    fitted = ReAlign().fit(source, target)
    np.testing.assert_allclose(fitted.transform(source[:7]), fitted.transform(source)[:7], atol=1e-14)


def test_normalize_false_uses_rows_as_given(data):
    source, target = data
    shift = CentroidShift(normalize=False).fit(source, target)
    np.testing.assert_allclose(shift.source_mean_, source.mean(0))
    np.testing.assert_allclose(shift.transform(source), unit(source - (source.mean(0) - target.mean(0))))
    np.testing.assert_allclose(shift.transform_target(target), target)


# ------------------------------------------------------ orthogonal equivariance
@pytest.mark.parametrize("aligner", [CentroidShift(), ReAlign(), MomentMatch()], ids=["CS", "ReAlign", "MM"])
def test_orthogonal_equivariance(aligner, data):
    source, target = data
    Q = ortho_group.rvs(source.shape[1], random_state=0)
    Z = clone(aligner).fit(source, target).transform(source)
    Z_rotated = clone(aligner).fit(source @ Q, target @ Q).transform(source @ Q)
    np.testing.assert_allclose(Z_rotated, Z @ Q, atol=1e-10)


# ----------------------------------------------------------------- CentroidShift
@pytest.mark.parametrize("alpha", [-0.5, 0.3, 1.0, 1.5])
def test_centroid_shift_formula(alpha):
    source = np.array([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]])  # unit rows (0.6, 0.8), (0, 1), (1, 0)
    target = np.array([[-1.0, 0.0], [0.0, -5.0]])  # unit rows (-1, 0), (0, -1)
    mu_y = np.array([1.6, 1.8]) / 3
    mu_x = np.array([-0.5, -0.5])
    Z = CentroidShift(alpha=alpha).fit(source, target).transform(np.array([[0.0, 7.0]]))
    np.testing.assert_allclose(Z, unit((np.array([0.0, 1.0]) - alpha * (mu_y - mu_x))[None]))


# ------------------------------------------------------------------- ReAlign
def test_realign_hand_computed_3x2():
    # Source rows are unit: mu_y = (0, 1/3), tr_y = 1 - 1/9 = 8/9.
    source = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    # Target rows are unit: mu_x = (1/3, 2/3), tr_x = 1 - 5/9 = 4/9, so s = sqrt(1/2).
    target = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    s = math.sqrt(0.5)
    # Anchor + trace + target mean: s * (u - mu_y) + mu_x for each source row.
    moved = np.array(
        [
            [s + 1 / 3, -s / 3 + 2 / 3],
            [-s + 1 / 3, -s / 3 + 2 / 3],
            [1 / 3, 2 * s / 3 + 2 / 3],
        ]
    )
    x_hat = moved / np.sqrt((moved**2).sum(1))[:, None]
    mu_hat = x_hat.mean(0)
    expected = x_hat - mu_hat + np.array([1 / 3, 2 / 3])
    expected /= np.sqrt((expected**2).sum(1))[:, None]

    realign = ReAlign().fit(source, target)
    assert realign.source_trace_ == pytest.approx(8 / 9)
    assert realign.target_trace_ == pytest.approx(4 / 9)
    assert realign.trace_scale_ == pytest.approx(s)
    np.testing.assert_allclose(realign.calibration_mean_, mu_hat)
    np.testing.assert_allclose(realign.transform(source), expected)
    # Spot-check one entry written out by hand: row 3 before calibration is
    # (1/3, 2s/3 + 2/3) / sqrt(1/9 + (2s/3 + 2/3)^2).
    norm3 = math.sqrt(1 / 9 + (2 * s / 3 + 2 / 3) ** 2)
    assert x_hat[2, 0] == pytest.approx((1 / 3) / norm3)


def test_realign_calibration_uses_fit_rows_only(data):
    source, target = data
    realign = ReAlign().fit(source, target)
    before = realign.calibration_mean_.copy()
    realign.transform(source[:5] * 3.0 + 1.0)
    np.testing.assert_array_equal(realign.calibration_mean_, before)


def test_realign_constant_source_is_refused():
    with pytest.raises(ValueError, match="zero total variance"):
        ReAlign().fit(np.ones((5, 3)), np.eye(3))


# ------------------------------------------------------------------------ C3
def test_c3_target_shift_without_noise_is_centroid_shift(data):
    source, target = data
    c3 = C3(noise_std=0.0, shift="target").fit(source, target)
    np.testing.assert_allclose(c3.transform(source), CentroidShift().fit(source, target).transform(source))


def test_c3_center_centres_both_modalities(data):
    source, target = data
    c3 = C3(noise_std=0.0, shift="center").fit(source, target)
    np.testing.assert_allclose(c3.transform(source), unit(unit(source) - unit(source).mean(0)))
    np.testing.assert_allclose(c3.transform_target(target), unit(unit(target) - unit(target).mean(0)))


def _official_c3(texts, images, noise, *, normalize_inputs, noise_scale):
    """The steps of the official C3 code, written out: ``(training texts, test images)``."""
    if normalize_inputs:
        texts, images = unit(texts), unit(images)
    text_prefix = texts - texts.mean(0) + noise_scale * noise
    image_prefix = images - images.mean(0)
    return unit(text_prefix), unit(image_prefix)


def test_c3_default_is_the_captioning_preset():
    assert C3().get_params() == C3.captioning().get_params()
    assert C3.captioning(random_state=3).get_params() == C3(random_state=3).get_params()
    assert C3().shift == "center" and C3().noise_std == pytest.approx(math.sqrt(0.016))


@pytest.mark.parametrize(
    "preset, normalize_inputs, noise_scale",
    [(C3.captioning, True, math.sqrt(0.016)), (C3.imagebind, False, 0.1)],
    ids=["captioning", "imagebind"],
)
def test_c3_presets_follow_the_official_code(preset, normalize_inputs, noise_scale):
    rng = np.random.default_rng(0)
    # Rows of varied norm, so that skipping or adding the input normalisation shows.
    texts = rng.normal(size=(7, 5)) * rng.uniform(0.5, 3.0, size=(7, 1)) + 1.0
    images = rng.normal(size=(6, 5)) * rng.uniform(0.5, 3.0, size=(6, 1)) - 0.5
    c3 = preset(random_state=0).fit(texts, images)
    noise = np.random.RandomState(0).standard_normal(texts.shape)
    expected_texts, expected_images = _official_c3(
        texts, images, noise, normalize_inputs=normalize_inputs, noise_scale=noise_scale
    )
    np.testing.assert_allclose(c3.transform(texts), expected_texts, rtol=1e-12)
    np.testing.assert_allclose(c3.transform_target(images), expected_images, rtol=1e-12)
    # The presets are plain parameters: a clone is the same estimator.
    np.testing.assert_allclose(clone(c3).fit(texts, images).transform(texts), expected_texts, rtol=1e-12)


def test_c3_presets_differ_where_the_official_settings_do():
    rng = np.random.default_rng(1)
    texts = rng.normal(size=(7, 5)) * rng.uniform(0.5, 3.0, size=(7, 1))
    images = rng.normal(size=(6, 5)) + 1.0
    captioning = C3.captioning(noise_std=0.0).fit(texts, images)
    imagebind = C3.imagebind(noise_std=0.0).fit(texts, images)
    # Unit rows: centring the normalised rows or the raw ones is the same.
    np.testing.assert_allclose(
        C3.captioning(noise_std=0.0).fit(unit(texts), images).transform(unit(texts)),
        C3.imagebind(noise_std=0.0).fit(unit(texts), images).transform(unit(texts)),
    )
    assert not np.allclose(captioning.transform(texts), imagebind.transform(texts))


def test_c3_noise_has_the_requested_scale():
    rng = np.random.default_rng(0)
    d = 256
    source = unit(rng.normal(size=(400, d)))
    c3 = C3(noise_std=0.05, shift="target", random_state=0).fit(source, source)
    # Before renormalization z = y + eps with ||y|| = 1 and E||eps||^2 = d * 0.05^2,
    # so ||z||^2 = 1 + d * 0.0025 and cos(z, y) = 1 / sqrt(1 + 0.64).
    cosines = np.sum(c3.transform(source) * source, axis=1)
    assert cosines.mean() == pytest.approx(1 / math.sqrt(1 + d * 0.0025), abs=0.01)
    # A different seed draws different noise.
    other = C3(noise_std=0.05, shift="target", random_state=1).fit(source, source).transform(source)
    assert not np.allclose(other, c3.transform(source))


def test_c3_auto_noise_recovers_a_known_residual_scale():
    # Target = source + isotropic residual of known per-coordinate scale, on a
    # shared low-dimensional structure; the nearest-neighbour estimate is
    # bounded above by the true scale and close to it.
    rng = np.random.default_rng(0)
    d, n, scale = 64, 3000, 0.03
    structure = rng.normal(size=(n, 4)) @ rng.normal(size=(4, d)) * 0.3
    source = structure + rng.normal(size=d)
    target = structure + rng.normal(size=(n, d)) * scale + rng.normal(size=d)
    c3 = C3(noise_std="auto", normalize=False, random_state=0).fit(source, target)
    assert 0.6 * scale < c3.noise_std_ < 1.05 * scale


# --------------------------------------------------------------- MomentMatch
def test_moment_match_maps_source_covariance_to_target_covariance():
    rng = np.random.default_rng(0)
    d = 5
    source = rng.normal(size=(4000, d)) @ rng.normal(size=(d, d))
    target = rng.normal(size=(3000, d)) @ rng.normal(size=(d, d)) + 3.0
    match = MomentMatch(shrinkage=0.0, normalize=False).fit(source, target)
    moved = (source - source.mean(0)) @ match.mapping_ + target.mean(0)
    np.testing.assert_allclose(moved.mean(0), target.mean(0), atol=1e-10)
    np.testing.assert_allclose(np.cov(moved.T, bias=True), np.cov(target.T, bias=True), atol=1e-8)


def test_moment_match_shrinkage_is_ledoit_wolf(data):
    source, target = data
    match = MomentMatch().fit(source, target)
    assert match.source_shrinkage_ == pytest.approx(ledoit_wolf_shrinkage(unit(source)))
    assert match.target_shrinkage_ == pytest.approx(ledoit_wolf_shrinkage(unit(target)))


def test_moment_match_handles_fewer_rows_than_features():
    rng = np.random.default_rng(0)
    source, target = rng.normal(size=(20, 64)), rng.normal(size=(30, 64)) + 0.5
    match = MomentMatch().fit(source, target)
    assert 0 < match.source_shrinkage_ <= 1
    assert np.all(np.isfinite(match.transform(source)))
    # Without shrinkage the singular source covariance is pseudo-inverted.
    assert np.all(np.isfinite(MomentMatch(shrinkage=0.0).fit(source, target).transform(source)))


# ------------------------------------------------------ RandomTargetReplacement
def test_random_target_replacement_returns_target_rows_unrelated_to_input(data):
    source, target = data
    control = RandomTargetReplacement(random_state=0).fit(source, target)
    Z = control.transform(source)
    distances = np.abs(Z[:, None, :] - unit(target)[None]).max(axis=2)
    assert np.all(distances.min(axis=1) < 1e-12)  # every output is a target fit row
    assert abs(relative_geometry_consistency(source, Z)) < 0.2


# --------------------------------------------------------------- real data
@pytest.mark.parametrize("aligner", [CentroidShift(), ReAlign()], ids=["CentroidShift", "ReAlign"])
def test_real_coco_held_out_centroid_discrepancy(aligner, clip_pairs):
    target, source = clip_pairs
    fit_rows, test_rows = np.arange(0, 500, 2), np.arange(1, 500, 2)
    fitted = clone(aligner).fit(source[fit_rows], target[fit_rows[::-1]])
    identity = centroid_discrepancy(target[test_rows], source[test_rows])
    assert identity == pytest.approx(0.857, abs=0.01)
    assert centroid_discrepancy(target[test_rows], fitted.transform(source[test_rows])) < 0.1


# ------------------------------------------------------- model selection
def test_grid_search_over_alpha_with_held_out_pairs(clip_pairs):
    target, source = clip_pairs
    search = GridSearchCV(ReAlign(), {"alpha": [0.0, 0.5, 1.0]}, cv=KFold(3, shuffle=True, random_state=0))
    search.fit(source, target)
    assert search.best_params_["alpha"] > 0  # the identity never wins: it does not mix
    assert search.cv_results_["mean_test_score"][0] < 0.05


def test_pipeline_and_cross_val_score(data):
    source, target = data
    scores = cross_val_score(make_pipeline(CentroidShift()), source[:90], target, cv=3)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))


def test_score_identity_and_random_control_are_near_zero(clip_pairs):
    target, source = clip_pairs
    identity = CentroidShift(alpha=0.0).fit(source, target)
    control = RandomTargetReplacement(random_state=0).fit(source, target)
    realign = ReAlign().fit(source, target)
    assert identity.score(source, target) < 0.05
    assert control.score(source, target) < 0.15
    assert realign.score(source, target) > 0.4


# ---------------------------------------------------------------- bad input
BAD_FIT = [
    (lambda s, t: (s, None), ValueError, "requires y to be passed"),
    (lambda s, t: (s, t[:, 0]), ValueError, "2-D array of target-modality"),
    (lambda s, t: (s[:, 0], t), ValueError, "Expected 2D array"),
    (lambda s, t: (s, t[:, :3]), ValueError, "same embedding space"),
    (lambda s, t: (s[:1], t), ValueError, "minimum of 2"),
    (lambda s, t: (s, t[:1]), ValueError, "minimum of 2"),
    (lambda s, t: (np.where(np.arange(s.size).reshape(s.shape) == 5, np.nan, s), t), ValueError, "NaN"),
    (lambda s, t: (s, np.where(np.arange(t.size).reshape(t.shape) == 5, np.inf, t)), ValueError, "infinity"),
    (lambda s, t: (np.vstack([s, np.zeros(s.shape[1])]), t), ValueError, "zero norm"),
    (lambda s, t: (s, np.vstack([t, np.zeros(t.shape[1])])), ValueError, "zero norm"),
    (lambda s, t: (sp.csr_matrix(s), t), TypeError, "dense data is required"),
    (lambda s, t: (s, sp.csr_matrix(t)), TypeError, "dense data is required"),
]


@pytest.mark.parametrize("aligner", ALIGNERS, ids=IDS)
@pytest.mark.parametrize("make, error, match", BAD_FIT)
def test_bad_fit_input_is_refused_clearly(aligner, data, make, error, match):
    X, y = make(*data)
    with pytest.raises(error, match=match):
        clone(aligner).fit(X, y)


@pytest.mark.parametrize("aligner", ALIGNERS, ids=IDS)
def test_bad_transform_input_is_refused_clearly(aligner, data):
    source, target = data
    fitted = clone(aligner).fit(source, target)
    with pytest.raises(ValueError, match="features, but .* is expecting 8"):
        fitted.transform(source[:, :5])
    with pytest.raises(ValueError, match="features, but .* is expecting 8"):
        fitted.transform_target(target[:, :5])
    with pytest.raises(ValueError, match="zero norm"):
        fitted.transform(np.zeros((2, 8)))
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(np.full((2, 8), np.nan))
    with pytest.raises(ValueError, match="Expected 2D array"):
        fitted.transform(source[0])


def test_unfitted_transform_is_refused(data):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ReAlign().transform(data[0])
    with pytest.raises(NotFittedError):
        ReAlign().transform_target(data[1])


@pytest.mark.parametrize(
    "domain, match",
    [
        (np.ones(10), "marks 0 target"),
        (np.r_[np.ones(9), -1], "marks 1 target"),
        (np.ones(9), "sample_domain has 9 entries"),
        (np.array(["a"] * 10), "must be numeric"),
    ],
)
def test_bad_sample_domain_is_refused(domain, match):
    X = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises((ValueError, TypeError), match=match):
        ReAlign().fit(X, sample_domain=domain)


def test_both_y_and_sample_domain_are_refused(data):
    source, target = data
    with pytest.raises(ValueError, match="not both"):
        ReAlign().fit(source, target, sample_domain=np.ones(len(source)))


@pytest.mark.parametrize(
    "aligner",
    [ReAlign(alpha=1.5), CentroidShift(alpha="x"), C3(noise_std=-1.0), C3(shift="left"), MomentMatch(shrinkage=2.0)],
)
def test_invalid_parameters_are_refused(aligner, data):
    with pytest.raises(ValueError, match="parameter"):
        aligner.fit(*data)


def test_score_needs_paired_rows(data):
    source, target = data
    fitted = ReAlign().fit(source, target)
    with pytest.raises(ValueError, match="paired rows"):
        fitted.score(source, target)


def test_score_needs_three_pairs(data):
    source, target = data
    fitted = CentroidShift().fit(source, target)
    with pytest.raises(ValueError, match="at least 3 held-out pairs, got 2"):
        fitted.score(source[:2], target[:2])
    # Three pairs give k = 2, the smallest neighbourhood modality mixing accepts.
    assert np.isfinite(fitted.score(source[:3], target[:3]))


@pytest.mark.parametrize("aligner", [CentroidShift(), ReAlign(alpha=0.5), C3(random_state=0)], ids=repr)
def test_threaded_block_passes_match_one_thread(aligner, monkeypatch):
    """Statistics and outputs do not depend on how many threads stream the blocks."""
    import sklearn_modgap._validation as validation

    target, source = make_modality_gap(n_pairs=3000, n_features=16, random_state=0)
    monkeypatch.setattr(validation, "_BLOCK_BYTES", 64 * 16 * 8)  # 64-row blocks: 47 of them
    results = {}
    for n_workers in (1, 3):
        monkeypatch.setattr(validation, "n_block_workers", lambda n=n_workers: n)
        fitted = clone(aligner).fit(source, y=target)
        results[n_workers] = (fitted.transform(source), fitted.transform_target(target))
    np.testing.assert_array_equal(results[1][0], results[3][0])
    np.testing.assert_array_equal(results[1][1], results[3][1])


@pytest.mark.parametrize("aligner", [CentroidShift(), ReAlign(), CentroidShift(normalize=False)], ids=repr)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_streamed_finite_check_finds_one_bad_entry_anywhere(aligner, bad):
    """CentroidShift and ReAlign check NaN/inf in their row-norm passes, not in a separate one."""
    target, source = make_modality_gap(n_pairs=5000, n_features=16, random_state=0)
    fitted = clone(aligner).fit(source, y=target)
    for call, rows in [
        (lambda X: clone(aligner).fit(X, y=target), source),
        (lambda X: clone(aligner).fit(source, y=X), target),
        (lambda X: clone(aligner).fit(X, np.zeros(len(X))), source),
        (fitted.transform, source),
        (fitted.transform_target, target),
    ]:
        broken = rows.copy()
        broken[4321, 7] = bad  # far past the first block
        with pytest.raises(ValueError, match="contains NaN or infinity"):
            call(broken)


def test_entries_whose_squares_overflow_are_not_called_infinite():
    target, source = make_modality_gap(n_pairs=50, n_features=8, random_state=0)
    source = source.astype(np.float32)
    large = source.copy()
    large[0] *= np.float32(1e20)  # finite, but its squared norm overflows float32
    fitted = ReAlign().fit(source, y=target.astype(np.float32))
    np.testing.assert_allclose(fitted.transform(large)[0], fitted.transform(source)[0], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_product_accumulates_in_place(dtype):
    from sklearn_modgap._validation import add_product

    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 7)).astype(dtype)
    weights = rng.normal(size=(50, 2)).astype(dtype)
    directions = rng.normal(size=(2, 7)).astype(dtype)
    expected = base.astype(np.float64) + weights.astype(np.float64) @ directions.astype(np.float64)
    out = base.copy()
    add_product(out[10:30], weights[10:30], directions)  # a row slice, as the blocks are
    np.testing.assert_allclose(out[10:30], expected[10:30], rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(out[:10], base[:10])
    np.testing.assert_array_equal(out[30:], base[30:])
    strided = base.copy()
    add_product(strided[:, ::2], weights, directions[:, ::2])  # not contiguous: plain fallback
    np.testing.assert_allclose(strided[:, ::2], expected[:, ::2], rtol=1e-5)
