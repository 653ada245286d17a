"""SSP: the shared space of two hyperplanes, recovered and projected onto."""

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ortho_group

from conftest import load_real
from sklearn_modgap import SSP
from sklearn_modgap.metrics import gap_angle, true_pair_cosine


def _hyperplanes(n_rows=300, n_features=12, n_shared=3, n_private=2, seed=0):
    """Rows in two known subspaces that meet in a known ``n_shared``-dim space.

    The target spans ``Q_shared + Q_x`` and the source ``Q_shared + Q_y``, all
    three blocks mutually orthogonal, so the intersection is exactly
    ``span(Q_shared)``.  Shared coordinates have decreasing scales so that
    the projected-variance order is known.
    """
    rng = np.random.default_rng(seed)
    frame = ortho_group.rvs(n_features, random_state=seed)
    shared = frame[:, :n_shared]
    target_private = frame[:, n_shared : n_shared + n_private]
    source_private = frame[:, n_shared + n_private : n_shared + 2 * n_private]
    scales = np.arange(n_shared, 0, -1, dtype=float)
    target = rng.normal(size=(n_rows, n_shared)) * scales @ shared.T
    target += rng.normal(size=(n_rows, n_private)) @ target_private.T
    source = rng.normal(size=(n_rows, n_shared)) * scales @ shared.T
    source += rng.normal(size=(n_rows, n_private)) @ source_private.T
    return target, source, shared


def test_recovers_the_known_intersection_exactly():
    target, source, shared = _hyperplanes()
    ssp = SSP().fit(source, y=target)

    assert ssp.n_shared_ == 3
    assert ssp.target_rank_ == 5 and ssp.source_rank_ == 5
    np.testing.assert_allclose(
        ssp.shared_basis_ @ ssp.shared_basis_.T, shared @ shared.T, atol=1e-8
    )
    np.testing.assert_allclose(ssp.shared_basis_.T @ ssp.shared_basis_, np.eye(3), atol=1e-10)
    # Three zero angles, and the private blocks are orthogonal to each other.
    np.testing.assert_allclose(ssp.principal_angles_, [0, 0, 0, np.pi / 2, np.pi / 2], atol=1e-6)


def test_projection_keeps_shared_rows_and_drops_private_directions():
    target, source, shared = _hyperplanes()
    ssp = SSP().fit(source, y=target)
    inside = np.random.default_rng(1).normal(size=(5, 3)) @ shared.T
    inside /= np.linalg.norm(inside, axis=1, keepdims=True)
    np.testing.assert_allclose(ssp.transform(inside), inside, atol=1e-10)

    expected = source @ shared @ shared.T
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(ssp.transform(source), expected, atol=1e-8)
    expected = target @ shared @ shared.T
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(ssp.transform_target(target), expected, atol=1e-8)


def test_rank_keeps_the_directions_of_largest_projected_variance():
    target, source, shared = _hyperplanes()
    ssp = SSP(rank=1).fit(source, y=target)
    assert ssp.n_shared_ == 1
    # The first shared coordinate has three times the scale of the last one.
    assert abs(ssp.shared_basis_[:, 0] @ shared[:, 0]) > 0.99


def test_rank_larger_than_the_shared_space_is_an_error():
    target, source, _ = _hyperplanes()
    with pytest.raises(ValueError, match=r"rank=4 but only 3 direction\(s\) are shared"):
        SSP(rank=4).fit(source, y=target)


def test_disjoint_subspaces_name_the_threshold_to_relax():
    rng = np.random.default_rng(0)
    target = np.hstack([rng.normal(size=(50, 3)), np.zeros((50, 3))])
    source = np.hstack([np.zeros((50, 3)), rng.normal(size=(50, 3))])
    with pytest.raises(ValueError, match="Relax eps .* or raise variance"):
        SSP().fit(source, y=target)


def test_alpha_zero_is_the_identity_up_to_normalisation():
    target, source, _ = _hyperplanes()
    ssp = SSP(alpha=0.0).fit(source, y=target)
    expected = source / np.linalg.norm(source, axis=1, keepdims=True)
    np.testing.assert_allclose(ssp.transform(source), expected, atol=1e-12)


def test_center_projects_rows_minus_their_own_mean():
    target, source, shared = _hyperplanes()
    target = target + 3.0 * shared[:, 0]
    source = source - 2.0 * shared[:, 1]
    ssp = SSP(center=True, normalize=False).fit(source, y=target)
    assert ssp.n_shared_ == 3
    expected = (source - source.mean(axis=0)) @ shared @ shared.T
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(ssp.transform(source), expected, atol=1e-8)


def test_rotating_both_modalities_rotates_the_output():
    target, source, _ = _hyperplanes()
    rotation = ortho_group.rvs(target.shape[1], random_state=3)
    plain = SSP().fit(source, y=target)
    rotated = SSP().fit(source @ rotation, y=target @ rotation)
    np.testing.assert_allclose(
        rotated.transform(source @ rotation), plain.transform(source) @ rotation, atol=1e-8
    )


def test_target_row_order_and_stacked_mode_do_not_matter():
    target, source, _ = _hyperplanes()
    reference = SSP().fit(source, y=target).transform(source)
    shuffled = SSP().fit(source, y=target[::-1]).transform(source)
    stacked = np.vstack([source, target])
    domain = np.r_[np.ones(len(source)), -np.ones(len(target))]
    from_stacked = SSP().fit(stacked, sample_domain=domain).transform(source)
    np.testing.assert_allclose(shuffled, reference, atol=1e-10)
    np.testing.assert_allclose(from_stacked, reference, atol=1e-10)


def test_float32_pandas_and_pickle():
    target, source, _ = _hyperplanes()
    source32, target32 = source.astype(np.float32), target.astype(np.float32)
    ssp = SSP().fit(source32, y=target32)
    assert ssp.transform(source32).dtype == np.float32
    assert ssp.transform_target(target32).dtype == np.float32
    np.testing.assert_array_equal(ssp.fit_transform(source32, target32), ssp.transform(source32))

    names = [f"f{j}" for j in range(source.shape[1])]
    frame = pd.DataFrame(source, columns=names)
    out = SSP().set_output(transform="pandas").fit(frame, y=target).transform(frame)
    assert list(out.columns) == names

    restored = pickle.loads(pickle.dumps(ssp))
    np.testing.assert_array_equal(restored.transform(source32), ssp.transform(source32))


def test_real_clip_gap_angle_drops_after_projection():
    target, source = load_real("clip")
    half = len(target) // 2
    ssp = SSP(variance=0.999, eps=1e-2).fit(source[:half], y=target[:half])
    held_target, held_source = target[half:], source[half:]
    substitutes, aligned = ssp.transform(held_source), ssp.transform_target(held_target)
    before, after = gap_angle(held_target, held_source), gap_angle(aligned, substitutes)
    # Measured: 72.1 degrees before, 23.4 after, with 12 shared directions.
    assert before > 60.0
    assert after < before / 2
    assert true_pair_cosine(aligned, substitutes) > true_pair_cosine(held_target, held_source) + 0.2


def test_the_former_spelling_centre_still_works_with_a_future_warning():
    import warnings

    target, source, shared = _hyperplanes()
    source = source - 2.0 * shared[:, 1]
    with pytest.warns(FutureWarning, match="'centre' is now spelled 'center'"):
        old = SSP(centre=True, normalize=False).fit(source, y=target)
    new = SSP(center=True, normalize=False).fit(source, y=target)
    assert old.center_ and new.center_
    np.testing.assert_array_equal(old.transform(source), new.transform(source))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not SSP(normalize=False).fit(source, y=target).center_


def _two_planes(angle, second_scale=1.0, n_rows=400, seed=0):
    """Target in span(e1, e2), source in span(e1, cos(a) e2 + sin(a) e3).

    The principal angles between the two planes are exactly ``0`` and ``a``.
    ``second_scale`` is the scale of each modality's second coordinate
    relative to its first, which fixes its variance share.
    """
    rng = np.random.default_rng(seed)
    frame = ortho_group.rvs(6, random_state=seed)
    e1, e2, e3 = frame[:, 0], frame[:, 1], frame[:, 2]
    tilted = np.cos(angle) * e2 + np.sin(angle) * e3
    coefs = rng.normal(size=(n_rows, 2)) * [1.0, second_scale]
    target = np.outer(coefs[:, 0], e1) + np.outer(coefs[:, 1], e2)
    coefs = rng.normal(size=(n_rows, 2)) * [1.0, second_scale]
    source = np.outer(coefs[:, 0], e1) + np.outer(coefs[:, 1], tilted)
    return target, source, e1, e2, tilted


def test_eps_thresholds_one_minus_the_cosine_not_the_angle():
    # Angle 0.05 rad: 1 - cos = 0.00124958, while the angle itself is 0.05.
    angle = 0.05
    target, source, e1, e2, tilted = _two_planes(angle)
    loose = SSP(eps=2e-3, normalize=False).fit(source, y=target)
    np.testing.assert_allclose(loose.principal_angles_, [0.0, angle], atol=1e-8)
    # 1 - cos(0.05) < 2e-3: the tilted pair is shared (an angle threshold of
    # 2e-3 rad would reject it).
    assert loose.n_shared_ == 2
    strict = SSP(eps=1e-3, normalize=False).fit(source, y=target)
    # 1 - cos(0.05) > 1e-3: only e1 is shared.
    assert strict.n_shared_ == 1
    np.testing.assert_allclose(abs(strict.shared_basis_[:, 0] @ e1), 1.0, atol=1e-10)
    # The second shared direction is the unit bisector of e2 and the tilted axis.
    bisector = (e2 + tilted) / np.linalg.norm(e2 + tilted)
    second = loose.shared_basis_[:, np.argmin(abs(loose.shared_basis_.T @ e1))]
    np.testing.assert_allclose(abs(second @ bisector), 1.0, atol=1e-10)
    assert loose.n_forced_ == 0


def test_variance_is_a_share_of_each_modality_own_second_moment():
    # Second coordinate at scale 0.3: its share of the second moment is
    # 0.09 / 1.09 = 0.0826 (up to sampling), so variance=0.9 keeps one axis
    # per modality and variance=0.95 keeps two.
    target, source, e1, _, _ = _two_planes(0.0, second_scale=0.3)
    gram = target.T @ target / len(target)
    eig = np.sort(np.linalg.eigvalsh(gram))[::-1]
    share = eig[0] / eig.sum()
    assert 0.9 < share < 0.95
    small = SSP(variance=0.9, normalize=False).fit(source, y=target)
    assert small.target_rank_ == 1 and small.source_rank_ == 1 and small.n_shared_ == 1
    large = SSP(variance=0.95, normalize=False).fit(source, y=target)
    assert large.target_rank_ == 2 and large.source_rank_ == 2 and large.n_shared_ == 2


def test_forced_intersections_are_counted():
    # Two generic 4-dim subspaces of R^6 meet in at least 4 + 4 - 6 = 2 dims.
    rng = np.random.default_rng(0)
    target = rng.normal(size=(100, 4)) @ rng.normal(size=(4, 6))
    source = rng.normal(size=(100, 4)) @ rng.normal(size=(4, 6))
    ssp = SSP(variance=0.999999, normalize=False).fit(source, y=target)
    assert ssp.target_rank_ == 4 and ssp.source_rank_ == 4
    assert ssp.n_forced_ == 2
    assert ssp.n_shared_ == 2
