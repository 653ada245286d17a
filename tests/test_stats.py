"""The mergeable statistics core: one pass, merged halves and hand values agree."""

import numpy as np
import pytest

from sklearn_modgap._stats import RowMoments, descending_eigh


def _rows(n=3001, d=24, offset=3.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * rng.uniform(0.1, 2.0, size=d) + offset


def _relative(a, b):
    return np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300)


def test_hand_computed_moments():
    A = np.array([[1.0, 0.0], [3.0, 2.0], [2.0, 4.0]])
    stats = RowMoments(2, order=4, extremes=True).update(A)
    assert stats.count == 3
    np.testing.assert_allclose(stats.mean, [2.0, 2.0])
    # centred rows: (-1,-2), (1,0), (0,2): scatter [[2, 2], [2, 8]], divided by 3
    np.testing.assert_allclose(stats.covariance, np.array([[2.0, 2.0], [2.0, 8.0]]) / 3)
    np.testing.assert_allclose(stats.mean_sq_norm, (1 + 13 + 20) / 3)
    np.testing.assert_allclose(stats.total_variance, 10 / 3)
    # |centred|^2 = 5, 1, 4 -> sum of squares 42
    np.testing.assert_allclose(stats.centred_fourth_moment(), 42.0)
    np.testing.assert_array_equal(stats.minimum, [1.0, 0.0])
    np.testing.assert_array_equal(stats.maximum, [3.0, 4.0])
    assert stats.min_sq_norm == 1.0 and stats.max_sq_norm == 20.0


@pytest.mark.parametrize("split", [1, 17, 1500, 3000])
def test_merging_two_halves_equals_one_pass(split):
    A = _rows()
    one = RowMoments.of(A, order=4, extremes=True)
    left = RowMoments(A.shape[1], order=4, extremes=True).update(A[:split])
    right = RowMoments(A.shape[1], order=4, extremes=True).update(A[split:])
    merged = left.merge(right)
    assert merged.count == one.count
    for name in ("mean", "covariance", "second_moment"):
        assert _relative(getattr(merged, name), getattr(one, name)) < 1e-12
    assert abs(merged.centred_fourth_moment() / one.centred_fourth_moment() - 1) < 1e-12
    np.testing.assert_array_equal(merged.minimum, one.minimum)
    np.testing.assert_array_equal(merged.maximum, one.maximum)
    # merge returns a new object and leaves its operands as they were
    assert left.count == split


def test_matches_numpy_two_pass_values():
    A = _rows()
    stats = RowMoments.of(A, order=4)
    np.testing.assert_allclose(stats.mean, A.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(stats.covariance, np.cov(A.T, bias=True), rtol=1e-11, atol=1e-13)
    centred = A - A.mean(axis=0)
    direct = np.sum(np.einsum("ij,ij->i", centred, centred) ** 2)
    assert abs(stats.centred_fourth_moment() / direct - 1) < 1e-10


def test_order_one_matches_order_two():
    A = _rows()
    first = RowMoments.of(A, order=1)
    second = RowMoments.of(A, order=2)
    np.testing.assert_allclose(first.mean, second.mean, rtol=1e-13)
    np.testing.assert_allclose(first.total_variance, second.total_variance, rtol=1e-9)
    with pytest.raises(ValueError, match="up to order 1"):
        first.covariance


def test_weights_scale_rows():
    A = _rows(n=500)
    norms = np.linalg.norm(A, axis=1)
    weighted = RowMoments.of(
        A, weights_of=lambda block, rows: (1.0 / norms[rows], norms[rows] ** 2), order=2
    )
    direct = RowMoments.of(A / norms[:, None], order=2)
    np.testing.assert_allclose(weighted.mean, direct.mean, rtol=1e-12)
    np.testing.assert_allclose(weighted.covariance, direct.covariance, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(weighted.mean_sq_norm, 1.0, rtol=1e-12)


def test_row_permutation_and_float32():
    A = _rows()
    permuted = A[np.random.default_rng(1).permutation(len(A))]
    one, other = RowMoments.of(A), RowMoments.of(permuted)
    assert _relative(other.covariance, one.covariance) < 1e-11
    single = RowMoments.of(A.astype(np.float32))
    assert _relative(single.covariance, one.covariance) < 1e-5


def test_empty_and_mismatched():
    stats = RowMoments(3)
    assert stats.update(np.empty((0, 3))).count == 0
    with pytest.raises(ValueError, match="No rows"):
        stats.mean
    with pytest.raises(ValueError, match="cannot update statistics of 3 features"):
        stats.update(np.ones((2, 4)))
    with pytest.raises(ValueError, match="same width and order"):
        stats.merge(RowMoments(3, order=1))
    with pytest.raises(ValueError, match="order must be one of"):
        RowMoments(3, order=3)
    # merging with an empty side changes nothing
    full = RowMoments(3).update(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(full.merge(RowMoments(3)).covariance, full.covariance)
    np.testing.assert_array_equal(RowMoments(3).merge(full).covariance, full.covariance)


def test_descending_eigh():
    S = np.diag([1.0, 3.0, 2.0])
    values, vectors = descending_eigh(S)
    np.testing.assert_allclose(values, [3.0, 2.0, 1.0])
    np.testing.assert_allclose(np.abs(vectors[:, 0]), [0.0, 1.0, 0.0])
    # clipped at zero, symmetrised
    values, _ = descending_eigh(np.array([[0.0, 1e-17], [0.0, -1e-12]]))
    assert values.min() == 0.0
