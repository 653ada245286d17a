"""Time ``modgap compare`` end to end on 200,000 + 200,000 rows read from .npy files.

    python benchmarks/bench_cli.py [--n-pairs 200000] [--n-features 512] [--aligners ...]

Generates CLIP-like float32 pairs with ``make_modality_gap``, writes source and
target to two ``.npy`` files in a temporary folder, then runs the console
command ``python -m sklearn_modgap compare --source S.npy --target T.npy`` as a
separate process and prints its wall-clock seconds (reading, splitting,
fitting every aligner, transforming, evaluating, printing), the table it
printed, and the machine's load average so that contended runs can be told
apart.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sklearn_modgap.datasets import make_modality_gap


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-pairs", type=int, default=200_000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--aligners", nargs="+", help="passed to modgap compare")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        start = time.perf_counter()
        target, source = make_modality_gap(args.n_pairs, args.n_features, random_state=0)
        np.save(folder / "source.npy", source)
        np.save(folder / "target.npy", target)
        del target, source
        print(f"generated and saved {args.n_pairs} + {args.n_pairs} rows x {args.n_features} "
              f"float32 in {time.perf_counter() - start:.1f} s")

        command = [
            sys.executable, "-m", "sklearn_modgap", "compare",
            "--source", str(folder / "source.npy"), "--target", str(folder / "target.npy"),
        ]
        if args.aligners:
            command += ["--aligners", *args.aligners]
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start

    print(done.stdout)
    if done.returncode != 0:
        sys.exit(f"modgap compare failed with status {done.returncode}")
    print(f"modgap compare end to end: {seconds:.1f} s "
          f"(1-minute load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
