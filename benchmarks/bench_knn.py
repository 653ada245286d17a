"""Benchmark the k-NN back-ends of the neighbourhood metrics.

Run ``python benchmarks/bench_knn.py`` (defaults: float32, d=512, k=20,
20,000 + 20,000 rows, then 200,000 + 200,000 rows approximate only).  Flags
shrink or grow the sizes, e.g. ``--n 2000 --large-n 20000`` for a quick run
or ``--large-n 0`` to skip the large part.

Data: CLIP-like synthetic pairs from ``make_modality_gap``; substitutes are
the source rows moved onto the target centroid by ``CentroidShift()``.

Medium size, for each of M_k^Z, M_k^X (each a search of X ∪ Z for the rows
of one modality), Omega_k and retrieval recall at (1, 5, 10), it prints the time of the
exact metric, of plain ``NearestNeighbors`` doing the same k-NN searches in
the same run, and of the approximate metric (the best of ``--repeats``
interleaved runs of each); the ratios, with the range of the per-run
speed-ups; the neighbour recall of the approximate searches against the
exact ones; and both metric values.  Large size: the time of each approximate metric and the peak of
the process's resident memory above its level before the call.
"""

import argparse
import threading
import time

import numpy as np
from sklearn.neighbors import NearestNeighbors

from sklearn_modgap import CentroidShift
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.metrics import modality_mixing, neighborhood_consistency, retrieval_recall
from sklearn_modgap.metrics._knn import drop_self, query_neighbors, self_neighbors


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class PeakMemory:
    """Peak resident memory above the level at entry, sampled every 10 ms."""

    def __enter__(self):
        self.start = resident_bytes()
        self.peak = self.start
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while self._running:
            self.peak = max(self.peak, resident_bytes())
            time.sleep(0.01)

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()
        self.peak = max(self.peak, resident_bytes())
        self.extra = self.peak - self.start


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def make_data(n, n_features, seed):
    target, source = make_modality_gap(n_pairs=n, n_features=n_features, random_state=seed)
    substitutes = CentroidShift().fit(source, y=target).transform(source)
    return target, source, substitutes


def recall(found, expected):
    found = np.sort(found, axis=1)
    hits = sum(np.intersect1d(a, b, assume_unique=True).size for a, b in zip(found, expected))
    return hits / expected.size


def medium(n, n_features, k, seed, repeats):
    target, source, substitutes = make_data(n, n_features, seed)
    pool = np.vstack([target, substitutes])
    print(f"\n== {n:,} + {n:,} rows, d={n_features}, k={k}, {target.dtype} ==")
    rows = []

    halves = {"substitute": slice(n, 2 * n), "target": slice(0, n)}

    def plain_mixing(direction):
        own = np.arange(2 * n)[halves[direction]]
        found = NearestNeighbors(algorithm="brute").fit(pool).kneighbors(
            pool[own], n_neighbors=k + 1, return_distance=False)
        return drop_self(found, own)

    def metric_mixing(direction):
        return lambda knn: modality_mixing(target, substitutes, k, direction, knn=knn)

    def plain_omega():
        return [NearestNeighbors(algorithm="brute").fit(A).kneighbors(
            n_neighbors=k, return_distance=False) for A in (source, substitutes)]

    def plain_retrieval():
        return [NearestNeighbors(algorithm="brute").fit(data).kneighbors(
            queries, n_neighbors=10, return_distance=False)
            for data, queries in ((substitutes, target), (target, substitutes))]

    def recall_value(knn):
        recalls = retrieval_recall(target, substitutes, k=(1, 5, 10), knn=knn)
        return recalls["target_to_substitute_recall@10"], recalls["substitute_to_target_recall@1"]

    cases = [
        ("M_k^Z", lambda: plain_mixing("substitute"), metric_mixing("substitute"),
         lambda: [self_neighbors(pool, k, rows=halves["substitute"], knn="approximate")]),
        ("M_k^X", lambda: plain_mixing("target"), metric_mixing("target"),
         lambda: [self_neighbors(pool, k, rows=halves["target"], knn="approximate")]),
        ("Omega_k", plain_omega,
         lambda knn: neighborhood_consistency(source, substitutes, k, knn=knn),
         lambda: [self_neighbors(A, k, knn="approximate") for A in (source, substitutes)]),
        ("retrieval", plain_retrieval, recall_value,
         lambda: [query_neighbors(data, queries, 10, knn="approximate")
                  for data, queries in ((substitutes, target), (target, substitutes))]),
    ]
    # Each metric runs its own searches; a search of each kind once before warms
    # the BLAS threads and imports torch (about 1 s, once per process).
    NearestNeighbors(algorithm="brute").fit(pool[:2000]).kneighbors(n_neighbors=k)
    self_neighbors(pool[:2000], k, knn="approximate")
    for name, plain, metric, approximate_search in cases:
        # Runs interleaved, so that a slow spell of this shared machine hits
        # every back-end alike; the best of each is reported.
        plain_times, exact_times, approximate_times = [], [], []
        for _ in range(repeats):
            exact_found, seconds = timed(plain)
            plain_times.append(seconds)
            exact_value, seconds = timed(lambda: metric("exact"))
            exact_times.append(seconds)
            approximate_value, seconds = timed(lambda: metric("approximate"))
            approximate_times.append(seconds)
        found = approximate_search()
        exact_found = exact_found if isinstance(exact_found, list) else [exact_found]
        neighbour_recall = np.mean([recall(a, e) for a, e in zip(found, exact_found)])
        ratios = np.array(exact_times) / np.array(approximate_times)
        rows.append((name, min(plain_times), min(exact_times), min(approximate_times), ratios,
                     neighbour_recall, np.atleast_1d(exact_value),
                     np.atleast_1d(approximate_value)))
    print(f"best of {repeats} interleaved runs; 'runs' is the range of exact/approx per run")
    header = (f"{'metric':<12}{'plain NN s':>11}{'exact s':>9}{'exact/plain':>12}"
              f"{'approx s':>9}{'speed-up':>9}{'runs':>12}{'nbr recall':>11}"
              f"  exact value -> approx value")
    print(header)
    for (name, plain_time, exact_time, approximate_time, ratios, nbr, exact_value,
         approx_value) in rows:
        values = ", ".join(f"{e:.4f} -> {a:.4f} (|d|={abs(e - a):.4f})"
                           for e, a in zip(exact_value, approx_value))
        spread = f"{ratios.min():.1f}-{ratios.max():.1f}"
        print(f"{name:<12}{plain_time:>11.2f}{exact_time:>9.2f}{exact_time / plain_time:>12.2f}"
              f"{approximate_time:>9.2f}{exact_time / approximate_time:>9.1f}{spread:>12}"
              f"{nbr:>11.3f}  {values}")


def large(n, n_features, k, seed):
    target, source, substitutes = make_data(n, n_features, seed)
    print(f"\n== {n:,} + {n:,} rows, d={n_features}, k={k}, approximate only ==")
    cases = [
        ("M_k^Z", lambda: modality_mixing(target, substitutes, k, "substitute",
                                          knn="approximate")),
        ("M_k^X", lambda: modality_mixing(target, substitutes, k, "target", knn="approximate")),
        ("Omega_k", lambda: neighborhood_consistency(source, substitutes, k, knn="approximate")),
        ("retrieval", lambda: retrieval_recall(target, substitutes, k=(1, 5, 10),
                                               knn="approximate")["target_to_substitute_recall@10"]),
    ]
    # Import torch before measuring: its libraries would count as the first
    # metric's memory.
    self_neighbors(target[:2000], k, knn="approximate")
    total = 0.0
    for name, run in cases:
        with PeakMemory() as memory:
            value, seconds = timed(run)
        total += seconds
        print(f"{name:<10} {seconds:7.1f} s   peak extra memory {memory.extra / 2**30:5.2f} GiB"
              f"   value {value:.4f}")
    print(f"total      {total:7.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="rows per modality, exact vs approximate")
    parser.add_argument("--large-n", type=int, default=200_000,
                        help="rows per modality, approximate only (0 skips)")
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3,
                        help="interleaved runs of each back-end at the medium size")
    args = parser.parse_args()
    if args.n:
        medium(args.n, args.features, args.k, args.seed, args.repeats)
    if args.large_n:
        large(args.large_n, args.features, args.k, args.seed)


if __name__ == "__main__":
    main()
