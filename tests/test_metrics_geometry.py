"""Geometry diagnostics: the real-data values, hand-computed cases, invariances."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from sklearn_modgap.metrics import (
    centroid_displacement,
    covariance_discrepancy,
    cumulative_energy,
    effective_dimension,
    paired_distance,
    residual_anisotropy,
    residual_coverage,
    residual_ratio,
    spectral_correlation,
    subspace_overlap,
    true_pair_cosine,
)

E = np.eye(4)


def _signed(counts):
    """Rows +e_k and -e_k, each ``counts[k]`` times: mean 0, covariance diag(counts) / total."""
    rows = [sign * E[k] for k, c in enumerate(counts) for _ in range(c) for sign in (1, -1)]
    return np.array(rows)


def _on_circle(degrees):
    radians = np.deg2rad(np.asarray(degrees, dtype=float))
    return np.column_stack([np.cos(radians), np.sin(radians)])


def test_clip_diagnostics_match_the_independent_values(clip_pairs):
    target, source = clip_pairs
    assert centroid_displacement(target, source) == pytest.approx(0.851, abs=5e-4)
    assert true_pair_cosine(target, source) == pytest.approx(0.310, abs=5e-4)
    assert paired_distance(target, source) == pytest.approx(1.174, abs=5e-4)
    assert paired_distance(target, source, centered=True) == pytest.approx(0.805, abs=5e-4)
    assert residual_ratio(target, source) == pytest.approx(0.686, abs=5e-4)
    assert residual_anisotropy(target, source) == pytest.approx(28.3, abs=0.05)
    assert effective_dimension(target, source, relative=True) == pytest.approx(0.152, abs=5e-4)
    overlap, baseline = subspace_overlap(target, source, q=128, return_baseline=True)
    assert overlap == pytest.approx(0.367, abs=5e-4)
    assert baseline == 128 / 512


def test_clip_energy_form_splits_the_mean_squared_distance(clip_pairs):
    target, source = (a.astype(np.float64) for a in clip_pairs)
    target /= np.linalg.norm(target, axis=1, keepdims=True)
    source /= np.linalg.norm(source, axis=1, keepdims=True)
    gap = centroid_displacement(target, source)
    mean_square = np.mean(np.sum((target - source) ** 2, axis=1))
    residual_energy = mean_square - gap**2
    expected = residual_energy / mean_square
    assert residual_ratio(target, source, form="energy") == pytest.approx(expected, rel=1e-9)


def test_spectral_correlation_hand_computed():
    target, source = _signed([3, 2, 1, 0]), _signed([0, 1, 1, 4])
    expected = np.corrcoef(np.log([3, 2, 1]), np.log([4, 1, 1]))[0, 1]
    assert spectral_correlation(target, source) == pytest.approx(expected)


def test_subspace_overlap_hand_computed():
    # Top-2 subspaces span(e1, e2) and span(e1, e3) share one direction.
    target, source = _signed([3, 2, 0, 0]), _signed([3, 0, 2, 0])
    assert subspace_overlap(target, source, q=2, return_baseline=True) == (
        pytest.approx(0.5),
        0.5,
    )


def test_covariance_discrepancy_hand_computed():
    assert covariance_discrepancy(_signed([1, 0, 0, 0]), _signed([0, 1, 0, 0])) == pytest.approx(
        np.sqrt(2)
    )


def test_paired_distance_and_residual_ratio_hand_computed():
    target = np.array([[1.0, 0.0], [1.0, 0.0]])
    source = np.array([[0.0, 1.0], [0.0, 1.0]])
    # A pure centroid shift: D = sqrt(2), nothing left after centring.
    assert paired_distance(target, source) == pytest.approx(np.sqrt(2))
    assert paired_distance(target, source, centered=True) == pytest.approx(0.0)
    assert residual_ratio(target, source) == pytest.approx(0.0)
    assert residual_ratio(target, source, form="energy") == pytest.approx(0.0)
    # Swapped pairs with equal centroids: all of the distance is residual.
    swapped = np.eye(2)[[1, 0]]
    assert paired_distance(np.eye(2), swapped, centered=True) == pytest.approx(np.sqrt(2))
    assert residual_ratio(np.eye(2), swapped) == pytest.approx(1.0)


def test_residual_on_one_line_has_anisotropy_d_and_one_effective_dimension():
    target = _on_circle([10, 30, 60])
    source = target * [1.0, -1.0]  # x_i - y_i = (0, 2 sin a_i)
    assert residual_anisotropy(target, source) == pytest.approx(2.0)
    assert effective_dimension(target, source) == pytest.approx(1.0)
    np.testing.assert_allclose(cumulative_energy(target, source), [1.0, 1.0])
    padded = np.hstack([target, np.zeros((3, 2))])
    assert residual_anisotropy(padded, padded * [1, -1, 1, 1]) == pytest.approx(4.0)


def test_isotropic_residual():
    target = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    source = -target  # r_i = 2 x_i, covariance 2 I
    assert residual_anisotropy(target, source) == pytest.approx(1.0)
    assert effective_dimension(target, source, relative=True) == pytest.approx(1.0)
    np.testing.assert_allclose(cumulative_energy(target, source), [0.5, 1.0])


def test_residual_coverage_hand_computed():
    target = np.eye(3)
    source = np.eye(3)[[1, 0, 2]]  # residual along (1, -1, 0)
    assert residual_coverage(target, source, [[1.0], [-1.0], [0.0]]) == pytest.approx(1.0)
    assert residual_coverage(target, source, [[0.0], [0.0], [5.0]]) == pytest.approx(0.0)
    assert residual_coverage(target, source, [[1.0], [0.0], [0.0]]) == pytest.approx(0.5)
    both = [[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    assert residual_coverage(target, source, both) == pytest.approx(1.0)


def test_residual_coverage_of_a_rank_uses_the_target_principal_subspace(clip_pairs):
    target, source = clip_pairs
    t = target / np.linalg.norm(target, axis=1, keepdims=True)
    basis = np.linalg.eigh(np.cov(t.T.astype(np.float64), bias=True))[1][:, ::-1][:, :16]
    assert residual_coverage(target, source, 16) == pytest.approx(
        residual_coverage(target, source, basis), rel=1e-6
    )


def test_cumulative_energy_agrees_with_anisotropy_and_dimension(clip_pairs):
    target, source = clip_pairs
    energy = cumulative_energy(target, source)
    assert energy.shape == (512,)
    assert np.all(np.diff(energy) >= -1e-12)
    assert energy[-1] == pytest.approx(1.0)
    assert energy[0] * 512 == pytest.approx(residual_anisotropy(target, source))


@pytest.fixture
def clouds():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(40, 6)) + [2, 0, 0, 0, 0, 0]
    source = target @ rng.normal(size=(6, 6)) * 0.5 + rng.normal(size=(40, 6)) * 0.3
    return target, source


PAIRED = [
    paired_distance,
    lambda t, s: paired_distance(t, s, centered=True),
    residual_ratio,
    lambda t, s: residual_ratio(t, s, form="energy"),
    residual_anisotropy,
    effective_dimension,
    lambda t, s: cumulative_energy(t, s)[2],
    lambda t, s: residual_coverage(t, s, 3),
]
UNPAIRED = [
    centroid_displacement,
    covariance_discrepancy,
    spectral_correlation,
    lambda t, s: subspace_overlap(t, s, q=3),
]


@pytest.mark.parametrize("metric", PAIRED + UNPAIRED)
def test_invariant_to_rotation_scale_and_joint_row_order(clouds, metric):
    target, source = clouds
    reference = metric(target, source)
    rotation = ortho_group.rvs(6, random_state=1)
    assert metric(2.0 * target @ rotation, source @ rotation) == pytest.approx(reference, rel=1e-7)
    order = np.random.default_rng(3).permutation(40)
    assert metric(target[order], source[order]) == pytest.approx(reference, rel=1e-7)


@pytest.mark.parametrize("metric", UNPAIRED)
def test_unpaired_measures_ignore_the_pairing(clouds, metric):
    target, source = clouds
    order = np.random.default_rng(4).permutation(40)
    assert metric(target, source[order]) == pytest.approx(metric(target, source), rel=1e-7)
    assert np.isfinite(metric(target, source[:-5]))


def test_float32_matches_float64(clouds):
    target, source = clouds
    for metric in PAIRED + UNPAIRED:
        assert metric(target.astype(np.float32), source.astype(np.float32)) == pytest.approx(
            metric(target, source), rel=1e-4
        )


def test_bad_subspace_sizes_and_degenerate_residuals(clouds):
    target, source = clouds
    with pytest.raises(ValueError, match="q=7 is larger than the number of features 6"):
        subspace_overlap(target, source, q=7)
    with pytest.raises(ValueError, match="needs at least 6 rows of source"):
        subspace_overlap(target, source[:5], q=5)
    with pytest.raises(ValueError, match="residual is zero"):
        residual_anisotropy(target, 3.0 * target)
    with pytest.raises(ValueError, match="shape \\(n_features=6, r\\)"):
        residual_coverage(target, source, np.ones((5, 2)))
    with pytest.raises(ValueError, match="linearly dependent"):
        residual_coverage(target, source, np.ones((6, 2)))
    with pytest.raises(ValueError, match="paired row by row"):
        paired_distance(target, source[:-1])
    with pytest.raises(ValueError, match="source is empty"):
        centroid_displacement(target, source[:0])
    with pytest.raises(ValueError, match="form"):
        residual_ratio(target, source, form="squared")


def test_uncentred_residual_anisotropy_counts_the_mean_gap():
    # x_i = (0.6, +-0.8), y_i = (-2, -+1) / sqrt(5): raw residuals
    # (0.6 + 2/sqrt(5), +-(0.8 + 1/sqrt(5))).  Centred, they lie on the second
    # axis alone (A_r = d = 2); uncentred (App. B.2) the second moment is
    # diag(a^2, b^2), so A_r(T) = 2 a^2 / (a^2 + b^2).
    x = np.array([[0.6, 0.8], [0.6, -0.8]])
    y = np.array([[-2.0, -1.0], [-2.0, 1.0]]) / np.sqrt(5.0)
    a, b = 0.6 + 2 / np.sqrt(5.0), 0.8 + 1 / np.sqrt(5.0)
    assert residual_anisotropy(x, y) == pytest.approx(2.0)
    assert residual_anisotropy(x, y, centered=False) == pytest.approx(2 * a**2 / (a**2 + b**2))
