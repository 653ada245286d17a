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
