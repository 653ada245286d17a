"""Gap measures of the seed papers: hand-computed cases, relations, invariances."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from sklearn_modgap.metrics import (
    centroid_displacement,
    centroid_gap,
    distribution_gap,
    effective_rank,
    fusion_index,
    gap_angle,
    principal_angles,
    raw_gap,
    subspace_overlap,
    true_pair_cosine,
)


def test_pair_cosines_hand_computed():
    target = [[1.0, 0.0], [0.0, 2.0]]
    source = [[1.0, 1.0], [0.0, -1.0]]
    assert true_pair_cosine(target, source) == pytest.approx((1 / np.sqrt(2) - 1) / 2)
    assert raw_gap(target, source) == pytest.approx(1 - (1 / np.sqrt(2) - 1) / 2)


def test_distribution_gap_removes_the_centroid_shift():
    target = np.array([[1.0, 0.1], [1.0, -0.1]])
    source = np.array([[0.1, 1.0], [-0.1, 1.0]])
    # Centred rows: target ±(0, a), source ±(b, 0): orthogonal, so cos = 0.
    assert distribution_gap(target, source) == pytest.approx(1.0)
    assert distribution_gap(target, source[::-1] * [-1, 1]) == pytest.approx(1.0)
    assert distribution_gap(target, target * [1, 1]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="equals its modality's mean"):
        distribution_gap([[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]])


def test_centroid_gap_is_g_mu_and_gap_angle_hand_computed():
    target = [[1.0, 0.0], [0.0, 1.0]]
    source = [[0.0, 1.0], [-1.0, 0.0]]
    assert centroid_gap(target, source) == pytest.approx(1.0)
    assert centroid_gap(target, source) == centroid_displacement(target, source)
    assert gap_angle(target, source) == pytest.approx(90.0)
    with pytest.raises(ValueError, match="centroid of one modality is the origin"):
        gap_angle(target, [[1.0, 0.0], [-1.0, 0.0]])


def test_principal_angles_hand_computed_and_related_to_overlap(clip_pairs):
    e = np.eye(4)
    target = np.array([e[0], -e[0], e[0], -e[0], e[1], -e[1]])
    source = np.array([e[0], -e[0], e[0], -e[0], e[2], -e[2]])
    np.testing.assert_allclose(principal_angles(target, source, q=2), [0.0, 90.0], atol=1e-6)
    clip_target, clip_source = clip_pairs
    angles = principal_angles(clip_target, clip_source, q=32)
    assert np.all(np.diff(angles) >= 0)
    overlap = subspace_overlap(clip_target, clip_source, q=32)
    assert np.mean(np.cos(np.deg2rad(angles)) ** 2) == pytest.approx(overlap, rel=1e-6)


def test_effective_rank_hand_computed():
    assert effective_rank(np.eye(5)[:3]) == pytest.approx(3.0)
    assert effective_rank([[1.0, 2.0], [2.0, 4.0]]) == pytest.approx(1.0)
    # Singular values (sqrt(3), 1) of rows e1, e1, e1, e2.
    rows = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    p = np.array([np.sqrt(3), 1.0]) / (np.sqrt(3) + 1)
    assert effective_rank(rows) == pytest.approx(np.exp(-np.sum(p * np.log(p))))
    with pytest.raises(ValueError, match="all equal to their mean"):
        effective_rank([[1.0, 2.0], [2.0, 4.0]], center=True)


def test_fusion_index_hand_computed():
    e = np.eye(4)
    assert fusion_index(e[:2], e[2:]) == pytest.approx(2.0)
    assert fusion_index(e[:2], e[[1, 0]]) == pytest.approx(1.0)


@pytest.fixture
def clouds():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(30, 5)) + [3, 0, 0, 0, 0]
    source = target + rng.normal(size=(30, 5)) + [0, 2, 0, 0, 0]
    return target, source


METRICS = [
    true_pair_cosine,
    raw_gap,
    centroid_gap,
    distribution_gap,
    gap_angle,
    lambda t, s: principal_angles(t, s, q=3).sum(),
    lambda t, s: effective_rank(t),
    lambda t, s: effective_rank(s, center=True),
    fusion_index,
    lambda t, s: fusion_index(t, s, center=True),
]


@pytest.mark.parametrize("metric", METRICS)
def test_invariant_to_rotation_scale_row_order_and_dtype(clouds, metric):
    target, source = clouds
    reference = metric(target, source)
    rotation = ortho_group.rvs(5, random_state=2)
    assert metric(target @ rotation, 3.0 * source @ rotation) == pytest.approx(reference, rel=1e-7)
    order = np.random.default_rng(1).permutation(30)
    assert metric(target[order], source[order]) == pytest.approx(reference, rel=1e-7)
    as32 = metric(target.astype(np.float32), source.astype(np.float32))
    assert as32 == pytest.approx(reference, rel=1e-4)


def test_bad_input(clouds):
    target, source = clouds
    with pytest.raises(ValueError, match="paired row by row"):
        raw_gap(target, source[:-1])
    with pytest.raises(ValueError, match="q=6 is larger"):
        principal_angles(target, source, q=6)
    with pytest.raises(ValueError, match="NaN"):
        effective_rank(np.full((3, 2), np.nan))
