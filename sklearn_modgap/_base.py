"""The estimator contract shared by every aligner.

An aligner learns, from an unpaired sample of each modality, a map ``T`` that
turns source rows ``Y`` (e.g. text embeddings) into substitutes ``Z = T(Y)``
that sit where target rows ``X`` (e.g. image embeddings) sit.  This module holds
everything that is the same for all methods: the two ways of passing the
target sample to ``fit``, validation, row normalisation, the ``alpha``
interpolation, block-wise streaming, dtype handling, pandas output and the
default ``score``.
"""

from numbers import Real
from typing import Callable, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._stats import RowMoments
from ._validation import (
    FLOAT_DTYPES,
    ExtremeRowsError,
    add_product,
    check_embeddings,
    check_same_features,
    check_finite_rows,
    check_numeric,
    checked_row_norms,
    extreme_rows,
    map_blocks,
    normalize_rows,
    rescale_extreme_rows,
    squared_row_norms,
)

_FIT_HELP = (
    "call fit(X_source, y=X_target) with a 2-D sample of the target modality "
    "(its row order is not used), or fit(X_stacked, sample_domain=d) with d >= 0 "
    "marking source rows and d < 0 marking target rows"
)


class SpanMap(NamedTuple):
    """A map whose output stays in the span of the input row and a few fixed vectors.

    ``T(u) = a(u) * u + C(u) @ directions`` where the per-row scalars ``a`` and
    ``C`` depend on ``u`` only through ``|u|^2`` and ``u @ directions.T``.
    Such a map (CentroidShift, ReAlign) is applied with matrix-vector products
    over blocks that stay in cache and one write of the output, without
    materialising ``u`` or ``T(u)``.

    Attributes
    ----------
    directions : ndarray of shape (n_directions, n_features)
        The fixed vectors, float64.
    coefficients : callable
        ``coefficients(sq_norms, dots) -> (a, C)`` with ``sq_norms`` of shape
        ``(n_rows,)`` and ``dots`` of shape ``(n_rows, n_directions)``, both of
        the prepared rows ``u``; ``a`` has shape ``(n_rows,)`` and ``C`` shape
        ``(n_rows, n_directions)``.
    """

    directions: np.ndarray
    coefficients: Callable


class _BlockSpan(NamedTuple):
    """A :class:`SpanMap` with what every block needs, computed once per call."""

    map: SpanMap
    directions: np.ndarray  # in the data's dtype, at least two rows
    directions_t: np.ndarray
    gram: np.ndarray
    padded: bool

    @classmethod
    def of(cls, span, dtype):
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


class BaseAligner(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Base class of the aligners: see the package's design contract.

    Subclasses implement ``_fit(source, target)`` on validated arrays and
    ``_source_map()`` (and, where the target side is not the identity,
    ``_target_map()``), each returning a function from a block of prepared
    rows to the method's output *before* its final normalisation, or a
    :class:`SpanMap` when that output stays in the span of the row and a few
    fixed vectors.  The base
    class applies ``T_alpha(y) = Norm((1 - alpha) * y + alpha * T(y))`` block by
    block, so memory beyond the output stays at one block whatever ``n``.
    """

    __metadata_request__fit = {"sample_domain": True}
    __metadata_request__transform = {"sample_domain": True}

    # The closed-form maps blend with the identity by ``alpha`` in [0, 1];
    # an aligner whose ``alpha`` means something else opts out.
    _interpolates = True

    # Aligners whose every pass over the rows computes the row norms (the span
    # maps) check NaN and infinity in those passes instead of in a separate one.
    _finite_check_in_blocks = False

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "normalize": ["boolean"],
    }

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, sample_domain=None):
        """Fit the aligner on unpaired samples of the two modalities.

        Parameters
        ----------
        X : array-like of shape (n_source, n_features)
            Source-modality rows (mode B), or source and target rows stacked
            (mode A, with ``sample_domain``).
        y : array-like of shape (n_target, n_features), default=None
            A sample of the target modality (mode B).  Its row order is never
            used and ``n_target`` may differ from ``n_source``.  In mode A a
            1-D ``y`` (class labels) is accepted and ignored.
        sample_domain : array-like of shape (n_samples,), default=None
            Mode A: ``>= 0`` for source rows, ``< 0`` for target rows.

        Returns
        -------
        self : object
            The fitted aligner.
        """
        source, target = self._split_fit_data(X, y, sample_domain)
        try:
            self._fit(source, target)
        except ExtremeRowsError:
            self._fit(rescale_extreme_rows(source, name="X"), rescale_extreme_rows(target, name="y"))
        return self

    def _split_fit_data(self, X, y, sample_domain):
        check_numeric(X, "X")
        X = validate_data(self, X, reset=True, **_check_params(finite=not self._finite_check_in_blocks))
        if sample_domain is None:
            if self._finite_check_in_blocks and (y is None or _ndim(y) != 2):
                # X is checked before y, also when the streaming check never runs.
                check_finite_rows(X, name="X")
            if y is None:
                raise ValueError(
                    f"{type(self).__name__} requires y to be passed, but the target y is None: "
                    f"{_FIT_HELP}."
                )
            if _ndim(y) != 2:
                raise ValueError(
                    f"y must be a 2-D array of target-modality embeddings, got a "
                    f"{_ndim(y)}-D array: {_FIT_HELP}."
                )
            target = check_embeddings(y, name="y", finite=not self._finite_check_in_blocks)
            check_same_features(X.shape[1], target, name="The target sample y")
            return X, target

        if y is not None and _ndim(y) == 2:
            raise ValueError(
                "Pass the target sample either as y or inside X with sample_domain, not both."
            )
        is_target = self._target_rows(sample_domain, X.shape[0])
        for label, count in (("source (>= 0)", (~is_target).sum()), ("target (< 0)", is_target.sum())):
            if count < 2:
                raise ValueError(
                    f"sample_domain marks {count} {label} row(s); each modality needs at least 2."
                )
        return X[~is_target], X[is_target]

    def _fit(self, source, target):
        raise NotImplementedError

    # ------------------------------------------------------- preparing rows
    def _prepare(self, block, name="X"):
        """Rows as the method sees them: L2-normalised when ``normalize``."""
        return normalize_rows(block, name=name) if self.normalize else block

    def _row_scales(self, block, name):
        """Squared norms of the raw rows (float64) and the factor that prepares them.

        Also the streaming check for NaN and infinity of the aligners that skip
        scikit-learn's separate pass (``_finite_check_in_blocks``): a row with
        a non-finite entry has a non-finite squared norm.  Rows of extreme norm
        raise :class:`~sklearn_modgap._validation.ExtremeRowsError`, on which
        the pass is repeated on rescaled rows.
        """
        sq_norms = squared_row_norms(block, name=name, refuse_overflow=not self.normalize)
        if not self.normalize:
            return sq_norms, np.ones_like(sq_norms)
        if extreme_rows(sq_norms, block).any():
            raise ExtremeRowsError(name)
        if np.any(sq_norms == 0):
            checked_row_norms(block, name=name)
        return sq_norms, 1.0 / np.sqrt(sq_norms)

    def _scales_of(self, sq_norms):
        """The factor that prepares rows of known squared norms."""
        return 1.0 / np.sqrt(sq_norms) if self.normalize else np.ones_like(sq_norms)

    def _statistics(self, A, name, *, order=1, row_sq_norms=None):
        """:class:`~sklearn_modgap._stats.RowMoments` of the prepared rows, in one streaming pass.

        The normalisation enters as per-row weights, so with ``order=1`` the
        normalised rows are never materialised.  When ``row_sq_norms`` (a
        float64 array of ``len(A)``) is given, the squared norms of the raw
        rows are kept in it for a later pass.
        """

        def weights_of(block, rows):
            sq_norms, scales = self._row_scales(block, name)
            if row_sq_norms is not None:
                row_sq_norms[rows] = sq_norms
            return scales, sq_norms

        return RowMoments.of(A, weights_of=weights_of, order=order)

    # ------------------------------------------------------------ transform
    def transform(self, X, *, sample_domain=None):
        """Turn source rows into substitutes in the target modality.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source-modality rows, or source and target rows stacked when
            ``sample_domain`` is given.
        sample_domain : array-like of shape (n_samples,), default=None
            ``>= 0`` marks source rows (mapped by ``T``), ``< 0`` target rows
            (sent through :meth:`transform_target`), in skada's convention;
            the output keeps the row order.  ``None``: every row is a source
            row.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            Substitutes, unit-norm, in the dtype of ``X``.
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, **_check_params(min_samples=1, finite=not self._finite_check_in_blocks)
        )
        if sample_domain is None:
            return self._map_rows(X, self._source_map(), "X")
        is_target = self._target_rows(sample_domain, X.shape[0])
        out = np.empty_like(X)
        for rows, step in ((~is_target, self._source_map), (is_target, self._target_map)):
            if rows.any():
                out[rows] = self._map_rows(np.ascontiguousarray(X[rows]), step(), "X")
        return out

    def fit_transform(self, X, y=None, *, sample_domain=None, **fit_params):
        """Fit, then transform the fit rows.

        With ``sample_domain`` (stacked rows) the source rows come back
        mapped and the target rows through :meth:`transform_target`, in the
        input's row order; otherwise every row of ``X`` is a source row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            As for :meth:`fit`.
        y : array-like, default=None
            As for :meth:`fit`.
        sample_domain : array-like of shape (n_samples,), default=None
            As for :meth:`fit`.
        **fit_params : dict
            Passed to :meth:`fit`.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            The transformed rows of ``X``.
        """
        return self.fit(X, y, sample_domain=sample_domain, **fit_params).transform(
            X, sample_domain=sample_domain
        )

    @staticmethod
    def _target_rows(sample_domain, n_rows):
        domain = column_or_1d(sample_domain)
        if domain.shape[0] != n_rows:
            raise ValueError(f"sample_domain has {domain.shape[0]} entries but X has {n_rows} rows.")
        if not np.issubdtype(domain.dtype, np.number):
            raise TypeError(f"sample_domain must be numeric, got dtype {domain.dtype}.")
        return domain < 0

    def transform_target(self, X):
        """Bring target rows into the aligned space.

        The identity (up to normalisation) for methods that move only the
        source; a projection or centring for two-sided methods.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Target-modality rows.

        Returns
        -------
        X_aligned : ndarray of shape (n_samples, n_features)
            Target rows in the aligned space, in the dtype of ``X``.
        """
        check_is_fitted(self)
        X_checked = validate_data(
            self, X, reset=False, **_check_params(min_samples=1, finite=not self._finite_check_in_blocks)
        )
        out = self._map_rows(X_checked, self._target_map(), "X")
        return _wrap_data_with_container("transform", out, X, self)

    def _target_map(self):
        return None

    def _map_rows(self, X, step, name):
        """Apply ``T_alpha`` block by block into one preallocated output."""
        try:
            return self._map_rows_once(X, step, name)
        except ExtremeRowsError:
            return self._map_rows_once(rescale_extreme_rows(X, name=name), step, name)

    def _map_rows_once(self, X, step, name):
        out = np.empty_like(X)
        if isinstance(step, SpanMap):
            span = _BlockSpan.of(step, X.dtype)

            def map_block(rows):
                self._map_span_block(X[rows], span, out[rows], name)

        else:

            def map_block(rows):
                block = X[rows]
                if step is None and not self.normalize:
                    check_finite_rows(block, name=name)
                    out[rows] = block
                    return
                block = self._prepare(block, name)
                if step is None:
                    out[rows] = block
                    return
                moved = step(block)
                if self._interpolates and self.alpha != 1:
                    moved = (1.0 - self.alpha) * block + self.alpha * moved
                out[rows] = moved / checked_row_norms(moved, name="The aligned rows")[:, None]

        # A general step may carry state (C3's noise generator): keep its blocks in order.
        map_blocks(map_block, *X.shape, X.itemsize, parallel=step is None or isinstance(step, SpanMap))
        return out

    def _map_span_block(self, block, span, out, name):
        sq_norms, scales = self._row_scales(block, name)
        dots = (block @ span.directions_t).astype(np.float64) * scales[:, None]
        row_weight, direction_weights = span.map.coefficients(sq_norms * scales**2, dots)
        # T_alpha(u) = (1 - alpha) u + alpha T(u), still a row weight and direction weights.
        row_weight = (1.0 - self.alpha) + self.alpha * np.broadcast_to(row_weight, sq_norms.shape)
        direction_weights = self.alpha * np.broadcast_to(direction_weights, dots.shape)
        out_sq_norms = (
            row_weight**2 * sq_norms * scales**2
            + 2.0 * row_weight * np.einsum("ik,ik->i", direction_weights, dots)
            + np.einsum("ik,kl,il->i", direction_weights, span.gram, direction_weights)
        )
        if np.any(out_sq_norms <= 0):
            raise ValueError("The aligned rows have zero norm and cannot be normalized.")
        inverse_norms = 1.0 / np.sqrt(out_sq_norms)
        # einsum scales rows about 1.8x faster than a broadcast multiply by a column.
        np.einsum("ij,i->ij", block, (row_weight * scales * inverse_norms).astype(block.dtype), out=out)
        weights = (direction_weights * inverse_norms[:, None]).astype(block.dtype)
        if span.padded:
            weights = np.concatenate([weights, np.zeros_like(weights)], axis=1)
        add_product(out, weights, span.directions)

    # ---------------------------------------------------------------- score
    def score(self, X, y):
        """Alignment balance of the substitutes of ``X`` against paired targets ``y``.

        The harmonic mean of the relative-geometry consistency ``max(Psi, 0)``
        (the source's geometry kept) and the mean modality mixing
        ``(M_k^Z + M_k^X) / 2`` (the target's support entered), with
        ``k = min(20, n_pairs - 1)`` (at least 3 pairs are needed); see
        :func:`sklearn_modgap.metrics.alignment_balance`.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_features)
            Held-out source rows.
        y : array-like of shape (n_pairs, n_features)
            Their paired target rows, in the same order.

        Returns
        -------
        score : float
            Higher is better; identity, collapse and random target replacement
            score near 0.
        """
        from .metrics import alignment_balance

        if y is None or np.ndim(y) != 2:
            raise ValueError("score needs y: the 2-D target rows paired with the rows of X.")
        if len(X) != len(y):
            raise ValueError(
                f"score needs paired rows: X has {len(X)} rows but y has {len(y)}."
            )
        if len(X) < 3:
            raise ValueError(
                f"score needs at least 3 held-out pairs, got {len(X)}: modality mixing "
                "counts k >= 2 neighbours among the other rows."
            )
        substitutes = self.transform(X)
        targets = self.transform_target(y)
        return alignment_balance(
            targets, X, substitutes, k=min(20, len(X) - 1), random_state=0
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = True
        return tags


def _ndim(array):
    return array.ndim if hasattr(array, "ndim") else np.asarray(array).ndim


def _check_params(min_samples=2, finite=True):
    return dict(
        accept_sparse=False,
        dtype=FLOAT_DTYPES,
        ensure_all_finite=finite,
        ensure_min_samples=min_samples,
    )
