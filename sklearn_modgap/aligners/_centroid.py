"""CentroidShift: move the source cloud by the difference of centroids."""

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval

from .._base import BaseAligner
from .._maps import SpanMap, interpolate


class CentroidShift(BaseAligner):
    """Shift source rows by the gap between the two modality centroids.

    The mean shift ``T_mu`` of the AnisoAlign paper, after the constant-offset
    view of the gap of Liang et al. (2022): every source row ``y`` becomes
    ``Norm(y - alpha * (mu_y - mu_x))``, where ``mu_y`` and ``mu_x`` are the
    means of the (normalised) source and target fit rows.  ``alpha=1`` moves
    the source centroid onto the target centroid (before the
    renormalisation); ``0 < alpha < 1`` closes part of the gap, ``alpha > 1``
    overshoots and ``alpha < 0`` widens the gap.  Only the source moves, by a
    fraction of the gap vector.  Liang et al.'s own shift experiment moves
    *both* modalities, by ``+-delta / 2`` along the *unit* gap direction; it is
    :func:`sklearn_modgap.metrics.liang_shift_sweep`, not a value of ``alpha``.

    Parameters
    ----------
    alpha : float, default=1.0
        Fraction of the centroid gap ``Delta = mu_y - mu_x`` removed.
    normalize : bool, default=True
        L2-normalise input rows before anything else.
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
        ``mu_y``, the mean of the prepared source fit rows.
    target_mean_ : ndarray of shape (n_features,)
        ``mu_x``, the mean of the prepared target fit rows.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features, when ``X`` had string column names.

    See Also
    --------
    ReAlign : Also matches the total variance before the shift.
    C3 : Centres both modalities and adds noise (``shift="target"``: this
        shift plus noise).
    sklearn_modgap.metrics.liang_shift_sweep : Liang et al.'s two-sided shift.

    References
    ----------
    .. [1] W. Liang, Y. Zhang, Y. Kwon, S. Yeung, J. Zou. "Mind the Gap:
       Understanding the Modality Gap in Multi-modal Contrastive Representation
       Learning". NeurIPS 2022.

    Examples
    --------
    >>> from sklearn_modgap import CentroidShift
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> target, source = make_modality_gap(n_pairs=200, n_features=32, random_state=0)
    >>> shift = CentroidShift().fit(source, y=target)
    >>> substitutes = shift.transform(source)
    >>> substitutes.shape
    (200, 32)
    """

    _statistics_check_finite = True

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "alpha": [Interval(Real, None, None, closed="neither")],
    }

    def __init__(self, alpha=1.0, *, normalize=True, n_jobs=None):
        self.alpha = alpha
        self.normalize = normalize
        self.n_jobs = n_jobs

    _array_api_support = True
    _stream_orders = (1, 1)

    def _fit_stream(self, source_stats, target_stats, source_rows, target_rows):
        self.source_mean_ = source_stats.mean
        self.target_mean_ = target_stats.mean

    def _source_map(self):
        # T(u) = u - Delta: row weight 1, weight -1 on the single direction Delta.
        gap = self.source_mean_ - self.target_mean_
        shift = SpanMap(gap[None, :], lambda sq_norms, dots: (1.0, -np.ones_like(dots)))
        return interpolate(shift, self.alpha)
