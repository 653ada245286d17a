"""The compiled loops of the approximate k-NN, against plain numpy and torch."""

import numpy as np
import pytest
import torch
from numba import njit

from sklearn_modgap.metrics._knn_kernels import (
    LOWEST_KEY,
    _kth_largest,
    _order_key,
    merge_best,
    rescore,
    score_bits,
    top_columns,
)


@njit
def _keys(bits, sign):
    out = np.empty(bits.shape[0], dtype=np.int32)
    for i in range(bits.shape[0]):
        out[i] = _order_key(bits[i], sign)
    return out


@njit
def _kth(values, kth):
    return _kth_largest(values.copy(), kth, np.empty(256, dtype=np.int64))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_keys_order_like_the_numbers(dtype):
    numbers = torch.tensor(
        [-np.inf, -3.0, -1.0, -0.5, -1e-30, -0.0, 0.0, 1e-30, 0.25, 0.5, 1.0, 3.0, np.inf]
    ).to(dtype)
    keys = _keys(*score_bits(numbers))
    assert np.all(np.diff(keys) >= 0)
    # -0.0 and 0.0 are the only equal numbers; every other step is strict.
    assert np.count_nonzero(np.diff(keys) == 0) <= 1
    assert keys.min() > LOWEST_KEY


def test_radix_selection_is_the_kth_largest():
    rng = np.random.default_rng(0)
    for n, low, high in [(300, -32768, 32767), (300, 16000, 16010), (45, -5, 5), (1000, 0, 256)]:
        values = rng.integers(low, high + 1, size=n).astype(np.int32)
        for kth in (0, 1, 20, n - 1):
            assert _kth(values, kth) == np.sort(values)[::-1][kth]


def _merge(scores, n_best, *, positions=None, excluded=None, parts=1, best=None):
    """Run merge_best over ``scores`` cut into ``parts`` column blocks."""
    n_rows, n_columns = scores.shape
    positions = np.arange(n_columns, dtype=np.int64) if positions is None else positions
    excluded = np.full(n_rows, -1, dtype=np.int64) if excluded is None else excluded
    if best is None:
        best = (
            np.full((n_rows, n_best), LOWEST_KEY, dtype=np.int32),
            np.full((n_rows, n_best), -1, dtype=np.int64),
        )
    members = np.arange(n_rows, dtype=np.int64)
    for cut in np.array_split(np.arange(n_columns), parts):
        block = scores[:, cut].contiguous()
        merge_best(*score_bits(block), n_rows, cut.size, positions[cut], members, excluded, *best)
    return best


def _check_best(scores, ids, n_best, excluded=None):
    """``ids`` are distinct, never excluded, and their scores are the n_best largest."""
    values = scores.float().numpy()
    for r in range(values.shape[0]):
        row = values[r].copy()
        if excluded is not None and excluded[r] >= 0:
            row[excluded[r]] = -np.inf
            assert excluded[r] not in ids[r]
        assert np.unique(ids[r]).size == n_best
        expected = np.sort(row)[::-1][:n_best]
        np.testing.assert_array_equal(np.sort(row[ids[r]])[::-1], expected)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("n_columns", [7, 40, 1000, 3077])
@pytest.mark.parametrize("parts", [1, 3])
def test_merge_best_keeps_the_largest_scores(dtype, n_columns, parts):
    rng = np.random.default_rng(n_columns)
    # Coarse values: many ties at the boundary, as bfloat16 cosines have.
    scores = torch.from_numpy(np.round(rng.normal(0.3, 0.2, size=(37, n_columns)), 2)).to(dtype)
    n_best = min(28, n_columns - 1)
    excluded = rng.integers(-1, n_columns, size=37)
    _, ids = _merge(scores, n_best, excluded=excluded, parts=parts)
    _check_best(scores, ids, n_best, excluded)


def test_merge_best_with_negative_and_constant_scores():
    negative = torch.from_numpy(np.random.default_rng(0).normal(-2, 0.5, size=(5, 2000)))
    for dtype in (torch.bfloat16, torch.float32):
        scores = negative.to(dtype)
        _, ids = _merge(scores, 30)
        _check_best(scores, ids, 30)
        constant = torch.full((4, 2000), 0.5).to(dtype)
        _, ids = _merge(constant, 30)
        assert np.all(ids >= 0) and all(np.unique(r).size == 30 for r in ids)


def test_merge_best_maps_columns_to_positions_and_skips_the_own_row():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6], [0.1, 0.2, 0.3, 0.4]]).to(torch.bfloat16)
    positions = np.array([10, 11, 12, 13])
    _, ids = _merge(scores, 2, positions=positions, excluded=np.array([10, -1]))
    assert sorted(ids[0]) == [11, 12]
    assert sorted(ids[1]) == [12, 13]


def test_merge_best_keeps_earlier_blocks():
    first = torch.tensor([[0.9, 0.1, 0.2]]).to(torch.bfloat16)
    best = _merge(first, 2)
    second = torch.tensor([[0.5, 0.05, 0.95]]).to(torch.bfloat16)
    merge_best(*score_bits(second), 1, 3, np.array([3, 4, 5]), np.array([0]),
               np.array([-1]), *best)
    assert sorted(best[1][0]) == [0, 5]


def test_top_columns_are_the_largest_in_order():
    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.normal(size=(50, 300)).astype(np.float32))
    for dtype in (torch.bfloat16, torch.float32):
        block = scores.to(dtype)
        out = np.empty((50, 12), dtype=np.int64)
        top_columns(*score_bits(block), 50, 300, out)
        values = block.float().numpy()
        expected = np.sort(values, axis=1)[:, ::-1][:, :12]
        np.testing.assert_array_equal(np.take_along_axis(values, out, 1), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rescore_orders_candidates_by_exact_dot_product(dtype):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(200, 24)).astype(dtype)
    queries = rng.normal(size=(30, 24)).astype(dtype)
    candidates = rng.integers(0, 200, size=(30, 15))
    candidates[3, 5:] = -1  # only 5 candidates: the rest is missing
    out = np.empty((30, 8), dtype=np.int64)
    rescore(data, queries, candidates, 8, out, np.arange(30)[::-1].copy())
    for i in range(30):
        valid = candidates[i][candidates[i] >= 0]
        scores = data[valid] @ queries[i]
        expected = valid[np.argsort(-scores, kind="stable")][:8]
        np.testing.assert_array_equal(out[i, : expected.size], expected)
        assert np.all(out[i, expected.size :] == -1)
