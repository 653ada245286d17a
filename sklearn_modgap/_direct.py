"""Writing a .npy file with direct I/O, the writes overlapped with the caller's work.

Writing a large output through the page cache is bound by the kernel's
copying and write-back of dirty pages, while direct I/O (``O_DIRECT``: the
device reads the process's buffer itself) skips both (12.3 GB written and
flushed in ``benchmarks/bench_outofcore.py``: 0.65 GB/s buffered, 3.35 GB/s
direct, with a warm page cache).  :class:`NpyWriter` writes a ``.npy`` file that way:

* the header is padded with spaces (which numpy's format allows) so that the
  rows start at a 4096-byte-aligned offset: the file is written from offset 0
  in whole aligned chunks, and a memory map of the rows starts on a page;
* rows are copied into page-aligned buffers (anonymous memory maps) of a few
  MiB, or computed straight into them (:meth:`NpyWriter.write_into`, which
  saves the copy), and each full buffer is handed to a background thread that
  writes it (``os.pwrite`` releases the GIL), so the caller computes the next rows while
  the previous ones are written; the buffers are few and reused, so memory
  stays bounded whatever the file's size;
* the last buffer is padded with zeros to the alignment, written, and the file
  cut to its exact size (``os.ftruncate``) and flushed (``os.fsync``).

Where the platform has no ``O_DIRECT`` or the file system refuses it (tmpfs
answers ``EINVAL`` on open, some file systems on the first write), the file is
written with ordinary buffered writes instead, from the same thread.
"""

import errno
import mmap
import os
import queue
import struct
import threading

import numpy as np

# Offset of the rows and unit of every direct write: a multiple of the logical
# block size of common devices (512 or 4096 bytes) and of the page size.
ALIGNMENT = 4096
# Size of each buffer handed to the writing thread, and their number: one is
# filled while the others are queued or being written.
CHUNK_BYTES = 16 << 20
N_BUFFERS = 4

_MAGIC = b"\x93NUMPY"


def npy_header(dtype, shape, alignment=ALIGNMENT):
    """The bytes of a .npy header padded to a multiple of ``alignment``.

    Format 1.0 where the header fits its 2-byte length field, 2.0 otherwise;
    numpy reads either (``np.load``, ``mmap_mode="r"`` included).

    Parameters
    ----------
    dtype : numpy dtype
        The dtype of the rows (C order).
    shape : tuple of int
        The array's shape.
    alignment : int, default=4096
        The header's length is a multiple of it (and of 64, numpy's own).

    Returns
    -------
    header : bytes
        Magic string, version, length and the padded header text.
    """
    if alignment % 64:
        raise ValueError(f"alignment must be a multiple of 64, got {alignment}.")
    text = repr({
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": tuple(int(n) for n in shape),
    }).encode("latin1")
    for version, length_format in (((1, 0), "<H"), ((2, 0), "<I")):
        prefix = len(_MAGIC) + 2 + struct.calcsize(length_format)
        total = -(-(prefix + len(text) + 1) // alignment) * alignment
        if total - prefix < 1 << (8 * struct.calcsize(length_format)):
            break
    padding = b" " * (total - prefix - len(text) - 1)
    return (_MAGIC + bytes(version) + struct.pack(length_format, total - prefix)
            + text + padding + b"\n")


class NpyWriter:
    """Write a C-ordered .npy file row block by row block, with direct I/O where possible.

    Use it as a context manager: leaving the ``with`` block normally closes
    the file (:meth:`close`), leaving it by an exception abandons it
    (:meth:`abort`; the caller removes the file).

    Parameters
    ----------
    path : path-like
        The file, created or truncated.
    shape : tuple of int
        The array's shape written in the header; rows are ``shape[1:]``.
    dtype : numpy dtype
        The dtype of the rows.
    direct : bool, default=True
        Try ``O_DIRECT`` (Linux); ``False`` writes through the page cache.
    header_alignment : int, default=ALIGNMENT
        The header is padded to a multiple of it, so the rows start there
        (64, numpy's own, for a small file whose header should stay short).
    chunk_bytes : int, default=CHUNK_BYTES
        Bytes per write (rounded up to a multiple of ``ALIGNMENT``).
    n_buffers : int, default=N_BUFFERS
        Buffers of ``chunk_bytes``: the memory the writer holds.
    fsync : bool, default=True
        Flush the file to disk on :meth:`close`.

    Attributes
    ----------
    direct : bool
        Whether the file is (still) written with direct I/O.
    rows_written : int
        Rows written so far.
    header_bytes : int
        Offset of the first row in the file.
    """

    def __init__(self, path, shape, dtype, *, direct=True, header_alignment=ALIGNMENT,
                 chunk_bytes=CHUNK_BYTES, n_buffers=N_BUFFERS, fsync=True):
        self.path = os.fspath(path)
        self.shape = tuple(int(n) for n in shape)
        if not self.shape or min(self.shape) < 0:
            raise ValueError(f"shape must have at least one axis and no negative length, got {shape}.")
        self.dtype = np.dtype(dtype)
        if self.dtype.hasobject or self.dtype.fields is not None:
            raise ValueError(f"NpyWriter writes numeric rows, not {self.dtype}.")
        if n_buffers < 2:
            raise ValueError(f"n_buffers must be at least 2 (one filled while one is written), got {n_buffers}.")
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self.chunk_bytes = max(ALIGNMENT, -(-int(chunk_bytes) // ALIGNMENT) * ALIGNMENT)
        self.fsync = fsync
        header = npy_header(self.dtype, self.shape, header_alignment)
        self.header_bytes = len(header)
        self.rows_written = 0
        self.direct = False
        self._fd = None
        self._closed = False
        self._error = None
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
        if direct and hasattr(os, "O_DIRECT"):
            try:
                self._fd = os.open(self.path, flags | os.O_DIRECT, 0o666)
                self.direct = True
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
        if self._fd is None:
            self._fd = os.open(self.path, flags, 0o666)
        self._free = queue.Queue()
        for _ in range(n_buffers):
            self._free.put(mmap.mmap(-1, self.chunk_bytes))
        self._pending = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="npy-writer", daemon=True)
        self._thread.start()
        self._buffer = self._free.get()
        self._fill = 0
        self._offset = 0  # file offset of the buffer being filled
        self._put(memoryview(header))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    # ------------------------------------------------------------ caller
    def write(self, rows):
        """Append rows after the rows written so far.

        Parameters
        ----------
        rows : array-like of shape (n, *shape[1:])
            The next rows, converted to the writer's dtype.
        """
        if self._closed:
            raise ValueError(f"{self.path}: the writer is closed.")
        self._raise_error()
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.ndim != len(self.shape) or rows.shape[1:] != self.row_shape:
            raise ValueError(
                f"{self.path}: rows of shape {rows.shape[1:]} given, the file holds rows of shape {self.row_shape}."
            )
        if self.rows_written + len(rows) > self.shape[0]:
            raise ValueError(f"{self.path}: more rows written than the {self.shape[0]} announced.")
        if rows.size:
            self._put(memoryview(rows.reshape(-1)).cast("B"))
        self.rows_written += len(rows)

    def write_into(self, n_rows, produce):
        """Append ``n_rows`` rows that ``produce`` computes straight into the writer's buffers.

        ``produce(rows, out)`` is called with consecutive slices ``rows`` that
        cover ``range(n_rows)`` in order and an array ``out`` of shape
        ``(len(rows), *shape[1:])`` in the writer's dtype, which it must fill:
        the rows are computed where they are written from, without the copy
        of :meth:`write`.  ``out`` is part of a buffer that is handed to the
        writing thread afterwards: ``produce`` must not keep it.  A row that
        would straddle two buffers is produced into a temporary and copied.

        Parameters
        ----------
        n_rows : int
            Rows to append.
        produce : callable
            ``produce(rows, out) -> None``.
        """
        if self._closed:
            raise ValueError(f"{self.path}: the writer is closed.")
        self._raise_error()
        n_rows = int(n_rows)
        if n_rows < 0:
            raise ValueError(f"{self.path}: n_rows must be non-negative, got {n_rows}.")
        if self.rows_written + n_rows > self.shape[0]:
            raise ValueError(f"{self.path}: more rows written than the {self.shape[0]} announced.")
        items = self.row_bytes // self.dtype.itemsize
        done = 0
        while done < n_rows:
            room = (self.chunk_bytes - self._fill) // self.row_bytes if self.row_bytes else n_rows
            n = min(room, n_rows - done)
            rows = slice(done, done + max(n, 1))
            if n == 0:
                # The buffer's tail is shorter than a row.
                row = np.empty((1, *self.row_shape), dtype=self.dtype)
                produce(rows, row)
                self._put(memoryview(row.reshape(-1)).cast("B"))
                n = 1
            else:
                out = np.frombuffer(self._buffer, dtype=self.dtype, count=n * items, offset=self._fill)
                produce(rows, out.reshape(n, *self.row_shape))
                del out
                self._fill += n * self.row_bytes
                if self._fill == self.chunk_bytes:
                    self._hand_off()
            done += n
            self.rows_written += n

    def close(self):
        """Write the rows left in the buffer, cut the file to its size, flush it and close it.

        A file closed with fewer rows than its header announces holds them
        all, but its header still gives the announced shape.
        """
        if self._closed:
            return
        size = self._offset + self._fill
        try:
            if self._fill:
                length = self._fill
                if self.direct:
                    length = -(-length // ALIGNMENT) * ALIGNMENT
                    self._buffer[self._fill:length] = bytes(length - self._fill)
                self._pending.put((self._buffer, self._offset, length))
                self._buffer = None
            self._stop()
            self._raise_error()
            os.ftruncate(self._fd, size)
            if self.fsync:
                os.fsync(self._fd)
        except BaseException:
            self.abort()
            raise
        self._release()

    def abort(self):
        """Stop writing and close the file, leaving it incomplete (errors are dropped)."""
        if self._closed:
            return
        self._error = self._error or _Aborted()
        self._stop()
        self._release()

    # ----------------------------------------------------------- helpers
    def _put(self, data):
        start = 0
        while start < len(data):
            n = min(len(data) - start, self.chunk_bytes - self._fill)
            self._buffer[self._fill:self._fill + n] = data[start:start + n]
            self._fill += n
            start += n
            if self._fill == self.chunk_bytes:
                self._hand_off()

    def _hand_off(self):
        """Queue the full buffer for the writing thread and take a free one."""
        self._pending.put((self._buffer, self._offset, self._fill))
        self._offset += self._fill
        self._fill = 0
        # Blocks while every buffer is queued: memory stays bounded.
        self._buffer = self._free.get()
        self._raise_error()

    def _raise_error(self):
        error = self._error
        if error is not None and not isinstance(error, _Aborted):
            raise error

    def _stop(self):
        if self._thread.is_alive():
            self._pending.put(None)
            self._thread.join()

    def _release(self):
        self._closed = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._buffer = None
        while not self._free.empty():
            buffer = self._free.get()
            try:
                buffer.close()
            except BufferError:  # a view still refers to it; freed with the view
                pass

    # ------------------------------------------------------------ thread
    def _run(self):
        while True:
            item = self._pending.get()
            if item is None:
                return
            buffer, offset, length = item
            if self._error is None:
                try:
                    self._write_at(buffer, offset, length)
                except BaseException as exc:  # surfaced in the caller's thread
                    self._error = exc
            self._free.put(buffer)

    def _write_at(self, buffer, offset, length):
        view = memoryview(buffer)
        done = 0
        while done < length:
            try:
                written = os.pwrite(self._fd, view[done:length], offset + done)
            except OSError as exc:
                if exc.errno == errno.EINVAL and self.direct:
                    self._drop_direct()
                    continue
                raise
            if written <= 0:
                raise OSError(errno.EIO, f"{self.path}: the write stopped after {offset + done} bytes")
            done += written

    def _drop_direct(self):
        """Reopen the file for buffered writes: the file system refused a direct write."""
        descriptor = os.open(self.path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
        os.close(self._fd)
        self._fd = descriptor
        self.direct = False


class _Aborted(Exception):
    """Marks a writer abandoned by its caller: queued buffers are dropped, not written."""
