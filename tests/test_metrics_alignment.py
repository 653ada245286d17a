"""Alignment-quality metrics: hand-computed cases, invariances, bad input."""

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.exceptions import UndefinedMetricWarning

from sklearn_modgap.metrics import (
    alignment_balance,
    centroid_discrepancy,
    instance_consistency,
    modality_mixing,
    neighborhood_consistency,
    relative_geometry_consistency,
)


def _on_circle(degrees):
    radians = np.deg2rad(np.asarray(degrees, dtype=float))
    return np.column_stack([np.cos(radians), np.sin(radians)])


@pytest.fixture
def clouds():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(60, 6)) + 1.5
    source = rng.normal(size=(50, 6))
    substitutes = source + 0.3 * rng.normal(size=source.shape) + 0.8
    return target, source, substitutes


def test_centroid_discrepancy_hand_computed_with_unequal_rows():
    # Centroids (0.5, 0.5) and (1, 0) after normalisation.
    value = centroid_discrepancy([[1.0, 0.0], [0.0, 3.0]], [[2.0, 0.0]])
    assert value == pytest.approx(np.sqrt(0.5))


def test_instance_consistency_hand_computed():
    value = instance_consistency([[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 2.0]])
    assert value == pytest.approx((1 / np.sqrt(2) + 1) / 2)


def test_relative_geometry_consistency_hand_computed_all_pairs():
    source = _on_circle([0, 90, 45])
    substitutes = _on_circle([0, 60, 10])
    # Pairs (0,1), (0,2), (1,2) in the order of np.triu_indices.
    before = [0.0, np.cos(np.pi / 4), np.cos(np.pi / 4)]
    after = [np.cos(np.deg2rad(60)), np.cos(np.deg2rad(10)), np.cos(np.deg2rad(50))]
    expected = np.corrcoef(before, after)[0, 1]
    assert relative_geometry_consistency(source, substitutes) == pytest.approx(expected)


def test_relative_geometry_consistency_sample_approximates_all_pairs(clouds):
    _, source, substitutes = clouds
    every_pair = relative_geometry_consistency(source, substitutes, n_pairs=10**6)
    sampled = relative_geometry_consistency(source, substitutes, n_pairs=500, random_state=3)
    assert sampled != every_pair
    assert sampled == pytest.approx(every_pair, abs=0.05)
    again = relative_geometry_consistency(source, substitutes, n_pairs=500, random_state=3)
    assert again == sampled


def test_relative_geometry_consistency_constant_rows_warn_and_give_zero(clouds):
    _, source, _ = clouds
    collapsed = np.ones_like(source)
    with pytest.warns(UndefinedMetricWarning, match="Psi is undefined"):
        assert relative_geometry_consistency(source, collapsed) == 0.0


def test_neighborhood_consistency_hand_computed():
    # Nearest neighbours: source 0->1, 1->0, 2->1, 3->2; substitutes 0->1, 1->0, 2->3, 3->2.
    source = _on_circle([0, 10, 30, 100])
    substitutes = _on_circle([0, 10, 100, 105])
    assert neighborhood_consistency(source, substitutes, k=1) == pytest.approx(0.75)


def test_modality_mixing_hand_computed_against_hypergeometric_baseline():
    # k=2 in a pool of 4: each row sees its twin and the nearest row of the other
    # modality, so p = 1/2 and H2 = 1.  Under random labels K ~ Hypergeom(3, 2, 2)
    # (for a substitute) takes 1 with probability 2/3 and 2 with 1/3: E[H2] = 2/3.
    target = _on_circle([0, 5])
    substitutes = _on_circle([90, 95])
    assert modality_mixing(target, substitutes, k=2) == pytest.approx(1.5)
    assert modality_mixing(target, substitutes, k=2, direction="target") == pytest.approx(1.5)


@pytest.mark.parametrize("direction", ["substitute", "target"])
def test_modality_mixing_is_one_when_every_row_is_a_neighbour(clouds, direction):
    target, _, substitutes = clouds
    target = target[:7]
    substitutes = substitutes[:4]
    value = modality_mixing(target, substitutes, k=10, direction=direction)
    assert value == pytest.approx(1.0)


def test_modality_mixing_separated_and_mixed_clouds():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(80, 5))
    same = rng.normal(size=(80, 5))
    assert modality_mixing(target, target + 30, k=5) == pytest.approx(0.0)
    assert modality_mixing(target, same, k=10) == pytest.approx(1.0, abs=0.15)


def test_alignment_balance_extremes(clouds):
    target, source, _ = clouds
    target, source = target[:5], source[:4]
    # k = 8 makes every row a neighbour: both mixing scores are exactly 1; Psi = 1.
    assert alignment_balance(target, source, -source, k=8) == pytest.approx(1.0)
    far = np.zeros(source.shape[1])
    far[0] = 50.0
    assert alignment_balance(target[:5] + far, source, source - far, k=2) == pytest.approx(0.0)
    with pytest.warns(UndefinedMetricWarning):
        assert alignment_balance(target, source, np.ones_like(source), k=8) == 0.0


def test_alignment_balance_is_harmonic_mean_of_its_parts(clouds):
    target, source, substitutes = clouds
    psi = relative_geometry_consistency(source, substitutes)
    mixing = (
        modality_mixing(target, substitutes, k=7)
        + modality_mixing(target, substitutes, k=7, direction="target")
    ) / 2
    expected = 2 * psi * mixing / (psi + mixing)
    assert alignment_balance(target, source, substitutes, k=7) == pytest.approx(expected)


ALL_METRICS = [
    lambda t, s, z: centroid_discrepancy(t, z),
    lambda t, s, z: instance_consistency(s, z),
    lambda t, s, z: relative_geometry_consistency(s, z),
    lambda t, s, z: neighborhood_consistency(s, z, k=5),
    lambda t, s, z: modality_mixing(t, z, k=5),
    lambda t, s, z: modality_mixing(t, z, k=5, direction="target"),
    lambda t, s, z: alignment_balance(t, s, z, k=5),
]


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_invariant_to_rotation_scale_and_row_order(clouds, metric):
    target, source, substitutes = clouds
    reference = metric(target, source, substitutes)
    rotation = ortho_group.rvs(target.shape[1], random_state=0)
    rotated = metric(target @ rotation, source @ rotation, 3.0 * substitutes @ rotation)
    assert rotated == pytest.approx(reference, abs=1e-9)
    rng = np.random.default_rng(2)
    pairs = rng.permutation(len(source))
    shuffled_target = target[rng.permutation(len(target))]
    # 50 rows give 1225 pairs, below n_pairs: Psi uses them all, so order is irrelevant.
    shuffled = metric(shuffled_target, source[pairs], substitutes[pairs])
    assert shuffled == pytest.approx(reference, abs=1e-9)


def test_float32_gives_the_float64_values(clouds):
    target, source, substitutes = clouds
    args32 = [a.astype(np.float32) for a in (target, source, substitutes)]
    assert alignment_balance(*args32, k=5) == pytest.approx(
        alignment_balance(target, source, substitutes, k=5), abs=1e-5
    )


def test_k_larger_than_the_sample_is_an_error(clouds):
    target, source, substitutes = clouds
    with pytest.raises(ValueError, match="k=50 is larger than the 49"):
        neighborhood_consistency(source, substitutes, k=50)
    with pytest.raises(ValueError, match="k=200 is larger than the 109"):
        modality_mixing(target, substitutes, k=200)
    with pytest.raises(ValueError, match="k >= 2"):
        modality_mixing(target, substitutes, k=1)


def test_empty_modality_is_an_error(clouds):
    target, source, substitutes = clouds
    with pytest.raises(ValueError, match="target is empty"):
        modality_mixing(target[:0], substitutes)
    with pytest.raises(ValueError, match="substitutes is empty"):
        centroid_discrepancy(target, substitutes[:0])
    with pytest.raises(ValueError, match="at least 2 rows of each modality, substitutes has 1"):
        modality_mixing(target, substitutes[:1], k=3)


def test_unpaired_rows_feature_mismatch_and_zero_rows_are_errors(clouds):
    target, source, substitutes = clouds
    with pytest.raises(ValueError, match="paired row by row"):
        instance_consistency(source, substitutes[:-1])
    with pytest.raises(ValueError, match="both modalities must live in the same"):
        centroid_discrepancy(target, substitutes[:, :3])
    bad = source.copy()
    bad[3] = 0.0
    with pytest.raises(ValueError, match="zero norm"):
        relative_geometry_consistency(bad, substitutes)
    with pytest.raises(ValueError, match="direction"):
        modality_mixing(target, substitutes, direction="both")
