"""Letting go of the pages of memory-mapped rows once a pass is done with them.

A memory-mapped ``.npy`` file read block by block stays resident in the
process (its pages count in the resident set) until the kernel needs the
memory, so a pass over a 12 GB file would show 12 GB resident although it
holds one block at a time.  :func:`release_pages` tells the kernel that this
process no longer needs the pages of a block (``madvise(MADV_DONTNEED)``):
they leave the resident set and stay in the page cache, so a later pass
reads them again at the cost of a page fault, never from disk while memory
lasts.  Only read-only and shared writable maps are released: their data is
the file's; a copy-on-write map would lose its private changes, so it is left
alone.
"""

import mmap

import numpy as np

_RELEASABLE_MODES = ("r", "r+", "w+", "readonly", "readwrite", "write")


def _memmap_of(array):
    obj = array
    while obj is not None:
        if isinstance(obj, np.memmap) and getattr(obj, "_mmap", None) is not None:
            return obj
        obj = getattr(obj, "base", None)
    return None


def release_pages(array, rows=None):
    """Release the pages of ``array[rows]`` (all of ``array`` when ``rows`` is None).

    A no-op unless ``array`` is (a view of) a read-only or shared
    :class:`numpy.memmap` and the rows are contiguous, and where the
    platform has no ``madvise``.

    Parameters
    ----------
    array : ndarray
        Rows, possibly a view of a memory map.
    rows : slice, default=None
        The rows done with.
    """
    if not hasattr(mmap, "MADV_DONTNEED"):
        return
    memmap = _memmap_of(array)
    if memmap is None or getattr(memmap, "mode", None) not in _RELEASABLE_MODES:
        return
    block = array if rows is None else array[rows]
    if block.size == 0 or not block.flags.c_contiguous:
        return
    region = memmap._mmap
    start_address = np.frombuffer(region, dtype=np.uint8, count=1).ctypes.data
    start = block.ctypes.data - start_address
    end = start + block.nbytes
    page = mmap.PAGESIZE
    first = (start // page) * page
    last = min(-(-end // page) * page, len(region))
    if first < 0 or last <= first:
        return
    region.madvise(mmap.MADV_DONTNEED, first, last - first)
