"""Gap measures of the other seed papers.

"Geometry of Compromise" (raw, centroid and distribution gaps; effective
rank and fusion index), "Closing the Modality Gap" (true-pair cosine) and
"Decipher the Modality Gap" (gap angle, principal angles).  Rows are
L2-normalised first.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils._param_validation import Interval

from .._stats import RowMoments
from .._validation import block_slices, single_threaded_blas
from ._checks import check_subspace_size, prepare_pairs, prepare_rows, prepare_two, validate_params
from ._geometry import centroid_displacement, principal_bases

_TWO_SAMPLES = {"target": ["array-like"], "source": ["array-like"]}


def _mean_pair_cosine(target, source, gap=None):
    """Mean cosine of paired rows, each side first shifted by its own mean when ``gap`` is set."""
    mean_x = target.mean(axis=0, dtype=np.float64) if gap else 0.0
    mean_y = source.mean(axis=0, dtype=np.float64) if gap else 0.0
    total = 0.0
    with single_threaded_blas():
        for rows in block_slices(*target.shape, target.itemsize):
            x = target[rows].astype(np.float64) - mean_x
            y = source[rows].astype(np.float64) - mean_y
            norms = np.sqrt(np.einsum("ij,ij->i", x, x) * np.einsum("ij,ij->i", y, y))
            if gap and np.any(norms == 0):
                raise ValueError(
                    "distribution_gap is undefined: a row equals its modality's mean, "
                    "so its centred cosine has no direction."
                )
            total += np.sum(np.einsum("ij,ij->i", x, y) / norms)
    return total / target.shape[0]


@validate_params(_TWO_SAMPLES, prefer_skip_nested_validation=True)
def true_pair_cosine(target: ArrayLike, source: ArrayLike) -> float:
    """Mean cosine similarity of the true pairs.

    ``cos_tp = mean_i cos(x_i, y_i)``.

    Parameters
    ----------
    target : array-like of shape (n_samples, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_samples, n_features)
        Source rows ``Y`` (or substitutes ``Z``), paired with ``target``.

    Returns
    -------
    cos_tp : float
        In ``[-1, 1]``.

    See Also
    --------
    raw_gap : ``1 - cos_tp``.

    References
    ----------
    .. [1] "Closing the Modality Gap" (true-pair cosine).

    Examples
    --------
    >>> from sklearn_modgap.metrics import true_pair_cosine
    >>> true_pair_cosine([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]])
    0.5
    """
    target, source = prepare_pairs(target, source)
    return float(_mean_pair_cosine(target, source))


@validate_params(_TWO_SAMPLES, prefer_skip_nested_validation=True)
def raw_gap(target: ArrayLike, source: ArrayLike) -> float:
    """Mean cosine distance of the true pairs.

    ``raw_gap = mean_i (1 - cos(x_i, y_i))``.

    Parameters
    ----------
    target : array-like of shape (n_samples, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_samples, n_features)
        Source rows, paired with ``target``.

    Returns
    -------
    gap : float
        In ``[0, 2]``.

    See Also
    --------
    distribution_gap : The same after removing each modality's mean.

    References
    ----------
    .. [1] "Geometry of Compromise" (raw gap).

    Examples
    --------
    >>> from sklearn_modgap.metrics import raw_gap
    >>> raw_gap([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]])
    0.5
    """
    target, source = prepare_pairs(target, source)
    return float(1.0 - _mean_pair_cosine(target, source))


@validate_params(_TWO_SAMPLES, prefer_skip_nested_validation=True)
def centroid_gap(target: ArrayLike, source: ArrayLike) -> float:
    """Distance between the modality centroids, ``||mu_x - mu_y||``.

    The name Geometry of Compromise gives to ``G_mu``; see
    :func:`centroid_displacement`.  The rows need not be paired.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_source, n_features)
        Source-modality rows ``Y``.

    Returns
    -------
    gap : float
        In ``[0, 2]``.

    See Also
    --------
    centroid_displacement : The same quantity.

    References
    ----------
    .. [1] "Geometry of Compromise" (centroid gap).

    Examples
    --------
    >>> from sklearn_modgap.metrics import centroid_gap
    >>> centroid_gap([[1.0, 0.0]], [[-1.0, 0.0]])
    2.0
    """
    return centroid_displacement(target, source)


@validate_params(_TWO_SAMPLES, prefer_skip_nested_validation=True)
def distribution_gap(target: ArrayLike, source: ArrayLike) -> float:
    """Mean cosine distance of the true pairs after centring each modality.

    ``distribution_gap = mean_i (1 - cos(x_i - mu_x, y_i - mu_y))``: the
    mismatch a centroid shift leaves.

    Parameters
    ----------
    target : array-like of shape (n_samples, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_samples, n_features)
        Source rows, paired with ``target``.

    Returns
    -------
    gap : float
        In ``[0, 2]``; 0 when every pair's deviations from the two means point the same way.

    See Also
    --------
    raw_gap : Without centring.

    References
    ----------
    .. [1] "Geometry of Compromise" (distribution gap).

    Examples
    --------
    >>> from sklearn_modgap.metrics import distribution_gap
    >>> target = [[1.0, 0.0], [0.0, 1.0]]
    >>> distribution_gap(target, [[0.0, 1.0], [1.0, 0.0]])
    2.0
    """
    target, source = prepare_pairs(target, source)
    return float(1.0 - _mean_pair_cosine(target, source, gap=True))


@validate_params(_TWO_SAMPLES, prefer_skip_nested_validation=True)
def gap_angle(target: ArrayLike, source: ArrayLike) -> float:
    """Angle between the two modality centroids, in degrees.

    ``theta = arccos(mu_x^T mu_y / (||mu_x|| ||mu_y||))``.  The rows need not
    be paired.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_source, n_features)
        Source-modality rows ``Y``.

    Returns
    -------
    angle : float
        In ``[0, 180]``: 0 when the centroids point the same way, whatever
        their lengths.

    See Also
    --------
    centroid_displacement : The distance between the same centroids.

    References
    ----------
    .. [1] "Decipher the Modality Gap" (gap angle).

    Examples
    --------
    >>> from sklearn_modgap.metrics import gap_angle
    >>> round(gap_angle([[1.0, 0.0]], [[1.0, 1.0], [0.0, 1.0]]), 2)
    67.5
    """
    target, source = prepare_two(target, source, names=("target", "source"))
    mean_x = target.mean(axis=0, dtype=np.float64)
    mean_y = source.mean(axis=0, dtype=np.float64)
    norms = np.linalg.norm(mean_x) * np.linalg.norm(mean_y)
    if norms == 0:
        raise ValueError(
            "gap_angle is undefined: the centroid of one modality is the origin."
        )
    return float(np.degrees(np.arccos(np.clip(mean_x @ mean_y / norms, -1.0, 1.0))))


@validate_params(
    {**_TWO_SAMPLES, "q": [Interval(Integral, 1, None, closed="left"), None]},
    prefer_skip_nested_validation=True,
)
def principal_angles(target: ArrayLike, source: ArrayLike, q: int | None = None) -> NDArray[np.float64]:
    """Principal angles between the leading principal subspaces of the modalities.

    With ``U_x,q`` and ``U_y,q`` the top-``q`` eigenvectors of the population
    covariances, the angles are ``arccos`` of the singular values of
    ``U_x,q^T U_y,q``.  The mean of their squared cosines is ``O_q``.  The rows
    need not be paired.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_source, n_features)
        Source-modality rows ``Y``.
    q : int, default=None
        Subspace dimension; None means ``min(128, n_features)``.

    Returns
    -------
    angles : ndarray of shape (q,)
        In degrees, increasing, in ``[0, 90]``.

    See Also
    --------
    subspace_overlap : ``O_q``, the mean squared cosine of these angles.

    References
    ----------
    .. [1] "Decipher the Modality Gap" (principal angles).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap.metrics import principal_angles
    >>> rng = np.random.default_rng(0)
    >>> target = rng.normal(size=(100, 3)) * [3.0, 0.1, 0.1]
    >>> source = rng.normal(size=(100, 3)) * [0.1, 3.0, 0.1]
    >>> principal_angles(target, source, q=1).round(0)
    array([90.])
    """
    target, source = prepare_two(target, source, names=("target", "source"), min_samples=2)
    q = check_subspace_size(q, target, source, names=("target", "source"))
    basis_x, basis_y = principal_bases(target, source, q)
    cosines = np.clip(np.linalg.svd(basis_x.T @ basis_y, compute_uv=False), -1.0, 1.0)
    return np.degrees(np.arccos(cosines))


def _effective_rank(A, center):
    """Roy & Vetterli's effective rank of the rows of ``A`` (already normalised)."""
    stats = RowMoments.of(A, order=2)
    gram = stats.scatter if center else stats.second_moment * stats.count
    singular = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))
    total = singular.sum()
    if total == 0:
        raise ValueError("effective_rank is undefined: the rows are all equal to their mean.")
    weights = singular[singular > 0] / total
    return float(np.exp(-np.sum(weights * np.log(weights))))


@validate_params(
    {"X": ["array-like"], "center": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def effective_rank(X: ArrayLike, *, center: bool = False) -> float:
    """Effective rank of a set of embeddings (Roy & Vetterli).

    ``erank = exp(-sum_k p_k log p_k)`` with ``p_k = s_k / sum_j s_j`` the
    normalised singular values of the matrix of (L2-normalised) rows: a
    continuous count of the directions the rows use.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings of one modality (or several, stacked).
    center : bool, default=False
        Remove the mean row first, measuring the spread rather than the span.

    Returns
    -------
    erank : float
        In ``[1, min(n_samples, n_features)]``.

    See Also
    --------
    fusion_index : Effective rank of both modalities together against each alone.

    References
    ----------
    .. [1] O. Roy, M. Vetterli. "The effective rank: a measure of effective
       dimensionality". EUSIPCO 2007.

    Examples
    --------
    >>> from sklearn_modgap.metrics import effective_rank
    >>> round(effective_rank([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), 4)
    2.0
    """
    return _effective_rank(prepare_rows(X, name="X"), center)


@validate_params(
    {**_TWO_SAMPLES, "center": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def fusion_index(target: ArrayLike, source: ArrayLike, *, center: bool = False) -> float:
    """Effective rank of the pooled modalities against each alone.

    ``F = erank([X; Y]) / mean(erank(X), erank(Y))``: near 1 when the two
    modalities share their directions (fused), up to 2 when they occupy
    separate ones.  The rows need not be paired.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_source, n_features)
        Source-modality rows ``Y``.
    center : bool, default=False
        Centre each set (the pooled one on its own mean) before the ranks.

    Returns
    -------
    index : float
        Positive.

    See Also
    --------
    effective_rank : The rank measure used.

    References
    ----------
    .. [1] "Geometry of Compromise" (fusion index).

    Examples
    --------
    >>> from sklearn_modgap.metrics import fusion_index
    >>> round(fusion_index([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]],
    ...                    [[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]), 4)
    2.0
    """
    target, source = prepare_two(target, source, names=("target", "source"))
    joint = _effective_rank(np.vstack([target, source]), center)
    alone = (_effective_rank(target, center) + _effective_rank(source, center)) / 2.0
    return joint / alone
