"""Geometry of two modalities: the diagnostics of the AnisoAlign paper (Sec. 3, App. A).

Rows are L2-normalised first; covariances are population covariances
(divided by ``n``) accumulated in float64 over blocks of rows.  Functions on
the residual ``r_i = (x_i - mu_x) - (y_i - mu_y)`` need paired rows; the
others accept two unpaired samples.  Passing substitutes ``Z = T(Y)`` in
place of the source gives the same diagnostics after an alignment (for
example ``A_r(T)``, the anisotropy of ``x_i - z_i``).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils._param_validation import Interval, StrOptions

from .._stats import RowMoments, descending_eigh
from .._validation import block_slices, single_threaded_blas
from ._checks import check_subspace_size, prepare_pairs, prepare_two, validate_params

_EPS = 1e-12
# Rows are unit-norm, so a residual covariance of trace below this is rounding
# of identical rows, not a direction.
_ZERO_TRACE = 1e-20


def mean_and_covariance(A):
    """Mean and population covariance of the rows of ``A``, in float64, in one streaming pass."""
    stats = RowMoments.of(A, order=2)
    return stats.mean, stats.covariance


def residual_moments(target, source):
    """Mean gap ``mu_x - mu_y`` and residual covariance ``S_r = mean r r^T`` of paired rows."""
    stats = RowMoments.of(_Difference(target, source), order=2)
    return stats.mean, stats.covariance


class _Difference:
    """Rows of ``target - source`` computed a block at a time, for :meth:`RowMoments.of`."""

    def __init__(self, target, source):
        self.target, self.source = target, source
        self.shape = target.shape
        self.itemsize = max(target.itemsize, source.itemsize)

    def __getitem__(self, rows):
        return self.target[rows].astype(np.float64) - self.source[rows]


def _unpaired(target, source):
    return prepare_two(target, source, names=("target", "source"), min_samples=2)


_TWO_SAMPLES = {"target": ["array-like"], "source": ["array-like"]}


@validate_params(_TWO_SAMPLES, prefer_skip_nested_validation=True)
def spectral_correlation(target: ArrayLike, source: ArrayLike) -> float:
    """Correlation of the log covariance spectra of the two modalities.

    ``C_lambda = corr(log eig(S_x), log eig(S_y))``, the eigenvalues sorted in
    decreasing order and paired by rank.  Only the leading eigenvalues that
    are non-zero in both spectra enter (with fewer rows than features the
    trailing ones are zero up to rounding).  Near 1 when both modalities have
    the same spectral shape.  The rows need not be paired.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_source, n_features)
        Source-modality rows ``Y``.

    Returns
    -------
    c_lambda : float
        ``C_lambda``, in ``[-1, 1]``.

    See Also
    --------
    subspace_overlap : Whether the leading directions agree, not only the spectra.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 (``C_lambda``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap.metrics import spectral_correlation
    >>> rng = np.random.default_rng(0)
    >>> target = rng.normal(size=(200, 5)) * [5, 4, 3, 2, 1] + 10
    >>> source = rng.normal(size=(200, 5)) * [1, 2, 3, 4, 5] + 10
    >>> round(spectral_correlation(target, source), 1)
    1.0
    """
    target, source = _unpaired(target, source)
    spectra = [descending_eigh(mean_and_covariance(A)[1])[0] for A in (target, source)]
    tolerance = [s[0] * max(target.shape[1], A.shape[0]) * np.finfo(np.float64).eps
                 for s, A in zip(spectra, (target, source))]
    n_positive = min(int((s > tol).sum()) for s, tol in zip(spectra, tolerance))
    if n_positive < 2:
        raise ValueError(
            "C_lambda needs at least 2 non-zero covariance eigenvalues in each modality, "
            f"found {n_positive}."
        )
    logs = [np.log(s[:n_positive]) for s in spectra]
    return float(np.corrcoef(*logs)[0, 1])


def principal_bases(target, source, q):
    """Top-``q`` eigenvectors of each modality's population covariance."""
    return [descending_eigh(mean_and_covariance(A)[1])[1][:, :q] for A in (target, source)]


@validate_params(
    {**_TWO_SAMPLES, "q": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
     "return_baseline": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def subspace_overlap(
    target: ArrayLike,
    source: ArrayLike,
    q: int | None = None,
    *,
    return_baseline: bool = False,
) -> float | tuple[float, float]:
    """Overlap of the two modalities' leading principal subspaces.

    ``O_q = ||U_x,q^T U_y,q||_F^2 / q``, with ``U_x,q`` and ``U_y,q`` the top-``q``
    eigenvectors of the population covariances: the mean squared cosine of the
    principal angles.  1 for identical subspaces; two random ``q``-dimensional
    subspaces of ``R^d`` give ``q / d`` on average, the random baseline.  The
    rows need not be paired.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_source, n_features)
        Source-modality rows ``Y``.
    q : int, "auto" or None, default=None
        Subspace dimension; None means ``min(128, n_features)`` and
        ``"auto"`` also caps it by the rows, ``min(128, n_features,
        n_rows - 1)``.  An int is at most ``n_features`` and fewer than the
        rows of each modality.
    return_baseline : bool, default=False
        Also return the random baseline ``q / d``.

    Returns
    -------
    o_q : float
        ``O_q``, in ``[0, 1]``.
    baseline : float
        ``q / d``; only when ``return_baseline=True``.

    See Also
    --------
    principal_angles : The angles whose squared cosines ``O_q`` averages.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 (``O_q``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap.metrics import subspace_overlap
    >>> rng = np.random.default_rng(0)
    >>> target = rng.normal(size=(100, 4)) * [3, 2, 0.1, 0.1] + 5
    >>> round(subspace_overlap(target, target[:, [1, 0, 3, 2]], q=2), 1)
    1.0
    """
    target, source = _unpaired(target, source)
    q = check_subspace_size(q, target, source, names=("target", "source"))
    basis_x, basis_y = principal_bases(target, source, q)
    overlap = float(np.sum((basis_x.T @ basis_y) ** 2) / q)
    if return_baseline:
        return overlap, q / target.shape[1]
    return overlap


@validate_params(_TWO_SAMPLES, prefer_skip_nested_validation=True)
def centroid_displacement(target: ArrayLike, source: ArrayLike) -> float:
    """Distance between the centroids of the two modalities.

    ``G_mu = ||mu_x - mu_y||`` on L2-normalised rows, the classic modality
    gap.  The rows need not be paired.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_source, n_features)
        Source-modality rows ``Y``.

    Returns
    -------
    g_mu : float
        ``G_mu``, in ``[0, 2]``.

    See Also
    --------
    centroid_gap : The same quantity under the name of Geometry of Compromise.
    centroid_discrepancy : The same distance between targets and substitutes.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 (``G_mu``).

    Examples
    --------
    >>> from sklearn_modgap.metrics import centroid_displacement
    >>> round(centroid_displacement([[1.0, 0.0], [1.0, 0.0]], [[0.0, 2.0], [0.0, 1.0]]), 4)
    1.4142
    """
    target, source = prepare_two(target, source, names=("target", "source"))
    gap = target.mean(axis=0, dtype=np.float64) - source.mean(axis=0, dtype=np.float64)
    return float(np.linalg.norm(gap))


@validate_params(_TWO_SAMPLES, prefer_skip_nested_validation=True)
def covariance_discrepancy(target: ArrayLike, source: ArrayLike) -> float:
    """Relative Frobenius distance between the two covariance matrices.

    ``G_Sigma = ||S_x - S_y||_F / (||S_x||_F + eps)`` with population
    covariances: 0 when both modalities spread alike.  The rows need not be
    paired.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_source, n_features)
        Source-modality rows ``Y``.

    Returns
    -------
    g_sigma : float
        ``G_Sigma``, non-negative.

    See Also
    --------
    spectral_correlation : Compares only the shapes of the spectra.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 (``G_Sigma``).

    Examples
    --------
    >>> from sklearn_modgap.metrics import covariance_discrepancy
    >>> covariance_discrepancy([[1.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, -1.0]])
    0.0
    """
    target, source = _unpaired(target, source)
    cov_x = mean_and_covariance(target)[1]
    cov_y = mean_and_covariance(source)[1]
    return float(np.linalg.norm(cov_x - cov_y) / (np.linalg.norm(cov_x) + _EPS))


def _mean_pair_distance(target, source, gap):
    total = 0.0
    with single_threaded_blas():
        for rows in block_slices(*target.shape, target.itemsize):
            diff = target[rows].astype(np.float64) - source[rows] - gap
            total += np.sqrt(np.einsum("ij,ij->i", diff, diff)).sum()
    return total / target.shape[0]


@validate_params(
    {**_TWO_SAMPLES, "centered": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def paired_distance(target: ArrayLike, source: ArrayLike, *, centered: bool = False) -> float:
    """Mean distance between paired rows, raw or with each modality's mean removed.

    ``D = mean_i ||x_i - y_i||``; with ``centered=True`` the mean-corrected
    ``D_tilde = mean_i ||(x_i - mu_x) - (y_i - mu_y)||``, the part of the
    distance a centroid shift cannot remove.

    Parameters
    ----------
    target : array-like of shape (n_samples, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_samples, n_features)
        Source-modality rows ``Y``, row ``i`` paired with ``x_i``.
    centered : bool, default=False
        Return ``D_tilde`` instead of ``D``.

    Returns
    -------
    distance : float
        ``D`` or ``D_tilde``, in ``[0, 2]`` for ``D``.

    See Also
    --------
    residual_ratio : ``D_tilde / D``.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 (``D``, ``D_tilde``).

    Examples
    --------
    >>> from sklearn_modgap.metrics import paired_distance
    >>> target, source = [[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]
    >>> round(paired_distance(target, source), 4), paired_distance(target, source, centered=True)
    (1.4142, 1.4142...)
    """
    target, source = prepare_pairs(target, source)
    gap = np.zeros(target.shape[1])
    if centered:
        gap = target.mean(axis=0, dtype=np.float64) - source.mean(axis=0, dtype=np.float64)
    return float(_mean_pair_distance(target, source, gap))


@validate_params(
    {**_TWO_SAMPLES, "form": [StrOptions({"distance", "energy"})]},
    prefer_skip_nested_validation=True,
)
def residual_ratio(target: ArrayLike, source: ArrayLike, *, form: str = "distance") -> float:
    """Share of the paired gap that is residual rather than centroid shift.

    Distance form ``D_tilde / D``; energy form
    ``tr(S_r) / (||mu_x - mu_y||^2 + tr(S_r))``, which splits the mean squared
    paired distance exactly into its centroid and residual parts.  Near 0
    when a centroid shift would close the gap, near 1 when it would not help.

    Parameters
    ----------
    target : array-like of shape (n_samples, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_samples, n_features)
        Source-modality rows ``Y``, paired with ``target``.
    form : {"distance", "energy"}, default="distance"
        Which of the two ratios.

    Returns
    -------
    ratio : float
        In ``[0, 1]`` for the energy form.

    See Also
    --------
    paired_distance : ``D`` and ``D_tilde``.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 (residual ratio).

    Examples
    --------
    >>> from sklearn_modgap.metrics import residual_ratio
    >>> target = [[1.0, 0.0], [0.0, 1.0]]
    >>> round(residual_ratio(target, [[0.0, 1.0], [1.0, 0.0]], form="energy"), 4)
    1.0
    """
    target, source = prepare_pairs(target, source)
    if form == "energy":
        gap, cov_r = residual_moments(target, source)
        residual = np.trace(cov_r)
        total = gap @ gap + residual
        return float(residual / total) if total > 0 else 0.0
    gap = target.mean(axis=0, dtype=np.float64) - source.mean(axis=0, dtype=np.float64)
    distance = _mean_pair_distance(target, source, np.zeros_like(gap))
    if distance == 0:
        return 0.0
    return float(_mean_pair_distance(target, source, gap) / distance)


def _residual_spectrum(target, source, centered=True):
    target, source = prepare_pairs(target, source)
    gap, scatter = residual_moments(target, source)
    if not centered:
        # mean (x - y)(x - y)^T = S_r + g g^T: the uncentred second moment.
        scatter = scatter + np.outer(gap, gap)
    return descending_eigh(scatter)[0]


@validate_params(
    {**_TWO_SAMPLES, "centered": ["boolean"]}, prefer_skip_nested_validation=True
)
def residual_anisotropy(target: ArrayLike, source: ArrayLike, *, centered: bool = True) -> float:
    """How much the paired residual concentrates in one direction.

    ``A_r = lambda_max(S_r) / (tr(S_r) / d)`` with ``S_r = mean r r^T``: 1 for
    an isotropic residual, ``d`` when it lies on a single line.  With
    ``centered=True`` (Sec. 3's ``A_r``) the residual is
    ``r_i = (x_i - mu_x) - (y_i - mu_y)``.  With ``centered=False`` it is
    the raw ``r_i = x_i - y_i``, so ``S_r`` also holds the mean gap
    ``g g^T``: this is App. B.2's ``A_r(T)``, the anisotropy of ``x_i - z_i``
    left by an alignment, which ``gap_report``'s ``A_r`` column and the
    ``neg_residual_anisotropy`` scorer use.

    Parameters
    ----------
    target : array-like of shape (n_samples, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_samples, n_features)
        Source rows ``Y`` (or substitutes ``Z``), paired with ``target``.
    centered : bool, default=True
        Subtract each modality's mean before forming the residual (Sec. 3);
        ``False`` gives the uncentred ``A_r(T)`` of App. B.2.

    Returns
    -------
    a_r : float
        ``A_r``, in ``[1, d]``.

    See Also
    --------
    effective_dimension : The number of directions the residual fills.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 (``A_r``, centred) and App. B.2 (``A_r(T)``,
       uncentred ``Sigma_r^T = 1/n sum r_i r_i^T`` with ``r_i = x_i - z_i``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap.metrics import residual_anisotropy
    >>> angles = np.deg2rad([10.0, 30.0, 60.0])
    >>> target = np.column_stack([np.cos(angles), np.sin(angles)])
    >>> source = target * [1.0, -1.0]
    >>> round(residual_anisotropy(target, source), 6)
    2.0
    >>> round(residual_anisotropy(target, source, centered=False), 6)
    2.0
    """
    spectrum = _residual_spectrum(target, source, centered)
    total = spectrum.sum()
    if total <= _ZERO_TRACE:
        raise ValueError("A_r is undefined: the paired residual is zero (identical modalities).")
    return float(spectrum[0] / (total / spectrum.shape[0]))


@validate_params(_TWO_SAMPLES, prefer_skip_nested_validation=True)
def cumulative_energy(target: ArrayLike, source: ArrayLike) -> NDArray[np.float64]:
    """Share of the residual energy in its top-``K`` directions, for every ``K``.

    ``E(K) = sum_{k <= K} lambda_k(S_r) / tr(S_r)`` for ``K = 1, ..., d``.

    Parameters
    ----------
    target : array-like of shape (n_samples, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_samples, n_features)
        Source rows ``Y`` (or substitutes ``Z``), paired with ``target``.

    Returns
    -------
    energy : ndarray of shape (n_features,)
        ``energy[K - 1] = E(K)``, non-decreasing, ending at 1.

    See Also
    --------
    residual_anisotropy : ``E(1) * d``.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 (``E(K)``).

    Examples
    --------
    >>> from sklearn_modgap.metrics import cumulative_energy
    >>> target = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    >>> cumulative_energy(target, [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]).round(3)
    array([1., 1., 1.])
    """
    spectrum = _residual_spectrum(target, source)
    total = spectrum.sum()
    if total <= _ZERO_TRACE:
        raise ValueError("E(K) is undefined: the paired residual is zero (identical modalities).")
    return np.cumsum(spectrum) / total


@validate_params(
    {**_TWO_SAMPLES, "relative": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def effective_dimension(target: ArrayLike, source: ArrayLike, *, relative: bool = False) -> float:
    """Participation ratio of the residual spectrum.

    ``d_eff = tr(S_r)^2 / tr(S_r^2)``: the number of equally strong directions
    that would carry the same residual energy; ``d`` for an isotropic
    residual, 1 for a residual on one line.

    Parameters
    ----------
    target : array-like of shape (n_samples, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_samples, n_features)
        Source rows ``Y`` (or substitutes ``Z``), paired with ``target``.
    relative : bool, default=False
        Return ``d_eff / d``.

    Returns
    -------
    d_eff : float
        ``d_eff`` (or ``d_eff / d``).

    See Also
    --------
    residual_anisotropy : The weight of the strongest direction alone.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 (``d_eff``).

    Examples
    --------
    >>> from sklearn_modgap.metrics import effective_dimension
    >>> target = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    >>> round(effective_dimension(target, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), 4)
    1.0
    """
    spectrum = _residual_spectrum(target, source)
    total = spectrum.sum()
    if total <= _ZERO_TRACE:
        raise ValueError("d_eff is undefined: the paired residual is zero (identical modalities).")
    d_eff = total**2 / np.sum(spectrum**2)
    return float(d_eff / spectrum.shape[0] if relative else d_eff)


def _orthonormal_columns(basis, n_features):
    basis = np.asarray(basis, dtype=np.float64)
    if basis.ndim != 2 or basis.shape[0] != n_features:
        raise ValueError(
            f"subspace must be an int rank or an array of shape (n_features={n_features}, r) "
            f"whose columns span U, got shape {basis.shape}."
        )
    if not np.all(np.isfinite(basis)):
        raise ValueError("subspace contains NaN or infinity.")
    q, r = np.linalg.qr(basis)
    diagonal = np.abs(np.diag(r))
    if diagonal.size == 0 or diagonal.min() <= 1e-10 * max(diagonal.max(), _EPS):
        raise ValueError("the columns of subspace are linearly dependent or zero.")
    return q


@validate_params(
    {**_TWO_SAMPLES, "subspace": [Interval(Integral, 1, None, closed="left"), "array-like"]},
    prefer_skip_nested_validation=True,
)
def residual_coverage(target: ArrayLike, source: ArrayLike, subspace: ArrayLike) -> float:
    """Share of the residual energy that lies in a subspace ``U``.

    ``eta_U = tr(P_U S_r) / tr(S_r)`` with ``P_U`` the orthogonal projector onto
    ``U``: how much of the gap left after a centroid shift a correction
    confined to ``U`` could reach.

    Parameters
    ----------
    target : array-like of shape (n_samples, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_samples, n_features)
        Source rows ``Y`` (or substitutes ``Z``), paired with ``target``.
    subspace : int or array-like of shape (n_features, r)
        ``U`` itself, as columns spanning it (orthonormalised here), or a rank
        ``r``: then ``U`` is the top-``r`` principal subspace of the target
        covariance ``S_x``.

    Returns
    -------
    eta_u : float
        ``eta_U``, in ``[0, 1]``.

    See Also
    --------
    cumulative_energy : ``eta_U`` for the residual's own top-``K`` subspaces.

    References
    ----------
    .. [1] AnisoAlign, App. A (``eta_U``).

    Examples
    --------
    >>> from sklearn_modgap.metrics import residual_coverage
    >>> target = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    >>> source = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    >>> round(residual_coverage(target, source, [[1.0], [-1.0], [0.0]]), 4)
    1.0
    """
    target, source = prepare_pairs(target, source)
    n_features = target.shape[1]
    if isinstance(subspace, Integral):
        rank = check_subspace_size(int(subspace), target, source, names=("target", "source"))
        basis = descending_eigh(mean_and_covariance(target)[1])[1][:, :rank]
    else:
        basis = _orthonormal_columns(subspace, n_features)
    cov_r = residual_moments(target, source)[1]
    total = np.trace(cov_r)
    if total <= _ZERO_TRACE:
        raise ValueError("eta_U is undefined: the paired residual is zero (identical modalities).")
    return float(np.einsum("ir,ij,jr->", basis, cov_r, basis) / total)
