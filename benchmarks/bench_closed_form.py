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
    parser.add_argument("--repeats", type=int, default=5)
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

    print(f"rows={args.n_rows:,} features={args.n_features} float32, input {input_bytes / 2**30:.2f} GiB")
    print(f"{args.repeats} interleaved runs of X @ v (best of 3), fit and transform; 'best' ratio: best fit +"
          " best transform over best X @ v; 'median': median over runs of (fit + transform) / X @ v")
    print(f"{'aligner':<14}{'X @ v s':>9}{'fit s':>8}{'transform s':>13}{'total s':>9}"
          f"{'best':>8}{'median':>8}{'range':>13}{'extra mem':>11}")
    for aligner in (CentroidShift(), ReAlign()):
        runs = []
        for _ in range(args.repeats):
            # The baseline is timed beside each run: the machine's speed drifts.
            matvec = best_of(3, lambda: source @ vector)
            fit = best_of(1, lambda: aligner.fit(source, target))
            transform = best_of(1, lambda: aligner.transform(source))
            runs.append((matvec, fit, transform))
        matvec, fit, transform = (min(column) for column in zip(*runs))
        ratios = sorted((f + t) / m for m, f, t in runs)
        tracemalloc.start()
        aligner.fit(source, target).transform(source)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        extra = (peak - source.nbytes) / input_bytes  # the output array is the transform's own
        print(
            f"{type(aligner).__name__:<14}{matvec:>9.3f}{fit:>8.3f}{transform:>13.3f}"
            f"{fit + transform:>9.3f}{(fit + transform) / matvec:>7.1f}x{ratios[len(ratios) // 2]:>7.1f}x"
            f"{ratios[0]:>7.1f}-{ratios[-1]:<5.1f}{extra:>11.1%}"
        )

if __name__ == "__main__":
    main()
