"""``modgap fit | transform | align``: the job on unpaired corpora of shards.

``fit`` learns an aligner from a source corpus and a target corpus (any
sizes, no pairing) and saves it as a ``.skops`` file; ``transform`` turns the
rows of a source corpus into substitutes, one output shard per input shard
with the same relative path, format and row order; ``align`` does both.
Output shards are written to a temporary file and renamed when complete, and
a run record (``.modgap-run.json`` in the output folder) lists the finished
shards, so ``--resume`` after an interruption redoes only unfinished shards.
"""

import ast
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import io as shard_io
from .persistence import SKOPS_SUFFIX, load, save

RUN_RECORD = ".modgap-run.json"
_DTYPES = ("float32", "float64")
# Bad rows listed in an error message before "... and N more".
_MAX_LISTED = 5


class BadRowsError(ValueError):
    """Rows an aligner cannot take, with the file and row number of each."""

    def __init__(self, path, bad, total=None):
        total = len(bad) if total is None else total
        listed = "; ".join(f"row {row} {reason}" for row, reason in bad[:_MAX_LISTED])
        more = f" and {total - _MAX_LISTED} more" if total > _MAX_LISTED else ""
        super().__init__(
            f"bad rows in {path}: {listed}{more}. Fix the input or pass --skip-bad-rows to "
            "leave such rows out."
        )


class Progress:
    """Work done (rows, or the steps named by ``unit``), throughput and time left, on standard error.

    On a terminal the line is redrawn at most five times a second; otherwise
    (a log file, a pipe) one line is written at most every ``log_interval``
    seconds, so logs stay short.
    """

    def __init__(self, label, total, *, enabled=True, stream=None, log_interval=30.0, unit="rows"):
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.2 if self.tty else log_interval
        self.done = 0
        self.carried = 0
        self.started = time.perf_counter()
        self.shown = self.started

    def skip(self, n_rows):
        """Count rows finished by an earlier run (not in the throughput)."""
        self.done += n_rows
        self.carried += n_rows

    def update(self, n_rows=1):
        """Count ``n_rows`` more rows (or steps) done."""
        self.done += n_rows
        now = time.perf_counter()
        if self.enabled and now - self.shown >= self.interval:
            self.shown = now
            self._show(now, end="" if self.tty else "\n")

    def _line(self, now):
        elapsed = max(now - self.started, 1e-9)
        rate = (self.done - self.carried) / elapsed
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = f", {left:.0f} s left" if np.isfinite(left) and self.done < self.total else ""
        # Slow steps (a few per second or fewer) need a decimal to read as more than 0.
        digits = 1 if rate < 10 else 0
        return (
            f"modgap {self.label}: {self.done:,}/{self.total:,} {self.unit}{share}, "
            f"{rate:,.{digits}f} {self.unit}/s{eta}"
        )

    def _show(self, now, end):
        prefix = "\r" if self.tty else ""
        print(prefix + self._line(now), end=end, file=self.stream, flush=True)

    def close(self):
        """Write the final line."""
        if self.enabled:
            self._show(time.perf_counter(), end="\n")


# ---------------------------------------------------------------- parsing
def parse_settings(settings):
    """``["alpha=0.5", "rank=auto"]`` -> ``{"alpha": 0.5, "rank": "auto"}``.

    Values are Python literals (numbers, ``True``, ``None``, tuples); anything
    else is a string.
    """
    parsed = {}
    for setting in settings or ():
        name, sep, value = setting.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set takes NAME=VALUE, got {setting!r}.")
        try:
            parsed[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            parsed[name.strip()] = value.strip()
    return parsed


def build_aligner(name, settings, random_state):
    """The aligner called ``name`` with its parameters set from ``--set``."""
    from .cli import available_aligners

    aligners = {key: value for key, value in available_aligners(random_state).items() if key != "identity"}
    by_lower = {key.lower(): key for key in aligners}
    if name.lower() not in by_lower:
        raise ValueError(f"unknown aligner {name}; choose from {', '.join(aligners)}.")
    aligner = aligners[by_lower[name.lower()]]
    params = parse_settings(settings)
    valid = aligner.get_params(deep=False)
    unknown = [key for key in params if key not in valid]
    if unknown:
        raise ValueError(
            f"{type(aligner).__name__} has no parameter {', '.join(unknown)}; "
            f"its parameters are {', '.join(sorted(valid))}."
        )
    return aligner.set_params(**params)


def _model_path(path):
    path = Path(path)
    if path.suffix == "":
        return path.with_suffix(SKOPS_SUFFIX)
    if path.suffix != SKOPS_SUFFIX:
        raise ValueError(f"the model file must end in {SKOPS_SUFFIX}, got {path}.")
    return path


def _dtype(args):
    return np.dtype(args.dtype)


# -------------------------------------------------------------------- fit
def fit_corpus(aligner, source, target, *, dtype=np.float32, skip_bad_rows=False, quiet=True):
    """Fit ``aligner`` on the rows of two lists of shards.

    One memory-mappable .npy shard a side (stored in ``dtype``) is passed to
    ``fit`` as a memory map, which the aligners read in blocks; otherwise the
    rows are read block by block, checked, and fed to ``partial_fit`` when
    the aligner has one, or gathered into one array.

    Returns
    -------
    n_skipped : int
        Bad rows left out (0 unless ``skip_bad_rows``).
    """
    dtype = np.dtype(dtype)
    n_features = _corpus_width(source, "source")
    target_width = _corpus_width(target, "target")
    if target_width != n_features:
        raise ValueError(
            f"the target shards have {target_width} features but the source shards have {n_features}: "
            "both modalities must live in the same embedding space."
        )
    for side, shards in (("source", source), ("target", target)):
        n_rows = sum(shard.n_rows for shard in shards)
        if n_rows < 2:
            names = ", ".join(str(shard.path) for shard in shards[:3]) + (" ..." if len(shards) > 3 else "")
            raise ValueError(f"the {side} ({names}) has {n_rows} row(s); each modality needs at least 2.")
    normalize = aligner.get_params().get("normalize", True)
    direct = not skip_bad_rows and all(
        len(shards) == 1 and shards[0].suffix in shard_io.NPY_SUFFIXES and shards[0].dtype == dtype
        for shards in (source, target)
    )
    if direct:
        source_rows, target_rows = source[0].read(dtype), target[0].read(dtype)
        try:
            aligner.fit(source_rows, y=target_rows)
        except ValueError:
            # The aligner's own check names no file or row: find them.
            for shard in (*source, *target):
                _check_shard(shard, n_features, dtype, normalize)
            raise
        return 0
    if hasattr(aligner, "partial_fit"):
        return _stream_fit(aligner, source, target, n_features, dtype, normalize, skip_bad_rows, quiet)
    source_rows, skipped_source = _gather(source, n_features, dtype, normalize, skip_bad_rows)
    target_rows, skipped_target = _gather(target, n_features, dtype, normalize, skip_bad_rows)
    aligner.fit(source_rows, y=target_rows)
    return skipped_source + skipped_target


def _corpus_width(shards, side):
    widths = {shard.n_features for shard in shards}
    if len(widths) > 1:
        by_width = {w: next(str(s.path) for s in shards if s.n_features == w) for w in sorted(widths)}
        raise ValueError(
            f"the {side} shards differ in width: "
            + ", ".join(f"{w} features in {path}" for w, path in by_width.items())
        )
    return widths.pop()


def _good_rows(shard, start, rows, lengths, n_features, normalize, skip_bad_rows):
    """``rows`` without its bad rows (or an error naming them); the number left out."""
    bad = shard_io.bad_rows(rows, lengths, n_features=n_features, normalize=normalize)
    if not bad:
        return rows, 0
    if not skip_bad_rows:
        raise BadRowsError(shard.path, [(start + i, reason) for i, reason in bad])
    keep = np.ones(len(rows), bool)
    keep[[i for i, _ in bad]] = False
    return rows[keep], len(bad)


def _check_shard(shard, n_features, dtype, normalize):
    for start, rows, lengths in shard.blocks(1 << 16, dtype):
        _good_rows(shard, start, rows, lengths, n_features, normalize, False)


def _gather(shards, n_features, dtype, normalize, skip_bad_rows):
    rows_out = np.empty((sum(shard.n_rows for shard in shards), n_features), dtype=dtype)
    filled = skipped = 0
    for shard in shards:
        for start, rows, lengths in shard.blocks(1 << 16, dtype):
            good, n_bad = _good_rows(shard, start, rows, lengths, n_features, normalize, skip_bad_rows)
            rows_out[filled : filled + len(good)] = good
            filled += len(good)
            skipped += n_bad
    return rows_out[:filled], skipped


def _stream_fit(aligner, source, target, n_features, dtype, normalize, skip_bad_rows, quiet):
    empty = np.empty((0, n_features), dtype=dtype)
    total = sum(shard.n_rows for shard in (*source, *target))
    progress = Progress("fit", total, enabled=not quiet)
    skipped = 0
    for shards, is_source in ((source, True), (target, False)):
        for shard in shards:
            for start, rows, lengths in shard.blocks(1 << 16, dtype):
                good, n_bad = _good_rows(shard, start, rows, lengths, n_features, normalize, skip_bad_rows)
                skipped += n_bad
                if len(good):
                    if is_source:
                        aligner.partial_fit(good, y=empty)
                    else:
                        aligner.partial_fit(empty, y=good)
                progress.update(len(rows))
    progress.close()
    return skipped


# -------------------------------------------------------------- transform
class RunRecord:
    """The finished shards of a ``transform`` run, kept in ``.modgap-run.json``."""

    def __init__(self, folder, model_digest, dtype):
        self.path = Path(folder) / RUN_RECORD
        self.model_digest = model_digest
        self.dtype = str(dtype)
        self.shards = {}


    def load_for_resume(self):
        if not self.path.exists():
            return
        record = json.loads(self.path.read_text())
        if record.get("model_sha256") != self.model_digest or record.get("dtype") != self.dtype:
            raise ValueError(
                f"{self.path.parent} was written by another model or --dtype than this run's; "
                "resume with the same model and --dtype, or pass --overwrite."
            )
        self.shards = record.get("shards", {})

    def finished(self, relative, output):
        entry = self.shards.get(relative)
        return entry is not None and output.exists() and shard_io.output_row_count(output) == entry["rows"]

    def add(self, relative, rows, skipped):
        self.shards[relative] = {"rows": rows, "skipped_rows": skipped}
        record = {"model_sha256": self.model_digest, "dtype": self.dtype, "shards": self.shards}
        temporary = self.path.with_name(f"{shard_io.TEMPORARY_PREFIX}{os.getpid()}-{RUN_RECORD}")
        temporary.write_text(json.dumps(record, indent=1))
        os.replace(temporary, self.path)


def _digest(path):
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def transform_corpus(
    aligner, shards, output, *, model_digest, dtype=np.float32, resume=False, overwrite=False,
    skip_bad_rows=False, block_rows=None, quiet=True,
):
    """Write the substitutes of every shard's rows under ``output``, mirroring the shards.

    ``model_digest`` (the SHA-256 of the model file) goes into the run
    record, so that ``resume`` refuses to mix the outputs of two models.

    Returns
    -------
    summary : dict
        ``rows`` written, ``shards`` written, ``resumed`` shards already
        complete, ``skipped`` bad rows.
    """
    output = Path(output)
    dtype = np.dtype(dtype)
    n_features = aligner.n_features_in_
    normalize = aligner.get_params().get("normalize", True)
    for shard in shards:
        if shard.n_features != n_features:
            raise ValueError(
                f"{shard.path} has {shard.n_features} features but the model was fitted on {n_features}."
            )
    record = RunRecord(output, model_digest, dtype)
    targets = [output / shard.relative for shard in shards]
    if resume:
        record.load_for_resume()
        for leftover in output.rglob(f"{shard_io.TEMPORARY_PREFIX}*") if output.exists() else ():
            leftover.unlink()
    elif not overwrite:
        refuse_existing_output(output, shards)
    output.mkdir(parents=True, exist_ok=True)
    progress = Progress("transform", sum(shard.n_rows for shard in shards), enabled=not quiet)
    step = shard_io.transform_block_rows(aligner, n_features, dtype.itemsize, block_rows)
    summary = {"rows": 0, "shards": 0, "resumed": 0, "skipped": 0}
    for shard, target in zip(shards, targets):
        relative = shard.relative.as_posix()
        if resume and record.finished(relative, target):
            progress.skip(shard.n_rows)
            summary["resumed"] += 1
            continue
        skipped = []
        with shard_io.ShardWriter(
            target, shard.n_rows, n_features, dtype, key=shard.key, column=shard.column
        ) as writer:
            for start, rows, lengths in shard.blocks(min(step, max(shard.n_rows, 1)), dtype):
                substitutes, bad = _transform_block(aligner, rows, lengths, n_features, normalize)
                if bad:
                    if not skip_bad_rows:
                        raise BadRowsError(shard.path, [(start + i, reason) for i, reason in bad])
                    skipped += [start + i for i, _ in bad]
                writer.write(substitutes)
                progress.update(len(rows))
            writer.commit()
        record.add(relative, writer.rows_written, skipped)
        summary["rows"] += writer.rows_written
        summary["shards"] += 1
        summary["skipped"] += len(skipped)
    progress.close()
    return summary


def refuse_existing_output(output, shards, also=()):
    """Raise ``FileExistsError`` if ``output`` already holds a shard of ``shards``, the run record or ``also``."""
    output = Path(output)
    candidates = (*(output / shard.relative for shard in shards), output / RUN_RECORD, *also)
    existing = [path for path in candidates if Path(path).exists()]
    if existing:
        raise FileExistsError(
            f"{output} already holds output ({existing[0]}): pass --resume to finish an "
            "interrupted run or --overwrite to replace it."
        )


def _transform_block(aligner, rows, lengths, n_features, normalize):
    """Substitutes of a block's good rows and the list of its bad rows.

    The aligner checks every row itself; only when it refuses the block are
    the rows searched for the ones to report, so good blocks are read once.
    """
    if lengths is None or (lengths == n_features).all():
        try:
            return aligner.transform(rows), []
        except ValueError:
            bad = shard_io.bad_rows(rows, n_features=n_features, normalize=normalize)
            if not bad:
                raise
    else:
        bad = shard_io.bad_rows(rows, lengths, n_features=n_features, normalize=normalize)
    keep = np.ones(len(rows), bool)
    keep[[i for i, _ in bad]] = False
    good = rows[keep]
    substitutes = aligner.transform(good) if len(good) else np.empty((0, n_features), rows.dtype)
    return substitutes, bad


# ---------------------------------------------------------------- commands
def _fit_command(args):
    aligner, skipped = _fit(args)
    model = _save_model(aligner, _model_path(args.model))
    if not args.quiet:
        print(f"modgap: wrote {model}", file=sys.stderr)
    print(f"fitted {type(aligner).__name__}; model saved to {model}; {skipped} bad rows skipped")


def _fit(args):
    aligner = build_aligner(args.aligner, args.set, args.random_state)
    source = shard_io.find_shards(args.source, key=args.key, column=args.column)
    target = shard_io.find_shards(args.target, key=args.key, column=args.column)
    if not args.quiet:
        print(
            f"modgap fit: {type(aligner).__name__} on {sum(s.n_rows for s in source):,} source rows "
            f"({_count(len(source), 'shard')}) and {sum(s.n_rows for s in target):,} target rows "
            f"({_count(len(target), 'shard')})",
            file=sys.stderr,
        )
    skipped = fit_corpus(
        aligner, source, target, dtype=_dtype(args), skip_bad_rows=args.skip_bad_rows, quiet=args.quiet
    )
    return aligner, skipped


def _count(n, noun):
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _save_model(aligner, model):
    """Save atomically (temporary file, then rename); return the path."""
    model.parent.mkdir(parents=True, exist_ok=True)
    temporary = model.with_name(f"{shard_io.TEMPORARY_PREFIX}{os.getpid()}-{model.name}")
    try:
        save(aligner, temporary)
        os.replace(temporary, model)
    finally:
        temporary.unlink(missing_ok=True)
    return model


def _transform_command(args):
    model = Path(args.model)
    _run_transform(args, load(model), _digest(model))


def _check_output_outside(corpus, output):
    folder, output_folder = Path(corpus).resolve(), Path(output).resolve()
    if folder.is_dir() and (output_folder == folder or folder in output_folder.parents):
        raise ValueError(
            f"the output folder {output} is inside the input folder {corpus}: "
            "its shards would be read as input by the next run."
        )


def _run_transform(args, aligner, model_digest):
    _check_output_outside(args.input, args.output)
    shards = shard_io.find_shards(args.input, key=args.key, column=args.column)
    summary = transform_corpus(
        aligner, shards, args.output, model_digest=model_digest, dtype=_dtype(args),
        resume=args.resume, overwrite=args.overwrite, skip_bad_rows=args.skip_bad_rows,
        block_rows=args.block_rows, quiet=args.quiet,
    )
    print(
        f"wrote {summary['rows']:,} rows in {summary['shards']} shards to {args.output} "
        f"({summary['resumed']} shards already complete, {summary['skipped']} bad rows skipped)"
    )


def _align_command(args):
    model = _model_path(args.model) if args.model else Path(args.output) / f"model{SKOPS_SUFFIX}"
    args.input = args.source
    _check_output_outside(args.input, args.output)
    if args.resume and model.exists():
        if not args.quiet:
            print(f"modgap align: resuming with the model in {model}", file=sys.stderr)
        _run_transform(args, load(model), _digest(model))
        return
    if not (args.resume or args.overwrite):
        # Before the fit, which may take long and would replace the model.
        inside = Path(args.output).resolve() in model.resolve().parents
        refuse_existing_output(
            args.output, shard_io.find_shards(args.source, key=args.key, column=args.column),
            also=(model,) if inside else (),
        )
    aligner, _ = _fit(args)
    _run_transform(args, aligner, _digest(_save_model(aligner, model)))


def add_corpus_commands(commands):
    """Register ``fit``, ``transform`` and ``align`` on an argparse sub-parser set.

    Each command's parsed arguments carry the function that runs it as
    ``run_command``.
    """
    def add_reading(command):
        reading = command.add_argument_group("reading shards")
        reading.add_argument("--key", help="array name inside .npz shards (needed when they hold several)")
        reading.add_argument(
            "--column", help="list or fixed-size-list column of Parquet/Arrow shards (needed when there are several)"
        )
        reading.add_argument(
            "--dtype", choices=_DTYPES, default="float32",
            help="dtype rows are computed and written in (default float32)",
        )
        reading.add_argument(
            "--skip-bad-rows", action="store_true",
            help="leave out rows with NaN/inf, zero norm or the wrong width (counted and listed) "
            "instead of stopping",
        )
        command.add_argument("--quiet", action="store_true", help="no progress display")

    def add_fitting(command):
        command.add_argument("--source", required=True, help="source corpus (texts): a file, folder or glob of shards")
        command.add_argument("--target", required=True, help="target corpus (images): a file, folder or glob of shards")
        command.add_argument("--aligner", default="ReAlign", help="aligner to fit (default ReAlign)")
        command.add_argument(
            "--set", action="append", metavar="NAME=VALUE", default=[],
            help="set an aligner parameter, e.g. --set alpha=0.5 --set rank=32 (repeatable)",
        )
        command.add_argument("--random-state", type=int, default=0, help="seed of aligners that take one (default 0)")

    def add_writing(command):
        command.add_argument("--output", required=True, metavar="DIR", help="folder for the output shards")
        command.add_argument("--resume", action="store_true", help="keep complete shards of an interrupted run")
        command.add_argument("--overwrite", action="store_true", help="replace output shards that exist")
        command.add_argument(
            "--block-rows", type=int, default=None, help="rows per transform call (default about 32 MiB)"
        )

    fit = commands.add_parser(
        "fit", help="fit an aligner on unpaired source and target corpora, save it as .skops",
        description="Fit an aligner on a source corpus and a target corpus (any sizes, no pairing) "
        "and save it as a .skops file.",
    )
    add_fitting(fit)
    fit.add_argument("-o", "--model", required=True, metavar="MODEL", help="the .skops file to write")
    add_reading(fit)

    transform = commands.add_parser(
        "transform", help="write substitutes of a source corpus with a saved model",
        description="Turn every row of a source corpus into a substitute with a saved .skops model. "
        "Output shards mirror the input shards (relative path, format, row order) and appear only "
        "when complete; --resume finishes an interrupted run.",
    )
    transform.add_argument("model", help="a .skops file written by modgap fit")
    transform.add_argument("--input", required=True, help="source corpus: a file, folder or glob of shards")
    add_writing(transform)
    add_reading(transform)

    align = commands.add_parser(
        "align", help="fit on unpaired corpora and write substitutes of every source row",
        description="modgap fit followed by modgap transform of the source corpus.",
    )
    add_fitting(align)
    add_writing(align)
    align.add_argument("--model", help="where to save the model (default DIR/model.skops)")
    add_reading(align)
    fit.set_defaults(run_command=_fit_command)
    transform.set_defaults(run_command=_transform_command)
    align.set_defaults(run_command=_align_command)
