"""Fit and transform more rows than fit in memory, from .npy files on disk.

    python benchmarks/bench_outofcore.py [--n-source 6000000] [--n-target 2000000]
                                         [--n-features 512] [--aligner ReAlign] [--dir DIR]

Writes an unpaired float32 source (texts) and target (images) of CLIP-like
rows as .npy files (6,000,000 + 2,000,000 x 512 by default: 12.3 GB + 4.1 GB),
then, each in a fresh process so that its peak resident set is its own:

1. ``read``: the baseline, reading both files twice from start to end in
   32 MiB blocks (``readinto`` a reused buffer), the least any fit and
   transform that reads its input twice could take;
   ``write``: writing as many bytes as the output holds to a new file and
   flushing it to disk, the least the output costs;
2. ``job``: the aligner fitted on the two files opened as memory maps
   (``np.load(path, mmap_mode="r")``) and the source transformed by
   :func:`sklearn_modgap.io.transform_blocks` into a memory-mapped output
   .npy file.

It prints the seconds of each, the job's ratio to the read and to the read
plus the write, the job's peak resident set
(``VmHWM``) and the load average.  The job's output is flushed to disk
(``fsync``) before its clock stops, as the write baseline's is.  The targets: peak resident set under
2 GB, time within 2x of reading the input twice.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sklearn_modgap._pages import release_pages

BLOCK_BYTES = 32 << 20


def write_rows(path, n_rows, n_features, offset, seed):
    """CLIP-like unit-norm rows around ``offset``, written block by block."""
    rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    rng = np.random.default_rng(seed)
    step = max(1, BLOCK_BYTES // (4 * n_features))
    for start in range(0, n_rows, step):
        n = min(step, n_rows - start)
        block = rng.standard_normal((n, n_features), dtype=np.float32) * np.float32(0.03)
        block += offset
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        rows[start : start + n] = block
    rows.flush()
    release_pages(rows)
    del rows


def read_twice(paths):
    buffer = bytearray(BLOCK_BYTES)
    view = memoryview(buffer)
    total = 0
    for _ in range(2):
        for path in paths:
            with open(path, "rb", buffering=0) as handle:
                while True:
                    n = handle.readinto(view)
                    if not n:
                        break
                    total += n
    return total


def write_once(path, n_bytes):
    """Write ``n_bytes`` to a new file in 32 MiB blocks and flush it: the least any output of that size costs."""
    buffer = memoryview(bytearray(BLOCK_BYTES))
    with open(path, "wb", buffering=0) as handle:
        written = 0
        while written < n_bytes:
            written += handle.write(buffer[: min(BLOCK_BYTES, n_bytes - written)])
        os.fsync(handle.fileno())
    os.remove(path)


def job(source_path, target_path, out_path, aligner_name):
    import sklearn_modgap
    from sklearn_modgap.io import transform_blocks

    aligner = getattr(sklearn_modgap, aligner_name)()
    source = np.load(source_path, mmap_mode="r")
    target = np.load(target_path, mmap_mode="r")
    start = time.perf_counter()
    aligner.fit(source, y=target)
    fitted = time.perf_counter()
    out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float32, shape=source.shape)
    transform_blocks(aligner, source, out)
    out.flush()
    del out
    with open(out_path, "rb+") as handle:
        os.fsync(handle.fileno())
    done = time.perf_counter()
    check = np.asarray(np.load(out_path, mmap_mode="r")[-3:])
    expected = aligner.transform(np.asarray(source[-3:]))
    print(f"fit {fitted - start:.1f} s, transform {done - fitted:.1f} s, "
          f"largest difference of the last rows to an in-memory transform {np.abs(check - expected).max():.2e}")


def peak_rss_mib():
    """This process's peak resident set (``VmHWM``; a fresh process's own, unlike ``ru_maxrss``)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(argv):
    """Run this script's ``argv`` phase in a fresh process; its seconds and peak RSS (MiB)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, __file__, *argv], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    *lines, peak = result.stdout.strip().splitlines()
    for line in lines:
        print("   ", line)
    return seconds, float(peak)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-source", type=int, default=6_000_000)
    parser.add_argument("--n-target", type=int, default=2_000_000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--aligner", default="ReAlign")
    parser.add_argument("--dir", default=None, help="where to write the files (default: a temporary folder)")
    parser.add_argument("--phase", choices=["read", "write", "job"], help=argparse.SUPPRESS)
    parser.add_argument("--paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "read":
        read_twice(args.paths)
        print(peak_rss_mib())
        return
    if args.phase == "write":
        write_once(args.paths[0], int(args.paths[1]))
        print(peak_rss_mib())
        return
    if args.phase == "job":
        job(*args.paths, args.aligner)
        print(peak_rss_mib())
        return

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        folder = Path(folder)
        source, target, out = folder / "source.npy", folder / "target.npy", folder / "substitutes.npy"
        rng = np.random.default_rng(0)
        gap = rng.standard_normal(args.n_features).astype(np.float32)
        gap /= np.linalg.norm(gap)
        base = rng.standard_normal(args.n_features).astype(np.float32) * np.float32(0.05)
        start = time.perf_counter()
        write_rows(source, args.n_source, args.n_features, base + 0.4 * gap, 1)
        write_rows(target, args.n_target, args.n_features, base - 0.4 * gap, 2)
        size = (source.stat().st_size + target.stat().st_size) / 1e9
        print(f"wrote {args.n_source:,} + {args.n_target:,} x {args.n_features} float32 rows "
              f"({size:.1f} GB) in {time.perf_counter() - start:.0f} s")
        read_seconds, read_peak = run_phase(["--phase", "read", "--paths", str(source), str(target)])
        print(f"read: both files twice in {read_seconds:.1f} s ({2 * size / read_seconds:.2f} GB/s), "
              f"peak RSS {read_peak:.0f} MiB")
        out_bytes = args.n_source * args.n_features * 4
        write_seconds, _ = run_phase(["--phase", "write", "--paths", str(folder / "written.bin"), str(out_bytes)])
        print(f"write: {out_bytes / 1e9:.1f} GB (the output's size) once, flushed to disk, in {write_seconds:.1f} s "
              f"({out_bytes / 1e9 / write_seconds:.2f} GB/s)")
        job_seconds, job_peak = run_phase(
            ["--phase", "job", "--aligner", args.aligner, "--paths", str(source), str(target), str(out)]
        )
        print(f"job: {args.aligner} fit + transform into {out.name} in {job_seconds:.1f} s, "
              f"peak RSS {job_peak:.0f} MiB")
        ratio = job_seconds / read_seconds
        print(f"ratio job / read twice: {ratio:.2f} (target <= 2); job / (read twice + write the output once): "
              f"{job_seconds / (read_seconds + write_seconds):.2f}; peak RSS {job_peak:.0f} MiB "
              f"(target < 2048); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
