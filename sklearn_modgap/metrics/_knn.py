"""k-nearest-neighbour back-ends of the neighbourhood metrics.

Rows reaching these functions are unit-norm, so Euclidean and cosine rankings
agree.

``"exact"`` is scikit-learn's brute-force
:class:`~sklearn.neighbors.NearestNeighbors`, which streams distance blocks
through BLAS and keeps only the ``k`` best per row: no ``n x n`` matrix is
ever built, and its cost is the ``2 n^2 d`` flops of the distances.

``"approximate"`` (for large ``n``) is an inverted file scanned with matrix
products, written for this module with torch and numba:

1. The rows are rotated onto the leading axes of their uncentred second
   moment (the rows searched and, for a search of other rows, the queries,
   each weighing equally) that hold ``_SCAN_ENERGY`` of it, and cast to
   bfloat16 where the processor has bfloat16 dot-product instructions
   (AMX-BF16 or AVX-512 BF16, read from its CPUID bits, so the choice is the
   same in every run), float32 elsewhere.  Scores of the scan are therefore approximate; on CLIP-like
   embeddings 256 of 512 axes hold 94%.
2. A seeded spherical k-means cuts the rows searched into about
   ``_CELLS_PER_SQRT_ROW * sqrt(n)`` cells of at least
   ``_MIN_ROWS_PER_CELL`` rows (a small pool is one cell that every query
   scans).
3. Each query picks its ``_PROBES`` (a row of the pool searched) or
   ``_QUERY_PROBES`` (a row of another set) nearest cells; queries are
   grouped by their nearest cell and each group is scored against the union
   of its members' cells by one matrix product.
4. A compiled loop (:mod:`._knn_kernels`) keeps each query's ``k + _SPARE``
   best scores straight from the product's bits, reading most of them only
   through a vectorised maximum of column groups.
5. Those candidates are re-scored with exact dot products of the original
   rows, and the best ``k`` kept.

Chosen by measurement (CLIP-like embeddings from ``make_modality_gap``,
d=512, k=20, two cores, ``benchmarks/bench_knn.py``), as a fraction of the
exact search's time in the same run: pynndescent's NN-descent reached a
neighbour recall of 0.93 at 1.4x and faiss's HNSW graph (M=16,
efSearch=64) 0.95 at 0.39x on a 40,000-row pool; a faiss inverted file on
192 principal axes with exact re-scoring 0.96 at 0.32x, most of it spent in
faiss's per-query scanning.  The grouped scan with torch's top-k selection
and numpy re-scoring reached 0.986 at 0.16x, its selection costing as much
as its products; the compiled selection and re-scoring, the scan on the
principal axes and the spherical cells bring it to 0.98 at 0.06x-0.09x
(in a 20,000-row self-search the scan's products, gathers and selection
take about 60% of the time, k-means, cell assignment, axes and re-scoring
the rest).
Probing per query instead (each cell scored against the queries that probe
it) scans far fewer rows but reached only 0.93 at 16 probes: the union of a
group's cells is what buys the recall.  The scanned share falls like
``1 / sqrt(n)``, so the cost grows like ``n^1.5``.
"""

import warnings

import numpy as np
from sklearn.neighbors import NearestNeighbors


KNN_METHODS = ("exact", "approximate")

# Chosen on CLIP-like synthetic embeddings (d=512, k=20, benchmarks/bench_knn.py).
_CELLS_PER_SQRT_ROW = 1.25
_MIN_ROWS_PER_CELL = 64
# Cells probed per query: by a row of the pool searched, and by a row of
# another set (its partner, which retrieval counts, is often a far neighbour).
_PROBES = 10
_QUERY_PROBES = 14
_SPARE = 24  # candidates re-scored beyond the k wanted
_KMEANS_ITERATIONS = 5
_TRAINING_ROWS_PER_CELL = 40
_KMEANS_SEED = 0
_BLOCK_ROWS = 8192
_MEMBERS_PER_PRODUCT = 256  # query rows per product, bounding the score buffer
_SCANNED_PER_PRODUCT = 32768  # scanned rows per product, bounding the row buffer
_TILE_ROWS = 64
_TILE_COLUMNS = 1024
_SCAN_ENERGY = 0.94
_MOMENT_ROWS = 4096
_AXES_STEP = 32
_MAX_AXES_SHARE = 0.75


def check_k(k, n_candidates, *, what):
    """Refuse a neighbourhood larger than the candidates available."""
    if n_candidates < 1:
        raise ValueError(
            f"k-NN measures need at least 2 rows, but {what} has no candidate "
            "neighbour: pass more rows."
        )
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


def _bfloat16_matmul_in_hardware(features):
    """Whether the processor's features include bfloat16 dot-product instructions.

    ``features`` maps feature names to flags, as ``torch._C._cpu._get_cpu_capability()``
    reports them (from the CPUID bits).  AMX tiles (``amx_bf16``) and
    AVX-512 BF16 (``avx512_bf16``) multiply bfloat16 natively; without them
    oneDNN converts to float32 and a bfloat16 product is no faster.
    """
    return bool(features.get("amx_bf16") or features.get("avx512_bf16"))


def _scan_dtype():
    """The dtype of the scan's products, fixed by the processor's features.

    bfloat16 where the processor has bfloat16 dot-product instructions (see
    :func:`_bfloat16_matmul_in_hardware`), float32 elsewhere: a rule on the
    CPUID bits rather than a timing, so every run on one machine searches
    alike, whatever the load.
    """
    global _SCAN_DTYPE
    if _SCAN_DTYPE is None:
        import torch

        try:
            features = torch._C._cpu._get_cpu_capability()
        except (AttributeError, RuntimeError):
            features = {}
        _SCAN_DTYPE = torch.bfloat16 if _bfloat16_matmul_in_hardware(features) else torch.float32
    return _SCAN_DTYPE


def _nearest_cells(rows, centres, n_nearest=1):
    """Indices of the ``n_nearest`` cells nearest to each row, nearest first.

    ``rows`` and ``centres`` are unit-norm and in the scanning precision, so
    the nearest centres are those of largest dot product.  Products go block
    by block into one buffer reused across blocks: a new array per block,
    freed between long-lived small results, made the process's memory grow by
    0.6 GiB over 400,000 rows.
    """
    import torch

    from ._knn_kernels import score_bits, top_columns

    centres_t = centres.T
    n_rows, n_cells = rows.shape[0], centres.shape[0]
    nearest = np.empty((n_rows, n_nearest), dtype=np.int64)
    step = min(_BLOCK_ROWS, n_rows)
    products = torch.empty((step, n_cells), dtype=rows.dtype)
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        torch.matmul(rows[start:stop], centres_t, out=products[: stop - start])
        top_columns(*score_bits(products), stop - start, n_cells, nearest[start:stop])
    return nearest


def _kmeans(rows, n_cells, generator):
    """Centres of a seeded spherical k-means of a sample of ``rows`` (unit-norm rows).

    Each centre is the normalised mean of its rows, in ``rows``' dtype.
    """
    import torch

    n_rows = rows.shape[0]
    sample = rows[torch.randperm(n_rows, generator=generator)[: _TRAINING_ROWS_PER_CELL * n_cells]]
    centres = sample[torch.randperm(sample.shape[0], generator=generator)[:n_cells]].clone()
    for _ in range(_KMEANS_ITERATIONS):
        nearest = torch.from_numpy(_nearest_cells(sample, centres)[:, 0])
        sums = torch.zeros(centres.shape, dtype=torch.float32)
        sums.index_add_(0, nearest, sample.float())
        norms = torch.linalg.vector_norm(sums, dim=1, keepdim=True)
        # an emptied cell keeps its centre
        centres = torch.where(norms > 0, sums / norms.clamp(min=1e-30), centres.float())
        centres = centres.to(rows.dtype)
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


def _rows_of(cells, bounds, cell_sizes):
    """Positions of the rows of ``cells`` in the cell-sorted rows, cell after cell."""
    sizes = cell_sizes[cells]
    shift = bounds[cells] - (np.cumsum(sizes) - sizes)
    return np.arange(sizes.sum()) + np.repeat(shift, sizes)


def _scan_group(asked_rows, members, sorted_rows, scanned, excluded, best, buffers):
    """Fold the scores of ``asked_rows`` against the rows ``scanned`` into ``best``.

    The scanned rows are gathered ``_SCANNED_PER_PRODUCT`` at a time and the
    queries, already padded to a multiple of ``_TILE_ROWS``, go
    ``_MEMBERS_PER_PRODUCT`` at a time, into the two ``buffers``; ``members``
    are the query indices of the unpadded rows.
    """
    import torch

    from ._knn_kernels import merge_best, score_bits

    block_buffer, score_buffer = buffers
    best_keys, best_ids = best
    n_members = members.shape[0]
    for first in range(0, scanned.shape[0], _SCANNED_PER_PRODUCT):
        part = scanned[first : first + _SCANNED_PER_PRODUCT]
        n_part, n_columns = part.shape[0], _round_up(part.shape[0], _TILE_COLUMNS)
        block = torch.index_select(
            sorted_rows, 0, _padded(part, _TILE_COLUMNS), out=block_buffer[:n_columns]
        )
        positions = part.numpy()
        for start in range(0, n_members, _MEMBERS_PER_PRODUCT):
            n_rows = min(_MEMBERS_PER_PRODUCT, asked_rows.shape[0] - start)
            scores = score_buffer[: n_rows * n_columns].view(n_rows, n_columns)
            torch.matmul(asked_rows[start : start + n_rows], block.T, out=scores)
            merge_best(
                *score_bits(scores), min(n_rows, n_members - start), n_part,
                positions, members[start:], excluded, best_keys, best_ids,
            )


def _principal_axes(*row_sets):
    """The leading axes of the second moment of rows holding ``_SCAN_ENERGY`` of it.

    Each of ``row_sets`` (the rows searched, and the queries when they are
    not among them) weighs equally, so that neither is projected onto axes
    that only the other needs.  Returns a ``(d, r)`` matrix with orthonormal
    columns, or None (keep the rows as they are) when they need more than
    ``_MAX_AXES_SHARE`` of the axes.
    """
    import torch

    n_features = row_sets[0].shape[1]
    moment = torch.zeros((n_features, n_features))
    for rows in row_sets:
        step = max(1, rows.shape[0] // _MOMENT_ROWS)
        sample = rows[::step][:_MOMENT_ROWS].float()
        moment += sample.T @ sample / sample.shape[0]
    values, vectors = torch.linalg.eigh(moment)
    values, vectors = values.flip(0), vectors.flip(1)
    energy = torch.cumsum(values.clamp(min=0), 0) / values.clamp(min=0).sum()
    n_axes = int(torch.searchsorted(energy, torch.tensor(_SCAN_ENERGY))) + 1
    n_axes = _round_up(n_axes, _AXES_STEP)
    if n_axes > _MAX_AXES_SHARE * n_features:
        return None
    return vectors[:, :n_axes].contiguous()


def _approximate(data, queries, k, *, rows=None):
    """Grouped inverted-file k-NN scored by matrix products, re-scored with exact cosines.

    ``queries=None`` searches ``data`` for its own rows ``rows`` (a slice),
    excluding each row itself.
    """
    import torch

    from ._knn_kernels import LOWEST_KEY

    dtype = _scan_dtype()
    searched = _as_tensor(data).to(dtype)
    asked = None if queries is None else _as_tensor(queries).to(dtype)
    axes = _principal_axes(searched) if asked is None else _principal_axes(searched, asked)
    if axes is not None:
        axes = axes.to(dtype)
        searched = searched @ axes
        asked = None if asked is None else asked @ axes
    if asked is None:
        asked = searched[rows]
    (n_data, n_features), n_asked = searched.shape, asked.shape[0]
    n_cells = int(min(round(_CELLS_PER_SQRT_ROW * np.sqrt(n_data)), n_data // _MIN_ROWS_PER_CELL))
    n_cells = max(n_cells, 1)
    n_probes = min(_PROBES if queries is None else _QUERY_PROBES, n_cells)
    n_kept = min(k + _SPARE, n_data)

    generator = torch.Generator().manual_seed(_KMEANS_SEED)
    centres = _kmeans(searched, n_cells, generator)
    if queries is None:
        # The queries are rows searched: one pass gives both their cells and
        # their probes (the nearest cell first, ties in the same order).
        probes = _nearest_cells(searched, centres, n_probes)
        cell, probes = probes[:, 0], probes[rows]
    else:
        cell = _nearest_cells(searched, centres)[:, 0]
        probes = _nearest_cells(asked, centres, n_probes)
    # The rows searched, sorted by cell.
    order = np.argsort(cell, kind="stable")
    bounds = np.zeros(n_cells + 1, dtype=np.int64)
    bounds[1:] = np.cumsum(np.bincount(cell, minlength=n_cells))
    sorted_rows = searched[torch.from_numpy(order)]
    del cell, searched
    # Each query's own row, as a position in sorted_rows, for a self-search;
    # its rows are then read from sorted_rows.
    excluded = np.full(n_asked, -1, dtype=np.int64)
    if queries is None:
        excluded[:] = np.argsort(order)[rows]
        asked, asked_at = sorted_rows, excluded
    else:
        asked_at = np.arange(n_asked)

    best = (
        np.full((n_asked, n_kept), LOWEST_KEY, dtype=np.int32),
        np.full((n_asked, n_kept), -1, dtype=np.int64),
    )
    groups = np.argsort(probes[:, 0], kind="stable")
    group_bounds = np.zeros(n_cells + 1, dtype=np.int64)
    group_bounds[1:] = np.cumsum(np.bincount(probes[:, 0], minlength=n_cells))
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
    block_buffer = torch.empty((largest, n_features), dtype=dtype)
    score_buffer = torch.empty(_MEMBERS_PER_PRODUCT * largest, dtype=dtype)
    for group_members, cells in zip(members_of, scanned_cells):
        if group_members.size == 0:
            continue
        scanned = torch.from_numpy(_rows_of(cells, bounds, cell_sizes))
        at = torch.from_numpy(asked_at[group_members])
        asked_rows = asked.index_select(0, _padded(at, _TILE_ROWS))
        _scan_group(
            asked_rows, group_members, sorted_rows, scanned, excluded, best,
            (block_buffer, score_buffer),
        )
    del sorted_rows, block_buffer, score_buffer
    candidates = best[1]
    candidates[candidates >= 0] = order[candidates[candidates >= 0]]

    if queries is None:
        own = np.arange(n_data)[rows]
        found = _rescore(data, data[rows], candidates, k, groups)
    else:
        found = _rescore(data, queries, candidates, k, groups)
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


def _rescore(data, queries, candidates, k, order):
    """The ``k`` candidates of highest exact cosine, nearest first (missing ones last).

    Queries are re-scored in ``order``.
    """
    from ._knn_kernels import rescore

    out = np.empty((queries.shape[0], k), dtype=np.int64)
    data = np.ascontiguousarray(data)
    queries = np.ascontiguousarray(queries, dtype=data.dtype)
    rescore(data, queries, candidates, k, out, order)
    return out
