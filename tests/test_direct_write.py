""".npy outputs written with direct I/O by a background thread: sklearn_modgap._direct and its users in io."""

import errno
import os
import struct

import numpy as np
import pytest

from sklearn_modgap import ReAlign
from sklearn_modgap import _direct
from sklearn_modgap import io as shard_io
from sklearn_modgap._direct import ALIGNMENT, NpyWriter, npy_header
from sklearn_modgap.cli import main
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.io import ShardWriter, output_row_count, transform_blocks
from sklearn_modgap.persistence import save

needs_o_direct = pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="the platform has no O_DIRECT")


def _header(path):
    """(version, shape, fortran_order, dtype, offset of the data) of an .npy file."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(handle)
        return version, shape, fortran, dtype, handle.tell()


def _data_bytes(path):
    return path.read_bytes()[_header(path)[4]:]


def _write_in_blocks(writer, rows, sizes=(1, 7, 333, 50)):
    start, i = 0, 0
    while start < len(rows):
        writer.write(rows[start:start + sizes[i % len(sizes)]])
        start += sizes[i % len(sizes)]
        i += 1


@pytest.mark.parametrize("alignment", [64, 4096])
def test_header_is_padded_to_the_alignment_and_parses(tmp_path, alignment):
    header = npy_header(np.float32, (6_000_000, 512), alignment)
    assert len(header) % alignment == 0 and header.startswith(b"\x93NUMPY\x01\x00") and header.endswith(b"\n")
    # Format 1.0: a 2-byte little-endian length of what follows the 10-byte prefix.
    assert struct.unpack("<H", header[8:10])[0] == len(header) - 10
    (tmp_path / "h.npy").write_bytes(header)
    assert _header(tmp_path / "h.npy") == ((1, 0), (6_000_000, 512), False, np.dtype(np.float32), len(header))


def test_header_too_long_for_format_1_uses_format_2(tmp_path):
    header = npy_header(np.float64, (3, 2), 1 << 17)
    assert len(header) == 1 << 17 and header[6:8] == b"\x02\x00"
    assert struct.unpack("<I", header[8:12])[0] == len(header) - 12
    with open(tmp_path / "h.npy", "wb") as handle:
        handle.write(header)
    with open(tmp_path / "h.npy", "rb") as handle:
        assert np.lib.format.read_magic(handle) == (2, 0)
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle, max_header_size=1 << 18)
    assert (shape, fortran, dtype) == ((3, 2), False, np.dtype(np.float64))
    with pytest.raises(ValueError, match="multiple of 64"):
        npy_header(np.float32, (1, 1), 100)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("n_rows", [0, 1, 1001])
def test_rows_are_byte_identical_to_np_save(tmp_path, dtype, n_rows):
    rows = np.random.default_rng(n_rows).standard_normal((n_rows, 5)).astype(dtype)
    path = tmp_path / "direct.npy"
    # Chunks of two pages: rows (10, 20 or 40 bytes) straddle the chunks, and the tail
    # (1001 rows: 10,010, 20,020 or 40,040 bytes) is no multiple of 4096 bytes.
    with NpyWriter(path, rows.shape, dtype, chunk_bytes=2 * ALIGNMENT, n_buffers=2) as writer:
        _write_in_blocks(writer, rows)
    assert writer.rows_written == n_rows
    np.save(tmp_path / "reference.npy", rows)
    assert _data_bytes(path) == _data_bytes(tmp_path / "reference.npy")
    assert path.stat().st_size == ALIGNMENT + rows.nbytes
    version, shape, fortran, stored, offset = _header(path)
    assert (shape, fortran, stored, offset) == ((n_rows, 5), False, np.dtype(dtype), ALIGNMENT)
    loaded = np.load(path)
    assert loaded.dtype == dtype and loaded.shape == (n_rows, 5)
    np.testing.assert_array_equal(loaded, rows)
    mapped = np.load(path, mmap_mode="r")
    assert mapped.offset == ALIGNMENT
    np.testing.assert_array_equal(mapped, rows)


def test_buffered_writer_with_a_short_header_matches_np_save_byte_for_byte(tmp_path):
    rows = np.arange(24, dtype=np.float64).reshape(6, 4)
    with NpyWriter(tmp_path / "a.npy", rows.shape, rows.dtype, direct=False, header_alignment=64) as writer:
        writer.write(rows)
    assert not writer.direct
    np.save(tmp_path / "b.npy", rows)
    assert np.array_equal(np.load(tmp_path / "a.npy"), rows)
    assert (tmp_path / "a.npy").stat().st_size == (tmp_path / "b.npy").stat().st_size == 128 + rows.nbytes


@needs_o_direct
def test_falls_back_to_buffered_writes_when_open_refuses_o_direct(tmp_path, monkeypatch):
    real_open = os.open

    def refusing_open(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument (as tmpfs on older kernels)")
        return real_open(path, flags, *args)

    monkeypatch.setattr(_direct.os, "open", refusing_open)
    rows = np.random.default_rng(1).standard_normal((3001, 7)).astype(np.float32)
    with NpyWriter(tmp_path / "a.npy", rows.shape, rows.dtype, chunk_bytes=ALIGNMENT) as writer:
        assert not writer.direct
        _write_in_blocks(writer, rows)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), rows)
    assert _header(tmp_path / "a.npy")[4] == ALIGNMENT


@needs_o_direct
def test_falls_back_to_buffered_writes_when_the_first_direct_write_fails(tmp_path, monkeypatch):
    import fcntl

    real_pwrite = os.pwrite
    refused = []

    def refusing_pwrite(fd, data, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(_direct.os, "pwrite", refusing_pwrite)
    rows = np.random.default_rng(2).standard_normal((2999, 3)).astype(np.float64)
    with NpyWriter(tmp_path / "a.npy", rows.shape, rows.dtype, chunk_bytes=ALIGNMENT, n_buffers=3) as writer:
        _write_in_blocks(writer, rows)
    assert refused == [0] and not writer.direct
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), rows)
    assert (tmp_path / "a.npy").stat().st_size == ALIGNMENT + rows.nbytes


def test_an_error_in_the_writing_thread_surfaces_in_the_caller(tmp_path, monkeypatch):
    real_pwrite = os.pwrite
    calls = []

    def failing_pwrite(fd, data, offset):
        calls.append(offset)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(_direct.os, "pwrite", failing_pwrite)
    block = np.ones((ALIGNMENT // 8, 1), np.float64)  # one chunk per write
    writer = NpyWriter(tmp_path / "a.npy", (1000 * len(block), 1), np.float64, chunk_bytes=ALIGNMENT, n_buffers=2)
    written = 0
    with pytest.raises(OSError, match="No space left") as info:
        with writer:
            for _ in range(1000):
                writer.write(block)
                written += 1
    assert info.value.errno == errno.ENOSPC
    # Raised by a later write, not only at the end: the caller stops computing rows nobody writes.
    assert written < 1000
    assert not writer._thread.is_alive() and writer._fd is None


def test_an_error_in_the_last_write_surfaces_on_close(tmp_path, monkeypatch):
    def failing_pwrite(fd, data, offset):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_direct.os, "pwrite", failing_pwrite)
    writer = NpyWriter(tmp_path / "a.npy", (3, 2), np.float32)
    writer.write(np.ones((3, 2)))
    with pytest.raises(OSError, match="Input/output error"):
        writer.close()
    assert writer._fd is None


def test_memory_stays_bounded_by_the_buffers(tmp_path, monkeypatch):
    made = []
    real_mmap = _direct.mmap.mmap

    def counting_mmap(*args, **kwargs):
        made.append(args)
        return real_mmap(*args, **kwargs)

    monkeypatch.setattr(_direct.mmap, "mmap", counting_mmap)
    rows = np.ones((200 * ALIGNMENT // 16, 4), np.float32)  # 200 chunks
    with NpyWriter(tmp_path / "a.npy", rows.shape, rows.dtype, chunk_bytes=ALIGNMENT, n_buffers=3) as writer:
        for start in range(0, len(rows), 1000):
            writer.write(rows[start:start + 1000])
    assert len(made) == 3
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy", mmap_mode="r"), rows)


def test_writer_refuses_bad_rows_and_extra_rows(tmp_path):
    with NpyWriter(tmp_path / "a.npy", (2, 3), np.float32) as writer:
        with pytest.raises(ValueError, match=r"rows of shape \(4,\) given, the file holds rows of shape \(3,\)"):
            writer.write(np.ones((1, 4)))
        with pytest.raises(ValueError, match="more rows written than the 2 announced"):
            writer.write(np.ones((3, 3)))
        writer.write(np.ones((2, 3)))
    with pytest.raises(ValueError, match="writer is closed"):
        writer.write(np.ones((1, 3)))
    with pytest.raises(ValueError, match="n_buffers must be at least 2"):
        NpyWriter(tmp_path / "b.npy", (2, 3), np.float32, n_buffers=1)


@pytest.mark.parametrize(("dtype", "row_shape"), [(np.float16, (3,)), (np.float32, (5,)), (np.float64, ()), (np.int8, (7, 3))])
def test_rows_produced_into_the_buffers_are_byte_identical_to_np_save(tmp_path, dtype, row_shape):
    # Rows of 6, 20, 8 and 21 bytes in 4096-byte buffers: some straddle two.
    rows = (np.arange(2000 * int(np.prod(row_shape)), dtype=np.float64) % 97 - 40).astype(dtype)
    rows = rows.reshape(2000, *row_shape)
    seen = []

    def produce(offset):
        def fill(part, out):
            assert out.shape == (part.stop - part.start, *row_shape) and out.dtype == dtype
            seen.append((offset + part.start, offset + part.stop))
            out[...] = rows[offset + part.start:offset + part.stop]
        return fill

    with NpyWriter(tmp_path / "a.npy", rows.shape, dtype, chunk_bytes=4096, n_buffers=2) as writer:
        writer.write(rows[:3])  # write and write_into mix
        start = 3
        for size in (0, 1, 500, 696, 800):
            writer.write_into(size, produce(start))
            start += size
    assert writer.rows_written == 2000
    # The slices cover every row once, in order; none is empty.
    assert seen[0][0] == 3 and seen[-1][1] == 2000
    assert all(a[1] == b[0] for a, b in zip(seen, seen[1:])) and all(a < b for a, b in seen)
    np.save(tmp_path / "b.npy", rows)
    assert _data_bytes(tmp_path / "a.npy") == _data_bytes(tmp_path / "b.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), rows)


def test_rows_produced_into_the_buffers_are_checked(tmp_path):
    with NpyWriter(tmp_path / "a.npy", (4, 3), np.float32) as writer:
        with pytest.raises(ValueError, match="more rows written than the 4 announced"):
            writer.write_into(5, lambda part, out: None)
        with pytest.raises(ValueError, match="n_rows must be non-negative"):
            writer.write_into(-1, lambda part, out: None)
        writer.write_into(4, lambda part, out: out.fill(1.0))
    with pytest.raises(ValueError, match="writer is closed"):
        writer.write_into(1, lambda part, out: None)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.ones((4, 3), np.float32))
    # An error while producing rows leaves the with block, which abandons the file.
    with pytest.raises(RuntimeError, match="no rows"):
        with NpyWriter(tmp_path / "b.npy", (4, 3), np.float32) as writer:
            writer.write_into(4, lambda part, out: (_ for _ in ()).throw(RuntimeError("no rows")))
    assert writer._closed


def test_transform_blocks_to_a_path_equals_transform(tmp_path):
    target, source = make_modality_gap(3001, 16, random_state=0)
    aligner = ReAlign().fit(source, y=target)
    np.save(tmp_path / "in.npy", source.astype(np.float32))
    X = np.load(tmp_path / "in.npy", mmap_mode="r")
    out = transform_blocks(aligner, X, out=tmp_path / "out.npy", block_rows=700)
    assert isinstance(out, np.memmap) and not out.flags.writeable
    assert out.dtype == np.float32 and out.shape == X.shape and out.offset == ALIGNMENT
    expected = aligner.transform(np.asarray(X))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    # A str path and the default block size give the same file.
    again = transform_blocks(aligner, X, out=str(tmp_path / "again.npy"))
    np.testing.assert_array_equal(again, out)


def test_transform_blocks_to_a_path_refuses_other_formats_and_removes_a_failed_file(tmp_path):
    target, source = make_modality_gap(500, 8, random_state=0)
    aligner = ReAlign().fit(source, y=target)
    with pytest.raises(ValueError, match="must be an .npy file"):
        transform_blocks(aligner, source, out=tmp_path / "out.parquet")
    bad = source.copy()
    bad[450] = np.nan
    with pytest.raises(ValueError):
        transform_blocks(aligner, bad, out=tmp_path / "out.npy", block_rows=100)
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("name", ["out.npy", "out.npz"])
def test_shard_writer_with_direct_io_truncates_skipped_rows(tmp_path, monkeypatch, name):
    monkeypatch.setattr(shard_io, "DIRECT_MIN_BYTES", 0)
    rows = np.random.default_rng(3).standard_normal((1000, 6)).astype(np.float32)
    path = tmp_path / name
    with ShardWriter(path, 1003, 6, np.float32, key="emb") as writer:
        writer.write(rows[:333])
        writer.write(rows[333:])
        writer.commit()
    assert output_row_count(path) == 1000
    if name == "out.npy":
        assert _header(path)[1:] == ((1000, 6), False, np.dtype(np.float32), ALIGNMENT)
        assert path.stat().st_size == ALIGNMENT + rows.nbytes
        np.testing.assert_array_equal(np.load(path), rows)
        np.testing.assert_array_equal(np.load(path, mmap_mode="r"), rows)
    else:
        with np.load(path) as archive:
            np.testing.assert_array_equal(archive["emb"], rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_shard_writer_keeps_small_shards_buffered_with_numpy_header(tmp_path):
    with ShardWriter(tmp_path / "a.npy", 10, 4, np.float64) as writer:
        assert not writer._npy.direct
        writer.write(np.ones((10, 4)))
        writer.commit()
    assert _header(tmp_path / "a.npy")[4] == 128


def test_shard_writer_abandoned_with_direct_io_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(shard_io, "DIRECT_MIN_BYTES", 0)
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path / "a.npy", 5000, 3, np.float32) as writer:
            writer.write(np.ones((2000, 3)))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_cli_transform_with_direct_io_skips_bad_rows_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shard_io, "DIRECT_MIN_BYTES", 0)
    target, source = make_modality_gap(1500, 16, random_state=1)
    source = source.astype(np.float32)
    texts = tmp_path / "texts"
    texts.mkdir()
    source[17] = np.nan
    np.save(texts / "a.npy", source[:900])
    np.save(texts / "b.npy", source[900:])
    aligner = ReAlign().fit(source[900:], y=target)
    save(aligner, tmp_path / "m.skops")
    command = ["transform", str(tmp_path / "m.skops"), "--input", str(texts), "--output", str(tmp_path / "out"),
               "--block-rows", "250", "--skip-bad-rows", "--quiet"]
    assert main(command) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out" / "a.npy"),
                               aligner.transform(np.delete(source[:900], 17, axis=0)), atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "b.npy"), aligner.transform(source[900:]), atol=1e-6)
    assert _header(tmp_path / "out" / "a.npy")[1] == (899, 16)
    # A resumed run finds both shards complete (their headers give the rows written) and writes nothing.
    before = (tmp_path / "out" / "a.npy").stat().st_mtime_ns
    capsys.readouterr()
    assert main(command[:-1] + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert "wrote 0 rows in 0 shards" in out and "2 shards already complete" in out
    assert (tmp_path / "out" / "a.npy").stat().st_mtime_ns == before
