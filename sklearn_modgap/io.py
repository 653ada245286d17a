"""Reading and writing embedding shards: .npy, .npz and Parquet/Arrow, atomically.

A corpus is a file, a folder (searched recursively) or a glob of shards.
:func:`find_shards` lists them in a fixed order with their paths relative to
a root, so that outputs can mirror inputs; :func:`open_shard` reads one in
blocks of rows without loading it whole (.npy files are memory-mapped,
Parquet files read by record batches; an .npz member is read whole);
:class:`ShardWriter` writes one output shard into a temporary file beside
its final name and renames it into place only when every row is written, so
a final name always holds a complete shard.
"""

import glob
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from ._direct import ALIGNMENT, CHUNK_BYTES, NpyWriter
from ._pages import release_pages

NPY_SUFFIXES = (".npy",)
NPZ_SUFFIXES = (".npz",)
PARQUET_SUFFIXES = (".parquet", ".pq")
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
SHARD_SUFFIXES = NPY_SUFFIXES + NPZ_SUFFIXES + PARQUET_SUFFIXES + ARROW_SUFFIXES

# Prefix of the temporary files a writer renames into place; never read as shards.
TEMPORARY_PREFIX = ".modgap-tmp-"

# .npy outputs of at least this many bytes of rows are written with direct I/O
# behind a 4096-byte header; smaller ones through the page cache behind
# numpy's usual 64-byte-aligned header (direct I/O gains nothing there).
DIRECT_MIN_BYTES = 4 << 20

_GLOB_CHARS = re.compile(r"[*?\[]")


class Shard:
    """One input shard: where it is and how to read its rows.

    Parameters
    ----------
    path : Path
        The file.
    relative : Path
        Its path relative to the corpus root, the name of its output shard.
    key : str, default=None
        The array of an .npz file (needed when it holds more than one).
    column : str, default=None
        The list or fixed-size-list column of a Parquet/Arrow file (needed
        when it has more than one).

    Attributes
    ----------
    n_rows : int
    n_features : int
        The width of the rows; for a list column whose rows differ in
        length, the most common length (the other rows are bad rows).
    ragged : bool
        Whether some rows of a list column have another length or are missing.
    dtype : numpy dtype
        The dtype of the stored values.
    """

    def __init__(self, path, relative, *, key=None, column=None):
        self.path = Path(path)
        self.relative = Path(relative)
        self.key = key
        self.column = column
        self.suffix = self.path.suffix.lower()
        if self.suffix in NPY_SUFFIXES + NPZ_SUFFIXES:
            array = self._numpy_array()
            self.n_rows, self.n_features = array.shape
            self.dtype = array.dtype
            self.ragged = False
        else:
            self._open_arrow()

    def __repr__(self):
        return f"Shard({str(self.path)!r}, rows={self.n_rows}, features={self.n_features})"

    # ------------------------------------------------------------ numpy
    def _numpy_array(self):
        if self.suffix in NPY_SUFFIXES:
            try:
                array = np.load(self.path, mmap_mode="r", allow_pickle=False)
            except ValueError as exc:
                if "Python objects" in str(exc) or "allow_pickle" in str(exc):
                    raise ValueError(
                        f"{self.path} holds Python objects (pickled data), which are never "
                        "unpickled; save the embeddings as a numeric array."
                    ) from exc
                raise ValueError(f"{self.path} is not a numeric .npy array: {exc}") from exc
        else:
            with np.load(self.path, allow_pickle=False) as archive:
                names = list(archive.files)
                if self.key is None:
                    if len(names) != 1:
                        raise ValueError(
                            f"{self.path} holds {len(names)} arrays ({', '.join(names)}): pass --key NAME."
                        )
                    self.key = names[0]
                if self.key not in names:
                    raise ValueError(
                        f"{self.path} has no array {self.key!r}; it holds {', '.join(names) or 'none'}."
                    )
                array = archive[self.key]
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
            raise ValueError(
                f"{self.path} holds a {array.ndim}-D {array.dtype} array of shape {array.shape}; "
                "a shard must be a 2-D numeric array, one embedding per row."
            )
        return array

    # ------------------------------------------------------------ arrow
    def _open_arrow(self):
        import pyarrow as pa

        schema = self._arrow_schema()
        list_columns = [
            field.name for field in schema
            if pa.types.is_list(field.type) or pa.types.is_large_list(field.type)
            or pa.types.is_fixed_size_list(field.type)
        ]
        if self.column is None:
            if not list_columns:
                raise ValueError(
                    f"{self.path} has no list column ({', '.join(schema.names) or 'no columns'}): "
                    "a Parquet or Arrow shard holds each embedding as one list or "
                    "fixed-size-list value per row."
                )
            if len(list_columns) != 1:
                raise ValueError(
                    f"{self.path} has {len(list_columns)} list columns "
                    f"({', '.join(list_columns) or 'none'}): pass --column NAME."
                )
            self.column = list_columns[0]
        if self.column not in schema.names:
            raise ValueError(f"{self.path} has no column {self.column!r}; it has {', '.join(schema.names)}.")
        if self.column not in list_columns:
            raise ValueError(
                f"column {self.column!r} of {self.path} is {schema.field(self.column).type}, "
                "not a list or fixed-size list of numbers."
            )
        field_type = schema.field(self.column).type
        if not pa.types.is_floating(field_type.value_type) and not pa.types.is_integer(field_type.value_type):
            raise ValueError(f"column {self.column!r} of {self.path} holds {field_type.value_type}, not numbers.")
        self.dtype = np.dtype(field_type.value_type.to_pandas_dtype())
        self.ragged = False
        if pa.types.is_fixed_size_list(field_type):
            self.n_features = field_type.list_size
            self.n_rows = self._arrow_row_count()
            return
        import pyarrow.compute as pc

        lengths = []
        for batch in self._arrow_batches(1 << 16):
            lengths.append(pc.list_value_length(batch).to_numpy(zero_copy_only=False))
        lengths = np.concatenate(lengths) if lengths else np.zeros(0)
        self.n_rows = len(lengths)
        present = lengths[np.isfinite(lengths)].astype(np.int64)
        # Rows of another length than the most common one are bad rows, reported by row.
        self.n_features = int(np.bincount(present).argmax()) if len(present) else 0
        self.ragged = not (len(present) == self.n_rows and (present == self.n_features).all())

    def _arrow_schema(self):
        if self.suffix in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            return pq.read_schema(self.path)
        import pyarrow as pa

        with pa.memory_map(str(self.path)) as source:
            return pa.ipc.open_file(source).schema

    def _arrow_row_count(self):
        if self.suffix in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            return pq.ParquetFile(self.path).metadata.num_rows
        import pyarrow as pa

        with pa.memory_map(str(self.path)) as source:
            reader = pa.ipc.open_file(source)
            return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))

    def _arrow_batches(self, batch_rows):
        """The shard's column as Arrow arrays of at most ``batch_rows`` rows, in order."""
        if self.suffix in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=batch_rows, columns=[self.column]):
                yield batch.column(0)
            return
        import pyarrow as pa

        with pa.memory_map(str(self.path)) as source:
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                column = reader.get_batch(i).column(self.column)
                for start in range(0, len(column), batch_rows):
                    yield column.slice(start, batch_rows)

    # ----------------------------------------------------------- blocks
    def blocks(self, block_rows, dtype=None):
        """Yield ``(start, rows, lengths)`` over the shard, in order.

        Parameters
        ----------
        block_rows : int
            Largest number of rows per block.
        dtype : numpy dtype, default=None
            Convert the rows to this dtype (default: as stored).

        Yields
        ------
        start : int
            Row number of the block's first row in the shard.
        rows : ndarray of shape (n_block, n_features)
            The rows; a row of a list column whose length differs from the
            others' is filled with NaN.
        lengths : ndarray of shape (n_block,) or None
            For a list column with rows of different lengths, each row's
            length (-1 for a missing row); ``None`` otherwise.
        """
        dtype = np.dtype(self.dtype if dtype is None else dtype)
        if self.suffix in NPY_SUFFIXES + NPZ_SUFFIXES:
            array = self._numpy_array()
            for start in range(0, self.n_rows, block_rows):
                rows = slice(start, start + block_rows)
                yield start, self._cast(array[rows], dtype, start), None
                release_pages(array, rows)
            return
        # Values that a narrower float dtype cannot hold are read as stored, then cast with the check.
        narrowing = (
            dtype is not None and self.dtype.kind == "f" and np.dtype(dtype).kind == "f"
            and np.finfo(self.dtype).max > np.finfo(dtype).max
        )
        start = 0
        for batch in self._arrow_batches(block_rows):
            rows, lengths = _arrow_rows(batch, self.n_features, self.dtype if narrowing else dtype)
            if narrowing:
                rows = self._cast(rows, np.dtype(dtype), start)
            yield start, rows, lengths
            start += len(rows)

    def _cast(self, block, dtype, start):
        """``block`` in ``dtype``, refusing rows that the cast would turn into infinity or zero."""
        if block.dtype.kind != "f" or np.finfo(block.dtype).max <= np.finfo(dtype).max:
            return np.asarray(block, dtype=dtype)
        with np.errstate(over="ignore"):
            rows = np.asarray(block, dtype=dtype)
        stored = np.asarray(block)
        with np.errstate(invalid="ignore"):
            lost = (np.isfinite(stored).all(axis=1) & ~np.isfinite(rows).all(axis=1)) | (
                np.any(stored != 0, axis=1) & ~np.any(rows != 0, axis=1)
            )
        if lost.any():
            first = int(np.flatnonzero(lost)[0])
            largest = float(np.max(np.abs(stored[first])))
            raise ValueError(
                f"{self.path}: row {start + first} (largest |value| {largest:.3g}) is outside the "
                f"range of {dtype} and would become infinite or zero; pass --dtype float64."
            )
        return rows

    def read(self, dtype=None):
        """All rows as one array (a memory map for an .npy file stored in ``dtype``).

        Parameters
        ----------
        dtype : numpy dtype, default=None
            Convert the rows to this dtype (default: as stored).

        Returns
        -------
        rows : ndarray of shape (n_rows, n_features)
            The shard's rows.
        """
        if self.suffix in NPY_SUFFIXES and (dtype is None or np.dtype(dtype) == self.dtype):
            return self._numpy_array()
        blocks = [rows for _, rows, _ in self.blocks(1 << 16, dtype)]
        if not blocks:
            return np.zeros((0, self.n_features or 0), dtype=dtype or self.dtype)
        return np.concatenate(blocks)


def _arrow_rows(batch, n_features, dtype):
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_fixed_size_list(batch.type) and batch.null_count == 0:
        values = batch.flatten().to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=dtype).reshape(len(batch), batch.type.list_size), None
    lengths = pc.list_value_length(batch).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    if (lengths == n_features).all():
        values = pc.list_flatten(batch).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=dtype).reshape(len(batch), n_features), None
    rows = np.full((len(batch), n_features), np.nan, dtype=dtype)
    for i in np.flatnonzero(lengths == n_features):
        rows[i] = np.asarray(batch[i].values.to_numpy(zero_copy_only=False), dtype=dtype)
    return rows, lengths


def find_shards(spec, *, key=None, column=None):
    """The shards of a corpus given as a file, a folder or a glob.

    Parameters
    ----------
    spec : str or path-like
        A shard file; a folder, searched recursively for files ending in
        ``.npy``, ``.npz``, ``.parquet``/``.pq`` or ``.arrow``/``.feather``;
        or a glob pattern (``"texts/part-*.npy"``, ``"**"`` recursive).
    key : str, default=None
        The array to read from .npz files.
    column : str, default=None
        The column to read from Parquet/Arrow files.

    Returns
    -------
    shards : list of Shard
        Sorted by relative path; relative paths are taken from the file's
        folder, the folder itself, or the part of the glob before its first
        wildcard.
    """
    spec = str(spec)
    path = Path(spec)
    if path.is_file():
        root, files = path.parent, [path]
    elif path.is_dir():
        root = path
        files = [f for f in path.rglob("*") if f.is_file()]
    elif _GLOB_CHARS.search(spec):
        parts = Path(spec).parts
        fixed = next(i for i, part in enumerate(parts) if _GLOB_CHARS.search(part))
        root = Path(*parts[:fixed]) if fixed else Path(".")
        files = [Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file()]
    else:
        raise FileNotFoundError(f"no such file, folder or matching glob: {spec}")
    files = sorted(
        (f for f in files if f.suffix.lower() in SHARD_SUFFIXES and not f.name.startswith(".")),
        key=lambda f: f.relative_to(root).as_posix(),
    )
    if not files:
        raise ValueError(
            f"no shards in {spec}: expected files ending in {', '.join(SHARD_SUFFIXES)}."
        )
    return [Shard(f, f.relative_to(root), key=key, column=column) for f in files]


def bad_rows(rows, lengths=None, *, n_features, normalize=True):
    """The rows of a block an aligner cannot take, and why.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, n_columns)
        A block of rows.
    lengths : ndarray of shape (n_rows,), default=None
        Each row's stored length, for list columns of varying length.
    n_features : int
        The width every row must have.
    normalize : bool, default=True
        Whether rows are L2-normalised (then a zero row is bad).

    Returns
    -------
    bad : list of (int, str)
        Row numbers within the block and the reason, in row order.
    """
    reasons = {}
    if lengths is not None:
        for i in np.flatnonzero(lengths != n_features):
            reasons[int(i)] = (
                "is missing" if lengths[i] < 0 else f"has {lengths[i]} features, expected {n_features}"
            )
    if rows.shape[1] != n_features:
        return [(i, f"has {rows.shape[1]} features, expected {n_features}") for i in range(len(rows))]
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(rows).all(axis=1)
        zero = ~np.any(rows != 0, axis=1) if normalize else np.zeros(len(rows), bool)
    for i in np.flatnonzero(~finite):
        reasons.setdefault(int(i), "contains NaN or infinity")
    for i in np.flatnonzero(zero):
        reasons.setdefault(int(i), "has zero norm and cannot be L2-normalized")
    return sorted(reasons.items())


class ShardWriter:
    """Write one output shard atomically: a temporary file, renamed when complete.

    The output has the format of the input shard (``.npy``, ``.npz`` with the
    same key, Parquet or Arrow with the same column, as a fixed-size list).
    Rows are written in order with :meth:`write`; :meth:`commit` flushes the
    file to disk and renames it to ``path``.  Leaving the ``with`` block
    without a commit (an error, an interrupt) removes the temporary file, so
    ``path`` either holds a complete shard or does not exist.  An ``.npy``
    (or an ``.npz``'s ``.npy``) of ``DIRECT_MIN_BYTES`` or more is written
    with direct I/O by a background thread behind a header padded to 4096
    bytes (:class:`sklearn_modgap._direct.NpyWriter`).

    Parameters
    ----------
    path : Path
        The final file.
    n_rows : int
        Most rows the shard will hold (fewer when rows are skipped).
    n_features : int
    dtype : numpy dtype
    key : str, default=None
        Array name inside an .npz output.
    column : str, default=None
        Column name of a Parquet/Arrow output.
    """

    def __init__(self, path, n_rows, n_features, dtype, *, key=None, column=None):
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        self.n_rows = n_rows
        self.n_features = n_features
        self.dtype = np.dtype(dtype)
        self.key = key or "arr_0"
        self.column = column or "embedding"
        self.rows_written = 0
        self._npy = None
        self._arrow = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = self.path.with_name(f"{TEMPORARY_PREFIX}{os.getpid()}-{self.path.name}")

    def __enter__(self):
        if self.suffix in NPY_SUFFIXES + NPZ_SUFFIXES:
            npy = self.temporary if self.suffix in NPY_SUFFIXES else self.temporary.with_suffix(".npy")
            self._npy_path = npy
            shape = (self.n_rows, self.n_features)
            self._npy = _npy_writer(npy, shape, self.dtype, fsync=False)
        else:
            import pyarrow as pa

            value = pa.from_numpy_dtype(self.dtype)
            schema = pa.schema([(self.column, pa.list_(value, self.n_features))])
            if self.suffix in PARQUET_SUFFIXES:
                import pyarrow.parquet as pq

                self._arrow = pq.ParquetWriter(self.temporary, schema)
            else:
                self._arrow = pa.ipc.new_file(str(self.temporary), schema)
            self._schema = schema
        return self

    def write(self, rows):
        """Append rows after the rows written so far.

        Parameters
        ----------
        rows : array-like of shape (n, n_features)
            The next rows of the shard.
        """
        rows = np.asarray(rows, dtype=self.dtype)
        if not len(rows):
            return
        stop = self.rows_written + len(rows)
        if stop > self.n_rows:
            raise ValueError(f"{self.path}: more rows written than the {self.n_rows} announced.")
        if self._npy is not None:
            self._npy.write(rows)
        else:
            import pyarrow as pa

            values = pa.array(np.ascontiguousarray(rows).reshape(-1))
            lists = pa.FixedSizeListArray.from_arrays(values, self.n_features)
            self._arrow.write_batch(pa.record_batch([lists], schema=self._schema))
        self.rows_written = stop

    def commit(self):
        """Flush the shard to disk and move it to its final name."""
        if self._arrow is None:
            npy, self._npy = self._npy, None
            npy.close()
            if self.rows_written < self.n_rows:
                _truncate_npy(self._npy_path, self.rows_written)
            if self.suffix in NPZ_SUFFIXES:
                _store_in_npz(self._npy_path, self.temporary, self.key)
                self._npy_path.unlink()
        else:
            self._arrow.close()
            self._arrow = None
        _fsync(self.temporary)
        os.replace(self.temporary, self.path)
        _fsync(self.path.parent)

    def __exit__(self, *exc_info):
        if self._npy is not None:
            self._npy.abort()
            self._npy = None
        if self._arrow is not None:
            self._arrow.close()
            self._arrow = None
        for leftover in {self.temporary, getattr(self, "_npy_path", self.temporary)}:
            leftover.unlink(missing_ok=True)
        return False


def _npy_writer(path, shape, dtype, *, fsync):
    """A :class:`~sklearn_modgap._direct.NpyWriter`: direct I/O for large outputs, buffered for small ones."""
    data_bytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if data_bytes >= DIRECT_MIN_BYTES:
        return NpyWriter(path, shape, dtype, fsync=fsync)
    # One buffer a little larger than the file (the header is at most a few hundred bytes).
    chunk = min(CHUNK_BYTES, data_bytes + ALIGNMENT)
    return NpyWriter(path, shape, dtype, direct=False, header_alignment=64, chunk_bytes=chunk,
                     n_buffers=2, fsync=fsync)


def _truncate_npy(path, n_rows):
    """Shrink an .npy file to its first ``n_rows`` rows, keeping the header's length."""
    with open(path, "r+b") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(handle)
        offset = handle.tell()
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran,
                  "shape": (n_rows, *shape[1:])}
        text = repr(header).encode("latin1")
        prefix = 10 if version == (1, 0) else 12
        text = text + b" " * (offset - prefix - len(text) - 1) + b"\n"
        handle.seek(prefix)
        handle.write(text)
        handle.truncate(offset + n_rows * int(np.prod(shape[1:])) * dtype.itemsize)


def _store_in_npz(npy_path, npz_path, key):
    with zipfile.ZipFile(npz_path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.write(npy_path, arcname=f"{key}.npy")


def _fsync(path):
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def output_row_count(path):
    """Rows of a written output shard, read from its header or metadata."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in NPY_SUFFIXES:
        return np.load(path, mmap_mode="r").shape[0]
    if suffix in NPZ_SUFFIXES:
        with np.load(path) as archive:
            return archive[archive.files[0]].shape[0]
    if suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


def transform_blocks(aligner, X, out=None, *, block_rows=None):
    """``aligner.transform(X)`` block by block, into ``out``: out of core.

    For a memory-mapped ``X`` (``np.load(path, mmap_mode="r")``) and an
    output on disk only a few blocks of rows are in memory at a time.  The
    fastest output is a path: the substitutes are written to that ``.npy``
    file with direct I/O where the file system allows it (``O_DIRECT`` on
    Linux, else buffered writes), by a background thread while the next
    block is transformed, and the file is flushed to disk before returning;
    an aligner of this package computes its rows straight into the buffers
    that are written (and into an array ``out``'s rows), with no temporary
    output.
    A writable memory map (:func:`numpy.lib.format.open_memmap`) works too,
    at the speed of the page cache's write-back.  An aligner whose fitted
    map is not row-wise (``BlockMap.row_wise=False``: C3's noise and
    RandomTargetReplacement's draws restart their generator at every call)
    is given all rows in one call.

    Parameters
    ----------
    aligner : fitted aligner
    X : array-like of shape (n_rows, n_features)
        Source rows; a memory map stays on disk.
    out : str, path-like or ndarray of shape (n_rows, n_features), default=None
        Where to write the substitutes: a path ending in ``.npy`` (created or
        replaced; removed again if the transform fails), an array such as a
        writable memory map, or ``None`` for a new array.  The substitutes
        take the dtype ``transform`` gives (``X``'s for float32 and float64
        rows, float64 for others) unless ``out`` is an array of another.
    block_rows : int, default=None
        Rows per call of ``transform``; about 32 MiB of rows when ``None``.

    Returns
    -------
    out : ndarray of shape (n_rows, n_features)
        The substitutes: ``out`` itself for an array, a read-only memory
        map of the file for a path.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap import CentroidShift
    >>> from sklearn_modgap.io import transform_blocks
    >>> rng = np.random.default_rng(0)
    >>> texts, images = rng.normal(size=(100, 8)), rng.normal(size=(80, 8)) + 1
    >>> aligner = CentroidShift().fit(texts, y=images)
    >>> out = transform_blocks(aligner, texts, block_rows=30)
    >>> bool(np.allclose(out, aligner.transform(texts)))
    True
    """
    n_rows, n_features = X.shape
    # transform's dtype: X's if float32 or float64, else float64.
    dtype = np.dtype(X.dtype) if np.dtype(X.dtype) in (np.float32, np.float64) else np.dtype(np.float64)
    step = transform_block_rows(aligner, n_features, dtype.itemsize, block_rows)
    if isinstance(out, (str, os.PathLike)):
        return _transform_to_npy(aligner, X, Path(out), step, dtype)
    if out is None:
        out = np.empty((n_rows, n_features), dtype=dtype)
    elif out.shape != X.shape:
        raise ValueError(f"out has shape {out.shape} but X has shape {X.shape}.")
    for start in range(0, n_rows, step):
        rows = slice(start, start + step)
        _transform_rows_into(aligner, X[rows], out[rows])
        release_pages(X, rows)
        release_pages(out, rows)
    return out


def _transform_rows_into(aligner, X, out):
    """Write ``aligner.transform(X)`` into the array ``out`` (of ``X``'s shape).

    An aligner of this package whose ``transform`` is its own computes the
    rows in ``out`` itself, without a temporary output; any other
    transformer's output is copied in.

    Parameters
    ----------
    aligner : fitted transformer
    X : array-like of shape (n_rows, n_features)
    out : ndarray of shape (n_rows, n_features)
    """
    from ._base import BaseAligner

    if isinstance(aligner, BaseAligner) and type(aligner).transform is BaseAligner.transform:
        aligner._transform_into(X, out)
    else:
        out[...] = aligner.transform(X)


def _transform_to_npy(aligner, X, path, step, dtype):
    """Write ``aligner.transform(X)`` to the .npy file ``path`` block by block; a read-only map of it."""
    if path.suffix.lower() not in NPY_SUFFIXES:
        raise ValueError(
            f"out={str(path)!r}: a path output must be an .npy file (name ending in .npy); "
            "for another format pass an array and save it yourself."
        )
    if path.is_dir():
        raise ValueError(f"out={str(path)!r} is a folder, not an .npy file.")
    try:
        with NpyWriter(path, X.shape, dtype) as writer:
            for start in range(0, X.shape[0], step):
                rows = slice(start, start + step)
                block = X[rows]
                if step >= X.shape[0]:
                    # Not row-wise (or one block): one call, then a copy into the buffers.
                    writer.write(aligner.transform(block))
                else:
                    # Each row is computed in the buffer it is written from.
                    writer.write_into(
                        len(block), lambda part, out, block=block: _transform_rows_into(aligner, block[part], out)
                    )
                release_pages(X, rows)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return np.load(path, mmap_mode="r")


def transform_block_rows(aligner, n_features, itemsize, block_rows=None):
    """Rows per ``transform`` call: ``block_rows``, about 32 MiB, or all when the map is not row-wise."""
    from ._maps import is_row_wise

    if not is_row_wise(aligner):
        return np.iinfo(np.int64).max
    if block_rows is not None:
        return int(block_rows)
    return max(1024, (32 << 20) // max(1, n_features * itemsize))
