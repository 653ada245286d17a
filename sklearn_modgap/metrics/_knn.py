"""k-nearest-neighbour back-ends of the neighbourhood metrics.

Rows reaching these functions are unit-norm, so Euclidean and cosine rankings
agree.

``"exact"`` is scikit-learn's brute-force
:class:`~sklearn.neighbors.NearestNeighbors`, which streams distance blocks
through BLAS and keeps only the ``k`` best per row: no ``n x n`` matrix is
ever built, and its cost is the ``2 n^2 d`` flops of the distances.

``"approximate"`` (for large ``n``) is an inverted file scanned with matrix
products, written for this module with torch: a seeded k-means cuts the rows
searched into about ``_CELLS_PER_SQRT_ROW * sqrt(n)`` cells, each query
picks the ``_PROBES`` cells nearest to it, and the queries are grouped by
their nearest cell so that each group is scored against the union of its
members' cells by one matrix product (in bfloat16 where the processor runs
it faster than float32, as with AMX). The ``k + _SPARE`` best candidates of
each query are then re-scored with exact cosines. Cells are at least
``_MIN_ROWS_PER_CELL`` rows, so a small pool is one cell that every query
scans. Chosen by measurement (CLIP-like embeddings from
``make_modality_gap``, d=512, k=20, two cores, ``benchmarks/bench_knn.py``),
as a fraction of the exact search's time in the same run: pynndescent's
NN-descent reached a neighbour recall of 0.93 at 1.4x and faiss's HNSW graph
(M=16, efSearch=64) 0.95 at 0.39x on a 40,000-row pool; a faiss inverted
file on 192 principal axes with exact re-scoring 0.96 at 0.32x (a 40,000-row
pool searched for 20,000 rows, 3.0 s against 9.3 s), most of it spent in
faiss's per-query scanning; this grouped scan 0.986 at 0.16x (1.4 s against
8.7 s). Probing per query instead (each cell scored against the queries that
probe it, the scores scattered into per-query rows) scans far fewer rows but
reached only 0.93 at 16 probes in the same time: the union of a group's
cells is what buys the recall, and selecting and re-scoring, not the
products, is what costs here. The scanned share falls like ``1 / sqrt(n)``,
so the cost grows like ``n^1.5``.
"""

import time
import warnings

import numpy as np
from sklearn.neighbors import NearestNeighbors

KNN_METHODS = ("exact", "approximate")

# Chosen on CLIP-like synthetic embeddings (d=512, k=20, benchmarks/bench_knn.py).
_CELLS_PER_SQRT_ROW = 1.25
_MIN_ROWS_PER_CELL = 64
_PROBES = 12  # cells scanned per query
_SPARE = 8  # candidates re-scored beyond the k wanted
_KMEANS_ITERATIONS = 8
_TRAINING_ROWS_PER_CELL = 64
_KMEANS_SEED = 0
_BLOCK_ROWS = 8192
_MEMBERS_PER_PRODUCT = 256  # query rows per product, bounding the score buffer
_SCANNED_PER_PRODUCT = 32768  # scanned rows per product, bounding the row buffer
_TILE_ROWS = 64
_TILE_COLUMNS = 1024


def check_k(k, n_candidates, *, what):
    """Refuse a neighbourhood larger than the candidates available."""
    if k > n_candidates:
        raise ValueError(
            f"k={k} is larger than the {n_candidates} candidate neighbour(s) of {what}; "
            f"use k <= {n_candidates}."
        )


def _exact_index(data):
    return NearestNeighbors(algorithm="brute", metric="euclidean").fit(data)


def query_neighbors(data, queries, k, *, knn="exact"):
    """Indices of the ``k`` rows of ``data`` nearest to each query row."""
    if knn == "approximate":
        return _approximate(data, queries, k)
    return _exact_index(data).kneighbors(queries, n_neighbors=k, return_distance=False)


def self_neighbors(data, k, rows=None, *, knn="exact"):
    """Indices of the ``k`` nearest *other* rows of ``data``, for each of ``rows``.

    Parameters
    ----------
    data : ndarray of shape (n, d)
        The pool searched.
    k : int
        Neighbours per row, at most ``n - 1``.
    rows : slice or None
        The rows of ``data`` whose neighbours are wanted; all rows when None.
    knn : {"exact", "approximate"}
        The back-end.

    Returns
    -------
    indices : ndarray of shape (n_rows, k)
        Indices into ``data``; a row never lists itself.
    """
    if knn == "approximate":
        return _approximate(data, None, k, rows=slice(None) if rows is None else rows)
    index = _exact_index(data)
    if rows is None:
        return index.kneighbors(n_neighbors=k, return_distance=False)
    found = index.kneighbors(data[rows], n_neighbors=k + 1, return_distance=False)
    return drop_self(found, np.arange(data.shape[0])[rows])


def drop_self(found, own):
    """Remove each row's own index from ``k + 1`` candidates, keeping ``k``.

    With exact duplicates a row's own index may be crowded out of its
    candidates; the farthest candidate is dropped then.
    """
    keep = found != own[:, None]
    keep[keep.all(axis=1), -1] = False
    return found[keep].reshape(found.shape[0], found.shape[1] - 1)


_SCAN_DTYPE = None


def _scan_dtype():
    """bfloat16 where this processor multiplies it faster than float32, else float32."""
    global _SCAN_DTYPE
    if _SCAN_DTYPE is None:
        import torch

        a, b = torch.ones(1024, 512), torch.ones(512, 2048)
        seconds = {}
        for dtype in (torch.float32, torch.bfloat16):
            x, y = a.to(dtype), b.to(dtype)
            x @ y
            start = time.perf_counter()
            for _ in range(3):
                x @ y
            seconds[dtype] = time.perf_counter() - start
        _SCAN_DTYPE = min(seconds, key=seconds.get)
    return _SCAN_DTYPE


def _nearest_cells(rows, centres, dtype, n_nearest=1):
    """Indices of the ``n_nearest`` cells nearest to each row, nearest first.

    Scores ``x . c - |c|^2 / 2`` (larger is nearer; rows are unit-norm) block
    by block into buffers reused across blocks: a new score array per block,
    freed between long-lived small results, made the process's memory grow by
    0.6 GiB over 400,000 rows.
    """
    import torch

    half_norms = 0.5 * (centres * centres).sum(1)
    centres_t = centres.to(dtype).T
    n_rows, n_cells = rows.shape[0], centres.shape[0]
    nearest = torch.empty((n_rows, n_nearest), dtype=torch.long)
    step = min(_BLOCK_ROWS, n_rows)
    products = torch.empty((step, n_cells), dtype=dtype)
    scores = torch.empty((step, n_cells), dtype=torch.float32)
    values = torch.empty((step, n_nearest), dtype=torch.float32)
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        size = stop - start
        torch.matmul(rows[start:stop].to(dtype), centres_t, out=products[:size])
        scores[:size].copy_(products[:size]).sub_(half_norms)
        if n_nearest == 1:
            torch.argmax(scores[:size], 1, keepdim=True, out=nearest[start:stop])
        else:
            torch.topk(scores[:size], n_nearest, dim=1, out=(values[:size], nearest[start:stop]))
    return nearest


def _kmeans(data, n_cells, dtype, generator):
    import torch

    n_rows = data.shape[0]
    sample = data[torch.randperm(n_rows, generator=generator)[: _TRAINING_ROWS_PER_CELL * n_cells]]
    sample = sample.float()
    centres = sample[torch.randperm(sample.shape[0], generator=generator)[:n_cells]].clone()
    for _ in range(_KMEANS_ITERATIONS):
        nearest = _nearest_cells(sample, centres, dtype)[:, 0]
        sums = torch.zeros_like(centres).index_add_(0, nearest, sample)
        counts = torch.bincount(nearest, minlength=n_cells).float()
        # an emptied cell keeps its centre
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
    return centres


def _as_tensor(array):
    """A torch view of ``array`` (read-only arrays too: it is never written)."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.ascontiguousarray(array))


def _round_up(n, step):
    return -(-n // step) * step


def _padded(index, step):
    """``index`` lengthened to a multiple of ``step`` by repeating its first entry."""
    import torch

    extra = _round_up(index.shape[0], step) - index.shape[0]
    return torch.cat([index, index[:1].expand(extra)]) if extra else index


def _scan_group(asked_rows, sorted_rows, scanned, n_best, block_buffer, score_buffer):
    """Positions in ``sorted_rows`` of the ``n_best`` best of ``scanned`` for each query row.

    The scanned rows are gathered ``_SCANNED_PER_PRODUCT`` at a time (each
    query keeping its best so far) and the queries, already padded to a
    multiple of ``_TILE_ROWS``, go ``_MEMBERS_PER_PRODUCT`` at a time, into
    the two buffers.
    """
    import torch

    n_asked = asked_rows.shape[0]
    best_scores = best_rows = None
    for first in range(0, scanned.shape[0], _SCANNED_PER_PRODUCT):
        part = scanned[first : first + _SCANNED_PER_PRODUCT]
        n_part, n_columns = part.shape[0], _round_up(part.shape[0], _TILE_COLUMNS)
        block = torch.index_select(
            sorted_rows, 0, _padded(part, _TILE_COLUMNS), out=block_buffer[:n_columns]
        )
        n_part_best = min(n_best, n_part)
        part_scores = torch.empty((n_asked, n_part_best), dtype=block.dtype)
        part_rows = torch.empty((n_asked, n_part_best), dtype=torch.long)
        for start in range(0, n_asked, _MEMBERS_PER_PRODUCT):
            n_rows = min(_MEMBERS_PER_PRODUCT, n_asked - start)
            members = slice(start, start + n_rows)
            scores = score_buffer[: n_rows * n_columns].view(n_rows, n_columns)
            torch.matmul(asked_rows[members], block.T, out=scores)
            scores[:, n_part:] = -torch.inf  # the block's padding repeats a row
            torch.topk(
                scores, n_part_best, dim=1, sorted=False,
                out=(part_scores[members], part_rows[members]),
            )
        part_rows = part[part_rows]
        if best_scores is None:
            best_scores, best_rows = part_scores, part_rows
        else:
            merged_scores = torch.cat([best_scores, part_scores], 1)
            kept = torch.topk(merged_scores, n_best, dim=1, sorted=False).indices
            best_scores = torch.gather(merged_scores, 1, kept)
            best_rows = torch.gather(torch.cat([best_rows, part_rows], 1), 1, kept)
    return best_rows


def _approximate(data, queries, k, *, rows=None):
    """Grouped inverted-file k-NN scored by matrix products, re-scored with exact cosines.

    ``queries=None`` searches ``data`` for its own rows ``rows`` (a slice),
    excluding each row itself.
    """
    import torch

    dtype = _scan_dtype()
    searched = _as_tensor(data)
    asked = searched[rows] if queries is None else _as_tensor(queries)
    n_data, n_asked = searched.shape[0], asked.shape[0]
    n_cells = int(min(round(_CELLS_PER_SQRT_ROW * np.sqrt(n_data)), n_data // _MIN_ROWS_PER_CELL))
    n_cells = max(n_cells, 1)
    n_probes = min(_PROBES, n_cells)
    n_kept = min(k + _SPARE + (queries is None), n_data)

    generator = torch.Generator().manual_seed(_KMEANS_SEED)
    centres = _kmeans(searched, n_cells, dtype, generator)
    cell = _nearest_cells(searched, centres, dtype)[:, 0]
    probes = _nearest_cells(asked, centres, dtype, n_probes)
    # The rows searched, sorted by cell, in the scanning precision.
    order = torch.argsort(cell, stable=True)
    bounds = np.zeros(n_cells + 1, dtype=np.int64)
    bounds[1:] = np.cumsum(torch.bincount(cell, minlength=n_cells).numpy())
    sorted_rows = torch.empty(searched.shape, dtype=dtype)
    for start in range(0, n_data, _BLOCK_ROWS):
        sorted_rows[start : start + _BLOCK_ROWS] = searched[order[start : start + _BLOCK_ROWS]]
    del cell

    candidates = np.full((n_asked, n_kept), -1, dtype=np.int64)
    groups = torch.argsort(probes[:, 0], stable=True).numpy()
    group_bounds = np.zeros(n_cells + 1, dtype=np.int64)
    group_bounds[1:] = np.cumsum(torch.bincount(probes[:, 0], minlength=n_cells).numpy())
    probes = probes.numpy()
    order = order.numpy()
    cell_sizes = np.diff(bounds)
    members_of = [groups[group_bounds[g] : group_bounds[g + 1]] for g in range(n_cells)]
    scanned_cells = [np.unique(probes[members]) for members in members_of]
    # One buffer for the scanned rows and one for the scores, reused by every
    # group, so memory stays bounded whatever the size of a union.  Products
    # have a few shapes (queries padded to a multiple of _TILE_ROWS,
    # scanned rows to one of _TILE_COLUMNS): oneDNN compiles and caches a
    # kernel, with its own scratch memory, for every new shape, and one shape
    # per group had cost about 1 ms and 1 MiB each.
    largest = max(int(cell_sizes[cells].sum()) for cells in scanned_cells)
    largest = _round_up(min(largest, _SCANNED_PER_PRODUCT), _TILE_COLUMNS)
    block_buffer = torch.empty((largest, searched.shape[1]), dtype=dtype)
    score_buffer = torch.empty(_MEMBERS_PER_PRODUCT * largest, dtype=dtype)
    for group_members, cells in zip(members_of, scanned_cells):
        if group_members.size == 0:
            continue
        scanned = torch.from_numpy(
            np.concatenate([np.arange(bounds[c], bounds[c + 1]) for c in cells])
        )
        n_best = min(n_kept, scanned.shape[0])
        asked_rows = asked.index_select(0, _padded(torch.from_numpy(group_members), _TILE_ROWS))
        best_rows = _scan_group(
            asked_rows.to(dtype), sorted_rows, scanned, n_best, block_buffer, score_buffer
        )
        candidates[group_members, :n_best] = order[best_rows[: group_members.size].numpy()]
    del sorted_rows, block_buffer, score_buffer

    if queries is None:
        own = np.arange(n_data)[rows]
        candidates[candidates == own[:, None]] = -1
        found = _rescore(data, data[rows], candidates, k)
    else:
        found = _rescore(data, queries, candidates, k)
    # Rows whose scanned cells held fewer than k candidates get an exact search.
    short = np.flatnonzero((found < 0).any(axis=1))
    if short.size:
        if queries is None:
            exact = _exact_index(data).kneighbors(
                data[own[short]], n_neighbors=k + 1, return_distance=False
            )
            found[short] = drop_self(exact, own[short])
        else:
            found[short] = query_neighbors(data, queries[short], k)
    return found


def _rescore(data, queries, candidates, k):
    """The ``k`` candidates of highest exact cosine, nearest first (missing ones last)."""
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    step = max(1, 2**22 // (candidates.shape[1] * data.shape[1]))
    for start in range(0, queries.shape[0], step):
        rows = slice(start, start + step)
        block = candidates[rows]
        cosines = np.einsum("id,ikd->ik", queries[rows], data[np.maximum(block, 0)])
        cosines[block < 0] = -np.inf
        order = np.argsort(-cosines, axis=1, kind="stable")[:, :k]
        out[rows] = np.take_along_axis(block, order, 1)
    return out
