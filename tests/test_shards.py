"""Reading and writing shards: discovery, formats, bad rows, atomic writes, out-of-core transform."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sklearn.pipeline import make_pipeline

from sklearn_modgap import SSP, C3, AnisoAlign, CentroidShift, MomentMatch, RandomTargetReplacement, ReAlign
from sklearn_modgap._maps import BlockMap
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.io import (
    TEMPORARY_PREFIX,
    ShardWriter,
    bad_rows,
    find_shards,
    output_row_count,
    transform_block_rows,
    transform_blocks,
)


def _rows(n, d=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _read_all(shard, dtype=None):
    return np.concatenate([rows for _, rows, _ in shard.blocks(7, dtype)])


def test_find_shards_file_folder_and_glob(tmp_path):
    (tmp_path / "c" / "d").mkdir(parents=True)
    np.save(tmp_path / "c" / "b.npy", _rows(3))
    np.save(tmp_path / "c" / "d" / "a.npy", _rows(4))
    np.save(tmp_path / "c" / f"{TEMPORARY_PREFIX}1-b.npy", _rows(2))
    (tmp_path / "c" / "notes.txt").write_text("not a shard")

    in_folder = find_shards(tmp_path / "c")
    assert [s.relative.as_posix() for s in in_folder] == ["b.npy", "d/a.npy"]
    assert [s.n_rows for s in in_folder] == [3, 4]

    one = find_shards(tmp_path / "c" / "d" / "a.npy")
    assert [s.relative.as_posix() for s in one] == ["a.npy"]

    matched = find_shards(str(tmp_path / "c" / "**" / "*.npy"))
    assert [s.relative.as_posix() for s in matched] == ["b.npy", "d/a.npy"]


def test_find_shards_refuses_missing_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_shards(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no shards in"):
        find_shards(tmp_path / "empty")


def test_npy_shard_is_memory_mapped_and_read_in_blocks(tmp_path):
    rows = _rows(20)
    np.save(tmp_path / "a.npy", rows)
    (shard,) = find_shards(tmp_path / "a.npy")
    assert isinstance(shard.read(), np.memmap)
    starts = [start for start, _, _ in shard.blocks(7)]
    assert starts == [0, 7, 14]
    np.testing.assert_array_equal(_read_all(shard), rows)
    assert _read_all(shard, np.float64).dtype == np.float64


def test_npy_shard_must_be_two_dimensional(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="3-D .* a shard must be a 2-D numeric array"):
        find_shards(tmp_path / "a.npy")


def test_npz_shard_needs_key_when_several_arrays(tmp_path):
    rows = _rows(5)
    np.savez(tmp_path / "a.npz", text=rows, ids=np.arange(5.0)[:, None])
    with pytest.raises(ValueError, match=r"holds 2 arrays \(text, ids\): pass --key"):
        find_shards(tmp_path / "a.npz")
    with pytest.raises(ValueError, match="has no array 'image'"):
        find_shards(tmp_path / "a.npz", key="image")
    (shard,) = find_shards(tmp_path / "a.npz", key="text")
    np.testing.assert_array_equal(_read_all(shard), rows)


@pytest.mark.parametrize("fixed", [True, False])
def test_parquet_list_columns(tmp_path, fixed):
    rows = _rows(30, d=6)
    flat = pa.array(rows.ravel())
    embeddings = (
        pa.FixedSizeListArray.from_arrays(flat, 6) if fixed else pa.array(list(rows), type=pa.list_(pa.float32()))
    )
    table = pa.table({"id": np.arange(30), "emb": embeddings})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=8)
    (shard,) = find_shards(tmp_path / "a.parquet")
    assert (shard.column, shard.n_rows, shard.n_features) == ("emb", 30, 6)
    np.testing.assert_array_equal(_read_all(shard), rows)


def test_parquet_needs_column_when_several_lists(tmp_path):
    lists = pa.array([[1.0, 2.0]], type=pa.list_(pa.float32()))
    pq.write_table(pa.table({"a": lists, "b": lists, "n": [1]}), tmp_path / "a.parquet")
    with pytest.raises(ValueError, match=r"has 2 list columns \(a, b\): pass --column"):
        find_shards(tmp_path / "a.parquet")
    with pytest.raises(ValueError, match="column 'n' .* not a list"):
        find_shards(tmp_path / "a.parquet", column="n")
    assert find_shards(tmp_path / "a.parquet", column="b")[0].n_features == 2


def test_ragged_list_rows_are_reported_by_row(tmp_path):
    values = [[1.0, 0.0, 0.0], [0.0, 1.0], [0.0, 0.0, 1.0], None, [1.0, 1.0, 1.0]]
    pq.write_table(pa.table({"emb": pa.array(values, type=pa.list_(pa.float64()))}), tmp_path / "a.parquet")
    (shard,) = find_shards(tmp_path / "a.parquet")
    assert (shard.n_features, shard.ragged) == (3, True)
    ((start, rows, lengths),) = list(shard.blocks(10))
    assert start == 0 and rows.shape == (5, 3)
    assert bad_rows(rows, lengths, n_features=3) == [
        (1, "has 2 features, expected 3"),
        (3, "is missing"),
    ]
    np.testing.assert_array_equal(rows[[0, 2, 4]], np.array(values, dtype=object)[[0, 2, 4]].tolist())


def test_arrow_ipc_shard(tmp_path):
    rows = _rows(12, d=4)
    table = pa.table({"emb": pa.FixedSizeListArray.from_arrays(pa.array(rows.ravel()), 4)})
    with pa.ipc.new_file(str(tmp_path / "a.arrow"), table.schema) as writer:
        for batch in table.to_batches(max_chunksize=5):
            writer.write_batch(batch)
    (shard,) = find_shards(tmp_path / "a.arrow")
    assert shard.n_rows == 12
    np.testing.assert_array_equal(_read_all(shard), rows)


def test_bad_rows_hand_made_block():
    block = np.ones((6, 3))
    block[2, 1] = np.nan
    block[4] = 0.0
    block[5, 0] = np.inf
    assert bad_rows(block, n_features=3) == [
        (2, "contains NaN or infinity"),
        (4, "has zero norm and cannot be L2-normalized"),
        (5, "contains NaN or infinity"),
    ]
    assert [row for row, _ in bad_rows(block, n_features=3, normalize=False)] == [2, 5]
    assert bad_rows(block[:2], n_features=4) == [(0, "has 3 features, expected 4"), (1, "has 3 features, expected 4")]


@pytest.mark.parametrize("name", ["out.npy", "out.npz", "out.parquet", "out.arrow"])
def test_writer_round_trip_and_fewer_rows(tmp_path, name):
    rows = _rows(10, d=5)
    path = tmp_path / "sub" / name
    with ShardWriter(path, 12, 5, np.float32, key="emb", column="emb") as writer:
        writer.write(rows[:4])
        writer.write(rows[4:])
        assert not path.exists()
        writer.commit()
    assert output_row_count(path) == 10
    (shard,) = find_shards(path, key="emb", column="emb")
    np.testing.assert_array_equal(_read_all(shard), rows)
    assert sorted(p.name for p in path.parent.iterdir()) == [name]


def test_truncated_npy_loads_as_plain_array(tmp_path):
    rows = np.arange(40, dtype=np.float64).reshape(10, 4)
    with ShardWriter(tmp_path / "a.npy", 1000, 4, np.float64) as writer:
        writer.write(rows[:3])
        writer.commit()
    loaded = np.load(tmp_path / "a.npy")
    np.testing.assert_array_equal(loaded, rows[:3])
    assert (tmp_path / "a.npy").stat().st_size == 128 + 3 * 4 * 8


def test_writer_leaves_nothing_without_commit(tmp_path):
    path = tmp_path / "a.npy"
    with pytest.raises(RuntimeError):
        with ShardWriter(path, 5, 3, np.float32) as writer:
            writer.write(np.ones((2, 3)))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_extra_rows_and_writes_empty_shards(tmp_path):
    with pytest.raises(ValueError, match="more rows written than the 2 announced"):
        with ShardWriter(tmp_path / "a.npy", 2, 3, np.float32) as writer:
            writer.write(np.ones((3, 3)))
    with ShardWriter(tmp_path / "b.npy", 0, 3, np.float32) as writer:
        writer.commit()
    assert np.load(tmp_path / "b.npy").shape == (0, 3)


def test_transform_blocks_memmap_to_memmap(tmp_path):
    target, source = make_modality_gap(3000, 16, random_state=0)
    aligner = ReAlign().fit(source, y=target)
    np.save(tmp_path / "in.npy", source)
    X = np.load(tmp_path / "in.npy", mmap_mode="r")
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=X.dtype, shape=X.shape)
    transform_blocks(aligner, X, out, block_rows=700)
    out.flush()
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), aligner.transform(source), atol=1e-6)


BLOCK_ALIGNERS = {
    "CentroidShift": CentroidShift(),
    "ReAlign": ReAlign(),
    "MomentMatch": MomentMatch(),
    "SSP": SSP(),
    "AnisoAlign": AnisoAlign(random_state=0, max_epochs=2),
    "C3": C3(random_state=0),
    "RandomTargetReplacement": RandomTargetReplacement(random_state=0),
}


@pytest.fixture(scope="module")
def block_fitted():
    target, source = make_modality_gap(400, 8, random_state=0)
    return {name: aligner.fit(source, y=target) for name, aligner in BLOCK_ALIGNERS.items()}


@pytest.mark.parametrize("name", list(BLOCK_ALIGNERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_blocks_equals_transform_for_every_output(tmp_path, block_fitted, name, dtype):
    aligner = block_fitted[name]
    X = make_modality_gap(1001, 8, random_state=1)[1].astype(dtype)
    expected = aligner.transform(X)
    assert expected.dtype == dtype
    # AnisoAlign's networks run in float32, whose rounding depends on the block.
    atol = 1e-5 if dtype == np.float32 or name == "AnisoAlign" else 1e-12
    # Blocks of 37 rows, computed in the output's own rows or buffers.
    outputs = {
        "path": lambda: transform_blocks(aligner, X, tmp_path / "out.npy", block_rows=37),
        "new array": lambda: transform_blocks(aligner, X, block_rows=37),
        "array": lambda: transform_blocks(aligner, X, np.full(X.shape, np.nan, dtype), block_rows=37),
        # Another dtype, or a Fortran-ordered array: copied in.
        "float64 array": lambda: transform_blocks(aligner, X, np.full(X.shape, np.nan), block_rows=37),
        "Fortran array": lambda: transform_blocks(aligner, X, np.full(X.shape, np.nan, dtype, order="F"),
                                                  block_rows=37),
    }
    for output, run in outputs.items():
        out = run()
        assert out.shape == X.shape, output
        assert out.dtype == (np.float64 if output == "float64 array" else dtype), output
        np.testing.assert_allclose(out, expected, atol=atol, rtol=0, err_msg=f"{name}, {output}")


def test_transform_blocks_of_integer_rows_gives_float64_substitutes(tmp_path):
    target, source = make_modality_gap(300, 8, random_state=0)
    aligner = CentroidShift().fit(source, y=target)
    X = np.rint(source * 10).astype(np.int64)
    expected = aligner.transform(X)
    assert expected.dtype == np.float64
    for out in (None, tmp_path / "out.npy"):
        got = transform_blocks(aligner, X, out, block_rows=70)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, atol=1e-12)


class _Doubled(CentroidShift):
    """An aligner whose own transform is not BaseAligner's."""

    def transform(self, X):
        return 2 * super().transform(X)


def test_transform_blocks_calls_an_overridden_transform_and_foreign_transformers(tmp_path):
    target, source = make_modality_gap(300, 8, random_state=0)
    doubled = _Doubled().fit(source, y=target)
    pipeline = make_pipeline(CentroidShift()).fit(source, y=target)
    for aligner, factor in ((doubled, 2.0), (pipeline, 1.0)):
        expected = factor * CentroidShift().fit(source, y=target).transform(source)
        for out in (None, tmp_path / "out.npy"):
            np.testing.assert_allclose(transform_blocks(aligner, source, out, block_rows=70), expected, atol=1e-12)


def test_transform_blocks_gives_random_transforms_all_rows_at_once():
    target, source = make_modality_gap(500, 8, random_state=0)
    aligner = C3(random_state=0).fit(source, y=target)
    # Per-block calls would restart C3's noise at every block; one call does not.
    np.testing.assert_array_equal(transform_blocks(aligner, source, block_rows=100), aligner.transform(source))
    with pytest.raises(ValueError, match="out has shape"):
        transform_blocks(aligner, source, np.empty((2, 8), np.float32))


class _RestartedNoise(CentroidShift):
    """A map whose noise restarts at every transform call: not row-wise, whatever its class."""

    def _source_map(self):
        rng = np.random.default_rng(0)
        return BlockMap(lambda block: block + rng.standard_normal(block.shape), in_order=True, row_wise=False)


class _RowWiseC3(C3):
    """A C3 whose map is made row-wise: blocks are fine, although it is a C3."""

    def _source_map(self):
        return BlockMap(lambda block: block - self.source_mean_, in_order=True)


def test_block_size_comes_from_the_fitted_map_not_the_class():
    target, source = make_modality_gap(300, 8, random_state=0)
    everything = np.iinfo(np.int64).max
    fitted = {
        "C3": C3(random_state=0).fit(source, y=target),
        "RandomTargetReplacement": RandomTargetReplacement(random_state=0).fit(source, y=target),
        # alpha wraps the map: the wrapper keeps what the map says.
        "C3 alpha=0.5": C3(alpha=0.5, random_state=0).fit(source, y=target),
        "restarted noise": _RestartedNoise().fit(source, y=target),
    }
    for name, aligner in fitted.items():
        assert transform_block_rows(aligner, 8, 8, block_rows=100) == everything, name
    # AnisoAlign runs its blocks in order (torch's process-wide thread count), but
    # each output row depends on its input row alone: it may be split.
    # (Its map is built without reading fitted state, so an unfitted one shows it.)
    blocks = {
        "AnisoAlign": AnisoAlign(),
        "row-wise C3": _RowWiseC3(random_state=0).fit(source, y=target),
        "ReAlign": ReAlign().fit(source, y=target),
    }
    for name, aligner in blocks.items():
        assert transform_block_rows(aligner, 8, 8, block_rows=100) == 100, name
    # And the split is then harmless: blocks of 100 give what one call gives.
    aligner = _RestartedNoise().fit(source, y=target)
    np.testing.assert_array_equal(transform_blocks(aligner, source, block_rows=100), aligner.transform(source))
