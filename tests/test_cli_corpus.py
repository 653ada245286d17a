"""``modgap fit | transform | align`` on unpaired shards."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sklearn_modgap
from sklearn_modgap import CentroidShift, ReAlign
from sklearn_modgap._cli_corpus import Progress, fit_corpus, parse_settings
from sklearn_modgap.cli import main
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.io import TEMPORARY_PREFIX, find_shards
from sklearn_modgap.persistence import load, save

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def corpus(tmp_path):
    """Unpaired shards: texts as .npy in a nested folder and Parquet, images as .npz and .npy."""
    target, source = make_modality_gap(1200, 16, random_state=0)
    texts, images = tmp_path / "texts", tmp_path / "images"
    (texts / "part").mkdir(parents=True)
    images.mkdir()
    np.save(texts / "a.npy", source[:500])
    np.save(texts / "part" / "b.npy", source[500:800])
    column = pa.FixedSizeListArray.from_arrays(pa.array(source[800:].ravel()), 16)
    pq.write_table(pa.table({"id": np.arange(400), "emb": column}), texts / "c.parquet", row_group_size=100)
    np.savez(images / "x.npz", emb=target[:700])
    np.save(images / "y.npy", target[700:1000])
    # Files in shard order (sorted relative paths) and the rows they hold.
    order = {"a.npy": source[:500], "c.parquet": source[800:], "part/b.npy": source[500:800]}
    return tmp_path, order, target[:1000]


def _read_output(path):
    if path.suffix == ".parquet":
        return np.stack(pq.read_table(path).column("emb").to_numpy(zero_copy_only=False))
    if path.suffix == ".npz":
        with np.load(path) as archive:
            return archive["emb"]
    return np.load(path)


def _unpaired(command, root):
    """``command`` on the corpus fixture's two folders of unpaired shards."""
    return [command, "--source", root / "texts", "--target", root / "images", "--key", "emb"]


def _run(*argv, capsys):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_align_mirrors_shards_and_matches_the_python_api(corpus, capsys):
    root, order, target = corpus
    status, out, err = _run(
        *_unpaired("align", root),
        "--set", "alpha=0.5", "--output", root / "out", capsys=capsys,
    )
    assert status == 0, err
    assert "wrote 1,200 rows in 3 shards" in out
    expected = ReAlign(alpha=0.5).fit(np.concatenate(list(order.values())), y=target)
    for relative, rows in order.items():
        produced = _read_output(root / "out" / relative)
        assert produced.dtype == np.float32
        np.testing.assert_allclose(produced, expected.transform(rows), atol=1e-6)
    model = load(root / "out" / "model.skops")
    assert model.alpha == 0.5
    np.testing.assert_allclose(model.target_mean_, expected.target_mean_, atol=1e-6)  # float32 shards, summed block by block
    record = json.loads((root / "out" / ".modgap-run.json").read_text())
    assert {k: v["rows"] for k, v in record["shards"].items()} == {k: len(v) for k, v in order.items()}


def test_fit_then_transform_equals_align(corpus, capsys):
    root, order, _ = corpus
    status, _, err = _run(
        *_unpaired("fit", root),
        "--aligner", "centroidshift", "-o", root / "model", capsys=capsys,
    )
    assert status == 0, err
    assert isinstance(load(root / "model.skops"), CentroidShift)
    status, _, err = _run(
        "transform", root / "model.skops", "--input", root / "texts", "--output", root / "out",
        "--dtype", "float64", capsys=capsys,
    )
    assert status == 0, err
    model = load(root / "model.skops")
    for relative, rows in order.items():
        produced = _read_output(root / "out" / relative)
        assert produced.dtype == np.float64
        np.testing.assert_allclose(produced, model.transform(rows.astype(np.float64)), atol=1e-12)


def test_transform_of_a_glob_and_a_single_file(corpus, capsys):
    root, order, target = corpus
    save(ReAlign().fit(order["a.npy"], y=target), root / "m.skops")
    status, _, err = _run(
        "transform", root / "m.skops", "--input", str(root / "texts" / "**" / "*.npy"),
        "--output", root / "out", capsys=capsys,
    )
    assert status == 0, err
    assert sorted(p.relative_to(root / "out").as_posix() for p in (root / "out").rglob("*.npy")) == [
        "a.npy", "part/b.npy",
    ]


def test_bad_rows_stop_the_run_before_writing(corpus, capsys):
    root, order, _ = corpus
    rows = order["part/b.npy"].copy()
    rows[7, 3] = np.nan
    rows[20] = 0.0
    np.save(root / "texts" / "part" / "b.npy", rows)
    status, _, err = _run(
        *_unpaired("align", root),
        "--output", root / "out", capsys=capsys,
    )
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("modgap: error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert "b.npy: row 7 contains NaN or infinity; row 20 has zero norm" in err
    # The fit reads every source row before anything is written.
    assert not (root / "out").exists()


def test_bad_rows_in_transform_keep_only_complete_correct_shards(corpus, capsys):
    root, order, target = corpus
    save(ReAlign().fit(order["a.npy"], y=target), root / "m.skops")
    rows = order["part/b.npy"].copy()
    rows[11] = np.inf
    np.save(root / "texts" / "part" / "b.npy", rows)
    status, _, err = _run("transform", root / "m.skops", "--input", root / "texts", "--output", root / "out",
                          capsys=capsys)
    assert status == 1 and "row 11 contains NaN or infinity" in err
    assert not (root / "out" / "part" / "b.npy").exists()
    assert not list((root / "out").rglob(f"{TEMPORARY_PREFIX}*"))

    status, out, err = _run(
        "transform", root / "m.skops", "--input", root / "texts", "--output", root / "out",
        "--skip-bad-rows", "--overwrite", capsys=capsys,
    )
    assert status == 0, err
    assert "1 bad rows skipped" in out
    written = np.load(root / "out" / "part" / "b.npy")
    np.testing.assert_allclose(written, load(root / "m.skops").transform(np.delete(rows, 11, axis=0)), atol=1e-6)
    record = json.loads((root / "out" / ".modgap-run.json").read_text())
    assert record["shards"]["part/b.npy"] == {"rows": 299, "skipped_rows": [11]}


def test_skip_bad_rows_in_fit_counts_them(corpus, capsys):
    root, order, target = corpus
    rows = order["a.npy"].copy()
    rows[[3, 4]] = np.nan
    np.save(root / "texts" / "a.npy", rows)
    status, out, err = _run(
        *_unpaired("fit", root),
        "--skip-bad-rows", "-o", root / "m.skops", capsys=capsys,
    )
    assert status == 0, err
    assert "2 bad rows skipped" in out
    good = np.concatenate([np.delete(rows, [3, 4], axis=0), order["c.parquet"], order["part/b.npy"]])
    np.testing.assert_allclose(load(root / "m.skops").source_mean_, ReAlign().fit(good, y=target).source_mean_,
                               atol=1e-6)  # float32 shards, summed block by block


def test_wrong_width_and_bad_settings_are_one_line_errors(corpus, capsys):
    root, order, target = corpus
    np.save(root / "texts" / "wide.npy", np.ones((3, 20), np.float32))
    status, _, err = _run(*_unpaired("fit", root), "-o", root / "m", capsys=capsys)
    assert status == 1 and "differ in width: 16 features in" in err and "20 features in" in err

    os.remove(root / "texts" / "wide.npy")
    for setting, message in (
        ("rnk=3", "ReAlign has no parameter rnk; its parameters are alpha, n_jobs, normalize"),
        ("alpha", "--set takes NAME=VALUE"),
        ("alpha=2.0", "alpha"),
    ):
        status, _, err = _run(*_unpaired("fit", root), "--set", setting, "-o", root / "m", capsys=capsys)
        assert status == 1 and message in err and "Traceback" not in err

    status, _, err = _run(*_unpaired("align", root), "--output", root / "texts" / "out", capsys=capsys)
    assert status == 1 and "is inside the input folder" in err

    save(ReAlign().fit(np.ones((5, 8)) + np.eye(5, 8), y=np.eye(5, 8) + 0.5), root / "narrow.skops")
    status, _, err = _run("transform", root / "narrow.skops", "--input", root / "texts", "--output", root / "o",
                          capsys=capsys)
    assert status == 1 and "has 16 features but the model was fitted on 8" in err


def test_transform_refuses_pickles_and_existing_output(corpus, capsys):
    root, order, target = corpus
    aligner = ReAlign().fit(order["a.npy"], y=target)
    joblib.dump(aligner, root / "m.joblib")
    status, _, err = _run("transform", root / "m.joblib", "--input", root / "texts", "--output", root / "out",
                          capsys=capsys)
    assert status == 1 and "refusing to unpickle" in err
    save(aligner, root / "m.skops")
    assert _run("transform", root / "m.skops", "--input", root / "texts", "--output", root / "out",
                capsys=capsys)[0] == 0
    status, _, err = _run("transform", root / "m.skops", "--input", root / "texts", "--output", root / "out",
                          capsys=capsys)
    assert status == 1 and "pass --resume" in err
    # Resuming with another model is refused: its substitutes would mix with the first model's.
    save(ReAlign(alpha=0.3).fit(order["a.npy"], y=target), root / "other.skops")
    status, _, err = _run("transform", root / "other.skops", "--input", root / "texts", "--output", root / "out",
                          "--resume", capsys=capsys)
    assert status == 1 and "another model" in err


def test_align_refuses_existing_output_before_fitting_and_keeps_the_model(corpus, capsys):
    root, order, target = corpus
    assert _run(*_unpaired("align", root), "--output", root / "out", capsys=capsys)[0] == 0
    model = root / "out" / "model.skops"
    before = model.read_bytes()
    status, _, err = _run(*_unpaired("align", root), "--set", "alpha=0.3", "--output", root / "out",
                          capsys=capsys)
    assert status == 1 and "already holds output" in err and "pass --resume" in err
    # Refused before the fit: no fit ran and the first run's model is untouched.
    assert "modgap fit:" not in err
    assert model.read_bytes() == before
    # A model alone in the folder (e.g. from modgap fit) is not replaced either.
    lone = root / "lone"
    lone.mkdir()
    (lone / "model.skops").write_bytes(before)
    status, _, err = _run(*_unpaired("align", root), "--output", lone, capsys=capsys)
    assert status == 1 and "model.skops" in err
    assert _run(*_unpaired("align", root), "--output", lone, "--overwrite", capsys=capsys)[0] == 0


def test_fit_summary_counts_shards_in_words(corpus, capsys):
    root, _, _ = corpus
    status, _, err = _run("fit", "--source", root / "texts" / "a.npy", "--target", root / "images",
                          "--key", "emb", "--model", root / "m.skops", capsys=capsys)
    assert status == 0, err
    assert "(1 shard) and" in err and "(2 shards)" in err


def test_parse_settings_literals():
    assert parse_settings(["alpha=0.5", "rank=auto", "noise_range=(0.1, 1.0)", "max_train_rows=None",
                           "use_prior=False", "rank=32"]) == {
        "alpha": 0.5, "rank": 32, "noise_range": (0.1, 1.0), "max_train_rows": None, "use_prior": False,
    }


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_does_not_spam_logs():
    log = _Stream(tty=False)
    progress = Progress("transform", 10_000, stream=log)
    for _ in range(1000):
        progress.update(10)
    progress.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("modgap transform: 10,000/10,000 rows (100%), ") and "rows/s" in lines[0]


def test_progress_redraws_one_line_on_a_terminal():
    terminal = _Stream(tty=True)
    progress = Progress("transform", 100, stream=terminal)
    progress.shown = -1e9
    progress.update(40)
    progress.close()
    text = terminal.getvalue()
    assert text.startswith("\rmodgap transform: 40/100 rows (40%)") and text.endswith("\n")
    assert text.count("\n") == 1


class _StreamingAligner(CentroidShift):
    """A CentroidShift fitted from blocks, to see what the streaming fit passes."""

    def partial_fit(self, X, y=None):
        self.calls_ = getattr(self, "calls_", []) + [(len(X), len(y))]
        self.rows_ = getattr(self, "rows_", []) + [X, y]
        return self


def test_fit_streams_blocks_to_partial_fit(corpus):
    root, order, target = corpus
    aligner = _StreamingAligner()
    skipped = fit_corpus(aligner, find_shards(root / "texts"), find_shards(root / "images", key="emb"))
    assert skipped == 0
    assert aligner.calls_ == [(500, 0), (400, 0), (300, 0), (0, 700), (0, 300)]
    np.testing.assert_array_equal(np.concatenate(aligner.rows_[0::2]), np.concatenate(list(order.values())))
    np.testing.assert_array_equal(np.concatenate(aligner.rows_[1::2]), target)


def _modgap(*argv):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return [sys.executable, "-m", "sklearn_modgap", *map(str, argv)], env


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    rng = np.random.default_rng(0)
    texts = tmp_path / "texts"
    texts.mkdir()
    n_shards = 30
    for i in range(n_shards):
        np.save(texts / f"part-{i:03d}.npy", rng.standard_normal((8_000, 32)).astype(np.float32))
    target = rng.standard_normal((2000, 32)).astype(np.float32) + 1.0
    save(ReAlign().fit(np.load(texts / "part-000.npy"), y=target), tmp_path / "m.skops")
    common = ("transform", tmp_path / "m.skops", "--input", texts, "--block-rows", 500, "--quiet")

    assert main([str(a) for a in (*common, "--output", tmp_path / "reference")]) == 0

    command, env = _modgap(*common, "--output", tmp_path / "out")
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "out").glob("part-*.npy"))) < 3 and process.poll() is None:
        assert time.monotonic() < deadline, "the run wrote no shard in time"
        time.sleep(0.001)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(list((tmp_path / "out").glob("part-*.npy")))
    assert process.returncode == -signal.SIGKILL
    assert finished < n_shards, "the run ended before it was killed; make its shards larger"

    command, env = _modgap(*common, "--output", tmp_path / "out", "--resume")
    result = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    summary = re.search(r"wrote ([\d,]+) rows in (\d+) shards .*\((\d+) shards already complete", result.stdout)
    written, shards, resumed = (int(group.replace(",", "")) for group in summary.groups())
    # Every shard is written exactly once over the two runs: none lost, none twice.
    assert shards + resumed == n_shards and written == shards * 8_000
    assert resumed >= finished - 1 > 0
    produced = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert produced == sorted(p.name for p in (tmp_path / "reference").iterdir())
    for i in range(n_shards):
        name = f"part-{i:03d}.npy"
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name


def test_align_with_aniso_saves_its_nets(corpus, capsys):
    root, order, target = corpus
    status, _, err = _run(
        "align", "--source", root / "texts" / "a.npy", "--target", root / "images" / "y.npy",
        "--aligner", "AnisoAlign", "--set", "rank=4", "--set", "max_epochs=1", "--set", "device=cpu",
        "--output", root / "out", capsys=capsys,
    )
    assert status == 0, err
    model = load(root / "out" / "model.skops")
    assert model.rank_ == 4 and model.refiner_ is not None
    np.testing.assert_array_equal(np.load(root / "out" / "a.npy"), model.transform(order["a.npy"]))


@pytest.mark.parametrize("name", ["CentroidShift", "MomentMatch", "ReAlign", "C3"])
def test_fit_of_shards_streams_through_the_aligners_own_partial_fit(corpus, capsys, name):
    # Several shards a side: the rows reach the aligner block by block.
    root, order, target = corpus
    status, _, err = _run(*_unpaired("fit", root), "--aligner", name, "-o", root / "m.skops", capsys=capsys)
    assert status == 0, err
    model = load(root / "m.skops")
    assert "_stream" not in vars(model)
    expected = getattr(sklearn_modgap, name)().fit(
        np.concatenate(list(order.values())).astype(np.float32), y=target.astype(np.float32)
    )
    np.testing.assert_allclose(model.source_mean_, expected.source_mean_, atol=1e-6)
    np.testing.assert_allclose(model.target_mean_, expected.target_mean_, atol=1e-6)
    if name == "MomentMatch":
        np.testing.assert_allclose(model.mapping_, expected.mapping_, atol=1e-4)
