"""The ``modgap`` command line: compare aligners, diagnose a gap.

``modgap compare`` fits every aligner of the package on one split of the
pairs without using the pairing and prints how each one does on the held-out
pairs (:func:`sklearn_modgap.report.gap_report`).  ``modgap diagnose`` prints
the geometry of the gap (:func:`sklearn_modgap.report.diagnose`) and writes
its figures.  Without input files both use the built-in generator
(:func:`sklearn_modgap.datasets.make_modality_gap`).
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import FitFailedWarning

# Aligners that learn from the pairing itself cannot enter an unpaired comparison.
_NEEDS_PAIRING = {"ContrastiveAdapter"}
IDENTITY = "identity"


def available_aligners(random_state=0):
    """Default instances of the package's aligners, keyed by name.

    The list is read from what ``sklearn_modgap`` exports, so every aligner
    the package provides takes part; an ``identity`` row (``CentroidShift``
    with ``alpha=0``, i.e. only the row normalisation) comes first as the
    reference.  Aligners that need the pairing to fit are left out.

    Parameters
    ----------
    random_state : int, default=0
        Passed to every aligner that has a ``random_state`` parameter.

    Returns
    -------
    aligners : dict of str to estimator
    """
    import sklearn_modgap
    from sklearn_modgap._base import BaseAligner

    aligners = {IDENTITY: sklearn_modgap.CentroidShift(alpha=0.0)}
    for name in sklearn_modgap.__all__:
        candidate = getattr(sklearn_modgap, name)
        if (
            isinstance(candidate, type)
            and issubclass(candidate, BaseAligner)
            and name not in _NEEDS_PAIRING
        ):
            aligner = candidate()
            if "random_state" in aligner.get_params():
                aligner.set_params(random_state=random_state)
            aligners[name] = aligner
    return aligners


def _select_aligners(requested, random_state):
    aligners = available_aligners(random_state)
    if not requested:
        return aligners
    by_lower = {name.lower(): name for name in aligners}
    unknown = [name for name in requested if name.lower() not in by_lower]
    if unknown:
        raise ValueError(
            f"unknown aligner(s) {', '.join(unknown)}; choose from {', '.join(aligners)}"
        )
    return {by_lower[name.lower()]: aligners[by_lower[name.lower()]] for name in requested}


def _build_parser():
    from .report import DEFAULT_GAP_REPORT_METRICS, GAP_REPORT_COLUMNS

    parser = argparse.ArgumentParser(
        prog="modgap",
        description="Measure and close the modality gap of paired embeddings.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_data_options(command):
        data = command.add_argument_group(
            "data (default: the built-in CLIP-like generator)"
        )
        data.add_argument(
            "--source", type=Path, help="(n, d) .npy/.npz file of source rows (text)"
        )
        data.add_argument(
            "--target", type=Path, help="(n, d) .npy/.npz file of target rows (images)"
        )
        data.add_argument(
            "--pairs", type=Path,
            help="one (2, n, d) .npy file (index 0 target, index 1 source) or a .npz "
            "with arrays 'target' and 'source'",
        )
        data.add_argument(
            "--n-pairs", type=int, default=2000, help="generated pairs (default 2000)"
        )
        data.add_argument(
            "--n-features", type=int, default=512, help="generated dimension (default 512)"
        )
        command.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
        command.add_argument("--output", type=Path, metavar="DIR", help="folder for the outputs")
        command.add_argument("--quiet", action="store_true", help="no progress display")

    compare = commands.add_parser(
        "compare",
        help="fit every aligner without pairing, evaluate on held-out pairs",
        description="Fit every aligner on one split of the pairs without using the "
        "pairing and print how each one does on the held-out pairs. --output DIR "
        "writes each aligner's substitutes of the held-out source rows as "
        "<name>.npy, the held-out row numbers as test_index.npy and the table as "
        "report.csv.",
    )
    add_data_options(compare)
    compare.add_argument(
        "--test-size", type=float, default=0.5, help="held-out fraction (default 0.5)"
    )
    compare.add_argument(
        "--aligners", nargs="+", metavar="NAME",
        help="aligners to compare (default: all, with an identity row)",
    )
    extra_metrics = [c for c in GAP_REPORT_COLUMNS if c not in DEFAULT_GAP_REPORT_METRICS]
    compare.add_argument(
        "--metrics", nargs="+", metavar="NAME", choices=["default", *GAP_REPORT_COLUMNS],
        help="columns to compute, in order: "
        f"'default' ({', '.join(DEFAULT_GAP_REPORT_METRICS)}) "
        f"and any of {', '.join(extra_metrics)}; "
        "e.g. --metrics default A_r",
    )
    compare.add_argument("--k", type=int, default=20, help="neighbourhood size (default 20)")
    compare.add_argument(
        "--max-knn-pairs", type=int, default=5000,
        help="held-out pairs sampled for the k-NN measures (default 5000; 0 = all)",
    )
    compare.add_argument(
        "--knn", choices=["exact", "approximate"], default="exact",
        help="k-NN back-end of the neighbourhood measures (default exact; approximate is "
        "about 10-18x faster from 20,000 rows, e.g. with --max-knn-pairs 0)",
    )

    diagnose = commands.add_parser(
        "diagnose",
        help="print the geometry of the gap and write its figures",
        description="Print the diagnostics of the modality gap; --output DIR writes "
        "diagnostics.csv and the figures as PNG files.",
    )
    add_data_options(diagnose)
    diagnose.add_argument(
        "--q", type=int, default=128, help="subspace dimension of O_q (default 128)"
    )
    from ._cli_corpus import add_corpus_commands

    add_corpus_commands(commands)
    return parser


def _load(args):
    from .datasets import load_embedding_pairs, make_modality_gap

    if args.pairs is not None:
        if args.source is not None or args.target is not None:
            raise ValueError("pass either --pairs or --source and --target, not both")
        return load_embedding_pairs(args.pairs, mmap_mode="r"), f"{args.pairs}"
    if (args.source is None) != (args.target is None):
        raise ValueError("--source and --target go together: pass both files")
    if args.source is not None:
        pairs = load_embedding_pairs(args.source, target_path=args.target, mmap_mode="r")
        return pairs, f"{args.source} -> {args.target}"
    pairs = make_modality_gap(args.n_pairs, args.n_features, random_state=args.random_state)
    return pairs, "the built-in generator"


def _compare(args):
    from .report import gap_report

    aligners = _select_aligners(args.aligners, args.random_state)
    (target, source), origin = _load(args)
    if not args.quiet:
        print(
            f"modgap: {target.shape[0]} pairs x {target.shape[1]} features from {origin}; "
            f"{len(aligners)} aligners",
            file=sys.stderr,
        )
    # One failing aligner must not stop the comparison: its row shows NaN and
    # its error is reported on one line.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitFailedWarning)
        report = gap_report(
            aligners,
            source,
            target,
            test_size=args.test_size,
            metrics=args.metrics,
            k=args.k,
            max_knn_pairs=args.max_knn_pairs or None,
            knn=args.knn,
            output_dir=args.output,
            progress=not args.quiet,
            error_score=np.nan,
            random_state=args.random_state,
        )
    for warning in caught:
        message = " ".join(str(warning.message).split())
        print(f"modgap: warning: {message}", file=sys.stderr)
    _print_table(report)


def _diagnose(args):
    from .report import diagnose

    (target, source), _ = _load(args)
    table = diagnose(target, source, q=args.q)
    _print_table(table.to_frame("value"))
    if args.output is not None:
        from .plotting import save_diagnostic_figures

        args.output.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.output / "diagnostics.csv", header=["value"])
        for path in save_diagnostic_figures(target, source, args.output, q=args.q):
            if not args.quiet:
                print(f"modgap: wrote {path}", file=sys.stderr)


def _print_table(frame):
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(frame.to_string(float_format=lambda value: f"{value:.4f}"))


def main(argv=None):
    """Run the ``modgap`` command line; return the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (``sys.argv[1:]`` when ``None``).

    Returns
    -------
    status : int
        0 on success, 1 when the input could not be used (a one-line message
        on standard error), 130 when interrupted.
    """
    args = _build_parser().parse_args(argv)
    try:
        run = getattr(args, "run_command", None) or {"compare": _compare, "diagnose": _diagnose}[args.command]
        run(args)
    except (OSError, ValueError, TypeError, MemoryError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"modgap: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("modgap: interrupted", file=sys.stderr)
        return 130
    return 0
