"""Per-worker peak memory of fit + transform on a 2-worker Dask ``LocalCluster``, at N and 10 N rows.

    python benchmarks/bench_dask.py [--rows 200000] [--factor 10] [--chunk-rows 20000]
                                    [--n-features 512] [--aligner ReAlign]

Source and target are synthetic float32 dask arrays of ``rows`` and
``factor * rows`` rows (each modality that many rows, a different shift per
modality), generated chunk by chunk on the workers by ``dask.array.random``,
never materialised on the driver.  For each size the cluster's workers are
restarted (fresh processes), the package is imported on them, their RSS is
taken as the baseline and a thread on each starts sampling its RSS every
10 ms; then
the aligner is fitted on the two arrays (one task per chunk, a tree
reduction of the streaming statistics) and the substitutes of every source
row are computed and summed on the workers (``transform(X).sum()``), which
reads every output chunk without keeping it.  It prints, per size, the rows,
the wall time of fit and of transform, and each worker's peak RSS (baseline
and after the run), then the ratio of the peak above baseline at
``factor * rows`` to that at ``rows``: about 1 when per-worker memory is flat.
"""

import argparse
import time

import numpy as np


def _start_memory_sampler(dask_worker):
    """Sample this worker's RSS every 10 ms in a thread until :func:`_stop_memory_sampler`."""
    import threading

    import psutil

    process = psutil.Process()
    state = {"baseline": process.memory_info().rss, "peak": 0, "running": True}

    def sample():
        while state["running"]:
            state["peak"] = max(state["peak"], process.memory_info().rss)
            time.sleep(0.01)

    state["thread"] = threading.Thread(target=sample, daemon=True)
    state["thread"].start()
    dask_worker.modgap_memory = state
    return state["baseline"] / 2**20


def _stop_memory_sampler(dask_worker):
    state = dask_worker.modgap_memory
    state["running"] = False
    state["thread"].join()
    return state["peak"] / 2**20


def _import_package():
    import sklearn_modgap  # noqa: F401

    return True


def _rows(da, n_rows, n_features, chunk_rows, seed, shift):
    rng = da.random.default_rng(seed)
    rows = rng.standard_normal((n_rows, n_features), chunks=(chunk_rows, n_features), dtype=np.float32)
    return rows + np.float32(shift)


def _run(client, aligner, n_rows, args):
    import dask.array as da

    client.restart()
    client.run(_import_package)
    baseline = client.run(_start_memory_sampler)
    source = _rows(da, n_rows, args.n_features, args.chunk_rows, seed=1, shift=0.5)
    target = _rows(da, n_rows, args.n_features, args.chunk_rows, seed=2, shift=-0.5)
    start = time.perf_counter()
    aligner.fit(source, y=target)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    total = float(aligner.transform(source).sum().compute())
    transform_seconds = time.perf_counter() - start
    peak = client.run(_stop_memory_sampler)
    workers = sorted(peak)
    above = [peak[w] - baseline[w] for w in workers]
    print(
        f"rows {n_rows:>10,} per modality ({n_rows * args.n_features * 4 / 2**30:.2f} GiB each): "
        f"fit {fit_seconds:6.1f} s, transform {transform_seconds:6.1f} s "
        f"({n_rows / transform_seconds:,.0f} rows/s), sum of substitutes {total:.4g}"
    )
    for worker, extra in zip(workers, above):
        print(f"    worker {worker}: peak RSS {peak[worker]:7.0f} MiB "
              f"(baseline {baseline[worker]:.0f}, +{extra:.0f})")
    return max(above), max(peak.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--aligner", default="ReAlign")
    parser.add_argument("--memory-limit", default="6GiB", help="per worker")
    args = parser.parse_args()

    import distributed

    import sklearn_modgap

    aligner = getattr(sklearn_modgap, args.aligner)()
    print(
        f"{args.aligner} on a LocalCluster of 2 worker processes x 1 thread, chunks of "
        f"{args.chunk_rows:,} x {args.n_features} float32 ({args.chunk_rows * args.n_features * 4 / 2**20:.0f} MiB)"
    )
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit=args.memory_limit,
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:
        small, small_peak = _run(client, aligner, args.rows, args)
        large, large_peak = _run(client, aligner, args.factor * args.rows, args)
    print(
        f"largest per-worker peak: {small_peak:.0f} MiB at {args.rows:,} rows, {large_peak:.0f} MiB at "
        f"{args.factor * args.rows:,} rows ({large_peak / small_peak:.2f}x); above the baseline: "
        f"+{small:.0f} and +{large:.0f} MiB ({large / small:.2f}x) for {args.factor}x the rows"
    )


if __name__ == "__main__":
    main()
