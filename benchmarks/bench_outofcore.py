"""Fit and transform more rows than fit in memory, from .npy files on disk.

    python benchmarks/bench_outofcore.py [--n-source 6000000] [--n-target 2000000]
                                         [--n-features 512] [--aligner ReAlign] [--dir DIR] [--cold]

Writes an unpaired float32 source (texts) and target (images) of CLIP-like
rows as .npy files (6,000,000 + 2,000,000 x 512 by default: 12.3 GB + 4.1 GB),
then, each in a fresh process so that its peak resident set is its own:

1. ``read``: the baseline, reading both files twice from start to end in
   32 MiB blocks (``readinto`` a reused buffer), the least any fit and
   transform that reads its input twice could take;
2. ``write``: writing as many bytes as the output holds to a new file and
   flushing it to disk (``fsync``), the least the output costs: once with
   buffered writes (through the page cache) and once with direct I/O
   (``O_DIRECT``, 16 MiB writes from one page-aligned buffer);
3. ``job``: the aligner fitted on the two files opened as memory maps
   (``np.load(path, mmap_mode="r")``) and the source transformed by
   :func:`sklearn_modgap.io.transform_blocks` into an output path
   (``out="substitutes.npy"``: direct I/O from a background thread), and,
   as a second job, into a memory-mapped output .npy file
   (:func:`numpy.lib.format.open_memmap`).

It prints the seconds of each, twice: for the whole process (interpreter
start and imports included: importing sklearn_modgap takes about 1.5 s,
numpy alone 0.2 s) and for the phase's own work, timed inside the process
from opening the files to the output flushed to disk; each job's ratio to
the read (both ways) and to the read plus the direct write, each job's peak resident set (``VmHWM``) and the load
average.  Every output is flushed to disk (``fsync``) before its clock stops.
With ``--cold`` (root on Linux) the page cache is emptied (``sync``, then
``3`` into ``/proc/sys/vm/drop_caches``) before each measured phase, so every
phase reads from the disk.  The targets: peak resident set under 2 GB, time
within 2x of reading the input twice.
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
    start = time.perf_counter()
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
    return time.perf_counter() - start


def write_once(path, n_bytes):
    """Write ``n_bytes`` to a new file in 32 MiB blocks and flush it: the least any output of that size costs."""
    start = time.perf_counter()
    buffer = memoryview(bytearray(BLOCK_BYTES))
    with open(path, "wb", buffering=0) as handle:
        written = 0
        while written < n_bytes:
            written += handle.write(buffer[: min(BLOCK_BYTES, n_bytes - written)])
        os.fsync(handle.fileno())
    seconds = time.perf_counter() - start
    os.remove(path)
    return seconds


def write_direct(path, n_bytes):
    """Write ``n_bytes`` with ``O_DIRECT`` in 16 MiB writes from a page-aligned buffer, then flush it."""
    import errno
    import mmap

    start = time.perf_counter()
    chunk = 16 << 20
    buffer = mmap.mmap(-1, chunk)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    direct = hasattr(os, "O_DIRECT")
    try:
        descriptor = os.open(path, flags | (os.O_DIRECT if direct else 0))
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        direct, descriptor = False, os.open(path, flags)
    written = 0
    while written < n_bytes:
        written += os.pwrite(descriptor, buffer, written)
    os.ftruncate(descriptor, n_bytes)
    os.fsync(descriptor)
    seconds = time.perf_counter() - start
    os.close(descriptor)
    os.remove(path)
    print("direct I/O" if direct else "O_DIRECT refused: buffered writes")
    return seconds


def job(source_path, target_path, out_path, aligner_name, output):
    import sklearn_modgap
    from sklearn_modgap.io import transform_blocks

    aligner = getattr(sklearn_modgap, aligner_name)()
    start = time.perf_counter()
    source = np.load(source_path, mmap_mode="r")
    target = np.load(target_path, mmap_mode="r")
    aligner.fit(source, y=target)
    fitted = time.perf_counter()
    if output == "path":
        # Written with direct I/O by a background thread and flushed to disk before returning.
        transform_blocks(aligner, source, out=out_path)
    else:
        out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float32, shape=source.shape)
        transform_blocks(aligner, source, out)
        out.flush()
        del out
        with open(out_path, "rb+") as handle:
            os.fsync(handle.fileno())
    done = time.perf_counter()
    check = np.asarray(np.load(out_path, mmap_mode="r")[-3:])
    expected = aligner.transform(np.asarray(source[-3:]))
    os.remove(out_path)
    print(f"fit {fitted - start:.1f} s, transform {done - fitted:.1f} s, "
          f"largest difference of the last rows to an in-memory transform {np.abs(check - expected).max():.2e}")
    return done - start


def peak_rss_mib():
    """This process's peak resident set (``VmHWM``; a fresh process's own, unlike ``ru_maxrss``)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def drop_page_cache():
    """Write dirty pages and empty the page cache; whether it could (root on Linux)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
    except OSError:
        return False
    return True


def run_phase(argv, cold):
    """Run this script's ``argv`` phase in a fresh process.

    Returns the process's seconds (interpreter start and imports included),
    the seconds of the phase's own work (timed inside the process, from
    opening the files to the output flushed to disk) and its peak RSS (MiB).
    """
    if cold and not drop_page_cache():
        raise SystemExit("--cold: cannot write /proc/sys/vm/drop_caches (needs root on Linux)")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, __file__, *argv], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    *lines, work, peak = result.stdout.strip().splitlines()
    for line in lines:
        print("   ", line)
    return seconds, float(work), float(peak)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-source", type=int, default=6_000_000)
    parser.add_argument("--n-target", type=int, default=2_000_000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--aligner", default="ReAlign")
    parser.add_argument("--dir", default=None, help="where to write the files (default: a temporary folder)")
    parser.add_argument("--cold", action="store_true",
                        help="empty the page cache before each measured phase (root on Linux)")
    parser.add_argument("--phase", choices=["read", "write", "write-direct", "job"], help=argparse.SUPPRESS)
    parser.add_argument("--output", choices=["path", "memmap"], default="path", help=argparse.SUPPRESS)
    parser.add_argument("--paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase is not None:
        if args.phase == "read":
            work = read_twice(args.paths)
        elif args.phase == "write":
            work = write_once(args.paths[0], int(args.paths[1]))
        elif args.phase == "write-direct":
            work = write_direct(args.paths[0], int(args.paths[1]))
        else:
            work = job(*args.paths, args.aligner, args.output)
        print(work)
        print(peak_rss_mib())
        return

    if args.cold and not (sys.platform.startswith("linux") and os.geteuid() == 0 and drop_page_cache()):
        raise SystemExit("--cold needs root on Linux (it writes /proc/sys/vm/drop_caches)")
    print("page cache emptied before each measured phase (--cold)" if args.cold
          else "page cache left as it is (warm: the files just written may be cached)")
    cold = args.cold
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
        read_seconds, read_work, read_peak = run_phase(
            ["--phase", "read", "--paths", str(source), str(target)], cold
        )
        print(f"read: both files twice in {read_seconds:.1f} s, {read_work:.1f} s in process "
              f"({2 * size / read_work:.2f} GB/s), peak RSS {read_peak:.0f} MiB")
        out_bytes = args.n_source * args.n_features * 4
        written = str(folder / "written.bin")
        write_seconds, write_work, _ = run_phase(["--phase", "write", "--paths", written, str(out_bytes)], cold)
        print(f"write: {out_bytes / 1e9:.1f} GB (the output's size) once with buffered writes, flushed to disk, "
              f"in {write_seconds:.1f} s, {write_work:.1f} s in process ({out_bytes / 1e9 / write_work:.2f} GB/s)")
        direct_seconds, direct_work, _ = run_phase(
            ["--phase", "write-direct", "--paths", written, str(out_bytes)], cold
        )
        print(f"write: {out_bytes / 1e9:.1f} GB once with direct I/O, flushed to disk, in {direct_seconds:.1f} s, "
              f"{direct_work:.1f} s in process ({out_bytes / 1e9 / direct_work:.2f} GB/s)")
        jobs = []
        for output, what in (("path", "transform_blocks(out=path), direct I/O"),
                             ("memmap", "transform_blocks into an open_memmap output")):
            seconds, work, peak = run_phase(
                ["--phase", "job", "--aligner", args.aligner, "--output", output,
                 "--paths", str(source), str(target), str(out)], cold,
            )
            print(f"job ({what}): {args.aligner} fit + transform into {out.name} in {seconds:.1f} s, "
                  f"{work:.1f} s in process, peak RSS {peak:.0f} MiB")
            jobs.append((what, seconds, work, peak))
        for what, seconds, work, peak in jobs:
            print(f"ratio job / read twice, {what}: in process {work / read_work:.2f} (target <= 2), "
                  f"whole processes {seconds / read_seconds:.2f}; in process job / (read twice + direct write "
                  f"once): {work / (read_work + direct_work):.2f}; peak RSS {peak:.0f} MiB (target < 2048)")
        print(f"{'cold' if cold else 'warm'} page cache; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
