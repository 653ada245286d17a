"""AnisoAlign against the closed-form aligners, and the ablation of its departures from the paper.

For each data set the pairs are split in two halves with a fixed seed; every
aligner is fitted on the first half (source rows and target rows, pairing not
used) and evaluated on the held-out pairs of the second half:
``Delta_mu`` (centroid discrepancy), ``Phi`` (instance consistency), ``Psi``
(relative geometry consistency), ``Omega_k`` (k-NN consistency), ``M^Z`` and
``M^X`` (modality mixing from either side), the alignment balance and the
cross-modal transfer (top-1 accuracy of a substitute-trained decoder fed
target rows), plus the fit time.  Real data: the four ``mind-the-gap`` feature files beside the
project (index 0 = target, 1 = source); synthetic: ``make_modality_gap``.

    python benchmarks/bench_aniso.py                       # real sets + 20,000 synthetic pairs
    python benchmarks/bench_aniso.py --sets clip convirt   # a subset
    python benchmarks/bench_aniso.py --ablation            # published vs earlier choices, one at a time
    python benchmarks/bench_aniso.py --timing              # fit / transform times at scale
    python benchmarks/bench_aniso.py --sweep drift_step=0.1,0.5,1.0 --sets clip convirt
    python benchmarks/bench_aniso.py --sweep "noise_range=(0.05, 1.5), (0.1, 1.0)"

``--ablation`` fits the published method (``AnisoAlign()``), the package's
earlier choices all together (``EARLIER_CHOICES``), and the published method
with each earlier choice switched on alone, with ReAlign beside them; its
``A_r(T)`` column is the evaluation's residual anisotropy of App. B.2 with the
uncentred residual ``r_i = x_i - z_i``.
"""

import argparse
import resource
import time
from pathlib import Path

import numpy as np

from sklearn_modgap import C3, AnisoAlign, CentroidShift, MomentMatch, ReAlign
from sklearn_modgap.aniso._estimator import EARLIER_CHOICES
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.metrics import (
    alignment_balance,
    centroid_discrepancy,
    cross_modal_transfer,
    instance_consistency,
    modality_mixing,
    neighborhood_consistency,
    relative_geometry_consistency,
)

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mind-the-gap"
REAL_SETS = ("clip", "convirt", "videoclip", "clasp")
COLUMNS = ("Delta_mu", "Phi", "Psi", "Omega_k", "M^Z", "M^X", "balance", "transfer", "fit s")
ABLATION_COLUMNS = ("Delta_mu", "Phi", "Psi", "Omega_k", "M^Z", "M^X", "A_r(T)", "balance", "fit s")


def aligners(seed, aniso_params):
    """The compared aligners; the AnisoAlign rows are the ablations of Table 4."""

    def aniso(**params):
        return AnisoAlign(random_state=seed, device="cpu", **{**aniso_params, **params})

    return {
        "identity": CentroidShift(alpha=0.0),
        "CentroidShift": CentroidShift(),
        "C3": C3(random_state=seed),
        "ReAlign": ReAlign(),
        "MomentMatch": MomentMatch(),
        "Aniso: global init": aniso(alpha=0.0),
        "Aniso: + refinement": aniso(use_prior=False, use_phase_constraint=False),
        "Aniso: + L^II": aniso(use_phase_constraint=False),
        "Aniso: + L^Phi": aniso(use_prior=False),
        "AnisoAlign (full)": aniso(),
    }


def ablation_aligners(seed, aniso_params):
    """ReAlign, the published method, the earlier choices together, and each alone."""

    def aniso(**params):
        return AnisoAlign(random_state=seed, device="cpu", **{**aniso_params, **params})

    rows = {
        "ReAlign": ReAlign(),
        "AnisoAlign (published)": aniso(),
        "published, global init only": aniso(alpha=0.0),
        "earlier choices, all": aniso(**EARLIER_CHOICES),
    }
    for name, value in EARLIER_CHOICES.items():
        rows[f"published + {name}={value!r}"] = aniso(**{name: value})
    return rows


def sweep_aligners(name, values):
    """One AnisoAlign per value of one parameter, ReAlign beside them."""

    def make(seed, aniso_params):
        rows = {"ReAlign": ReAlign()}
        for value in values:
            params = {**aniso_params, name: value}
            rows[f"{name}={value!r}"] = AnisoAlign(random_state=seed, device="cpu", **params)
        return rows

    return make


def uncentred_residual_anisotropy(target, substitutes):
    """App. B.2: ``lambda_max(Sigma_r) / (tr Sigma_r / d)``, ``Sigma_r = 1/n sum r_i r_i^T``, ``r_i = x_i - z_i``."""
    residual = np.asarray(target, dtype=np.float64) - substitutes
    eigenvalues = np.linalg.eigvalsh(residual.T @ residual / len(residual))
    return eigenvalues[-1] / (eigenvalues.sum() / residual.shape[1])


def load(name, n_synthetic, seed):
    if name == "synthetic":
        return make_modality_gap(n_pairs=n_synthetic, random_state=seed)
    pairs = np.load(DATA_DIR / f"features_{name}.npy")
    return pairs[0], pairs[1]


def evaluate(target, source, substitutes, k):
    return {
        "Delta_mu": centroid_discrepancy(target, substitutes),
        "Phi": instance_consistency(source, substitutes),
        "Psi": relative_geometry_consistency(source, substitutes, random_state=0),
        "Omega_k": neighborhood_consistency(source, substitutes, k=k),
        "M^Z": modality_mixing(target, substitutes, k=k, direction="substitute"),
        "M^X": modality_mixing(target, substitutes, k=k, direction="target"),
        "balance": alignment_balance(target, source, substitutes, k=k, random_state=0),
        "transfer": cross_modal_transfer(target, source, substitutes),
    }


def run_set(name, args, aniso_params, make_aligners=aligners):
    target, source = load(name, args.n_synthetic, args.seed)
    order = np.random.default_rng(args.seed).permutation(len(target))
    half = len(order) // 2
    fit_rows, test_rows = order[:half], order[half:]
    if args.max_eval and len(test_rows) > args.max_eval:
        test_rows = test_rows[: args.max_eval]
    k = max(1, min(20, len(test_rows) // 5))
    rows = {}
    for label, aligner in make_aligners(args.seed, aniso_params).items():
        start = time.perf_counter()
        aligner.fit(source[fit_rows], y=target[fit_rows])
        fit_time = time.perf_counter() - start
        substitutes = aligner.transform(source[test_rows])
        rows[label] = {
            **evaluate(target[test_rows], source[test_rows], substitutes, k),
            "A_r(T)": uncentred_residual_anisotropy(
                aligner.transform_target(target[test_rows]), substitutes
            ),
            "fit s": fit_time,
        }
    return rows, len(fit_rows), len(test_rows), k


def print_table(name, rows, n_fit, n_test, k, columns=COLUMNS):
    print(f"\n### {name}: fit on {n_fit} pairs, evaluated on {n_test} held-out pairs, k={k}\n")
    print("| aligner | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for label, values in rows.items():
        cells = " | ".join(_cell(values[c], c) for c in columns)
        print(f"| {label} | {cells} |", flush=True)


def _cell(value, column):
    if column == "fit s":
        return f"{value:.1f}"
    return f"{value:.1f}" if column == "A_r(T)" else f"{value:.3f}"


def timing(args, aniso_params):
    """Fit on n + n rows x 512 with defaults; transform of n_transform rows in blocks."""
    target, source = make_modality_gap(n_pairs=2 * args.n_synthetic, random_state=args.seed)
    aligner = AnisoAlign(random_state=args.seed, verbose=args.verbose, **aniso_params)
    start = time.perf_counter()
    aligner.fit(source[: args.n_synthetic], y=target[args.n_synthetic :])
    fit_time = time.perf_counter() - start
    print(
        f"fit on {args.n_synthetic:,} + {args.n_synthetic:,} rows x {source.shape[1]}: {fit_time:.1f} s "
        f"(device {aligner.device_}, rank {aligner.rank_}, prior epochs {len(aligner.prior_.history)}, "
        f"refiner epochs {len(aligner.refiner_.history)})"
    )
    rows = np.resize(source, (args.n_transform, source.shape[1]))
    # Touch and free one output-sized array, so that the peak resident size
    # already covers the output; its growth during transform is then the
    # transform's own working memory.
    scratch = np.empty_like(rows)
    scratch.fill(0)
    del scratch
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    aligner.transform(rows)
    elapsed = time.perf_counter() - start
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    print(
        f"transform of {args.n_transform:,} rows: {elapsed:.1f} s, "
        f"peak memory growth beyond the output {growth:.0f} MiB (input {rows.nbytes / 2**30:.2f} GiB)"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=[*REAL_SETS, "synthetic"])
    parser.add_argument("--n-synthetic", type=int, default=20_000)
    parser.add_argument(
        "--max-eval",
        type=int,
        default=5_000,
        help="held-out pairs evaluated per set (k-NN metrics are quadratic in it)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument(
        "--sweep",
        metavar="NAME=V1,V2,...",
        help="fit AnisoAlign once per value of one parameter (the values are read as the items of a Python list, "
        "so tuples keep their commas)",
    )
    parser.add_argument("--n-transform", type=int, default=1_000_000)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument(
        "--aniso",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="AnisoAlign parameters, e.g. rank=16 alpha=0.5 (values read as Python literals)",
    )
    args = parser.parse_args(argv)
    from ast import literal_eval

    aniso_params = {}
    for item in args.aniso:
        key, value = item.split("=", 1)
        aniso_params[key] = literal_eval(value)
    if args.timing:
        timing(args, aniso_params)
        return
    if args.sweep:
        param, values = args.sweep.split("=", 1)
        # Read the values as one Python list, so that tuple values keep their
        # commas: --sweep "noise_range=(0.05, 1.5), (0.1, 1.0)".
        make = sweep_aligners(param, literal_eval(f"[{values}]"))
        for name in args.sets:
            print_table(name, *run_set(name, args, aniso_params, make), columns=ABLATION_COLUMNS)
        return
    for name in args.sets:
        if args.ablation:
            print_table(name, *run_set(name, args, aniso_params, ablation_aligners), columns=ABLATION_COLUMNS)
        else:
            print_table(name, *run_set(name, args, aniso_params))


if __name__ == "__main__":
    main()
