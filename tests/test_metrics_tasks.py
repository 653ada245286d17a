"""Task-level measures: retrieval, joint clustering, cross-modal transfer."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from sklearn_modgap.metrics import cross_modal_transfer, joint_clustering_scores, liang_shift_sweep, retrieval_recall


def _on_circle(degrees):
    radians = np.deg2rad(np.asarray(degrees, dtype=float))
    return np.column_stack([np.cos(radians), np.sin(radians)])


def test_retrieval_recall_hand_computed():
    target = _on_circle([0, 90, 180])
    # Substitute 0 sits nearest target 1, substitute 1 nearest target 0,
    # substitute 2 on its own target.
    substitutes = _on_circle([80, 10, 170])
    recalls = retrieval_recall(target, substitutes, k=(1, 2))
    assert recalls == {
        "target_to_substitute_recall@1": pytest.approx(1 / 3),
        "target_to_substitute_recall@2": pytest.approx(1.0),
        "substitute_to_target_recall@1": pytest.approx(1 / 3),
        "substitute_to_target_recall@2": pytest.approx(1.0),
    }


def test_retrieval_recall_with_several_captions_per_image():
    target = _on_circle([0, 90])
    substitutes = _on_circle([5, 60, 100, 40])
    groups = [0, 0, 1, 1]
    recalls = retrieval_recall(target, substitutes, k=1, groups=groups)
    # Image 0 finds caption 0 (its own); image 1 finds caption 2 (its own).
    assert recalls["target_to_substitute_recall@1"] == 1.0
    # Captions 0 and 2 find their image; caption 1 (60°) finds image 1, caption 3 (40°) image 0.
    assert recalls["substitute_to_target_recall@1"] == 0.5


def test_retrieval_recall_invariances():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(40, 6))
    substitutes = target + 0.8 * rng.normal(size=(40, 6))
    reference = retrieval_recall(target, substitutes)
    rotation = ortho_group.rvs(6, random_state=0)
    assert retrieval_recall(target @ rotation, 2 * substitutes @ rotation) == reference
    order = rng.permutation(40)
    assert retrieval_recall(target[order], substitutes[order]) == reference
    assert retrieval_recall(target, substitutes[order], groups=order) == reference
    assert retrieval_recall(target[np.argsort(order)], substitutes, groups=order) == reference


def test_retrieval_recall_bad_input():
    target = _on_circle([0, 90, 180])
    with pytest.raises(ValueError, match="without groups the rows must be paired"):
        retrieval_recall(target, target[:2])
    with pytest.raises(ValueError, match="every target row needs at least one substitute"):
        retrieval_recall(target, target[:2], groups=[0, 1])
    with pytest.raises(ValueError, match="k=5 is larger than the 3"):
        retrieval_recall(target, target, k=5)
    with pytest.raises(ValueError, match="lie in \\[0, 2\\]"):
        retrieval_recall(target, target, groups=[0, 1, 3])


def test_joint_clustering_scores_separated_modalities_and_aligned_classes():
    rng = np.random.default_rng(0)
    classes = np.repeat([0, 1], 30)
    centres = np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    target = centres[classes] + 0.2 * rng.normal(size=(60, 3))
    aligned = centres[classes] + 0.2 * rng.normal(size=(60, 3))
    assert joint_clustering_scores(target, aligned, classes) == {
        "adjusted_rand": pytest.approx(1.0),
        "v_measure": pytest.approx(1.0),
    }
    rotation = ortho_group.rvs(3, random_state=0)
    assert joint_clustering_scores(target @ rotation, 2 * aligned @ rotation, classes) == {
        "adjusted_rand": pytest.approx(1.0),
        "v_measure": pytest.approx(1.0),
    }
    # Substitutes on the far side cluster by modality: k-means with 2 clusters
    # splits target from substitutes, which says nothing about the classes.
    apart = -np.abs(aligned) * [1, 1, 0] - [0, 0, 20.0]
    scores = joint_clustering_scores(target, apart, np.r_[classes, classes])
    assert scores["adjusted_rand"] == pytest.approx(0.0, abs=0.02)
    assert scores["v_measure"] == pytest.approx(0.0, abs=0.02)
    with pytest.raises(ValueError, match="labels has 7 entries"):
        joint_clustering_scores(target, aligned, classes[:7])


def test_cross_modal_transfer_identity_and_chance():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(60, 10))
    assert cross_modal_transfer(source, source, source) == 1.0
    # Substitutes unrelated to the target: the decoder has learnt nothing that
    # applies to target rows far from them.
    scrambled = rng.normal(size=(60, 10))
    assert cross_modal_transfer(scrambled, source, source) < 0.2
    rotation = ortho_group.rvs(10, random_state=1)
    target = source + 0.3 * rng.normal(size=(60, 10))
    substitutes = source + 0.3 * rng.normal(size=(60, 10))
    reference = cross_modal_transfer(target, source, substitutes)
    assert cross_modal_transfer(target @ rotation, source @ rotation,
                                substitutes @ rotation) == pytest.approx(reference)
    order = rng.permutation(60)
    assert cross_modal_transfer(target[order], source[order],
                                substitutes[order]) == pytest.approx(reference)
    with pytest.raises(ValueError, match="target and source must be paired"):
        cross_modal_transfer(target[:-1], source, substitutes)


def test_cross_modal_transfer_penalty_and_its_former_name_alpha():
    import warnings

    rng = np.random.default_rng(0)
    source = rng.normal(size=(30, 40))
    target = source + 0.3 * rng.normal(size=(30, 40))
    substitutes = source + 0.3 * rng.normal(size=(30, 40))
    with pytest.warns(FutureWarning, match="'alpha' is now spelled 'penalty'"):
        old = cross_modal_transfer(target, source, substitutes, alpha=5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = cross_modal_transfer(target, source, substitutes, penalty=5.0)
    assert old == new
    # A huge penalty shrinks the decoder to the mean output: near chance (1/30), unlike a small one.
    assert new == 1.0
    assert cross_modal_transfer(target, source, substitutes, penalty=1e3) < 0.2
    with pytest.raises(ValueError, match="penalty"):
        cross_modal_transfer(target, source, substitutes, penalty=-1.0)


# ---------------------------------------------------------- Liang's shift sweep
# Images above the horizontal axis, texts below: mu_x = (0, 0.8), mu_y = (0, -0.8),
# so the unit gap direction is g = (0, 1).
SWEEP_IMAGES = np.array([[0.6, 0.8], [-0.6, 0.8]])
SWEEP_TEXTS = np.array([[0.6, -0.8], [-0.6, -0.8]])


def test_liang_shift_sweep_hand_computed():
    sweep = liang_shift_sweep(SWEEP_IMAGES, SWEEP_TEXTS, deltas=[0.0, 1.0, 1.6, 3.2], k=1)
    # delta = 1: y' = Norm(y + (0, 0.5)) = (+-0.6, -0.3) / sqrt(0.45) and
    # x' = Norm(x - (0, 0.5)) = (+-0.6, 0.3) / sqrt(0.45): gap 2 * 0.3 / sqrt(0.45).
    # delta = 1.6: both land on (+-1, 0), gap 0.  delta = 3.2: the modalities
    # have swapped sides, gap 1.6 again, negated on the signed axis.
    np.testing.assert_allclose(sweep["gap_distance"], [1.6, 0.6 / np.sqrt(0.45), 0.0, 1.6], atol=1e-12)
    np.testing.assert_allclose(sweep["signed_gap_distance"], [1.6, 0.6 / np.sqrt(0.45), 0.0, -1.6], atol=1e-12)
    assert list(sweep["delta"]) == [0.0, 1.0, 1.6, 3.2]
    assert sweep["target_to_substitute_recall@1"].tolist() == [1.0, 1.0, 1.0, 1.0]
    # Swapping the pairing: every image's nearest text is the other one.
    swapped = liang_shift_sweep(SWEEP_IMAGES, SWEEP_TEXTS[::-1], deltas=[0.0, 1.0], k=1)
    assert swapped["substitute_to_target_recall@1"].tolist() == [0.0, 0.0]


def test_liang_shift_sweep_recall_is_that_of_the_shifted_rows():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(30, 3)) + [0.0, 0.0, 2.0]
    texts = images + rng.normal(size=(30, 3)) * 0.8 - [0.0, 0.0, 4.0]
    unit = lambda rows: rows / np.linalg.norm(rows, axis=1, keepdims=True)  # noqa: E731
    gap = unit(images).mean(0) - unit(texts).mean(0)
    g = gap / np.linalg.norm(gap)
    row = liang_shift_sweep(images, texts, deltas=[1.5], k=(1, 5)).iloc[0]
    expected = retrieval_recall(unit(unit(images) - 0.75 * g), unit(unit(texts) + 0.75 * g), k=(1, 5))
    for name, value in expected.items():
        assert row[name] == value
    # A direction of any length along g gives the same sweep.
    np.testing.assert_allclose(
        liang_shift_sweep(images, texts, deltas=[1.5], direction=3 * g)["gap_distance"], row["gap_distance"]
    )


def test_liang_shift_sweep_default_deltas_are_the_notebooks():
    sweep = liang_shift_sweep(SWEEP_IMAGES, SWEEP_TEXTS, k=1)
    np.testing.assert_array_equal(sweep["delta"], np.arange(-5, 5, 0.25))
    assert (sweep["delta"] == 0).sum() == 1


def test_liang_shift_sweep_unshifted_gap_on_clip(clip_pairs):
    images, texts = clip_pairs
    sweep = liang_shift_sweep(images, texts, deltas=[0.0], k=1)
    # The data README: ||mu_img - mu_txt|| = 0.851 on these rows.
    assert sweep["gap_distance"].iloc[0] == pytest.approx(0.851, abs=5e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"deltas": []}, "deltas must be a non-empty"),
        ({"deltas": [0.0, np.nan]}, "deltas must be a non-empty"),
        ({"direction": np.zeros(2)}, "positive, finite length"),
        ({"direction": np.ones(3)}, "features"),
    ],
)
def test_liang_shift_sweep_refuses_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        liang_shift_sweep(SWEEP_IMAGES, SWEEP_TEXTS, k=1, **kwargs)


def test_liang_shift_sweep_refuses_coinciding_means():
    with pytest.raises(ValueError, match="means coincide"):
        liang_shift_sweep(SWEEP_IMAGES, SWEEP_IMAGES[::-1], k=1)
