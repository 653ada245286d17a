"""The numpy parts of AnisoAlign: frame, polar blocks, circular statistics,
phase graph and the global initialisation (Sec. 4.1-4.4.1)."""

import numpy as np
import pytest
from scipy.stats import ks_2samp

from sklearn_modgap.aniso import AnisoAlign
from sklearn_modgap.aniso import _frame
from sklearn_modgap.aniso._circular import circular_statistics, energy_share, nucleus_graph, top_p_graph


def _anisotropic_pair(n=600, d=12, seed=0):
    """Target and source clouds with different centroids and per-axis spreads."""
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(n, d)) * np.linspace(1.0, 0.2, d) + 2.0 * np.eye(d)[0]
    source = rng.normal(size=(n + 37, d)) * np.linspace(0.3, 0.6, d) ** 2 + 2.0 * np.eye(d)[1]
    return target, source


def test_polar_coordinates_reconstruct_exactly():
    rng = np.random.default_rng(1)
    coords = rng.normal(size=(50, 8))
    radius, phase = _frame.to_polar(coords)
    # Block k holds coordinates 2k and 2k + 1.
    np.testing.assert_allclose(radius[:, 1], np.hypot(coords[:, 2], coords[:, 3]))
    np.testing.assert_allclose(phase[:, 3], np.arctan2(coords[:, 7], coords[:, 6]))
    np.testing.assert_allclose(_frame.from_polar(radius, phase), coords, atol=1e-12)


def test_frame_is_orthonormal_and_splits_rows():
    target, source = _anisotropic_pair()
    aligner = AnisoAlign(rank=6, alpha=0.0, normalize=False).fit(source, y=target)
    full = np.hstack([aligner.frame_, aligner.complement_])
    assert full.shape == (12, 12)
    np.testing.assert_allclose(full.T @ full, np.eye(12), atol=1e-10)
    np.testing.assert_allclose(aligner.mixing_.T @ aligner.mixing_, np.eye(6), atol=1e-10)
    # z = z_U + z_V, and z_U is rebuilt exactly from the polar blocks.
    centred = source - aligner.source_mean_
    z_u = centred @ aligner.frame_ @ aligner.frame_.T
    z_v = centred @ aligner.complement_ @ aligner.complement_.T
    np.testing.assert_allclose(z_u + z_v, centred, atol=1e-10)
    radius, phase = _frame.to_polar(centred @ aligner.frame_)
    np.testing.assert_allclose(_frame.from_polar(radius, phase) @ aligner.frame_.T, z_u, atol=1e-10)


def test_frame_spans_top_eigenvectors_of_joint_matrix():
    target, source = _anisotropic_pair()
    aligner = AnisoAlign(rank=4, alpha=0.0, normalize=False, mixing="target_axes").fit(source, y=target)
    joint = np.cov(source.T, bias=True) + np.cov(target.T, bias=True)
    _, vectors = np.linalg.eigh(joint)
    top = vectors[:, -4:]
    # Same subspace: the projectors agree.
    np.testing.assert_allclose(aligner.frame_ @ aligner.frame_.T, top @ top.T, atol=1e-8)
    # R diagonalises the target covariance inside U, by decreasing variance.
    inside = aligner.frame_.T @ np.cov(target.T, bias=True) @ aligner.frame_
    np.testing.assert_allclose(inside, np.diag(np.diag(inside)), atol=1e-10)
    assert np.all(np.diff(np.diag(inside)) <= 0)


def test_mixing_makes_blocks_basis_independent():
    rng = np.random.default_rng(3)
    d, r = 10, 6
    cov = np.cov(rng.normal(size=(200, d)).T * np.arange(1, d + 1)[:, None])
    dominant = np.linalg.qr(rng.normal(size=(d, r)))[0]
    gap = rng.normal(size=d)
    reference = dominant @ _frame.target_axes_rotation(dominant, cov, gap)
    order = rng.permutation(r)
    signs = np.where(rng.random(r) < 0.5, -1.0, 1.0)
    shuffled = dominant[:, order] * signs
    np.testing.assert_allclose(shuffled @ _frame.target_axes_rotation(shuffled, cov, gap), reference, atol=1e-10)
    # Any other orthonormal basis of U gives the same frame too.
    rotated = dominant @ np.linalg.qr(rng.normal(size=(r, r)))[0]
    np.testing.assert_allclose(rotated @ _frame.target_axes_rotation(rotated, cov, gap), reference, atol=1e-10)


def test_fitted_output_does_not_depend_on_eigenvector_order_or_sign(monkeypatch):
    target, source = _anisotropic_pair()
    expected = AnisoAlign(rank=6, alpha=0.0, mixing="target_axes").fit(source, y=target).transform(source)
    original = _frame.joint_eigenbasis

    def scrambled(*args):
        values, vectors = original(*args)
        vectors = vectors.copy()
        vectors[:, :6] = vectors[:, [3, 0, 5, 1, 4, 2]] * np.array([-1, 1, -1, -1, 1, -1])
        return values, vectors

    monkeypatch.setattr(_frame, "joint_eigenbasis", scrambled)
    moved = AnisoAlign(rank=6, alpha=0.0, mixing="target_axes").fit(source, y=target).transform(source)
    np.testing.assert_allclose(moved, expected, atol=1e-9)


def test_random_mixing_is_a_seeded_haar_rotation():
    target, source = _anisotropic_pair()
    first = AnisoAlign(rank=6, alpha=0.0, random_state=0).fit(source, y=target)
    again = AnisoAlign(rank=6, alpha=0.0, random_state=0).fit(source, y=target)
    other = AnisoAlign(rank=6, alpha=0.0, random_state=1).fit(source, y=target)
    np.testing.assert_allclose(first.mixing_.T @ first.mixing_, np.eye(6), atol=1e-12)
    np.testing.assert_array_equal(first.mixing_, again.mixing_)
    assert np.abs(first.mixing_ - other.mixing_).max() > 0.1
    # Haar: the mean of R over many draws is zero, and each entry has variance 1 / r.
    rotations = np.stack([_frame.random_rotation(4, np.random.RandomState(seed)) for seed in range(4000)])
    np.testing.assert_allclose(rotations.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(rotations.var(axis=0), 0.25, atol=0.03)


def test_supported_rank_counts_both_samples():
    rng = np.random.default_rng(0)
    source, target = rng.normal(size=(3, 20)), rng.normal(size=(4, 20))
    source_cov, target_cov = np.cov(source.T, bias=True), np.cov(target.T, bias=True)
    # (3 - 1) + (4 - 1) = 5 directions, rounded down to even.
    assert _frame.supported_rank(source_cov, target_cov, 3, 4) == 4


@pytest.mark.parametrize(
    "rank, match",
    [(5, "rank=5 is odd"), (6, "rank=6 exceeds what the data supports")],
)
def test_bad_rank_is_a_clear_error(rank, match):
    rng = np.random.default_rng(0)
    source, target = rng.normal(size=(3, 20)), rng.normal(size=(4, 20))
    with pytest.raises(ValueError, match=match):
        AnisoAlign(rank=rank, alpha=0.0).fit(source, y=target)


def test_auto_rank_is_even_and_capped_by_the_data():
    rng = np.random.default_rng(0)
    source, target = rng.normal(size=(300, 40)), rng.normal(size=(300, 40))
    assert AnisoAlign(alpha=0.0).fit(source, y=target).rank_ == 16
    # Features cap it: rows normalised in 10 dimensions span 10 directions.
    assert AnisoAlign(alpha=0.0).fit(source[:, :10], y=target[:, :10]).rank_ == 10
    # Few rows: capped by what the data supports, (2 - 1) + (2 - 1) = 2.
    assert AnisoAlign(alpha=0.0).fit(source[:2], y=target[:2]).rank_ == 2


def test_circular_statistics_match_definitions():
    rng = np.random.default_rng(0)
    n = 20000
    first = rng.vonmises(1.0, 2.0, size=n)
    second = first + 0.7 + rng.normal(scale=0.01, size=n)
    uniform = rng.uniform(-np.pi, np.pi, size=n)
    mean_phase, resultant, coupling, offset = circular_statistics(np.column_stack([first, second, uniform]))
    assert mean_phase[0] == pytest.approx(1.0, abs=0.02)
    # Mean resultant length of a von Mises(kappa=2): I1(2) / I0(2) = 0.6978.
    assert resultant[0] == pytest.approx(0.6978, abs=0.01)
    assert resultant[2] < 0.03
    # M_kl = E[exp(i (theta_k - theta_l))]: eta_01 = theta_0 - theta_1 = -0.7.
    assert coupling[0, 1] == pytest.approx(1.0, abs=1e-3)
    assert offset[0, 1] == pytest.approx(-0.7, abs=1e-3)
    assert offset[1, 0] == pytest.approx(0.7, abs=1e-3)
    np.testing.assert_allclose(np.diag(coupling), 1.0)


def test_energy_shares_are_eq_3():
    # Block 0: E[rho^2] = (1 + 9) / 2 = 5; block 1: (4 + 0) / 2 = 2; shares 5/7 and 2/7.
    radius = np.array([[1.0, 2.0], [3.0, 0.0]])
    np.testing.assert_allclose(energy_share(radius), [5 / 7, 2 / 7], rtol=1e-10)
    np.testing.assert_allclose(energy_share(np.zeros((3, 2))), 0.0)


def test_top_p_graph_is_the_union_of_each_blocks_strongest_couplings():
    coupling = np.array(
        [
            [1.0, 0.9, 0.2, 0.1],
            [0.9, 1.0, 0.3, 0.5],
            [0.2, 0.3, 1.0, 0.4],
            [0.1, 0.5, 0.4, 1.0],
        ]
    )
    # p = 1: 0 -> 1, 1 -> 0, 2 -> 3, 3 -> 1; the union of undirected pairs is {01, 23, 13}.
    expected = np.zeros((4, 4), dtype=bool)
    for k, l in [(0, 1), (2, 3), (1, 3)]:
        expected[k, l] = expected[l, k] = True
    np.testing.assert_array_equal(top_p_graph(coupling, 1), expected)
    # p = 2 adds 0 -> 2, 1 -> 3 (already there), 2 -> 1, 3 -> 2 (already there).
    for k, l in [(0, 2), (1, 2)]:
        expected[k, l] = expected[l, k] = True
    np.testing.assert_array_equal(top_p_graph(coupling, 2), expected)
    # p beyond m - 1 is the complete graph.
    np.testing.assert_array_equal(top_p_graph(coupling, 10), ~np.eye(4, dtype=bool))


def test_nucleus_graph_is_block_adaptive():
    coupling = np.array(
        [
            [1.0, 0.9, 0.1, 0.1],
            [0.9, 1.0, 0.5, 0.5],
            [0.1, 0.5, 1.0, 0.5],
            [0.1, 0.5, 0.5, 1.0],
        ]
    )
    weights = nucleus_graph(coupling, mass=0.6, temperature=0.1)
    np.testing.assert_allclose(np.diag(weights), 0.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    # Block 0 has one dominant neighbour (softmax weight 0.9998 > 0.6)...
    assert np.count_nonzero(weights[0]) == 1 and weights[0, 1] == pytest.approx(1.0)
    # ...block 2 has three neighbours, two of them tied at softmax weight 0.496 each.
    assert np.count_nonzero(weights[2]) == 2
    np.testing.assert_allclose(weights[2, [1, 3]], 0.5)
    full = nucleus_graph(coupling, mass=1.0, temperature=0.1)
    assert np.count_nonzero(full) == 12


def test_polar_coordinates_are_uncentred_by_default():
    """Eq. 2: target phases of x itself, source phases of y_bar = y - mu_t + mu_i."""
    target, source = _anisotropic_pair()
    aligner = AnisoAlign(rank=4, alpha=0.0, normalize=False, random_state=0).fit(source, y=target)
    np.testing.assert_array_equal(aligner.polar_origin_, 0.0)
    radius, phase = aligner._target_polar(target)
    expected = target @ aligner.frame_
    np.testing.assert_allclose(phase[:, 1], np.arctan2(expected[:, 3], expected[:, 2]), atol=1e-12)
    np.testing.assert_allclose(radius[:, 0], np.hypot(expected[:, 0], expected[:, 1]), atol=1e-12)
    y_bar = source - source.mean(axis=0) + target.mean(axis=0)
    coords = aligner._source_coords(source)
    np.testing.assert_allclose(coords[:, :4], y_bar @ aligner.frame_, atol=1e-10)
    np.testing.assert_allclose(coords[:, 4:], (source - source.mean(axis=0)) @ aligner.complement_, atol=1e-10)
    # A known offset: rows at the target mean plus a small spread have phases near the mean's.
    mean_phase = np.arctan2(*(target.mean(axis=0) @ aligner.frame_)[[1, 0]])
    assert np.angle(np.mean(np.exp(1j * (phase[:, 0] - mean_phase)))) == pytest.approx(0.0, abs=0.2)
    centred = AnisoAlign(rank=4, alpha=0.0, normalize=False, center_polar=True, random_state=0).fit(
        source, y=target
    )
    np.testing.assert_allclose(centred.polar_origin_, target.mean(axis=0))
    _, centred_phase = centred._target_polar(target)
    shifted = (target - target.mean(axis=0)) @ centred.frame_
    np.testing.assert_allclose(centred_phase[:, 0], np.arctan2(shifted[:, 1], shifted[:, 0]), atol=1e-12)


def test_global_initialisation_matches_target_radii_on_held_out_rows():
    rng = np.random.default_rng(0)
    d, n = 8, 4000
    target = rng.normal(size=(2 * n, d)) * np.array([2.0, 1.5, 1.0, 1.0, 0.5, 0.5, 0.3, 0.3])
    source = rng.standard_t(4, size=(2 * n, d)) * 0.4 + 3.0
    aligner = AnisoAlign(rank=4, alpha=0.0, normalize=False, random_state=0).fit(source[:n], y=target[:n])
    held_source, held_target = source[n:], target[n:]
    coords = aligner._source_coords(held_source)
    source_radius, _ = _frame.to_polar(coords[:, :4])
    mapped, _, _ = aligner._global_init(coords)
    target_radius, _ = aligner._target_polar(held_target)
    for k in range(2):
        assert ks_2samp(source_radius[:, k], target_radius[:, k]).statistic > 0.3
        assert ks_2samp(mapped[:, k], target_radius[:, k]).statistic < 0.05


def test_v_side_is_the_std_ratio_of_sec_4_4_1():
    """v^(0) = mu_i,V + D_V (y_V - mu_t,V), D_V = Diag(sigma_V^x / (sigma_V^y + eps))."""
    target, source = _anisotropic_pair()
    aligner = AnisoAlign(rank=4, alpha=0.0, normalize=False, random_state=0).fit(source, y=target)
    source_v = (source - source.mean(axis=0)) @ aligner.complement_
    target_v = (target - target.mean(axis=0)) @ aligner.complement_
    np.testing.assert_allclose(
        aligner.complement_scale_, target_v.std(axis=0) / (source_v.std(axis=0) + _frame.COMPLEMENT_EPS), rtol=1e-8
    )
    _, _, scaled = aligner._global_init(aligner._source_coords(source))
    np.testing.assert_allclose(scaled.std(axis=0), target_v.std(axis=0), rtol=1e-4)
    # Hand-computed on diagonal covariances.
    np.testing.assert_allclose(
        _frame.complement_std_ratio(np.diag([4.0, 1.0]), np.diag([1.0, 9.0]), np.eye(2), eps=0.0), [0.5, 3.0]
    )


def test_v_side_shrunk_scale_shrinks_towards_the_isotropic_trace_ratio():
    # Diagonal covariances: complement axes 0 and 1 are populated, axis 2 is not.
    source_cov = np.diag([4.0, 1.0, 0.0])
    target_cov = np.diag([1.0, 4.0, 0.0])
    complement = np.eye(3)
    ratio = 5.0 / 5.0
    np.testing.assert_allclose(
        _frame.complement_shrunk_scale(source_cov, target_cov, complement, 0.5),
        np.sqrt([(1 + 0.5 * ratio) / 4.5, (4 + 0.5 * ratio) / 1.5, ratio]),
    )
    # Where neither sample has variance the scale is sqrt(tr Sigma_i / tr Sigma_t),
    # ReAlign's isotropic scale, and a large ridge gives it on every axis.
    target_cov = np.diag([4.0, 4.0, 0.0])
    assert _frame.complement_shrunk_scale(source_cov, target_cov, complement, 1.0)[2] == pytest.approx(np.sqrt(8 / 5))
    np.testing.assert_allclose(
        _frame.complement_shrunk_scale(source_cov, target_cov, complement, 1e12), np.sqrt(8 / 5), rtol=1e-9
    )


def test_radial_quantile_map_is_monotone_and_hits_target_quantiles():
    levels = np.linspace(0, 1, _frame.N_RADIUS_QUANTILES)
    source_q = np.column_stack([levels, 2 * levels])
    target_q = np.column_stack([levels**2, levels + 1])
    radius = np.array([[0.25, 0.5], [0.5, 1.0], [2.0, -1.0]])
    mapped = _frame.radial_quantile_map(radius, source_q, target_q)
    # F_y(0.25) = 0.25 -> F_x^-1(0.25) ~ 0.0625; F_y(1.0) = 0.5 in block 1 -> 1.5.
    np.testing.assert_allclose(mapped[:2], [[0.0625, 1.25], [0.25, 1.5]], atol=1e-4)
    # Outside the fit range, the extreme target quantiles.
    np.testing.assert_allclose(mapped[2], [1.0, 1.0])
