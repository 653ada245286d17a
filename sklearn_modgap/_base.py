"""The estimator contract shared by every aligner.

An aligner learns, from an unpaired sample of each modality, a map ``T`` that
turns source rows ``Y`` (e.g. text embeddings) into substitutes ``Z = T(Y)``
that sit where target rows ``X`` (e.g. image embeddings) sit.  This module holds
everything that is the same for all methods: the two ways of passing the
target sample to ``fit``, validation, row normalisation, the ``alpha``
interpolation, block-wise streaming, dtype handling, pandas output and the
default ``score``.
"""

from dataclasses import dataclass, fields
from typing import Any, TypeVar
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils import Tags, _safe_indexing, check_random_state, get_tags
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils.validation import _num_samples, check_is_fitted, column_or_1d, validate_data

from ._array_api import (
    DeviceConstants,
    HostRows,
    apply_span,
    foreign_namespace,
    numpy_dtype,
    safe_prepared,
    to_numpy,
    unit_rows,
)
from ._dask import is_dask_array
from ._maps import BlockSpan, SpanMap, as_block_map
from ._pages import release_pages
from ._stats import RowMoments
from ._stream import FitStream
from ._validation import (
    FLOAT_DTYPES,
    ExtremeRowsError,
    block_threads,
    check_embeddings,
    check_same_features,
    check_finite_rows,
    check_numeric,
    checked_row_norms,
    extreme_rows,
    block_slices,
    map_blocks,
    normalize_rows,
    rescale_extreme_rows,
    squared_row_norms,
)

_Aligner = TypeVar("_Aligner", bound="BaseAligner")

_FIT_HELP = (
    "call fit(X_source, y=X_target) with a 2-D sample of the target modality "
    "(its row order is not used), or fit(X_stacked, sample_domain=d) with d >= 0 "
    "marking source rows and d < 0 marking target rows"
)


_PAIRS_HELP = (
    "pass the paired target rows as fit(X_source, y=X_target), row i of y the pair of row i of X"
)


@dataclass(slots=True)
class AlignerTags(Tags):
    """scikit-learn's estimator tags plus what only an aligner declares.

    Attributes
    ----------
    needs_pairs : bool, default=False
        ``fit`` uses the pairing: row ``i`` of the target sample is the pair of
        row ``i`` of the source (``ContrastiveAdapter``).  Such an aligner
        cannot enter an unpaired comparison.
    """

    needs_pairs: bool = False


class BaseAligner(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Base class of the aligners: see the package's design contract.

    Subclasses implement ``_fit(source, target)`` on validated arrays and
    ``_source_map()`` (and, where the target side is not the identity,
    ``_target_map()``), each returning a fitted map of
    :mod:`sklearn_modgap._maps`: a function from a block of prepared rows to
    the method's output *before* its final normalisation, or a
    :class:`SpanMap` when that output stays in the span of the row and a few
    fixed vectors.  The closed-form aligners wrap their maps in
    :func:`~sklearn_modgap._maps.interpolate`, the blend
    ``Norm((1 - alpha) * y + alpha * T(y))`` (an interpolation with the
    identity, not the AnisoAlign paper's ``T_alpha``).  The base class
    applies a map block by block, so memory beyond the output stays at one
    block whatever ``n``; every block's pass checks NaN and infinity.
    An aligner that trains on pairs says so with the ``needs_pairs`` tag
    (:class:`AlignerTags`): ``fit`` then refuses samples of unequal size.
    """

    __metadata_request__fit = {"sample_domain": True}
    __metadata_request__transform = {"sample_domain": True}

    # Declared by aligners whose ``_fit`` passes every row of both samples
    # through ``_statistics``, whose row norms check NaN and infinity: fit
    # then skips scikit-learn's separate pass over the rows.
    _statistics_check_finite = False

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "normalize": ["boolean"],
        "n_jobs": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Integral, None, -1, closed="right"),
            None,
        ],
    }

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self: _Aligner, X: Any, y: Any = None, *, sample_domain: Any = None) -> _Aligner:
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

        Notes
        -----
        ``X`` and ``y`` (mode B), or stacked ``X`` and its ``sample_domain``,
        may be dask arrays for the aligners that have
        ``partial_fit``: the statistics are then a tree reduction over the
        chunks, one task per chunk, and equal those of ``partial_fit`` over
        the same rows (see the user guide's page on Dask).
        """
        if is_dask_array(X) or is_dask_array(y):
            from . import _dask

            return _dask.fit(self, X, y, sample_domain)
        source, target = self._split_fit_data(X, y, sample_domain)
        for name in ("_stream", "_stream_stale"):
            self.__dict__.pop(name, None)
        foreign = self._foreign_namespace(source, target)
        if foreign is not None:
            # The statistics are computed on the host, one block at a time.
            source, target = HostRows(source, *foreign), HostRows(target, *foreign)
        with block_threads(getattr(self, "n_jobs", None)):
            try:
                self._fit(source, target)
            except ExtremeRowsError:
                self._fit(
                    rescale_extreme_rows(np.asarray(source), name="X"),
                    rescale_extreme_rows(np.asarray(target), name="y"),
                )
        return self

    # Aligners whose maps and statistics take arrays of any namespace under
    # scikit-learn's Array API dispatch (see ``sklearn_modgap._array_api``).
    _array_api_support = False

    def _foreign_namespace(self, *arrays):
        """``(xp, device)`` of non-NumPy inputs under Array API dispatch, else ``None``."""
        foreign = foreign_namespace(*arrays)
        if foreign is not None and not self._array_api_support:
            raise TypeError(
                f"{type(self).__name__} does not support Array API inputs ({foreign[0].__name__} "
                "arrays): pass NumPy arrays, or turn array_api_dispatch off to have them converted."
            )
        return foreign

    # ----------------------------------------------------------- streaming
    # Aligners fitted from mergeable statistics set ``_stream_orders`` to the
    # RowMoments order of (source, target) and implement ``_fit_stream``;
    # ``_stream_sampled`` names the modalities ("X", "y") whose rows a step
    # needs once the moments are final (see ``sklearn_modgap._stream``).
    _stream_orders: tuple[int, int] | None = None
    _stream_sampled: tuple[str, ...] = ()

    def _fit(self, source, target):
        if self._stream_orders is None:
            raise NotImplementedError
        source_order, target_order = self._stream_orders
        source_stats = self._statistics(source, "X", order=source_order)
        target_stats = self._statistics(target, "y", order=target_order)
        self._fit_stream(source_stats, target_stats, source, target)
        if not self._stream_sampled:
            # The moments are the whole fit: partial_fit can continue from them.
            self._stream = FitStream.of_moments(source_stats, target_stats)
            self._stream_stale = False

    def _fit_stream(self, source_stats, target_stats, source_rows, target_rows):
        """Set the fitted attributes from the moments of the prepared rows of both modalities.

        ``source_rows`` and ``target_rows`` are the raw rows: every row for
        ``fit``, the stream's samples for ``partial_fit`` (``None`` for a
        modality not in ``_stream_sampled``).
        """
        raise NotImplementedError

    def _stream_capacity(self, side):
        """Most rows of modality ``side`` the stream's sample keeps (``None``: all)."""
        return getattr(self, "partial_fit_sample", None)

    def _streams(self):
        return self._stream_orders is not None

    @available_if(_streams)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self: _Aligner, X: Any, y: Any = None, *, sample_domain: Any = None) -> _Aligner:
        """Update the fit with one more block of rows of either modality or both.

        The moments of each modality are merged exactly, so any blocking of
        the rows gives the fit of :meth:`fit` on their concatenation, up to
        round-off.  A step that needs rows once the moments are final keeps
        a seeded uniform sample of each modality, chosen by each row's
        position in the stream (see ``partial_fit_sample`` where the aligner
        has it): the same rows whatever the blocking, and every row while a
        modality has no more rows than the sample holds.  The fitted
        attributes are computed when first used after a block.  After
        :meth:`fit`, an aligner whose fit needs only moments continues from
        them; one that samples rows (it has ``partial_fit_sample``, or draws
        rows) refuses, since ``fit`` keeps no row sample.

        Parameters
        ----------
        X : array-like of shape (n_source_block, n_features)
            A block of source rows (it may have no rows), or source and
            target rows stacked, with ``sample_domain``.
        y : array-like of shape (n_target_block, n_features), default=None
            A block of target rows; ``None`` for none.
        sample_domain : array-like of shape (n_samples,), default=None
            ``>= 0`` for source rows, ``< 0`` for target rows of a stacked
            ``X``.

        Returns
        -------
        self : object
            The aligner.
        """
        first = "_stream" not in self.__dict__
        if first and hasattr(self, "n_features_in_"):
            raise ValueError(
                f"This {type(self).__name__} was fitted with fit (or loaded from a file), which "
                "keeps no row sample to continue from: call partial_fit on a fresh aligner (clone "
                "it) for every block, or fit on all rows at once."
            )
        check_numeric(X, "X")
        X = validate_data(self, X, reset=first, **_check_params(min_samples=0, like=X))
        if sample_domain is not None:
            if y is not None and _ndim(y) == 2:
                raise ValueError(
                    "Pass the target block either as y or inside X with sample_domain, not both."
                )
            source, target = split_source_target(X, sample_domain=sample_domain)
        else:
            source = X
            target = None if y is None else check_embeddings(y, name="y", min_samples=0, dtype=_float_dtypes(y))
        if target is not None:
            check_same_features(X.shape[1], target, name="The target block y")
        if first:
            self._stream = self._new_stream(X.shape[1])
        foreign = self._foreign_namespace(source, target)
        orders = self._stream_orders
        assert orders is not None  # partial_fit exists only then
        for side, block, order in zip(("X", "y"), (source, target), orders):
            if block is not None and block.shape[0]:
                if foreign is not None:
                    block = to_numpy(block, foreign[0])
                with block_threads(getattr(self, "n_jobs", None)):
                    self._stream_update(self._stream, side, block, order)
        self._stream_stale = True
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            if name not in ("n_features_in_", "feature_names_in_"):
                delattr(self, name)
        return self

    def _new_stream(self, n_features):
        """An empty :class:`~sklearn_modgap._stream.FitStream` for rows of ``n_features``."""
        capacities = {side: self._stream_capacity(side) for side in self._stream_sampled}
        # Aligners without a random_state sample with a fixed seed.
        seed = check_random_state(getattr(self, "random_state", 0)).randint(2**31 - 1)
        return FitStream(n_features, self._stream_orders, capacities, seed)

    def _stream_update(self, stream, side, block, order, start=None):
        """Add a block of modality ``side`` to ``stream``; its rows sit at ``start, start + 1, ...``.

        ``start`` defaults to the rows the stream has seen of ``side``.
        """
        try:
            moments = self._statistics(block, side, order=order)
        except ExtremeRowsError:
            block = rescale_extreme_rows(block, name=side)
            moments = self._statistics(block, side, order=order)
        stream.moments[side] = stream.moments[side].merge(moments)
        if side in stream.samples:
            stream.samples[side].update(block, start=start)

    def _finish_stream(self):
        """Compute the fitted attributes from the stream, if blocks came since the last time."""
        if not self.__dict__.get("_stream_stale"):
            return
        stream = self._stream
        for side, label in (("X", "source"), ("y", "target")):
            if stream.count(side) < 2:
                raise ValueError(
                    f"partial_fit has seen {stream.count(side)} {label} row(s); each modality needs "
                    "at least 2 before the aligner can be used."
                )
        self._fit_stream(stream.moments["X"], stream.moments["y"], stream.rows("X"), stream.rows("y"))
        self._stream_stale = False

    def __getattr__(self, name):
        # Reached only when the attribute is missing: after partial_fit, a
        # fitted attribute is computed on first use.
        # scikit-learn probes feature_names_in_ on every block.
        if (
            name.endswith("_")
            and not name.startswith("_")
            and name not in ("n_features_in_", "feature_names_in_")
            and self.__dict__.get("_stream_stale")
        ):
            self._finish_stream()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self):
        # A saved aligner is complete and carries no stream (its samples can
        # be large): partial_fit does not continue on a loaded copy.
        self._finish_stream()
        state = super().__getstate__()
        if isinstance(state, dict):
            state = {k: v for k, v in state.items() if k not in ("_stream", "_stream_stale")}
        return state

    def _split_fit_data(self, X, y, sample_domain):
        """The one source/target split of the fit data, with its checks.

        Returns the validated source rows and target rows; with the
        ``needs_pairs`` tag they must be as many, row ``i`` of each a pair.
        """
        needs_pairs = get_tags(self).needs_pairs
        source, target = self._split_sample(X, y, sample_domain, needs_pairs)
        if needs_pairs and len(source) != len(target):
            raise ValueError(
                f"{type(self).__name__} trains on pairs: the source has {len(source)} rows "
                f"but the target has {len(target)}; row i of each must be the same item."
            )
        return source, target

    def _split_sample(self, X, y, sample_domain, needs_pairs):
        check_numeric(X, "X")
        finite = not self._statistics_check_finite
        X = validate_data(self, X, reset=True, **_check_params(finite=False, like=X))
        if finite:
            check_finite_rows(X, name="X")
        if sample_domain is None:
            if not finite and (y is None or _ndim(y) != 2):
                # X is checked before y, also when the streaming check never runs.
                check_finite_rows(X, name="X")
            how = _PAIRS_HELP if needs_pairs else _FIT_HELP
            if y is None:
                raise ValueError(
                    f"{type(self).__name__} requires y to be passed, but the target y is None: "
                    f"{how}."
                )
            if _ndim(y) != 2:
                raise ValueError(
                    f"{type(self).__name__} needs y to be 2-D, got a {_ndim(y)}-D array: pass a "
                    f"2-D array of target-modality embeddings; {how}."
                )
            target = check_embeddings(y, name="y", finite=finite, dtype=_float_dtypes(y))
            check_same_features(X.shape[1], target, name="The target sample y")
            return X, target

        if y is not None and _ndim(y) == 2:
            raise ValueError(
                "Pass the target sample either as y or inside X with sample_domain, not both."
            )
        source, target = split_source_target(X, sample_domain=sample_domain)
        n_target = 0 if target is None else len(target)
        for label, count in (("source (>= 0)", len(source)), ("target (< 0)", n_target)):
            if count < 2:
                raise ValueError(
                    f"sample_domain marks {count} {label} row(s); each modality needs at least 2."
                )
        return source, target

    # ------------------------------------------------------- preparing rows
    def _prepare(self, block, name="X"):
        """Rows as the method sees them: L2-normalised when ``normalize``."""
        return normalize_rows(block, name=name) if self.normalize else block

    def _row_scales(self, block, name):
        """Squared norms of the raw rows (float64) and the factor that prepares them.

        Also the streaming check for NaN and infinity of the passes that skip
        scikit-learn's separate one: a row with a non-finite entry
        has a non-finite squared norm.  Rows of extreme norm
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
    def transform(self, X: Any, *, sample_domain: Any = None) -> Any:
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
            Substitutes, unit-norm, in the dtype of ``X``; a lazy dask array of
            the same row chunks when ``X`` is a dask array.
        """
        if is_dask_array(X):
            from . import _dask

            return _dask.transform(self, X, "transform", sample_domain)
        X = self._validated_rows(X)
        if sample_domain is None:
            return self._map_rows(X, self._source_map(), "X")
        is_target = self._target_rows(sample_domain, X.shape[0])
        foreign = self._foreign_namespace(X)
        if foreign is not None:
            xp, device = foreign
            order = np.concatenate([np.flatnonzero(~is_target), np.flatnonzero(is_target)])
            parts = []
            for rows, step in ((~is_target, self._source_map), (is_target, self._target_map)):
                if rows.any():
                    index = xp.asarray(np.flatnonzero(rows), device=device)
                    parts.append(self._map_rows(xp.take(X, index, axis=0), step(), "X"))
            back = xp.asarray(np.argsort(order), device=device)
            return xp.take(xp.concat(parts, axis=0), back, axis=0)
        out = np.empty_like(X)
        for rows, step in ((~is_target, self._source_map), (is_target, self._target_map)):
            if rows.any():
                out[rows] = self._map_rows(np.ascontiguousarray(X[rows]), step(), "X")
        return out

    def fit_transform(self, X: Any, y: Any = None, *, sample_domain: Any = None, **fit_params: Any) -> Any:
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
        return target_rows(sample_domain, n_rows)

    def transform_target(self, X: Any) -> Any:
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
            Target rows in the aligned space, in the dtype of ``X``; a lazy
            dask array of the same row chunks when ``X`` is a dask array.
        """
        if is_dask_array(X):
            from . import _dask

            return _dask.transform(self, X, "transform_target")
        X_checked = self._validated_rows(X)
        out = self._map_rows(X_checked, self._target_map(), "X")
        return _wrap_data_with_container("transform", out, X, self)

    def _target_map(self):
        return None

    def _validated_rows(self, X):
        """``X`` checked for a fitted aligner's ``transform``: numeric, the fitted width; non-finite rows allowed."""
        check_is_fitted(self)
        check_numeric(X, "X")
        return validate_data(self, X, reset=False, **_check_params(min_samples=1, finite=False, like=X))

    def _transform_into(self, X, out):
        """``transform(X)`` written into ``out``, an array of ``X``'s shape.

        The rows are computed in place where ``out`` has the dtype of the
        validated ``X`` (no temporary output); otherwise they are copied in.
        """
        X = self._validated_rows(X)
        if out.shape != X.shape:
            raise ValueError(f"out has shape {out.shape} but X has shape {X.shape}.")
        if self._foreign_namespace(X) is None and out.dtype == X.dtype and out.flags.c_contiguous:
            self._map_rows(X, self._source_map(), "X", out=out)
        else:
            out[...] = self._map_rows(X, self._source_map(), "X")

    def _map_rows(self, X, step, name, out=None):
        """Apply a fitted map (see :mod:`sklearn_modgap._maps`) block by block into one output.

        ``out``, a C-ordered NumPy array of ``X``'s shape and dtype, receives
        the rows; ``None`` makes a new one.
        """
        foreign = self._foreign_namespace(X)
        if foreign is not None:
            return self._map_rows_xp(X, step, name, *foreign)
        with block_threads(getattr(self, "n_jobs", None)):
            try:
                return self._map_rows_once(X, step, name, out)
            except ExtremeRowsError:
                return self._map_rows_once(rescale_extreme_rows(X, name=name), step, name, out)

    def _map_rows_once(self, X, step, name, out=None):
        if out is None:
            out = np.empty_like(X)
        step = as_block_map(step)
        if isinstance(step, SpanMap):
            span = BlockSpan.of(step, X.dtype)

            def map_block(rows):
                self._map_span_block(X[rows], span, out[rows], name)
                release_pages(X, rows)

        else:

            def map_block(rows):
                block = X[rows]
                if not self.normalize:
                    check_finite_rows(block, name=name)
                    if step is None:
                        out[rows] = block
                        return
                block = self._prepare(block, name)
                if step is None:
                    out[rows] = block
                    return
                moved = step.function(block)
                if not step.normalized:
                    moved = moved / checked_row_norms(moved, name="The aligned rows")[:, None]
                out[rows] = moved
                release_pages(X, rows)

        map_blocks(map_block, *X.shape, X.itemsize, parallel=not getattr(step, "in_order", False))
        return out

    def _map_rows_xp(self, X, step, name, xp, device):
        """``_map_rows`` for rows of another namespace, computed with its operations on its device."""
        dtype = numpy_dtype(X, xp)
        constants = DeviceConstants(xp, device, dtype)
        step = as_block_map(step)
        parts = []
        for rows in block_slices(X.shape[0], X.shape[1], dtype.itemsize):
            block = X[rows, ...]
            prepared = safe_prepared(block, xp, dtype, self.normalize)
            if prepared is None:
                # The NumPy code raises its error (naming the row of X), or
                # rescales and normalises.
                try:
                    prepared = constants.to_device(self._map_rows(to_numpy(block, xp), None, name))
                except ValueError:
                    self._map_rows(to_numpy(X, xp), None, name)
                    raise
            if step is None:
                out = prepared
            elif isinstance(step, SpanMap):
                out = unit_rows(apply_span(step, prepared, constants, xp), xp)
            else:
                moved = step.function(prepared)
                out = moved if step.normalized else unit_rows(moved, xp)
            parts.append(out)
        return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)

    def _map_span_block(self, block, span, out, name):
        sq_norms, scales = self._row_scales(block, name)
        span.apply(block, sq_norms, scales, out)

    # ---------------------------------------------------------------- score
    def score(self, X: Any, y: Any) -> float:
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
        base = super().__sklearn_tags__()
        tags = AlignerTags(**{field.name: getattr(base, field.name) for field in fields(Tags)})
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = self._array_api_support
        tags.target_tags.required = True
        return tags


def target_rows(sample_domain, n_rows):
    """Boolean mask of the target rows of stacked input: ``sample_domain < 0`` (skada's convention)."""
    domain = column_or_1d(sample_domain)
    if domain.shape[0] != n_rows:
        raise ValueError(f"sample_domain has {domain.shape[0]} entries but X has {n_rows} rows.")
    if not np.issubdtype(domain.dtype, np.number):
        raise TypeError(f"sample_domain must be numeric, got dtype {domain.dtype}.")
    return domain < 0


def split_source_target(X, y=None, *, sample_domain=None):
    """The package's one split of data into source rows and target rows.

    Mode B: ``X`` holds the source rows and a 2-D ``y`` the target rows (a
    missing or 1-D ``y``, class labels, gives no target rows).  Stacked mode
    (``sample_domain`` given): ``y`` is ignored and the rows of ``X`` are
    split by :func:`target_rows`, in their order.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Source rows, or source and target rows stacked.
    y : array-like, default=None
        Target rows (mode B).
    sample_domain : array-like of shape (n_samples,), default=None
        ``>= 0`` for source rows, ``< 0`` for target rows.

    Returns
    -------
    source : array-like
        The source rows.
    target : array-like or None
        The target rows, or None when there are none.
    """
    if sample_domain is None:
        return X, (y if y is not None and _ndim(y) == 2 else None)
    is_target = target_rows(sample_domain, _num_samples(X))
    source = _safe_indexing(X, np.flatnonzero(~is_target))
    target = _safe_indexing(X, np.flatnonzero(is_target)) if is_target.any() else None
    return source, target


def _ndim(array):
    return array.ndim if hasattr(array, "ndim") else np.asarray(array).ndim


def _float_dtypes(X):
    """The float dtypes to accept for ``X``: NumPy's, or its own namespace's under Array API dispatch."""
    foreign = foreign_namespace(X)
    if foreign is None:
        return FLOAT_DTYPES
    xp = foreign[0]
    return (xp.float64, xp.float32)


def _check_params(min_samples=2, finite=True, like=None):
    return dict(
        accept_sparse=False,
        dtype=FLOAT_DTYPES if like is None else _float_dtypes(like),
        ensure_all_finite=finite,
        ensure_min_samples=min_samples,
    )
