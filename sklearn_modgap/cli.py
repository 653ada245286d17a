"""The ``modgap`` command line: compare aligners, diagnose a gap.

``modgap compare`` fits every aligner of the package on one split of the
pairs without using the pairing and prints how each one does on the held-out
pairs (:func:`sklearn_modgap.report.gap_report`).  ``modgap diagnose`` prints
the geometry of the gap (:func:`sklearn_modgap.report.diagnose`) and writes
its figures.  Without input files both use the built-in generator
(:func:`sklearn_modgap.datasets.make_modality_gap`).
"""

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import FitFailedWarning

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
    from sklearn.utils import get_tags

    import sklearn_modgap
    from sklearn_modgap._base import BaseAligner

    aligners = {IDENTITY: sklearn_modgap.CentroidShift(alpha=0.0)}
    for name in sklearn_modgap.__all__:
        candidate = getattr(sklearn_modgap, name)
        if isinstance(candidate, type) and issubclass(candidate, BaseAligner):
            aligner = candidate()
            # Aligners that learn from the pairing cannot enter an unpaired comparison.
            if get_tags(aligner).needs_pairs:
                continue
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
    from .metrics._table import KNN_METHODS
    from .report import DEFAULT_GAP_REPORT_METRICS, GAP_REPORT_COLUMNS

    from . import __version__

    parser = argparse.ArgumentParser(
        prog="modgap",
        description="Measure and close the modality gap of paired embeddings.",
        epilog="examples:\n"
        "  modgap compare --pairs features.npy --aligners identity ReAlign\n"
        "  modgap diagnose --source text.npy --target images.npy --output figures/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"modgap {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

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
            "with arrays 'target' and 'source' (see --target-key/--source-key)",
        )
        data.add_argument(
            "--target-key", default="target",
            help="array of a --pairs .npz holding the target rows (default 'target')",
        )
        data.add_argument(
            "--source-key", default="source",
            help="array of a --pairs .npz holding the source rows (default 'source')",
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
        command.add_argument(
            "--format", choices=["table", "csv", "markdown", "json"], default="table",
            help="how the result is printed (default table; with csv and json the legend "
            "goes to standard error, so standard output stays machine-readable)",
        )

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
        "--knn", choices=list(KNN_METHODS), default="exact",
        help="k-NN back-end of the neighbourhood measures (default exact; approximate "
        "makes --max-knn-pairs 0 affordable on large sets)",
    )
    compare.add_argument(
        "--set", action="append", default=[], metavar="NAME.PARAM=VALUE", dest="settings",
        help="set a parameter of one aligner, e.g. --set SSP.eps=1e-3 (repeatable; "
        "VALUE is read as a Python literal, else kept as text)",
    )

    diagnose = commands.add_parser(
        "diagnose",
        help="print the geometry of the gap and write its figures",
        description="Print the diagnostics of the modality gap; --output DIR writes "
        "diagnostics.csv and the figures as PNG files.",
    )
    add_data_options(diagnose)
    diagnose.add_argument(
        "--q", type=_subspace_size, default="auto",
        help="subspace dimension of O_q (default auto: min(128, d, n - 1))",
    )
    from ._cli_corpus import add_corpus_commands

    add_corpus_commands(commands)
    return parser


def _subspace_size(text):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}")
    return value


def _apply_settings(aligners, settings):
    """Apply ``NAME.PARAM=VALUE`` settings to the selected aligners, refusing unknown names."""
    import ast

    by_lower = {name.lower(): name for name in aligners}
    for setting in settings:
        target, equals, text = setting.partition("=")
        name, dot, parameter = target.partition(".")
        if not equals or not dot or not name or not parameter:
            raise ValueError(f"--set {setting!r}: expected NAME.PARAM=VALUE, e.g. SSP.eps=1e-3")
        if name.lower() not in by_lower:
            raise ValueError(
                f"--set {setting!r}: {name} is not among the compared aligners "
                f"({', '.join(aligners)})"
            )
        aligner = aligners[by_lower[name.lower()]]
        if parameter not in aligner.get_params():
            raise ValueError(
                f"--set {setting!r}: {type(aligner).__name__} has no parameter {parameter}; "
                f"its parameters are {', '.join(sorted(aligner.get_params(deep=False)))}"
            )
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        aligner.set_params(**{parameter: value})


def _check_output(path):
    """Refuse an output folder that cannot be written, before any work is done."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise ValueError(f"--output {path} exists and is not a folder; name a folder")
    path.mkdir(parents=True, exist_ok=True)


def _load(args):
    from .datasets import load_embedding_pairs, make_modality_gap

    if args.pairs is not None:
        if args.source is not None or args.target is not None:
            raise ValueError("pass either --pairs or --source and --target, not both")
        pairs = load_embedding_pairs(
            args.pairs, target_key=args.target_key, source_key=args.source_key, mmap_mode="r"
        )
        return pairs, f"{args.pairs}"
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
    _apply_settings(aligners, args.settings)
    _check_output(args.output)
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
    _print_table(report, args.format, _compare_legend(report.columns))


_GLOSSARY = "docs/metrics.rst in the source tree (every symbol with its definition)"

def _compare_legend(columns):
    """One line per metric column of the table, from the package's metric table."""
    from .report import GAP_REPORT_COLUMNS

    metrics = [GAP_REPORT_COLUMNS[column] for column in columns if column in GAP_REPORT_COLUMNS]
    width = max([len(metric.symbol) for metric in metrics] + [8]) + 2
    lines = [f"{metric.symbol:<{width}}{metric.legend}" for metric in metrics]
    return "\n" + "\n".join([*lines, f"Glossary: {_GLOSSARY}"])


_DIAGNOSE_LEGEND = f"""
C_lambda  correlation of the log covariance spectra (1 = same shape)
O_q       overlap of the top-q subspaces; q_over_d is its random baseline
G_mu      centroid gap ||mu_x - mu_y|| (0 = no gap); G_Sigma covariance discrepancy
D, D_tilde  mean paired distance, raw and mean-corrected; residual_ratio = D_tilde / D
A_r       residual anisotropy (1 = isotropic); d_eff participation ratio of the residual
cos_tp    mean true-pair cosine; gap_angle angle between the centroids (degrees)
Glossary: {_GLOSSARY}"""


def _diagnose(args):
    from ._cli_corpus import Progress
    from .report import _diagnose_steps

    _check_output(args.output)
    (target, source), _ = _load(args)
    steps = _diagnose_steps(target, source, args.q)
    # One more step for the figures, the slowest part when they are asked for.
    progress = Progress(
        "diagnose", len(steps) + (args.output is not None), enabled=not args.quiet, unit="steps"
    )
    values = {}
    for step in steps:
        values.update(step())
        progress.update()
    table = pd.Series(values, name="diagnostics", dtype=float)
    paths = []
    if args.output is not None:
        from .plotting import save_diagnostic_figures

        q = int(round(table["q_over_d"] * target.shape[1]))
        table.to_csv(args.output / "diagnostics.csv", header=["value"])
        paths = save_diagnostic_figures(target, source, args.output, q=q)
        progress.update()
    progress.close()
    _print_table(table.to_frame("value"), args.format, _DIAGNOSE_LEGEND)
    for path in paths:
        if not args.quiet:
            print(f"modgap: wrote {path}", file=sys.stderr)


def _print_table(frame, fmt="table", legend=""):
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(float_format="%.6g"))
    elif fmt == "json":
        print(frame.to_json(orient="index", double_precision=6))
    elif fmt == "markdown":
        header = [frame.index.name or "", *map(str, frame.columns)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, row in frame.iterrows():
            cells = [f"{value:.4f}" if isinstance(value, float) else str(value) for value in row]
            lines.append("| " + " | ".join([str(name), *cells]) + " |")
        print("\n".join(lines))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", None):
            print(frame.to_string(float_format=lambda value: f"{value:.4f}"))
    if legend:
        print(legend, file=sys.stderr if fmt in ("csv", "json") else sys.stdout)


def console_main():
    """Entry point of the ``modgap`` script and of ``python -m sklearn_modgap``.

    Runs :func:`main` and ends the process with its status without tearing
    the interpreter down: every command has closed (and, for output shards,
    synced) what it wrote by the time :func:`main` returns, and freeing the
    modules scikit-learn, scipy and pandas load takes about 0.3 s, a sixth
    of a whole ``modgap align`` of 200,000 rows.
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


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
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
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
