"""The fitted-map protocol of the aligners.

A fitted aligner hands the base class one map per side, from a block of
prepared rows (L2-normalised when ``normalize``) to the method's output
before its final normalisation.  A map is one of

- ``None``: the identity;
- a plain function ``block -> block`` of numpy arrays, pure, so blocks may
  run side by side and on other workers;
- a :class:`BlockMap`: such a function with what the driver must know about
  it (blocks in order, output already unit-norm);
- a :class:`SpanMap`: an output in the span of the row and a few fixed
  vectors, applied without materialising the block or its image.

The ``alpha`` blend ``(1 - alpha) u + alpha T(u)`` of the closed-form
aligners is :func:`interpolate`, a wrapper they opt into; the block driver
itself knows nothing of ``alpha``.
"""

from typing import Callable, NamedTuple

import numpy as np

from ._validation import add_product


class BlockMap(NamedTuple):
    """A block function with the properties the block driver must respect.

    Attributes
    ----------
    function : callable
        ``function(block) -> block`` on prepared rows.
    in_order : bool, default=False
        The function carries state that advances block by block (a random
        generator, a device queue): blocks run in order on one thread.
    normalized : bool, default=False
        The function's output rows are already unit-norm (a head ending with
        its own normalisation): the driver writes them as they are.
    row_wise : bool, default=True
        Each output row depends on its input row alone.  ``False`` for a map
        whose output depends on the row's place among the rows of one
        ``transform`` call (draws from a generator that restarts at every
        call): such an aligner must be given all rows in one call, since
        splitting them repeats the draws.  A map that is not row-wise also
        needs ``in_order``; an ``in_order`` map (one that is not thread-safe)
        may well be row-wise.
    """

    function: Callable
    in_order: bool = False
    normalized: bool = False
    row_wise: bool = True


def is_row_wise(aligner):
    """Whether a fitted aligner's ``transform`` may be split over blocks of rows.

    True unless the aligner's source map says its output depends on the
    rows' places in one call (``BlockMap.row_wise=False``).  Estimators
    without the map protocol are taken to be row-wise.
    """
    source_map = getattr(aligner, "_source_map", None)
    if source_map is None:
        return True
    return getattr(as_block_map(source_map()), "row_wise", True)


class SpanMap(NamedTuple):
    """A map whose output stays in the span of the input row and a few fixed vectors.

    ``T(u) = a(u) * u + C(u) @ directions`` where the per-row scalars ``a`` and
    ``C`` depend on ``u`` only through ``|u|^2`` and ``u @ directions.T``.
    Such a map (CentroidShift, ReAlign) is applied with matrix-vector products
    over blocks that stay in cache and one write of the output, without
    materialising ``u`` or ``T(u)``.  Its passes compute every row's norm,
    which is also their check for NaN and infinity.

    Attributes
    ----------
    directions : ndarray of shape (n_directions, n_features)
        The fixed vectors, float64.
    coefficients : callable
        ``coefficients(sq_norms, dots) -> (a, C)`` with ``sq_norms`` of shape
        ``(n_rows,)`` and ``dots`` of shape ``(n_rows, n_directions)``, both of
        the prepared rows ``u``; ``a`` broadcasts to shape ``(n_rows,)`` and
        ``C`` to shape ``(n_rows, n_directions)``.
    """

    directions: np.ndarray
    coefficients: Callable


def as_block_map(step):
    """``step`` as a :class:`BlockMap` (``None`` and :class:`SpanMap` unchanged)."""
    if step is None or isinstance(step, (BlockMap, SpanMap)):
        return step
    return BlockMap(step)


def interpolate(step, alpha):
    """The blend ``(1 - alpha) u + alpha T(u)`` of a map with the identity.

    An interpolation in the whole space; the AnisoAlign paper's ``T_alpha``
    (Sec. 3.3) corrects only along the dominant residual directions, see
    :func:`sklearn_modgap.aligners.residual_direction_correction`.

    Parameters
    ----------
    step : None, callable, BlockMap or SpanMap
        The map ``T``.
    alpha : float
        Correction strength; ``1`` returns ``step`` itself.

    Returns
    -------
    blended : None, BlockMap or SpanMap
        A map of the same kind; a :class:`SpanMap` stays one (the blend of a
        row weight and direction weights is again a row weight and direction
        weights).
    """
    if step is None or alpha == 1:
        return step
    if isinstance(step, SpanMap):

        def coefficients(sq_norms, dots):
            row_weight, direction_weights = step.coefficients(sq_norms, dots)
            return (1.0 - alpha) + alpha * np.asarray(row_weight), alpha * np.asarray(direction_weights)

        return SpanMap(step.directions, coefficients)
    step = as_block_map(step)

    def blend(block):
        return (1.0 - alpha) * block + alpha * step.function(block)

    return step._replace(function=blend)


class BlockSpan(NamedTuple):
    """A :class:`SpanMap` with what every block needs, computed once per call."""

    map: SpanMap
    directions: np.ndarray  # in the data's dtype, at least two rows
    directions_t: np.ndarray
    gram: np.ndarray
    padded: bool

    @classmethod
    def of(cls, span, dtype):
        """Prepare ``span`` for blocks of ``dtype``."""
        directions = span.directions.astype(dtype)
        # numpy's product with an inner dimension of one bypasses BLAS and was
        # 5x slower than with two: a single direction gets a zero partner.
        padded = directions.shape[0] == 1
        if padded:
            directions = np.concatenate([directions, np.zeros_like(directions)])
        return cls(
            span,
            directions,
            np.ascontiguousarray(span.directions.T.astype(dtype)),
            span.directions @ span.directions.T,
            padded,
        )

    def apply(self, block, sq_norms, scales, out):
        """Write the normalised ``T(scales * block)`` of one block into ``out``.

        ``sq_norms`` are the squared norms of the raw rows (float64) and
        ``scales`` the factors that prepare them.
        """
        dots = (block @ self.directions_t).astype(np.float64) * scales[:, None]
        prepared_sq_norms = sq_norms * scales**2
        row_weight, direction_weights = self.map.coefficients(prepared_sq_norms, dots)
        row_weight = np.broadcast_to(row_weight, sq_norms.shape)
        direction_weights = np.broadcast_to(direction_weights, dots.shape)
        out_sq_norms = (
            row_weight**2 * prepared_sq_norms
            + 2.0 * row_weight * np.einsum("ik,ik->i", direction_weights, dots)
            + np.einsum("ik,kl,il->i", direction_weights, self.gram, direction_weights)
        )
        if np.any(out_sq_norms <= 0):
            raise ValueError("The aligned rows have zero norm and cannot be normalized.")
        inverse_norms = 1.0 / np.sqrt(out_sq_norms)
        # einsum scales rows about 1.8x faster than a broadcast multiply by a column.
        np.einsum("ij,i->ij", block, (row_weight * scales * inverse_norms).astype(block.dtype), out=out)
        weights = (direction_weights * inverse_norms[:, None]).astype(block.dtype)
        if self.padded:
            weights = np.concatenate([weights, np.zeros_like(weights)], axis=1)
        add_product(out, weights, self.directions)
