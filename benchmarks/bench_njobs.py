"""GridSearchCV(n_jobs=2) over ReAlign: block threads of the old rule against the composed one.

    python benchmarks/bench_njobs.py [--n-pairs 50000] [--n-features 512] [--repeats 3]

The old rule gave every block pass ``min(CPUs, 8)`` threads, also inside the
search's worker processes, so two workers ran ``2 x min(CPUs, 8)`` threads on
the cores.  The composed rule (``sklearn_modgap._validation.n_block_workers``)
runs one thread inside a joblib worker.  The old rule is restored here, only
for the aligner of the "old" runs, by a subclass that swaps the rule in
around its own calls in the worker.

The data is synthetic (``make_modality_gap``, the shared real embeddings
having only 500 pairs).  The search scores with the mean paired cosine, so
the time goes to the aligner's block passes and not to a k-NN score.

Per run it prints the wall time; the worker processes' CPU time over wall
time and cores; the mean and the largest number of the workers' threads
found running or runnable (state R in /proc, sampled every 5 ms), over the
cores; the most threads alive in the workers; and the 1-minute load average
before and after.  Runs of the two rules alternate, and the medians are
compared at the end.
"""

import argparse
import os
import threading
import time

import numpy as np
import psutil
from joblib import parallel_config
from sklearn.model_selection import GridSearchCV, KFold

import sklearn_modgap._validation as validation
from sklearn_modgap import ReAlign
from sklearn_modgap.datasets import make_modality_gap


def _old_rule():
    """The rule before composition: the CPUs this process may run on, at most 8."""
    try:
        n_cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        n_cpus = os.cpu_count() or 1
    return max(1, min(n_cpus, 8))


class _OldRule:
    def __enter__(self):
        self.saved = validation.n_block_workers
        validation.n_block_workers = _old_rule

    def __exit__(self, *exc):
        validation.n_block_workers = self.saved


class ReAlignOldThreads(ReAlign):
    """ReAlign whose block passes use the old thread rule, wherever they run."""

    def fit(self, X, y=None, **params):
        with _OldRule():
            return super().fit(X, y, **params)

    def transform(self, X, **params):
        with _OldRule():
            return super().transform(X, **params)


def paired_cosine(estimator, X, y):
    """Mean cosine of each substitute with its paired target row."""
    Z = estimator.transform(X)
    return float(np.mean(np.sum(Z * y, axis=1) / np.linalg.norm(y, axis=1)))


class Sampler(threading.Thread):
    """Count the worker processes' running threads every few milliseconds."""

    def __init__(self, interval=0.005):
        super().__init__(daemon=True)
        self.interval = interval
        self.stop = threading.Event()
        self.running, self.alive, self.cpu = [], [], {}

    def _workers(self):
        return psutil.Process().children(recursive=True)

    def run(self):
        while not self.stop.is_set():
            running = alive = 0
            for process in self._workers():
                try:
                    tasks = os.listdir(f"/proc/{process.pid}/task")
                    for tid in tasks:
                        with open(f"/proc/{process.pid}/task/{tid}/stat") as stat:
                            state = stat.read().rsplit(")", 1)[1].split()[0]
                        running += state == "R"
                    alive += len(tasks)
                    times = process.cpu_times()
                    self.cpu[process.pid] = times.user + times.system
                except (OSError, psutil.Error):
                    continue
            self.running.append(running)
            self.alive.append(alive)
            time.sleep(self.interval)


def _worker_cpu():
    total = {}
    for process in psutil.Process().children(recursive=True):
        try:
            times = process.cpu_times()
            total[process.pid] = times.user + times.system
        except psutil.Error:
            continue
    return total


def run_search(estimator, source, target, grid, n_jobs):
    search = GridSearchCV(
        estimator, grid, cv=KFold(3), n_jobs=n_jobs, scoring=paired_cosine, refit=False
    )
    cpu_before = _worker_cpu()
    load_before = os.getloadavg()[0]
    sampler = Sampler()
    sampler.start()
    start = time.perf_counter()
    search.fit(source, target)
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    load_after = os.getloadavg()[0]
    cpu_after = {**sampler.cpu, **_worker_cpu()}
    cpu = sum(cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after)
    return {
        "wall": wall,
        "cpu_share": cpu / wall / CORES,
        "running_mean": float(np.mean(sampler.running)) / CORES,
        "running_max": max(sampler.running) / CORES,
        "threads_alive": max(sampler.alive),
        "load": (load_before, load_after),
        "best": search.cv_results_["params"][int(np.argmax(search.cv_results_["mean_test_score"]))],
    }


CORES = psutil.cpu_count() or 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-pairs", type=int, default=50_000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    target, source = make_modality_gap(
        n_pairs=args.n_pairs, n_features=args.n_features, random_state=0
    )
    grid = {"alpha": [0.25, 0.5, 0.75, 1.0], "normalize": [True, False]}
    print(
        f"GridSearchCV(n_jobs={args.n_jobs}, cv=3) over ReAlign {grid} on "
        f"{args.n_pairs:,} pairs x {args.n_features} {source.dtype} features; "
        f"{CORES} cores (affinity {len(os.sched_getaffinity(0))}), "
        f"old rule {_old_rule()} block threads per pass in every worker"
    )
    with parallel_config(backend="loky"):
        # Start the workers (and their imports) before any timed run.
        run_search(ReAlign(), source[:2000], target[:2000], {"alpha": [0.5, 1.0]}, args.n_jobs)
        results = {"old": [], "composed": []}
        for repeat in range(args.repeats):
            for name, estimator in (("old", ReAlignOldThreads()), ("composed", ReAlign())):
                result = run_search(estimator, source, target, grid, args.n_jobs)
                results[name].append(result)
                print(
                    f"{name:>8} run {repeat + 1}: wall {result['wall']:.2f} s, "
                    f"worker CPU / (wall x cores) {result['cpu_share']:.2f}, "
                    f"running threads / cores mean {result['running_mean']:.2f} "
                    f"max {result['running_max']:.2f}, "
                    f"worker threads alive max {result['threads_alive']}, "
                    f"load 1-min {result['load'][0]:.2f} -> {result['load'][1]:.2f}, "
                    f"best {result['best']}"
                )
    medians = {
        name: {key: float(np.median([r[key] for r in runs]))
               for key in ("wall", "cpu_share", "running_mean", "running_max", "threads_alive")}
        for name, runs in results.items()
    }
    for name, median in medians.items():
        print(
            f"median {name:>8}: wall {median['wall']:.2f} s, CPU share {median['cpu_share']:.2f}, "
            f"running threads / cores mean {median['running_mean']:.2f} "
            f"max {median['running_max']:.2f}, threads alive {median['threads_alive']:.0f}"
        )
    print(f"wall time old / composed: {medians['old']['wall'] / medians['composed']['wall']:.2f}")


if __name__ == "__main__":
    main()
