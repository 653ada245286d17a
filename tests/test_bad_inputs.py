"""The bad-input matrix: every kind of bad input against every entry point.

Each input (a zero row, NaN, infinity, rows of norm around 1e200 or 1e-300,
numbers as text, a string column, one row, 1-D, 3-D, mismatched widths, no
rows) meets each aligner's ``fit`` and ``transform``, :func:`gap_report` and
the ``compare``, ``diagnose`` and ``fit`` commands on files.  The outcome is
either an error whose message names the problem or a finite result equal to
that of the clean input (row scale does not matter with ``normalize=True``);
the command line never lets an exception escape.
"""

import contextlib
import io
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from sklearn_modgap import (
    C3,
    SSP,
    AnisoAlign,
    CentroidShift,
    ContrastiveAdapter,
    MomentMatch,
    RandomTargetReplacement,
    ReAlign,
)
from sklearn_modgap.cli import main
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.nets import AdapterNet
from sklearn_modgap.persistence import load
from sklearn_modgap.report import gap_report

N_ROWS, N_FEATURES, BAD_ROW = 60, 8, 7
FINITE = "finite"  # the outcome: a finite result equal to the clean input's


def _clean():
    target, source = make_modality_gap(N_ROWS, N_FEATURES, random_state=0)
    return target.astype(np.float64), source.astype(np.float64)


def _with(value):
    def build(source):
        bad = source.copy()
        bad[BAD_ROW] = 0.0 if value == 0 else bad[BAD_ROW]
        if value != 0:
            bad[BAD_ROW, 2] = value
        return bad

    return build


def _frame_with_text(source):
    frame = pd.DataFrame(source, columns=[f"f{i}" for i in range(source.shape[1])])
    frame["f3"] = "a"
    return frame


INPUTS = {
    "all-zero row": _with(0),
    "NaN": _with(np.nan),
    "inf": _with(np.inf),
    "huge rows (1e200)": lambda source: source * 1e200,
    "tiny rows (1e-300)": lambda source: source * 1e-300,
    "object array of numeric strings": lambda source: source.astype(str).astype(object),
    "DataFrame with a string column": _frame_with_text,
    "1 row": lambda source: source[:1],
    "1-D": lambda source: source[0],
    "3-D": lambda source: source.reshape(N_ROWS, 2, N_FEATURES // 2),
    "mismatched widths": lambda source: source[:, :6],
    "empty": lambda source: source[:0],
}

# What fit(bad X, clean y) and transform(bad X) of a fitted aligner must do.
ALIGNER_OUTCOMES = {
    "all-zero row": ("zero norm", "zero norm"),
    "NaN": ("NaN", "NaN"),
    "inf": ("infinity", "infinity"),
    "huge rows (1e200)": (FINITE, FINITE),
    "tiny rows (1e-300)": (FINITE, FINITE),
    "object array of numeric strings": ("has dtype object", "has dtype object"),
    "DataFrame with a string column": (r"non-numeric column\(s\) f3", r"non-numeric column\(s\) f3"),
    "1 row": (r"1 sample\(s\) .* minimum of 2", FINITE),
    "1-D": ("Expected 2D array, got 1D array", "Expected 2D array, got 1D array"),
    "3-D": ("dim 3", "dim 3"),
    "mismatched widths": ("has 8 features but the source has 6", "X has 6 features, but .* expecting 8"),
    "empty": (r"0 sample\(s\)", r"0 sample\(s\)"),
}

GAP_REPORT_OUTCOMES = {
    # Row 7 of the input, not its index in the held-out split.
    "all-zero row": r"source has 1 row\(s\) of zero norm \(first at index 7\)",
    "NaN": r"source contains NaN or infinity \(NaN\): 1 row\(s\), the first at index 7",
    "inf": r"source contains NaN or infinity \(infinity\): 1 row\(s\), the first at index 7",
    "huge rows (1e200)": FINITE,
    "tiny rows (1e-300)": FINITE,
    "object array of numeric strings": "source has dtype object",
    "DataFrame with a string column": r"source has non-numeric column\(s\) f3",
    "1 row": r"1 sample\(s\) .* minimum of 2",
    "1-D": "Expected 2D array, got 1D array",
    "3-D": "dim 3",
    "mismatched widths": "target has 8 features but the source has 6",
    "empty": r"0 sample\(s\)",
}

# (compare and diagnose, fit) on a source file holding the input; the target file is clean.
CLI_OUTCOMES = {
    "all-zero row": (r"zero norm \(first at row 7 of the file\)", "row 7 has zero norm"),
    "NaN": (r"NaN or infinity \(first at row 7 of the file\)", "row 7 contains NaN or infinity"),
    "inf": (r"NaN or infinity \(first at row 7 of the file\)", "row 7 contains NaN or infinity"),
    "huge rows (1e200)": (FINITE, "outside the range of float32 .* pass --dtype float64"),
    "tiny rows (1e-300)": (FINITE, "outside the range of float32 .* pass --dtype float64"),
    "object array of numeric strings": ("Python objects .* never unpickled", "Python objects .* never unpickled"),
    "DataFrame with a string column": ("not a .npy or .npz file", r"no list column \(f0, f1"),
    "1 row": (r"has 1 row\(s\); at least 2 are needed", r"the source \(.*source.npy\) has 1 row\(s\); each modality needs at least 2"),
    "1-D": (r"shape \(8,\); expected a 2-D", "1-D float64 array"),
    "3-D": (r"shape \(60, 2, 4\); expected a 2-D", "3-D float64 array"),
    "mismatched widths": ("target file has 8 features but the source file has 6",
                          "target shards have 8 features but the source shards have 6"),
    "empty": (r"has 0 row\(s\); at least 2 are needed", r"the source \(.*\) has 0 row\(s\); each modality needs at least 2"),
}

ALIGNERS = {
    "CentroidShift": CentroidShift(),
    "C3": C3(random_state=0),
    "ReAlign": ReAlign(),
    "MomentMatch": MomentMatch(),
    "RandomTargetReplacement": RandomTargetReplacement(random_state=0),
    "SSP": SSP(),
    "AnisoAlign": AnisoAlign(random_state=0),
    "ContrastiveAdapter": ContrastiveAdapter(net=AdapterNet(max_epochs=2), random_state=0),
}


@pytest.fixture(scope="module")
def fitted():
    target, source = _clean()
    return {name: clone(aligner).fit(source, target) for name, aligner in ALIGNERS.items()}


def _check_outcome(expected, run, reference):
    if expected != FINITE:
        with pytest.raises((ValueError, TypeError), match=expected):
            run()
        return
    result = np.asarray(run(), dtype=np.float64)
    assert np.isfinite(result).all()
    # float32 nets (the adapter) round at 1e-7.
    np.testing.assert_allclose(result, reference, atol=1e-6)


@pytest.mark.parametrize("aligner_name", list(ALIGNERS))
@pytest.mark.parametrize("input_name", list(INPUTS))
def test_aligner_fit_and_transform(input_name, aligner_name, fitted):
    target, source = _clean()
    bad = INPUTS[input_name](source)
    fit_outcome, transform_outcome = ALIGNER_OUTCOMES[input_name]
    reference = fitted[aligner_name].transform(source)

    def fit():
        return clone(ALIGNERS[aligner_name]).fit(bad, target).transform(source)

    _check_outcome(fit_outcome, fit, reference)
    _check_outcome(
        transform_outcome, lambda: fitted[aligner_name].transform(bad), reference[: len(bad)]
    )


@pytest.mark.parametrize("input_name", list(INPUTS))
def test_gap_report(input_name):
    target, source = _clean()
    metrics = ["Delta_mu", "cos_tp", "M_k^Z"]

    def report(rows):
        table = gap_report({"ReAlign": ReAlign()}, rows, target, metrics=metrics, k=5)
        return table[metrics].to_numpy(np.float64)

    _check_outcome(GAP_REPORT_OUTCOMES[input_name], lambda: report(INPUTS[input_name](source)), report(source))


def _save(path, rows):
    if isinstance(rows, pd.DataFrame):
        path = path.with_suffix(".parquet")
        rows.to_parquet(path)
    else:
        np.save(path, rows, allow_pickle=True)
    return path


def _cli(*arguments):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(argument) for argument in arguments])
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("input_name", list(INPUTS))
def test_command_line(input_name, tmp_path):
    target, source = _clean()
    np.save(tmp_path / "target.npy", target)
    np.save(tmp_path / "clean.npy", source)
    bad = _save(tmp_path / "source.npy", INPUTS[input_name](source))
    files = ["--source", bad, "--target", tmp_path / "target.npy"]
    clean = ["--source", tmp_path / "clean.npy", "--target", tmp_path / "target.npy"]
    table_outcome, fit_outcome = CLI_OUTCOMES[input_name]
    commands = {
        "compare": ["compare", "--aligners", "identity", "ReAlign", "--k", "5", "--format", "csv", "--quiet"],
        "diagnose": ["diagnose", "--format", "csv", "--quiet"],
    }
    for name, command in commands.items():
        status, out, err = _cli(*command, *files)
        if table_outcome == FINITE:
            assert status == 0, err
            got = pd.read_csv(io.StringIO(out), index_col=0)
            assert np.isfinite(got.drop(columns=["fit_seconds", "transform_seconds"], errors="ignore")).all().all()
            _, clean_out, _ = _cli(*command, *clean)
            expected = pd.read_csv(io.StringIO(clean_out), index_col=0)
            np.testing.assert_allclose(got[expected.columns[:2]], expected[expected.columns[:2]], atol=1e-5)
        else:
            assert status == 1, (name, out)
            assert err.startswith("modgap: error: ") and err.count("\n") == 1, err
            assert re.search(table_outcome, err), (name, err)

    model = tmp_path / "model.skops"
    status, _, err = _cli("fit", *files, "-o", model, "--quiet")
    if fit_outcome == FINITE:
        assert status == 0, err
    else:
        assert status == 1 and not model.exists()
        assert err.startswith("modgap: error: ") and err.count("\n") == 1, err
        assert re.search(fit_outcome, err), err


@pytest.mark.parametrize("input_name", ["huge rows (1e200)", "tiny rows (1e-300)"])
def test_command_line_fit_of_extreme_rows_in_float64(input_name, tmp_path):
    target, source = _clean()
    np.save(tmp_path / "target.npy", target)
    np.save(tmp_path / "source.npy", INPUTS[input_name](source))
    model = tmp_path / "model.skops"
    status, _, err = _cli("fit", "--source", tmp_path / "source.npy", "--target", tmp_path / "target.npy",
                          "-o", model, "--dtype", "float64", "--quiet")
    assert status == 0, err
    expected = ReAlign().fit(source, target).transform(source)
    np.testing.assert_allclose(load(model).transform(source), expected, atol=1e-12)


def test_gap_report_names_a_zero_target_row_by_its_input_row():
    target, source = _clean()
    target[41] = 0.0
    with pytest.raises(ValueError, match=r"target has 1 row\(s\) of zero norm \(first at index 41\)"):
        gap_report({"ReAlign": ReAlign()}, source, target, error_score=np.nan)


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
@pytest.mark.parametrize("fixed_size", [False, True])
@pytest.mark.parametrize("value", [1e200, 1e-300])
def test_command_line_fit_refuses_arrow_rows_outside_float32(suffix, fixed_size, value, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    target, source = _clean()
    source[BAD_ROW] = value
    values = pa.array(source.ravel(), type=pa.float64())
    column = (pa.FixedSizeListArray.from_arrays(values, N_FEATURES) if fixed_size
              else pa.array(list(source), type=pa.list_(pa.float64())))
    table = pa.table({"embedding": column})
    path = tmp_path / f"source{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path)
    else:
        with pa.ipc.new_file(str(path), table.schema) as writer:
            writer.write_table(table)
    np.save(tmp_path / "target.npy", target)
    model = tmp_path / "model.skops"
    files = ["--source", path, "--target", tmp_path / "target.npy", "-o", model, "--quiet"]
    status, _, err = _cli("fit", *files)
    assert status == 1 and not model.exists(), err
    assert err.startswith("modgap: error: ") and err.count("\n") == 1, err
    assert re.search(rf"source{suffix}: row {BAD_ROW} \(largest \|value\| .*outside the range of float32 "
                     r"and would become infinite or zero; pass --dtype float64", err), err
    # In float64 the same file fits, as the .npy one does.
    status, _, err = _cli("fit", *files, "--dtype", "float64")
    assert status == 0, err
    expected = ReAlign().fit(source, target).transform(source)
    np.testing.assert_allclose(load(model).transform(source), expected, atol=1e-12)
