"""k-nearest-neighbour back-ends of the neighbourhood metrics.

Rows reaching these functions are unit-norm, so Euclidean and cosine rankings
agree.

``"exact"`` is scikit-learn's brute-force
:class:`~sklearn.neighbors.NearestNeighbors`, which streams distance blocks
through BLAS and keeps only the ``k`` best per row: no ``n x n`` matrix is
ever built, and its cost is the ``2 n^2 d`` flops of the distances.

``"approximate"`` (for large ``n``) is a faiss inverted-file index on the
rows projected onto their top ``_PROJECTED_DIM`` principal axes: a k-means
cuts the projections into about ``_CELLS_PER_SQRT_ROW * sqrt(n)`` cells, each
query scans the cells nearest to it until about ``_SCANNED_ROWS`` rows are
seen (10 % of 40,000, 1 % of 400,000, so that the total cost grows like
``n`` rather than ``n^2``), and its ``_RERANKED * k``
best candidates are re-scored with exact full-dimensional cosines, so the
projection costs little recall.  faiss was chosen over pynndescent by
measurement (CLIP-like embeddings from ``make_modality_gap``, d=512, a
40,000-row pool, k=20, two busy cores, where the exact self-search took
98 s): pynndescent's NN-descent reached a neighbour recall of 0.93 in 138 s;
faiss's HNSW graph (M=16, efSearch=64) 0.95 in 38 s (build and search); the
projected inverted file 0.95 in 17 s.
"""

import numpy as np
from sklearn.neighbors import NearestNeighbors

from .._validation import block_slices, single_threaded_blas

KNN_METHODS = ("exact", "approximate")

# Chosen on CLIP-like synthetic embeddings (d=512, k=20): on 20,000 + 20,000
# rows they gave a neighbour recall of 0.96 to 0.99 (benchmarks/bench_knn.py).
_PROJECTED_DIM = 192
_CELLS_PER_SQRT_ROW = 1.25
_TRAINING_ROWS_PER_CELL = 64
_SCANNED_ROWS = 4000
_RERANKED = 3  # candidates kept per wanted neighbour before exact re-scoring
_KMEANS_SEED = 0


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


def _project(data, queries):
    """Centred projections on the top principal axes of the rows searched and queried."""
    n_features = data.shape[1]
    n_dims = min(_PROJECTED_DIM, n_features)
    parts = [data] if queries is None else [data, queries]
    n_rows = sum(part.shape[0] for part in parts)
    mean = sum(part.sum(axis=0, dtype=np.float64) for part in parts) / n_rows
    scatter = np.zeros((n_features, n_features))
    # Only the leading axes are needed, and only roughly: float32 products suffice.
    centre = mean.astype(np.float32)
    for part in parts:
        for rows in block_slices(*part.shape, part.itemsize):
            block = part[rows].astype(np.float32, copy=False) - centre
            scatter += block.T @ block
    with single_threaded_blas():
        axes = np.linalg.eigh(scatter)[1][:, ::-1][:, :n_dims].astype(np.float32)

    def project(part):
        out = np.empty((part.shape[0], n_dims), dtype=np.float32)
        for rows in block_slices(*part.shape, part.itemsize):
            out[rows] = (part[rows].astype(np.float32, copy=False) - centre) @ axes
        return out

    return project(data), (None if queries is None else project(queries))


def _approximate(data, queries, k, *, rows=None):
    """Inverted-file k-NN on principal projections, re-scored with exact cosines.

    ``queries=None`` searches ``data`` for its own rows ``rows`` (a slice),
    excluding each row itself.
    """
    import faiss

    searched, projected_queries = _project(data, queries)
    if queries is None:
        projected_queries = searched[rows]
    n_data, n_dims = searched.shape
    n_cells = max(1, int(round(_CELLS_PER_SQRT_ROW * np.sqrt(n_data))))
    n_kept = min(_RERANKED * k + (queries is None), n_data)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(n_dims), n_dims, n_cells)
    index.cp.seed = _KMEANS_SEED
    index.cp.max_points_per_centroid = _TRAINING_ROWS_PER_CELL
    index.train(searched)
    index.add(searched)
    del searched
    index.nprobe = min(n_cells, int(np.ceil(_SCANNED_ROWS * n_cells / n_data)))
    candidates = index.search(projected_queries, n_kept)[1]
    del index, projected_queries
    if queries is None:
        own = np.arange(data.shape[0])[rows]
        candidates[candidates == own[:, None]] = -1
        found = _rescore(data, data[rows], candidates, k)
    else:
        found = _rescore(data, queries, candidates, k)
    # Rows whose probed cells held fewer than k candidates get an exact search.
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
