"""Time ``modgap align`` with ReAlign on unpaired .npy files against the official ReAlign passes.

    python benchmarks/bench_corpus.py [--n-rows 200000] [--n-features 512] [--official PATH]

Generates CLIP-like float32 rows with ``make_modality_gap`` (source and target
rows of different pairs, so nothing is paired), writes them to ``source.npy``
and ``target.npy`` in a temporary folder, and measures in one run:

1. ``python -m sklearn_modgap align --source source.npy --target target.npy``
   as a separate process, wall clock from start to exit (imports, fit,
   saving the .skops model, transform and atomic write of the substitutes;
   the median of ``--repeat`` runs), and, to show where its time goes, the
   start-up alone (``modgap --help``), the import of ``skops.io`` in a fresh
   process (which neither ``align`` nor ``transform`` pays: the package writes
   and reads the closed-form model's skops file itself), and the fit and the
   transform with atomic write timed inside this process; besides,
   ``modgap transform`` of the source rows with the model ``align`` saved, as
   a separate process (median of ``--repeat`` runs), and the load of that
   model alone in this process;
2. ``reference``: the algorithm of the official ``embed_ReAlign.py``
   (Yu-xm/ReVision) written out here from its description: four passes over
   the rows in chunks of 10,000, in float64, each chunk normalised with the
   script's overflow-safe normalisation (rows scaled by their largest
   absolute entry first): the two means, the two traces, ``mu_hat`` of the
   trace-aligned source rows, then the corrected substitutes written as one
   float32 .npy file.  It runs in this process, reading the same .npy files,
   so it pays no start-up and no pickle decoding;
3. with ``--official PATH`` (a copy of ``embed_ReAlign.py``): that script
   itself, as a separate process, on the same rows stored as it reads them
   (one pickle per modality holding a list of ``{"embed": row}`` records).

It prints the seconds of each, the ratios, the largest difference between
the substitutes of ``modgap align`` and of the reference, and the load
average, so that runs on a busy machine can be told apart.
"""

import argparse
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sklearn_modgap.datasets import make_modality_gap

_CHUNK = 10_000


def _unit_rows(rows):
    """Rows over their norms, the norms taken after scaling by the largest entry (float64)."""
    rows = np.nan_to_num(np.asarray(rows, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    peak = np.abs(rows).max(axis=1, keepdims=True)
    peak[peak == 0] = 1.0
    norms = peak * np.linalg.norm(rows / peak, axis=1, keepdims=True)
    norms[~(norms >= 1e-10)] = 1.0
    return rows / norms


def _chunks(array):
    for start in range(0, len(array), _CHUNK):
        yield array[start : start + _CHUNK]


def reference_realign(source_path, target_path, output_path):
    """The four passes of the official ReAlign script on two .npy files."""
    source = np.load(source_path, mmap_mode="r")
    target = np.load(target_path, mmap_mode="r")
    means = []
    for rows in (source, target):  # pass 1: means of the unit rows
        total = np.zeros(rows.shape[1])
        for chunk in _chunks(rows):
            total += _unit_rows(chunk).sum(axis=0)
        means.append(total / len(rows))
    source_mean, target_mean = means
    traces = []
    for rows, mean in ((source, source_mean), (target, target_mean)):  # pass 2: mean squared distances
        total = 0.0
        for chunk in _chunks(rows):
            total += float(np.sum((_unit_rows(chunk) - mean) ** 2))
        traces.append(total / len(rows))
    scale = np.sqrt(traces[1] / (traces[0] + 1e-10))

    def trace_aligned(chunk):
        return _unit_rows((_unit_rows(chunk) - source_mean) * scale + target_mean)

    total = np.zeros(source.shape[1])  # pass 3: mean of the trace-aligned source rows
    for chunk in _chunks(source):
        total += trace_aligned(chunk).sum(axis=0)
    calibration = total / len(source)
    out = np.empty(source.shape, dtype=np.float32)  # pass 4: corrected substitutes
    for start, chunk in zip(range(0, len(source), _CHUNK), _chunks(source)):
        out[start : start + len(chunk)] = _unit_rows(trace_aligned(chunk) - calibration + target_mean)
    np.save(output_path, out)


def _timed_process(command, **kwargs):
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rows", type=int, default=200_000, help="rows per modality")
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3, help="runs of modgap align (the median is compared)")
    parser.add_argument("--official", type=Path, help="path of the official embed_ReAlign.py to run too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        target, source = make_modality_gap(2 * args.n_rows, args.n_features, random_state=0)
        # Unpaired: the source rows and the target rows come from different pairs.
        np.save(folder / "source.npy", source[: args.n_rows])
        np.save(folder / "target.npy", target[args.n_rows :])
        if args.official is not None:
            for name, rows in (("text", source[: args.n_rows]), ("image", target[args.n_rows :])):
                (folder / name).mkdir()
                with open(folder / name / "part-000.pkl", "wb") as handle:
                    pickle.dump([{"embed": row} for row in rows], handle)
        del target, source

        modgap = [sys.executable, "-m", "sklearn_modgap"]
        startup = _timed_process([*modgap, "--help"], stdout=subprocess.DEVNULL)
        align_runs = []
        for _ in range(args.repeat):
            shutil.rmtree(folder / "out", ignore_errors=True)
            align_runs.append(_timed_process(
                [*modgap, "align", "--source", str(folder / "source.npy"), "--target", str(folder / "target.npy"),
                 "--aligner", "ReAlign", "--output", str(folder / "out"), "--quiet"],
                stdout=subprocess.DEVNULL,
            ))
        align = float(np.median(align_runs))
        transform_runs = []
        for _ in range(args.repeat):
            shutil.rmtree(folder / "out-transform", ignore_errors=True)
            transform_runs.append(_timed_process(
                [*modgap, "transform", str(folder / "out" / "model.skops"), "--input", str(folder / "source.npy"),
                 "--output", str(folder / "out-transform"), "--quiet"],
                stdout=subprocess.DEVNULL,
            ))
        transform_process = float(np.median(transform_runs))
        skops_import = _timed_process([sys.executable, "-c", "import skops.io"])
        from sklearn_modgap import ReAlign
        from sklearn_modgap._cli_corpus import fit_corpus, transform_corpus
        from sklearn_modgap.io import find_shards
        from sklearn_modgap.persistence import load

        start = time.perf_counter()
        load(folder / "out" / "model.skops")
        model_load = time.perf_counter() - start
        aligner, source_shards = ReAlign(), find_shards(folder / "source.npy")
        start = time.perf_counter()
        fit_corpus(aligner, source_shards, find_shards(folder / "target.npy"))
        fit = time.perf_counter() - start
        start = time.perf_counter()
        transform_corpus(aligner, source_shards, folder / "out-in-process", model_digest="")
        transform = time.perf_counter() - start

        start = time.perf_counter()
        reference_realign(folder / "source.npy", folder / "target.npy", folder / "reference.npy")
        reference = time.perf_counter() - start
        difference = float(np.max(np.abs(np.load(folder / "out" / "source.npy") - np.load(folder / "reference.npy"))))

        print(f"rows: {args.n_rows:,} source + {args.n_rows:,} target x {args.n_features} float32 (.npy)")
        print(f"modgap align (separate process, wall):  {align:7.2f} s   median of "
              f"{', '.join(f'{run:.2f}' for run in align_runs)}")
        print(f"  start-up alone (modgap --help):       {startup:7.2f} s")
        print(f"  import skops.io alone (paid by neither align nor transform, which write and read the .skops file): "
              f"{skops_import:.2f} s")
        print(f"  fit (in process):                     {fit:7.2f} s")
        print(f"  transform + atomic write (in process):{transform:7.2f} s")
        print(f"modgap transform (separate process, wall): {transform_process:4.2f} s   median of "
              f"{', '.join(f'{run:.2f}' for run in transform_runs)}")
        print(f"  load of the .skops model (in process): {model_load:7.3f} s")
        print(f"reference four passes (in process):     {reference:7.2f} s   ratio {reference / align:5.2f}x")
        if args.official is not None:
            official = _timed_process(
                [sys.executable, str(args.official), "--input_dir", str(folder / "text"),
                 "--img_input_dir", str(folder / "image"), "--output_dir", str(folder / "official"),
                 "--mean_file_path", str(folder / "official" / "mean.pkl")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            print(f"official embed_ReAlign.py (process):    {official:7.2f} s   ratio {official / align:5.2f}x")
        print(f"max |modgap - reference| over all substitutes: {difference:.2e}")
        print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
