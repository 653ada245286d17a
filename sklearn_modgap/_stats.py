"""Mergeable sufficient statistics of rows, and the one sorted eigendecomposition.

Every moment the package needs (means, covariances, second moments, the
fourth moment of the Ledoit-Wolf shrinkage, row-norm and per-feature extremes)
is a function of a :class:`RowMoments`.  A ``RowMoments`` is built by
:meth:`~RowMoments.update` with blocks of rows and two of them combine with
:meth:`~RowMoments.merge`, so the same statistics come from one pass over an
array, from ``partial_fit`` calls on a stream, or from a tree reduction over
the chunks of a Dask array.  Everything is accumulated in float64.

The scatter is kept centred on the running mean and merged with the
pairwise update of Chan, Golub and LeVeque (1979),
``S = S_a + S_b + n_a n_b / n (m_b - m_a)(m_b - m_a)^T``, which loses no
precision to the cancellation of ``sum x x^T - n m m^T`` when the mean is
large next to the spread (unit-norm embeddings with a modality gap).
"""

import numpy as np

from ._pages import release_pages
from ._validation import map_blocks

# order=1: count, sum and sum of squared norms.
# order=2: also the centred scatter.
# order=4: also sum |x|^4 and sum |x|^2 x, which give sum |x - m|^4.
_ORDERS = (1, 2, 4)


class RowMoments:
    """Count, sum, centred scatter and extremes of rows, mergeable.

    Parameters
    ----------
    n_features : int
        Width of the rows.
    order : {1, 2, 4}, default=2
        Highest moment kept: 1 keeps the mean and the mean squared norm, 2 adds
        the covariance, 4 adds what :meth:`centred_fourth_moment` needs.
    extremes : bool, default=False
        Also keep the per-feature minimum and maximum.

    Attributes
    ----------
    count : int
        Rows seen.
    total : ndarray of shape (n_features,)
        Sum of the rows.
    scatter : ndarray of shape (n_features, n_features) or None
        ``sum_i (x_i - m)(x_i - m)^T`` around the current mean ``m``.
    sq_norm_sum : float
        ``sum_i |x_i|^2``.
    min_sq_norm, max_sq_norm : float
        Smallest and largest squared row norm seen (``inf`` / ``-inf`` when
        empty).
    minimum, maximum : ndarray of shape (n_features,) or None
        Per-feature extremes, when ``extremes``.
    """

    def __init__(self, n_features, *, order=2, extremes=False):
        if order not in _ORDERS:
            raise ValueError(f"order must be one of {_ORDERS}, got {order!r}.")
        self.n_features = int(n_features)
        self.order = order
        self.count = 0
        self.total = np.zeros(self.n_features)
        self.sq_norm_sum = 0.0
        self.min_sq_norm = np.inf
        self.max_sq_norm = -np.inf
        self.scatter = np.zeros((self.n_features, self.n_features)) if order >= 2 else None
        self.quartic_sum = 0.0
        self.weighted_total = np.zeros(self.n_features) if order >= 4 else None
        self.minimum = np.full(self.n_features, np.inf) if extremes else None
        self.maximum = np.full(self.n_features, -np.inf) if extremes else None

    # ------------------------------------------------------------ building
    def update(self, block, *, weights=None, sq_norms=None):
        """Add the rows ``weights[:, None] * block``; returns ``self``.

        Parameters
        ----------
        block : ndarray of shape (n_rows, n_features)
            Rows, float32 or float64.
        weights : ndarray of shape (n_rows,), default=None
            Per-row factors (``1 / |row|`` normalises); ``None`` is all ones.
        sq_norms : ndarray of shape (n_rows,), default=None
            Squared norms of ``block``'s rows (before ``weights``), when the
            caller has them already.
        """
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[1] != self.n_features:
            raise ValueError(
                f"A block of shape {block.shape} cannot update statistics of "
                f"{self.n_features} features."
            )
        if block.shape[0] == 0:
            return self
        if sq_norms is None:
            wide = block.astype(np.float64, copy=False)
            sq_norms = np.einsum("ij,ij->i", wide, wide)
        row_sq = sq_norms if weights is None else sq_norms * weights**2
        other = RowMoments(self.n_features, order=self.order, extremes=self.minimum is not None)
        other.count = block.shape[0]
        other.sq_norm_sum = float(np.sum(row_sq))
        other.min_sq_norm = float(np.min(row_sq))
        other.max_sq_norm = float(np.max(row_sq))
        if self.order == 1 and self.minimum is None:
            # A matrix-vector product in the block's dtype: the scaled rows
            # are never materialised.
            if weights is None:
                other.total = block.sum(axis=0, dtype=np.float64)
            else:
                other.total = (block.T @ weights.astype(block.dtype)).astype(np.float64)
        else:
            rows = block.astype(np.float64)
            if weights is not None:
                rows *= weights[:, None]
            other.total = rows.sum(axis=0)
            if self.order >= 2:
                centred = rows - other.total / other.count
                other.scatter = centred.T @ centred
            if self.order >= 4:
                other.quartic_sum = float(np.sum(row_sq**2))
                other.weighted_total = rows.T @ row_sq
            if other.minimum is not None:
                other.minimum = rows.min(axis=0)
                other.maximum = rows.max(axis=0)
        self._absorb(other)
        return self

    def merge(self, other):
        """A new ``RowMoments`` of the rows of ``self`` and ``other`` together."""
        if other.n_features != self.n_features or other.order != self.order:
            raise ValueError(
                "Only statistics of the same width and order can be merged: "
                f"({self.n_features}, order {self.order}) and ({other.n_features}, order {other.order})."
            )
        merged = self.copy()
        merged._absorb(other)
        return merged

    def copy(self):
        """An independent copy."""
        new = RowMoments.__new__(RowMoments)
        for name, value in vars(self).items():
            setattr(new, name, value.copy() if isinstance(value, np.ndarray) else value)
        return new

    def _absorb(self, other):
        if other.count == 0:
            return
        if self.count == 0:
            for name, value in vars(other).items():
                setattr(self, name, value.copy() if isinstance(value, np.ndarray) else value)
            return
        n_a, n_b = self.count, other.count
        n = n_a + n_b
        if self.order >= 2:
            delta = other.total / n_b - self.total / n_a
            self.scatter = self.scatter + other.scatter + np.outer(delta, delta) * (n_a * n_b / n)
        if self.order >= 4:
            self.quartic_sum += other.quartic_sum
            self.weighted_total = self.weighted_total + other.weighted_total
        self.count = n
        self.total = self.total + other.total
        self.sq_norm_sum += other.sq_norm_sum
        self.min_sq_norm = min(self.min_sq_norm, other.min_sq_norm)
        self.max_sq_norm = max(self.max_sq_norm, other.max_sq_norm)
        if self.minimum is not None and other.minimum is not None:
            self.minimum = np.minimum(self.minimum, other.minimum)
            self.maximum = np.maximum(self.maximum, other.maximum)

    @classmethod
    def of(cls, A, *, weights_of=None, order=2, extremes=False, parallel=True):
        """Statistics of the rows of ``A``, streamed block by block.

        Parameters
        ----------
        A : ndarray of shape (n_rows, n_features)
            The rows (a memory map is read one block at a time).
        weights_of : callable, default=None
            ``weights_of(block, rows) -> (weights, sq_norms)`` with the per-row
            factors and the raw squared norms of one block (``rows`` is its
            slice of ``A``); ``None`` takes the rows as they are.
        order, extremes
            As for the constructor.
        parallel : bool, default=True
            Blocks over a few threads; the blocks' statistics are merged in
            block order, so the result does not depend on the threads.
        """

        def block_moments(rows):
            block = A[rows]
            weights, sq_norms = (None, None) if weights_of is None else weights_of(block, rows)
            moments = cls(A.shape[1], order=order, extremes=extremes).update(
                block, weights=weights, sq_norms=sq_norms
            )
            release_pages(A, rows)
            return moments

        result = cls(A.shape[1], order=order, extremes=extremes)
        for part in map_blocks(block_moments, *A.shape, A.itemsize, parallel=parallel):
            result._absorb(part)
        return result

    # ------------------------------------------------------------- reading
    def _require(self, order):
        if self.count == 0:
            raise ValueError("No rows have been added to these statistics.")
        if self.order < order:
            raise ValueError(f"These statistics keep moments up to order {self.order}, not {order}.")

    @property
    def mean(self):
        """Mean row, float64."""
        self._require(1)
        return self.total / self.count

    @property
    def mean_sq_norm(self):
        """``E |x|^2``."""
        self._require(1)
        return self.sq_norm_sum / self.count

    @property
    def total_variance(self):
        """``E |x - m|^2``, the trace of the covariance (from order 1)."""
        mean = self.mean
        if self.scatter is not None:
            return float(np.trace(self.scatter) / self.count)
        return float(max(self.mean_sq_norm - mean @ mean, 0.0))

    @property
    def covariance(self):
        """Population covariance (divided by ``count``)."""
        self._require(2)
        return self.scatter / self.count

    @property
    def second_moment(self):
        """Uncentred ``E[x x^T]``."""
        mean = self.mean
        return self.covariance + np.outer(mean, mean)

    def centred_fourth_moment(self):
        """``sum_i |x_i - m|^4`` around the mean, from the order-4 sums."""
        self._require(4)
        m = self.mean
        mm = m @ m
        raw_second = self.scatter + self.count * np.outer(m, m)
        value = (
            self.quartic_sum
            - 4.0 * m @ self.weighted_total
            + 4.0 * m @ raw_second @ m
            + 2.0 * mm * self.sq_norm_sum
            - 4.0 * mm * (m @ self.total)
            + self.count * mm**2
        )
        return float(max(value, 0.0))


def descending_eigh(S):
    """Eigenvalues (descending, clipped at 0) and eigenvectors of a symmetric matrix.

    The one eigendecomposition of the package: the matrix is symmetrised
    first, so that round-off asymmetry of an accumulated scatter cannot make
    ``eigh`` read a different triangle on another platform.
    """
    values, vectors = np.linalg.eigh((S + S.T) / 2)
    return np.clip(values[::-1], 0.0, None), vectors[:, ::-1]
