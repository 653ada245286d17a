"""Speed and memory of the closed-form aligners on a large in-memory array.

Times fit + transform of ReAlign and CentroidShift on ``n`` rows of float32
embeddings (source and target of equal size) and reports each as a ratio to
one BLAS matrix-vector product ``X @ v`` over the source array, timed in the
same run; peak memory beyond the inputs and the output (numpy allocations,
traced) as a fraction of the input size.

    python benchmarks/bench_closed_form.py            # 1,000,000 x 512
    python benchmarks/bench_closed_form.py --n-rows 200000
"""

import argparse
import time
import tracemalloc

import numpy as np

from sklearn_modgap import CentroidShift, ReAlign


def best_of(repeats, func):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rows", type=int, default=1_000_000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    shape = (args.n_rows, args.n_features)
    source = np.empty(shape, dtype=np.float32)
    target = np.empty(shape, dtype=np.float32)
    for start in range(0, args.n_rows, 100_000):
        rows = slice(start, min(start + 100_000, args.n_rows))
        source[rows] = rng.standard_normal((rows.stop - start, args.n_features), dtype=np.float32) + 0.3
        target[rows] = rng.standard_normal((rows.stop - start, args.n_features), dtype=np.float32) - 0.3
    vector = rng.standard_normal(args.n_features).astype(np.float32)
    input_bytes = source.nbytes

    matvec = best_of(args.repeats, lambda: source @ vector)
    print(f"rows={args.n_rows:,} features={args.n_features} float32, input {input_bytes / 2**30:.2f} GiB")
    print(f"X @ v (baseline): {matvec:.3f} s")
    print(f"{'aligner':<14}{'fit s':>8}{'transform s':>13}{'total s':>9}{'x matvec':>10}{'extra mem':>11}")
    for aligner in (CentroidShift(), ReAlign()):
        fit = best_of(args.repeats, lambda: aligner.fit(source, target))
        transform = best_of(args.repeats, lambda: aligner.transform(source))
        tracemalloc.start()
        aligner.fit(source, target).transform(source)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        extra = (peak - source.nbytes) / input_bytes  # the output array is the transform's own
        total = fit + transform
        print(
            f"{type(aligner).__name__:<14}{fit:>8.3f}{transform:>13.3f}{total:>9.3f}"
            f"{total / matvec:>9.1f}x{extra:>10.1%}"
        )


if __name__ == "__main__":
    main()
