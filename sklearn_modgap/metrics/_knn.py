"""k-nearest-neighbour back-ends of the neighbourhood metrics.

Rows reaching these functions are unit-norm, so Euclidean and cosine rankings
agree.  The exact back-end is scikit-learn's brute-force
:class:`~sklearn.neighbors.NearestNeighbors`, which streams distance blocks and
keeps only the ``k`` best per row: no ``n x n`` matrix is ever built.
"""

import numpy as np
from sklearn.neighbors import NearestNeighbors


def check_k(k, n_candidates, *, what):
    """Refuse a neighbourhood larger than the candidates available."""
    if k > n_candidates:
        raise ValueError(
            f"k={k} is larger than the {n_candidates} candidate neighbour(s) of {what}; "
            f"use k <= {n_candidates}."
        )


def _exact_index(data):
    return NearestNeighbors(algorithm="brute", metric="euclidean").fit(data)


def query_neighbors(data, queries, k):
    """Indices of the ``k`` rows of ``data`` nearest to each query row."""
    return _exact_index(data).kneighbors(queries, n_neighbors=k, return_distance=False)


def self_neighbors(data, k, rows=None):
    """Indices of the ``k`` nearest *other* rows of ``data``, for each of ``rows``.

    Parameters
    ----------
    data : ndarray of shape (n, d)
        The pool searched.
    k : int
        Neighbours per row, at most ``n - 1``.
    rows : slice or None
        The rows of ``data`` whose neighbours are wanted; all rows when None.

    Returns
    -------
    indices : ndarray of shape (n_rows, k)
        Indices into ``data``; a row never lists itself.
    """
    index = _exact_index(data)
    if rows is None:
        return index.kneighbors(n_neighbors=k, return_distance=False)
    own = np.arange(data.shape[0])[rows]
    found = index.kneighbors(data[rows], n_neighbors=k + 1, return_distance=False)
    return drop_self(found, own)


def drop_self(found, own):
    """Remove each row's own index from ``k + 1`` candidates, keeping ``k``.

    With exact duplicates a row's own index may be crowded out of its
    candidates; the farthest candidate is dropped then.
    """
    keep = found != own[:, None]
    keep[keep.all(axis=1), -1] = False
    return found[keep].reshape(found.shape[0], found.shape[1] - 1)
