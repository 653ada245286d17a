"""The k-NN back-ends: exact brute force and the approximate index."""

import numpy as np
import pytest
import torch

from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.metrics import (
    GapScorer,
    alignment_balance,
    modality_mixing,
    neighborhood_consistency,
    retrieval_recall,
)
from sklearn_modgap.metrics._knn import query_neighbors, self_neighbors


def _unit(A):
    return (A / np.linalg.norm(A, axis=1, keepdims=True)).astype(np.float32)


def _brute(data, queries, k, exclude_self=False):
    scores = queries @ data.T
    if exclude_self:
        np.fill_diagonal(scores, -np.inf)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def large():
    target, source = make_modality_gap(n_pairs=4000, n_features=64, random_state=0)
    return _unit(target), _unit(source)


def _recall(found, expected):
    return np.mean([np.intersect1d(a, b).size for a, b in zip(found, expected)]) / expected.shape[1]


def test_exact_back_end_matches_brute_force(large):
    target, _ = large
    data = target[:500]
    np.testing.assert_array_equal(
        np.sort(self_neighbors(data, 7), axis=1),
        np.sort(_brute(data, data, 7, exclude_self=True), axis=1),
    )
    rows = slice(100, 300)
    np.testing.assert_array_equal(
        np.sort(self_neighbors(data, 7, rows=rows), axis=1),
        np.sort(_brute(data, data, 7, exclude_self=True)[rows], axis=1),
    )


def test_approximate_equals_exact_when_the_index_scans_everything():
    # Fewer rows than two cells: every query scans every row, and the exact
    # re-scoring of the best candidates gives the exact result.
    data = _unit(np.random.default_rng(0).normal(size=(120, 16)))
    exact = self_neighbors(data, 5)
    np.testing.assert_array_equal(self_neighbors(data, 5, knn="approximate"), exact)
    queries = _unit(np.random.default_rng(1).normal(size=(30, 16)))
    np.testing.assert_array_equal(
        query_neighbors(data, queries, 5, knn="approximate"), query_neighbors(data, queries, 5)
    )


def test_approximate_accepts_read_only_float64_rows(large, recwarn):
    target, source = large
    pool = np.vstack([target, source])[:3000]
    wide = pool.astype(np.float64)
    wide.setflags(write=False)
    found = self_neighbors(wide, 10, knn="approximate")
    assert not [w for w in recwarn if "writable" in str(w.message)]
    assert _recall(found, self_neighbors(pool, 10)) >= 0.9
    # The same search as on float32 rows, up to near-ties that the exact
    # re-scoring orders differently in float64.
    assert np.mean(found == self_neighbors(pool, 10, knn="approximate")) >= 0.999


def test_approximate_recall_never_self_and_deterministic(large):
    target, source = large
    pool = np.vstack([target, source])
    found = self_neighbors(pool, 20, knn="approximate")
    assert found.shape == (8000, 20)
    assert not np.any(found == np.arange(8000)[:, None])
    assert np.all(np.sort(found, axis=1)[:, 1:] != np.sort(found, axis=1)[:, :-1])
    exact = self_neighbors(pool, 20)
    assert _recall(found, exact) >= 0.9
    np.testing.assert_array_equal(found, self_neighbors(pool, 20, knn="approximate"))
    rows = slice(4000, 8000)
    part = self_neighbors(pool, 20, rows=rows, knn="approximate")
    assert not np.any(part == np.arange(4000, 8000)[:, None])
    assert _recall(part, exact[rows]) >= 0.9
    crossed = query_neighbors(target, source, 10, knn="approximate")
    assert _recall(crossed, query_neighbors(target, source, 10)) >= 0.9


def test_approximate_metrics_are_close_to_exact(large):
    target, source = large
    substitutes = _unit(source + 0.5 * (target.mean(0) - source.mean(0)))
    for metric in (
        lambda knn: neighborhood_consistency(source, substitutes, k=10, knn=knn),
        lambda knn: modality_mixing(target, substitutes, k=10, knn=knn),
        lambda knn: modality_mixing(target, substitutes, k=10, direction="target", knn=knn),
        lambda knn: alignment_balance(target, source, substitutes, k=10, knn=knn),
        lambda knn: retrieval_recall(target, substitutes, k=5, knn=knn)[
            "target_to_substitute_recall@5"
        ],
    ):
        assert metric("approximate") == pytest.approx(metric("exact"), abs=0.02)


def test_unknown_back_end_is_an_error(large):
    target, source = large
    with pytest.raises(ValueError, match="knn"):
        neighborhood_consistency(source, source, knn="fast")
    with pytest.raises(ValueError, match="knn"):
        GapScorer("alignment_balance", knn="fast")


def test_scan_axes_hold_the_energy_asked_or_are_skipped():
    from sklearn_modgap.metrics._knn import _SCAN_ENERGY, _principal_axes

    rng = np.random.default_rng(0)
    # Energy in 8 of 64 directions: the scan keeps a few axes that hold it.
    low_rank = _unit(rng.normal(size=(2000, 8)) @ rng.normal(size=(8, 64))
                     + 0.01 * rng.normal(size=(2000, 64)))
    axes = _principal_axes(torch.from_numpy(low_rank)).numpy()
    assert axes.shape[1] < 64
    np.testing.assert_allclose(axes.T @ axes, np.eye(axes.shape[1]), atol=1e-5)
    kept = np.sum((low_rank @ axes) ** 2) / np.sum(low_rank**2)
    assert kept >= _SCAN_ENERGY
    # Isotropic rows need almost every axis: they are scanned as they are.
    assert _principal_axes(torch.from_numpy(_unit(rng.normal(size=(2000, 64))))) is None


def test_approximate_search_with_float32_scores(large, monkeypatch):
    import sklearn_modgap.metrics._knn as knn_module

    target, source = large
    pool = np.vstack([target, source])
    monkeypatch.setattr(knn_module, "_SCAN_DTYPE", torch.float32)
    found = self_neighbors(pool, 20, knn="approximate")
    assert not np.any(found == np.arange(pool.shape[0])[:, None])
    assert _recall(found, self_neighbors(pool, 20)) >= 0.9
    crossed = query_neighbors(target, source, 10, knn="approximate")
    assert _recall(crossed, query_neighbors(target, source, 10)) >= 0.9


def test_approximate_searches_in_concurrent_threads_agree(large):
    from concurrent.futures import ThreadPoolExecutor

    target, source = large
    pool = np.vstack([target, source])
    alone = self_neighbors(pool, 10, knn="approximate")
    with ThreadPoolExecutor(2) as executor:
        results = list(executor.map(
            lambda _: self_neighbors(pool, 10, knn="approximate"), range(3)
        ))
    for found in results:
        np.testing.assert_array_equal(found, alone)


def test_importing_the_metrics_loads_neither_torch_nor_numba():
    import subprocess
    import sys

    code = ("import sys, sklearn_modgap.metrics; "
            "print('torch' in sys.modules, 'numba' in sys.modules)")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False False"


@pytest.mark.parametrize(
    "features, expected",
    [
        ({"amx_bf16": True, "avx512_bf16": False}, True),
        ({"amx_bf16": False, "avx512_bf16": True}, True),
        ({"amx_bf16": False, "avx512_bf16": False, "avx512_f": True, "avx2": True}, False),
        ({}, False),
    ],
)
def test_bfloat16_scan_only_with_bfloat16_instructions(features, expected):
    from sklearn_modgap.metrics._knn import _bfloat16_matmul_in_hardware

    assert _bfloat16_matmul_in_hardware(features) is expected


def test_scan_dtype_follows_cpu_features_not_timing(monkeypatch):
    import random
    import time

    import sklearn_modgap.metrics._knn as knn_module

    # An erratic clock: each reading jumps forward by a random amount, so a
    # choice made by timing products would flip from one run to the next.
    erratic = random.Random(0)
    now = [0.0]

    def clock():
        now[0] += erratic.expovariate(1.0) * 10.0 ** erratic.randint(-6, 2)
        return now[0]

    monkeypatch.setattr(time, "perf_counter", clock)
    monkeypatch.setattr(time, "monotonic", clock)
    monkeypatch.setattr(time, "time", clock)
    features = torch._C._cpu._get_cpu_capability()
    expected = torch.bfloat16 if (features["amx_bf16"] or features["avx512_bf16"]) else torch.float32
    chosen = set()
    for _ in range(20):
        monkeypatch.setattr(knn_module, "_SCAN_DTYPE", None)
        chosen.add(knn_module._scan_dtype())
    assert chosen == {expected}

    # Without the features (another processor, or a torch lacking the
    # query), the scan is float32.
    monkeypatch.setattr(knn_module, "_SCAN_DTYPE", None)
    monkeypatch.setattr(torch._C._cpu, "_get_cpu_capability", lambda: {"avx2": True})
    assert knn_module._scan_dtype() is torch.float32
    monkeypatch.setattr(knn_module, "_SCAN_DTYPE", None)
    monkeypatch.delattr(torch._C._cpu, "_get_cpu_capability")
    assert knn_module._scan_dtype() is torch.float32
    monkeypatch.setattr(
        torch._C._cpu, "_get_cpu_capability", lambda: {"amx_bf16": True}, raising=False
    )
    monkeypatch.setattr(knn_module, "_SCAN_DTYPE", None)
    assert knn_module._scan_dtype() is torch.bfloat16


def test_repeated_approximate_searches_give_identical_neighbours(large, monkeypatch):
    import random
    import time

    import sklearn_modgap.metrics._knn as knn_module

    target, source = large
    pool = np.vstack([target, source])
    erratic = random.Random(1)
    now = [0.0]

    def clock():
        now[0] += erratic.expovariate(1.0) * 10.0 ** erratic.randint(-6, 2)
        return now[0]

    monkeypatch.setattr(time, "perf_counter", clock)
    runs = []
    for _ in range(3):
        # Each run chooses its scan precision afresh, as a new process would.
        monkeypatch.setattr(knn_module, "_SCAN_DTYPE", None)
        runs.append((
            self_neighbors(pool, 10, knn="approximate"),
            query_neighbors(target, source, 10, knn="approximate"),
        ))
    for own, crossed in runs[1:]:
        np.testing.assert_array_equal(own, runs[0][0])
        np.testing.assert_array_equal(crossed, runs[0][1])
