"""Tests of the ``modgap`` command line, in process and as a subprocess."""

import itertools
import shutil
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest

import sklearn_modgap
from sklearn_modgap import CentroidShift, cli
from sklearn_modgap.cli import available_aligners, main
from sklearn_modgap.datasets import make_modality_gap

from conftest import FakeTerminal

SMALL = ["--n-pairs", "120", "--n-features", "16", "--k", "5", "--quiet"]


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    target, source = make_modality_gap(80, 16, random_state=1)
    np.save(folder / "pairs.npy", np.stack([target, source]))
    np.save(folder / "source.npy", source)
    np.save(folder / "target.npy", target)
    np.save(folder / "target_wide.npy", np.ones((80, 24), dtype=np.float32))
    (folder / "corrupt.npy").write_bytes(b"\x93NUMPY garbage that is not a header")
    return folder


def _table(text):
    # The table ends at the first blank line; the legend follows it.
    lines = text.strip().split("\n\n")[0].splitlines()
    header = lines[0].split()
    rows = {}
    for line in lines[2:]:
        name, *values = line.split()
        rows[name] = dict(zip(header, map(float, values)))
    return pd.DataFrame.from_dict(rows, orient="index")


def test_aligner_list_follows_the_package_exports():
    aligners = available_aligners()
    assert next(iter(aligners)) == "identity"
    assert aligners["identity"].get_params()["alpha"] == 0.0
    exported = {
        name for name in sklearn_modgap.__all__
        if isinstance(getattr(sklearn_modgap, name), type)
    }
    assert set(aligners) - {"identity"} == exported - {"ContrastiveAdapter"}
    for name in ("CentroidShift", "ReAlign", "C3", "MomentMatch", "RandomTargetReplacement"):
        assert name in aligners


def test_compare_on_generated_data_prints_the_table(capsys):
    status = main(["compare", *SMALL, "--aligners", "identity", "CentroidShift", "ReAlign"])
    assert status == 0
    out = capsys.readouterr().out
    table = _table(out)
    assert list(table.index) == ["identity", "CentroidShift", "ReAlign"]
    for column in ("Delta_mu", "cos_tp", "Phi", "alignment_balance"):
        assert column in table.columns
    assert table.loc["identity", "Phi"] == pytest.approx(1.0)
    assert table.loc["CentroidShift", "Delta_mu"] < table.loc["identity", "Delta_mu"] / 4


def test_compare_metrics_option_and_case_insensitive_names(capsys):
    assert main(["compare", *SMALL, "--aligners", "realign", "--metrics", "Phi", "Delta_mu"]) == 0
    table = _table(capsys.readouterr().out)
    assert list(table.index) == ["ReAlign"]
    assert list(table.columns[:2]) == ["Phi", "Delta_mu"]


def test_compare_knn_option(capsys):
    arguments = ["compare", "--n-pairs", "3000", "--n-features", "32", "--k", "10", "--quiet",
                 "--aligners", "CentroidShift", "--metrics", "Omega_k", "M_k^Z", "Phi"]
    assert main([*arguments, "--knn", "approximate"]) == 0
    approximate = _table(capsys.readouterr().out)
    assert main(arguments) == 0
    exact = _table(capsys.readouterr().out)
    assert approximate.loc["CentroidShift", "Phi"] == exact.loc["CentroidShift", "Phi"]
    for column in ("Omega_k", "M_k^Z"):
        assert approximate.loc["CentroidShift", column] == pytest.approx(
            exact.loc["CentroidShift", column], abs=0.03)
    with pytest.raises(SystemExit) as info:
        main([*arguments, "--knn", "fast"])
    assert info.value.code == 2
    assert "--knn" in capsys.readouterr().err


def test_compare_reads_files_and_writes_substitutes(pair_files, tmp_path, capsys):
    out = tmp_path / "out"
    status = main([
        "compare", "--source", str(pair_files / "source.npy"),
        "--target", str(pair_files / "target.npy"), "--aligners", "identity", "ReAlign",
        "--metrics", "Delta_mu", "Phi", "--test-size", "0.25", "--output", str(out), "--quiet",
    ])
    assert status == 0
    test_index = np.load(out / "test_index.npy")
    assert len(test_index) == 20
    identity = np.load(out / "identity.npy")
    source = np.load(pair_files / "source.npy")
    np.testing.assert_allclose(identity, source[test_index], atol=1e-6)
    assert np.load(out / "ReAlign.npy").shape == (20, 16)
    saved = pd.read_csv(out / "report.csv", index_col="aligner")
    assert list(saved.index) == ["identity", "ReAlign"]
    capsys.readouterr()
    # The same pairs from one (2, n, d) file give the same table.
    main(["compare", "--pairs", str(pair_files / "pairs.npy"), "--aligners", "identity", "ReAlign",
          "--metrics", "Delta_mu", "Phi", "--test-size", "0.25", "--output", str(tmp_path / "b"),
          "--quiet"])
    again = pd.read_csv(tmp_path / "b" / "report.csv", index_col="aligner")
    pd.testing.assert_frame_equal(
        saved[["Delta_mu", "Phi"]], again[["Delta_mu", "Phi"]], check_exact=False
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--pairs", "{dir}/absent.npy"], "no such file"),
        (["--pairs", "{dir}/corrupt.npy"], "cannot read"),
        (["--source", "{dir}/source.npy", "--target", "{dir}/target_wide.npy"], "features"),
        (["--source", "{dir}/source.npy"], "go together"),
        (["--pairs", "{dir}/pairs.npy", "--source", "{dir}/source.npy"], "either --pairs"),
        (["--aligners", "NoSuchAligner"], "unknown aligner"),
        (["--n-pairs", "3"], "fewer than 2"),
    ],
)
def test_compare_bad_input_is_one_line_on_stderr(pair_files, capsys, arguments, message):
    arguments = [a.format(dir=pair_files) for a in arguments]
    assert main(["compare", *arguments, "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("modgap: error: ")
    assert message in captured.err


class _Broken(CentroidShift):
    def fit(self, X, y=None, *, sample_domain=None):
        raise ValueError("no shared direction")


def test_a_failing_aligner_leaves_a_nan_row_and_a_one_line_warning(capsys, monkeypatch):
    monkeypatch.setattr(
        cli, "available_aligners",
        lambda random_state=0: {"identity": CentroidShift(alpha=0.0), "Broken": _Broken()},
    )
    assert main(["compare", *SMALL, "--metrics", "Delta_mu"]) == 0
    captured = capsys.readouterr()
    table = _table(captured.out)
    assert np.isnan(table.loc["Broken", "Delta_mu"])
    assert table.loc["identity", "Delta_mu"] > 0.5
    warning_lines = [line for line in captured.err.splitlines() if "warning" in line]
    assert warning_lines == [
        "modgap: warning: Broken failed; its row is nan: ValueError: no shared direction"
    ]


def test_unknown_metric_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["compare", "--metrics", "nope"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_diagnose_prints_table_and_writes_figures(pair_files, tmp_path, capsys):
    out = tmp_path / "figures"
    status = main(["diagnose", "--pairs", str(pair_files / "pairs.npy"), "--q", "8",
                   "--output", str(out), "--quiet"])
    assert status == 0
    printed = capsys.readouterr().out
    for key in ("C_lambda", "O_q", "G_mu", "A_r", "cos_tp"):
        assert key in printed
    assert sorted(p.name for p in out.glob("*.png")) == [
        "cosine_densities.png", "pca_pairs.png", "residual_spectrum.png",
        "spectra.png", "subspace_overlap.png",
    ]
    saved = pd.read_csv(out / "diagnostics.csv", index_col=0)["value"]
    assert saved["q_over_d"] == pytest.approx(0.5)


def test_diagnose_missing_file(capsys, tmp_path):
    assert main(["diagnose", "--pairs", str(tmp_path / "none.npy")]) == 1
    assert capsys.readouterr().err.startswith("modgap: error: no such file")


def _run(*command):
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_python_dash_m_runs_and_fails_cleanly(pair_files):
    done = _run(sys.executable, "-m", "sklearn_modgap", "compare", "--pairs",
                str(pair_files / "pairs.npy"), "--aligners", "identity", "CentroidShift",
                "--k", "5")
    assert done.returncode == 0, done.stderr
    assert "CentroidShift" in done.stdout and "Delta_mu" in done.stdout
    # The progress display goes to standard error, never into the table.
    assert "%" not in done.stdout

    failed = _run(sys.executable, "-m", "sklearn_modgap", "compare", "--source",
                  str(pair_files / "source.npy"), "--target", str(pair_files / "target_wide.npy"))
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert failed.stderr.strip().count("\n") == 0
    assert "24 features" in failed.stderr


def test_console_script_reports_a_corrupt_file(pair_files):
    script = shutil.which("modgap")
    assert script is not None, "the modgap console script is not installed"
    done = _run(script, "compare", "--pairs", str(pair_files / "corrupt.npy"))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("modgap: error: cannot read")


def test_version_and_bare_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"modgap {sklearn_modgap.__version__}"
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "compare" in out and "diagnose" in out and "modgap compare --pairs" in out


def test_set_option_reaches_the_aligner_and_refuses_unknown_names(capsys, monkeypatch):
    seen = {}
    real = cli._apply_settings

    def spy(aligners, settings):
        real(aligners, settings)
        seen.update(aligners["CentroidShift"].get_params())

    monkeypatch.setattr(cli, "_apply_settings", spy)
    assert main(["compare", *SMALL, "--aligners", "CentroidShift", "--metrics", "Delta_mu",
                 "--set", "centroidshift.alpha=0.25"]) == 0
    assert seen["alpha"] == 0.25
    capsys.readouterr()
    assert main(["compare", *SMALL, "--aligners", "CentroidShift", "--set", "CentroidShift.eps=1"]) == 1
    assert "has no parameter eps" in capsys.readouterr().err
    assert main(["compare", *SMALL, "--aligners", "CentroidShift", "--set", "SSP.eps=1"]) == 1
    assert "not among the compared aligners" in capsys.readouterr().err


def test_legend_follows_the_tables(capsys):
    assert main(["compare", *SMALL, "--aligners", "identity", "--metrics", "Delta_mu"]) == 0
    legend = capsys.readouterr().out.split("\n\n", 1)[1]
    assert "lower is better" in legend and "Glossary" in legend
    assert main(["diagnose", *SMALL[:4], "--quiet"]) == 0
    assert "G_mu" in capsys.readouterr().out.split("\n\n", 1)[1]


def test_diagnose_default_q_works_with_few_rows_and_small_d(capsys):
    # 40 pairs in d = 16: q = auto = min(128, 16, 39) = 16.
    assert main(["diagnose", "--n-pairs", "40", "--n-features", "16", "--quiet"]) == 0
    assert "q_over_d               1.0000" in capsys.readouterr().out


def test_output_onto_a_file_fails_before_any_work(tmp_path, capsys, monkeypatch):
    taken = tmp_path / "taken"
    taken.write_text("x")
    monkeypatch.setattr(cli, "_load", lambda args: pytest.fail("loaded before checking --output"))
    for command in ("compare", "diagnose"):
        assert main([command, *SMALL[:4], "--output", str(taken), "--quiet"]) == 1
        assert "is not a folder" in capsys.readouterr().err


def test_npz_with_extra_arrays_reads_the_named_keys(tmp_path, capsys):
    target, source = make_modality_gap(60, 16, random_state=2)
    names = np.array([f"img{i}.jpg" for i in range(60)], dtype=object)
    np.savez(tmp_path / "p.npz", img=target, txt=source, labels=np.arange(60), files=names)
    assert main(["diagnose", "--pairs", str(tmp_path / "p.npz"), "--target-key", "img",
                 "--source-key", "txt", "--quiet"]) == 0
    assert "G_mu" in capsys.readouterr().out
    assert main(["diagnose", "--pairs", str(tmp_path / "p.npz"), "--target-key", "files",
                 "--source-key", "txt", "--quiet"]) == 1
    assert "never unpickled" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown"])
def test_format_option(fmt, capsys):
    import io
    import json

    assert main(["compare", *SMALL, "--aligners", "identity", "CentroidShift",
                 "--metrics", "Delta_mu", "Phi", "--format", fmt]) == 0
    captured = capsys.readouterr()
    if fmt == "csv":
        table = pd.read_csv(io.StringIO(captured.out), index_col=0)
    elif fmt == "json":
        table = pd.DataFrame(json.loads(captured.out)).T
    else:
        lines = captured.out.split("\n\n")[0].splitlines()
        assert lines[1].startswith("|---|")
        rows = [line.strip("|").split("|") for line in lines[2:]]
        table = pd.DataFrame({r[0].strip(): list(map(float, r[1:3])) for r in rows},
                             index=["Delta_mu", "Phi"]).T
    assert list(table.index) == ["identity", "CentroidShift"]
    # The identity keeps every source row: Phi = 1.
    assert float(table.loc["identity", "Phi"]) == pytest.approx(1.0, abs=1e-4)
    if fmt in ("csv", "json"):
        assert "Glossary" in captured.err and "Glossary" not in captured.out


def test_progress_display_is_off_when_stderr_is_not_a_terminal(pair_files):
    done = _run(sys.executable, "-m", "sklearn_modgap", "compare", "--pairs",
                str(pair_files / "pairs.npy"), "--k", "5")
    assert done.returncode == 0, done.stderr
    # No carriage-return refreshes appended to one line: every stderr line is short.
    assert "\r" not in done.stderr
    assert max(map(len, done.stderr.splitlines()), default=0) < 300


def test_diagnose_shows_progress_on_a_terminal_and_not_when_quiet(monkeypatch, capsys, tmp_path):
    from sklearn_modgap import _cli_corpus

    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    # A clock that moves 10 s per reading: a redraw at every step, whatever the machine's speed.
    clock = types.SimpleNamespace(perf_counter=itertools.count(0, 10).__next__)
    monkeypatch.setattr(_cli_corpus, "time", clock)
    assert main(["diagnose", *SMALL[:4], "--output", str(tmp_path / "figures")]) == 0
    shown = terminal.getvalue()
    # 13 computations and the figures: 14 steps, each redrawn in place on one line.
    assert shown.count("\rmodgap diagnose: ") == 15
    assert "\rmodgap diagnose: 1/14 steps (7%)" in shown
    assert "\rmodgap diagnose: 14/14 steps (100%)" in shown
    assert shown.split("modgap: wrote")[0].count("\n") == 1
    assert "G_mu" in capsys.readouterr().out

    quiet = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main(["diagnose", *SMALL[:4], "--quiet"]) == 0
    assert quiet.getvalue() == ""


def test_diagnose_progress_is_one_short_line_when_stderr_is_not_a_terminal(pair_files):
    done = _run(sys.executable, "-m", "sklearn_modgap", "diagnose", "--pairs",
                str(pair_files / "pairs.npy"), "--q", "8")
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines == [line for line in lines if len(line) < 120]
    assert [line for line in lines if line.startswith("modgap diagnose: 13/13 steps (100%)")]


def test_compare_warns_once_and_readably_about_duplicate_rows(tmp_path):
    # 40 distinct texts repeated 10 times each, as with one prompt per class.
    target, source = make_modality_gap(400, 16, random_state=0)
    np.save(tmp_path / "source.npy", source[np.arange(400) % 40])
    np.save(tmp_path / "target.npy", target)
    done = _run(sys.executable, "-m", "sklearn_modgap", "compare", "--source",
                str(tmp_path / "source.npy"), "--target", str(tmp_path / "target.npy"),
                "--aligners", "identity", "CentroidShift", "ReAlign", "--k", "5")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "warnings.warn" not in done.stderr
    warned = [line for line in done.stderr.splitlines() if "repeat another row exactly" in line]
    # Once for the held-out inputs, not once per aligner; on one line with the CLI's prefix.
    assert len(warned) == 1
    assert warned[0].startswith("modgap: warning: The held-out source has ")
    # The held-out half has 200 rows; all 40 distinct rows appear in it with copies.
    assert "of 200 rows" in warned[0] and "(40 distinct" in warned[0]
    assert "M_k^Z" in warned[0] and "k=5" in warned[0]
    # The target has no copies: no warning about it.
    assert "held-out target" not in done.stderr
    assert "CentroidShift" in done.stdout and "ReAlign" in done.stdout
