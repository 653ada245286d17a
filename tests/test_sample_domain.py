"""Stacked rows with sample_domain: source rows mapped, target rows through transform_target, order kept."""

import numpy as np
import pytest

from sklearn_modgap import C3, CentroidShift, ReAlign
from sklearn_modgap.datasets import make_modality_gap


def _stacked(seed=0):
    target, source = make_modality_gap(n_pairs=120, n_features=12, random_state=seed)
    X = np.vstack([source[:60], target[60:]]).astype(np.float64)
    domain = np.r_[np.ones(60), -np.ones(60)]
    order = np.random.default_rng(seed).permutation(len(X))
    return X[order], domain[order]


def _unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_stacked_fit_transform_by_hand_centroid_shift():
    X, domain = _stacked()
    source, target = _unit(X[domain >= 0]), _unit(X[domain < 0])
    gap = source.mean(axis=0) - target.mean(axis=0)
    expected = np.empty_like(X)
    expected[domain >= 0] = _unit(source - gap)
    expected[domain < 0] = target  # CentroidShift leaves targets where they are (normalised)
    out = CentroidShift().fit_transform(X, sample_domain=domain)
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_stacked_fit_transform_by_hand_c3_centre():
    X, domain = _stacked(1)
    source, target = _unit(X[domain >= 0]), _unit(X[domain < 0])
    out = C3(noise_std=0.0, shift="center").fit_transform(X, sample_domain=domain)
    np.testing.assert_allclose(out[domain >= 0], _unit(source - source.mean(axis=0)), atol=1e-12)
    np.testing.assert_allclose(out[domain < 0], _unit(target - target.mean(axis=0)), atol=1e-12)


@pytest.mark.parametrize("aligner", [ReAlign(), CentroidShift(0.5), C3(random_state=0)], ids=repr)
def test_transform_with_domain_equals_the_two_methods(aligner):
    X, domain = _stacked(2)
    aligner.fit(X, sample_domain=domain)
    out = aligner.transform(X, sample_domain=domain)
    np.testing.assert_allclose(out[domain < 0], aligner.transform_target(X[domain < 0]), atol=1e-12)
    if not isinstance(aligner, C3):  # C3's noise depends on the rows in the call
        np.testing.assert_allclose(out[domain >= 0], aligner.transform(X[domain >= 0]), atol=1e-12)
    # without sample_domain every row is a source row, as before
    np.testing.assert_allclose(
        aligner.transform(X)[domain < 0] if not isinstance(aligner, C3) else 0,
        aligner.transform(X[domain < 0]) if not isinstance(aligner, C3) else 0,
        atol=1e-12,
    )


def test_bad_sample_domain_in_transform():
    X, domain = _stacked()
    aligner = ReAlign().fit(X, sample_domain=domain)
    with pytest.raises(ValueError, match="sample_domain has 3 entries but X has 120 rows"):
        aligner.transform(X, sample_domain=[1, -1, 1])
    with pytest.raises(TypeError, match="must be numeric"):
        aligner.transform(X, sample_domain=np.array(["a"] * len(X)))


def test_one_split_rule_for_fit_and_scorer():
    import pandas as pd

    from sklearn_modgap._base import split_source_target
    from sklearn_modgap.metrics import GapScorer

    X = np.arange(12.0).reshape(6, 2) + 1.0
    domain = np.array([0, -1, 2, -3, 1, 0])
    source, target = split_source_target(X, sample_domain=domain)
    np.testing.assert_array_equal(source, X[[0, 2, 4, 5]])
    np.testing.assert_array_equal(target, X[[1, 3]])
    frame_source, _ = split_source_target(pd.DataFrame(X), sample_domain=domain)
    assert list(frame_source.index) == [0, 2, 4, 5]
    assert split_source_target(X, np.arange(6))[1] is None
    assert split_source_target(X, sample_domain=np.zeros(6))[1] is None
    with pytest.raises(ValueError, match="sample_domain has 5 entries but X has 6 rows"):
        split_source_target(X, sample_domain=domain[:5])

    # The scorer splits stacked rows as fit does: the same numbers as mode B.
    X, domain = _stacked()
    fitted = CentroidShift().fit(X, sample_domain=domain)
    scorer = GapScorer(metrics=("neg_centroid_discrepancy", "instance_consistency"))
    stacked = scorer(fitted, X, sample_domain=domain)
    by_mode_b = scorer(fitted, X[domain >= 0], X[domain < 0])
    assert stacked == pytest.approx(by_mode_b, abs=1e-12)
