"""MomentMatch and RandomTargetReplacement: the diagnostic transforms T_Sigma and T_perm."""

from numbers import Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .._array_api import Constant
from .._base import BaseAligner
from .._maps import BlockMap, interpolate
from .._stats import descending_eigh
from .._validation import checked_row_norms


class MomentMatch(BaseAligner):
    """Match the first two moments: whiten with the source covariance, colour with the target's.

    The moment correction ``T_Sigma`` of the AnisoAlign paper (Sec. 3.3):

    ``T(y) = Sigma_x^{1/2} Sigma_y^{-1/2} (y - mu_y) + mu_x``, then ``Norm``,

    with symmetric square roots, so that the substitutes have the target's
    mean and covariance before the renormalisation.  Both covariances are
    population covariances of the prepared fit rows, shrunk towards
    ``(tr(Sigma) / d) I``: with ``n < d`` (every real set in the papers' small
    benchmarks) the raw source covariance is singular and cannot be inverted.
    ``alpha`` interpolates before the final normalisation.

    Parameters
    ----------
    shrinkage : "auto" or float, default="auto"
        ``"auto"``: the Ledoit-Wolf shrinkage of each modality, estimated from
        its own fit rows.  A float in ``[0, 1]`` is used for both.  With 0 and
        a singular source covariance the inverse square root is a
        pseudo-inverse: directions without source variance are dropped.
    alpha : float, default=1.0
        Correction strength in ``[0, 1]``.
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
        ``mu_y``.
    target_mean_ : ndarray of shape (n_features,)
        ``mu_x``.
    source_shrinkage_ : float
        Shrinkage applied to the source covariance.
    target_shrinkage_ : float
        Shrinkage applied to the target covariance.
    mapping_ : ndarray of shape (n_features, n_features)
        ``Sigma_y^{-1/2} Sigma_x^{1/2}``, acting on rows from the right.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features, when ``X`` had string column names.

    See Also
    --------
    ReAlign : Matches the trace of the covariance only.

    References
    ----------
    .. [1] Yu et al. "Anisotropic Modality Align", 2026, Sec. 3.3.
    .. [2] O. Ledoit, M. Wolf. "A well-conditioned estimator for
       large-dimensional covariance matrices". J. Multivariate Anal., 2004.

    Examples
    --------
    >>> from sklearn_modgap import MomentMatch
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> target, source = make_modality_gap(n_pairs=200, n_features=32, random_state=0)
    >>> match = MomentMatch().fit(source, y=target)
    >>> match.transform(source).shape
    (200, 32)
    """

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "shrinkage": [Interval(Real, 0, 1, closed="both"), StrOptions({"auto"})],
    }

    def __init__(self, shrinkage="auto", *, alpha=1.0, normalize=True, n_jobs=None):
        self.shrinkage = shrinkage
        self.alpha = alpha
        self.normalize = normalize
        self.n_jobs = n_jobs

    _array_api_support = True
    _stream_orders = (4, 4)

    def _fit_stream(self, source_stats, target_stats, source_rows, target_rows):
        self.source_mean_, source_cov, self.source_shrinkage_ = self._shrunk_covariance(source_stats)
        self.target_mean_, target_cov, self.target_shrinkage_ = self._shrunk_covariance(target_stats)
        self.mapping_ = _inverse_sqrt(source_cov) @ _sqrt(target_cov)

    def _shrunk_covariance(self, stats):
        mean, cov, n_samples, n_features = stats.mean, stats.covariance, stats.count, stats.n_features
        fourth_moment = stats.centred_fourth_moment()
        shrinkage = self.shrinkage
        if shrinkage == "auto":
            shrinkage = _ledoit_wolf_shrinkage(cov, fourth_moment, n_samples)
        average_variance = np.trace(cov) / n_features
        shrunk = (1.0 - shrinkage) * cov
        shrunk.flat[:: n_features + 1] += shrinkage * average_variance
        return mean, shrunk, float(shrinkage)

    def _source_map(self):
        mean, mapping, target_mean = (
            Constant(self.source_mean_), Constant(self.mapping_), Constant(self.target_mean_)
        )

        def match(block):
            return (block - mean.of(block)) @ mapping.of(block) + target_mean.of(block)

        return interpolate(match, self.alpha)


def _ledoit_wolf_shrinkage(cov, fourth_moment, n_samples):
    """Ledoit-Wolf shrinkage from the population covariance and ``sum_i ||x_i - mu||^4``."""
    n_features = cov.shape[0]
    average_variance = np.trace(cov) / n_features
    # Distance of the covariance from the scaled identity, and the estimated
    # variance of the sample covariance around it (both per feature).
    spread = (np.sum(cov**2) - n_features * average_variance**2) / n_features
    noise = (fourth_moment / n_samples - np.sum(cov**2)) / (n_features * n_samples)
    if spread <= 0:
        return 1.0
    return float(min(noise, spread) / spread) if noise > 0 else 0.0


def _eigen(cov):
    return descending_eigh(cov)


def _sqrt(cov):
    values, vectors = _eigen(cov)
    return (vectors * np.sqrt(values)) @ vectors.T


def _inverse_sqrt(cov):
    values, vectors = _eigen(cov)
    # Eigenvalues below round-off relative to the largest are treated as zero.
    keep = values > values.max() * cov.shape[0] * np.finfo(float).eps
    inverse_root = np.zeros_like(values)
    inverse_root[keep] = 1.0 / np.sqrt(values[keep])
    return (vectors * inverse_root) @ vectors.T


class RandomTargetReplacement(BaseAligner):
    """Replace every source row by a random target fit row: the negative control ``T_perm``.

    The substitutes land exactly on the target's support (perfect modality
    mixing, zero centroid discrepancy) while carrying no information about the
    input (relative-geometry consistency near 0): the AnisoAlign paper's
    diagnostic (Sec. 3.3) showing that mixing alone is not alignment.
    Replacement rows are drawn uniformly with replacement from the stored,
    prepared target fit rows, by a generator seeded anew at each
    ``transform`` call, so a fixed ``random_state`` gives a fixed output.
    ``alpha`` interpolates before the final normalisation.

    Parameters
    ----------
    alpha : float, default=1.0
        Correction strength in ``[0, 1]``.
    normalize : bool, default=True
        L2-normalise input rows before anything else.
    n_jobs : int, default=None
        Threads streaming the row blocks of ``fit`` and ``transform``, in
        joblib's meaning (``-1`` all CPUs).  ``None`` follows
        :func:`joblib.parallel_config`, runs on one thread inside a worker of
        an outer joblib loop (such as ``GridSearchCV(n_jobs=...)``), and
        otherwise uses up to 8 of the CPUs and BLAS threads available.
        Results do not depend on it.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw of replacement rows.

    Attributes
    ----------
    target_rows_ : ndarray of shape (n_target, n_features)
        The prepared target fit rows.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features, when ``X`` had string column names.

    See Also
    --------
    MomentMatch : The other diagnostic transform of the same section.

    References
    ----------
    .. [1] Yu et al. "Anisotropic Modality Align", 2026, Sec. 3.3.

    Examples
    --------
    >>> from sklearn_modgap import RandomTargetReplacement
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> target, source = make_modality_gap(n_pairs=200, n_features=32, random_state=0)
    >>> control = RandomTargetReplacement(random_state=0).fit(source, y=target)
    >>> control.transform(source).shape
    (200, 32)
    """

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "random_state": ["random_state"],
    }

    def __init__(self, *, alpha=1.0, normalize=True, n_jobs=None, random_state=None):
        self.alpha = alpha
        self.normalize = normalize
        self.n_jobs = n_jobs
        self.random_state = random_state

    # The stream keeps every target row, as fit does; the source's moments
    # pass refuses the rows that other aligners would refuse.
    _array_api_support = True
    _stream_orders = (1, 1)
    _stream_sampled = ("y",)

    def _stream_capacity(self, side):
        return None

    def _fit(self, source, target):
        # The source rows are never used, but rows that other aligners would
        # refuse are refused here too.
        if self.normalize:
            checked_row_norms(source, name="X")
        self._fit_stream(None, None, source, target)

    def _fit_stream(self, source_stats, target_stats, source_rows, target_rows):
        self.target_rows_ = np.array(self._prepare(np.asarray(target_rows), "y"))

    def _source_map(self):
        rng = check_random_state(self.random_state)
        rows = self.target_rows_

        def replace(block):
            return Constant(rows[rng.randint(rows.shape[0], size=block.shape[0])]).of(block)

        # The draws advance one generator block by block.
        return interpolate(BlockMap(replace, in_order=True, row_wise=False), self.alpha)
