"""Threads of the block passes: n_jobs, joblib's parallel_config, outer joblib loops, BLAS limits."""

import joblib
import numpy as np
import pytest
from joblib import Parallel, delayed, parallel_config
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

import sklearn_modgap._validation as validation
from sklearn_modgap import SSP, C3, CentroidShift, MomentMatch, RandomTargetReplacement, ReAlign
from sklearn_modgap.datasets import make_modality_gap

CLOSED_FORM = [
    CentroidShift(),
    C3(random_state=0),
    ReAlign(alpha=0.5),
    MomentMatch(),
    RandomTargetReplacement(random_state=0),
    SSP(),
]
IDS = [type(aligner).__name__ for aligner in CLOSED_FORM]


@pytest.fixture
def sixteen_cpus(monkeypatch):
    """A 16-CPU machine whose BLAS may use 16 threads, so the limits under test bind."""
    monkeypatch.setattr(joblib, "cpu_count", lambda *args, **kwargs: 16)
    monkeypatch.setattr(validation, "_blas_threads", lambda: 16)


@pytest.fixture
def executors(monkeypatch):
    """Record the ``max_workers`` of every thread pool a block pass opens."""
    opened = []
    real = validation.ThreadPoolExecutor

    def recording(max_workers):
        opened.append(max_workers)
        return real(max_workers)

    monkeypatch.setattr(validation, "ThreadPoolExecutor", recording)
    # 64-row blocks of 16 float64 features: enough tasks for many threads.
    monkeypatch.setattr(validation, "_BLOCK_BYTES", 64 * 16 * 8)
    return opened


def test_default_uses_cpus_up_to_eight(sixteen_cpus):
    assert validation.n_block_workers() == 8


@pytest.mark.parametrize("n_jobs, expected", [(1, 1), (2, 2), (12, 12), (-1, 16), (-2, 15), (40, 16)])
def test_parallel_config_sets_the_threads(sixteen_cpus, n_jobs, expected):
    with parallel_config(n_jobs=n_jobs):
        assert validation.n_block_workers() == expected


def test_estimator_n_jobs_wins_over_parallel_config(sixteen_cpus):
    with parallel_config(n_jobs=1), validation.block_threads(3):
        assert validation.n_block_workers() == 3
    with parallel_config(n_jobs=5), validation.block_threads(None):
        assert validation.n_block_workers() == 5


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_one_thread_inside_an_outer_joblib_worker(sixteen_cpus, backend):
    # Loky workers are fresh processes: they see the real CPUs, and the
    # nesting of joblib's worker, not the patches above.
    counts = Parallel(n_jobs=2, backend=backend)(
        delayed(validation.n_block_workers)() for _ in range(4)
    )
    assert counts == [1, 1, 1, 1]


def test_blas_thread_limit_caps_the_default(monkeypatch):
    monkeypatch.setattr(joblib, "cpu_count", lambda *args, **kwargs: 16)
    with threadpool_limits(limits=1, user_api="blas"):
        assert validation.n_block_workers() == 1
    with threadpool_limits(limits=2, user_api="blas"):
        assert validation.n_block_workers() <= 2


def test_blocks_run_with_one_blas_thread():
    counts = []

    def block(rows):
        counts.append(max(info["num_threads"] for info in validation._blas_controller().info()))

    validation.map_blocks(block, 100_000, 64, 8)
    assert set(counts) == {1}


@pytest.mark.parametrize("aligner", CLOSED_FORM, ids=IDS)
def test_aligner_n_jobs_sets_the_block_threads(aligner, sixteen_cpus, executors):
    target, source = make_modality_gap(n_pairs=3000, n_features=16, random_state=0)
    results = {}
    for n_jobs in (1, 2):
        del executors[:]
        fitted = clone(aligner).set_params(n_jobs=n_jobs).fit(source, y=target)
        results[n_jobs] = (fitted.transform(source), fitted.transform_target(target))
        if n_jobs == 1:
            assert executors == []
        else:
            assert executors and max(executors) <= 2
    np.testing.assert_array_equal(results[1][0], results[2][0])
    np.testing.assert_array_equal(results[1][1], results[2][1])
    # Under parallel_config(n_jobs=1) an aligner left at n_jobs=None stays on one thread.
    del executors[:]
    with parallel_config(n_jobs=1):
        clone(aligner).fit(source, y=target).transform(source)
    assert executors == []


def test_grid_search_workers_stream_on_one_thread(sixteen_cpus, executors):
    target, source = make_modality_gap(n_pairs=3000, n_features=16, random_state=0)
    search = GridSearchCV(ReAlign(), {"alpha": [0.25, 0.5, 1.0]}, cv=2, n_jobs=2, refit=False)
    with parallel_config(backend="threading"):
        search.fit(source, target)
    assert len(search.cv_results_["mean_test_score"]) == 3
    assert executors == []
    # Outside an outer loop the same fit streams on several threads.
    ReAlign().fit(source, target)
    assert executors and min(executors) > 1


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2"])
def test_bad_n_jobs_is_refused(n_jobs):
    target, source = make_modality_gap(n_pairs=50, n_features=8, random_state=0)
    with pytest.raises(ValueError, match="'n_jobs' parameter"):
        ReAlign(n_jobs=n_jobs).fit(source, y=target)
