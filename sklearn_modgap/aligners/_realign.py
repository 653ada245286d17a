"""ReAlign: anchor, trace and centroid alignment in closed form."""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval

from .._base import BaseAligner
from .._maps import SpanMap, interpolate
from .._pages import release_pages
from .._validation import map_blocks


class ReAlign(BaseAligner):
    """Closed-form source-to-target alignment by anchor, trace and centroid steps.

    With ``u`` a prepared (normalised) source row, ``mu_y`` and ``mu_x`` the
    source and target means and ``tr_y``, ``tr_x`` their total variances, all
    from the fit rows:

    1. anchor: ``u - mu_y``;
    2. trace: scale by ``s = sqrt(tr_x / tr_y)``, add ``mu_x`` and normalise,
       ``x_hat = Norm(s * (u - mu_y) + mu_x)``;
    3. centroid: ``z = Norm(x_hat - mu_hat + mu_x)``, where ``mu_hat`` is the
       mean of ``x_hat`` over the **fit** source rows (stored, never
       recomputed on the rows being transformed).

    ``alpha`` interpolates before the final normalisation:
    ``Norm((1 - alpha) * u + alpha * (x_hat - mu_hat + mu_x))``.

    The statistics are accumulated in float64 over blocks of rows: the means
    and second moments of both modalities in one streaming pass each, then
    ``mu_hat`` in a second pass over the source fit rows, since it depends on
    ``mu_y``.  Memory beyond the input stays at one block.  :meth:`partial_fit`
    merges the moments exactly; ``mu_hat``, which cannot be merged (it
    divides by norms known only at the end), is then the mean over a seeded
    uniform sample of ``partial_fit_sample`` source rows, the same rows
    whatever the blocking (every row of a stream no longer than that).

    Parameters
    ----------
    alpha : float, default=1.0
        Correction strength in ``[0, 1]``: 0 is the identity up to
        normalisation, 1 is the method as published.
    normalize : bool, default=True
        L2-normalise input rows before anything else.
    partial_fit_sample : int or None, default=100_000
        Source rows :meth:`partial_fit` keeps for ``mu_hat`` (``None``: every
        row, 4 or 8 bytes a feature each).  :meth:`fit` uses every row.
    n_jobs : int, default=None
        Threads streaming the row blocks of ``fit`` and ``transform``, in
        joblib's meaning (``-1`` all CPUs).  ``None`` follows
        :func:`joblib.parallel_config`, runs on one thread inside a worker of
        an outer joblib loop (such as ``GridSearchCV(n_jobs=...)``), and
        otherwise uses up to 8 of the CPUs and BLAS threads available.
        Results do not depend on it.

    Attributes
    ----------
    source_mean_ : ndarray of shape (n_features,)
        ``mu_y``.
    target_mean_ : ndarray of shape (n_features,)
        ``mu_x``.
    source_trace_ : float
        ``tr_y``, total variance of the prepared source fit rows.
    target_trace_ : float
        ``tr_x``, total variance of the prepared target fit rows.
    trace_scale_ : float
        ``s = sqrt(tr_x / tr_y)``.
    calibration_mean_ : ndarray of shape (n_features,)
        ``mu_hat``, the mean of the trace-aligned fit source rows.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features, when ``X`` had string column names.

    See Also
    --------
    CentroidShift : The centroid step alone.
    MomentMatch : Matches the whole covariance instead of its trace.

    References
    ----------
    .. [1] Yu et al. "Anisotropic Modality Align", 2026 (the ReAlign
       baseline).  ``alpha`` is a full-space blend of the input and its
       ReAlign image; it is not the paper's Sec. 3.3 ``T_alpha``, which
       corrects only along the dominant residual directions (see
       :func:`sklearn_modgap.aligners.residual_direction_correction`).

    Examples
    --------
    >>> from sklearn_modgap import ReAlign
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> target, source = make_modality_gap(n_pairs=200, n_features=32, random_state=0)
    >>> realign = ReAlign().fit(source, y=target)
    >>> realign.transform(source[:3]).shape
    (3, 32)
    """

    _statistics_check_finite = True

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "partial_fit_sample": [None, Interval(Integral, 1, None, closed="left")],
    }

    # The calibration mean needs the source rows once the moments are final.
    _array_api_support = True
    _stream_orders = (1, 1)
    _stream_sampled = ("X",)

    def __init__(self, alpha=1.0, *, normalize=True, partial_fit_sample=100_000, n_jobs=None):
        self.alpha = alpha
        self.normalize = normalize
        self.partial_fit_sample = partial_fit_sample
        self.n_jobs = n_jobs

    def _fit(self, source, target):
        # The source's row norms are kept (8 bytes a row) so the calibration pass
        # below reads each block once for its two products.
        row_sq_norms = np.empty(source.shape[0])
        source_stats = self._statistics(source, "X", row_sq_norms=row_sq_norms)
        target_stats = self._statistics(target, "y")
        self._fit_stream(source_stats, target_stats, source, target, source_sq_norms=row_sq_norms)

    def _fit_stream(self, source_stats, target_stats, source_rows, target_rows, source_sq_norms=None):
        source = source_rows
        source_sq = source_stats.mean_sq_norm
        self.source_mean_, self.target_mean_ = source_stats.mean, target_stats.mean
        self.source_trace_ = source_stats.total_variance
        self.target_trace_ = target_stats.total_variance
        # Identical rows leave only round-off in the variance.
        if self.source_trace_ <= 1e-12 * source_sq:
            raise ValueError(
                "The source fit rows have zero total variance (all rows identical after "
                f"normalization, n_features={source.shape[1]}); the trace step of ReAlign is undefined."
            )
        self.trace_scale_ = float(np.sqrt(max(self.target_trace_, 0.0) / self.source_trace_))
        # mu_hat = mean of x_hat = (s u + c) / m over the fit rows, with
        # c = mu_x - s mu_y and m = |s u + c|: two matrix-vector products per block.
        offset = self._trace_offset()

        def block_calibration(rows):
            block = source[rows]
            if source_sq_norms is None:
                sq_norms, _ = self._row_scales(block, "X")
            else:
                sq_norms = source_sq_norms[rows]
            scales = self._scales_of(sq_norms)
            dots = (block @ offset.astype(block.dtype)).astype(np.float64) * scales
            inverse_norms = 1.0 / self._trace_aligned_norms(sq_norms * scales**2, dots)
            weights = (self.trace_scale_ * scales * inverse_norms).astype(block.dtype)
            total = block.T @ weights
            release_pages(source, rows)
            return total, inverse_norms.sum()

        total = np.zeros(source.shape[1])
        inverse_norm_sum = 0.0
        for block_total, block_inverse_norms in map_blocks(
            block_calibration, *source.shape, source.itemsize
        ):
            total += block_total
            inverse_norm_sum += block_inverse_norms
        self.calibration_mean_ = (total + inverse_norm_sum * offset) / source.shape[0]

    def _trace_offset(self):
        # Steps 1-2 as s * u + c: anchor on mu_y, scale by s, move to mu_x.
        return self.target_mean_ - self.trace_scale_ * self.source_mean_

    def _trace_aligned_norms(self, sq_norms, offset_dots):
        offset = self._trace_offset()
        sq = self.trace_scale_**2 * sq_norms + 2 * self.trace_scale_ * offset_dots + offset @ offset
        if np.any(sq <= 0):
            raise ValueError("A trace-aligned row has zero norm and cannot be normalized.")
        return np.sqrt(sq)

    def _source_map(self):
        # Step 3: z = x_hat - mu_hat + mu_x = (s u + c) / m + e, in the span of u, c and e.
        offset = self._trace_offset()
        calibration = self.target_mean_ - self.calibration_mean_

        def coefficients(sq_norms, dots):
            inverse_norms = 1.0 / self._trace_aligned_norms(sq_norms, dots[:, 0])
            return self.trace_scale_ * inverse_norms, np.column_stack(
                [inverse_norms, np.ones_like(inverse_norms)]
            )

        return interpolate(SpanMap(np.vstack([offset, calibration]), coefficients), self.alpha)
