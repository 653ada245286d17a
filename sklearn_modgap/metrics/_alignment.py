"""Quality of an alignment: what the substitutes ``Z = T(Y)`` keep and where they land.

The measures of the AnisoAlign paper (Sec. 5 and App. B.2).  Functions that
compare substitutes with their source rows (``Phi``, ``Psi``, ``Omega_k``)
need the rows paired; those that compare substitutes with the target
modality (``Delta_mu``, ``M_k``) do not, and accept different row counts.
"""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import hypergeom
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .._validation import single_threaded_blas
from ._checks import prepare_two, stack_normalized, validate_params, warn_duplicate_rows
from ._knn import KNN_METHODS, check_k, self_neighbors

# Pairs per block when gathering rows for Psi: about 8 MiB of float64 at d=512.
_PAIR_BLOCK = 2048


@validate_params(
    {"target": ["array-like"], "substitutes": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def centroid_discrepancy(target: ArrayLike, substitutes: ArrayLike) -> float:
    """Distance between the centroids of the target rows and the substitutes.

    ``Delta_mu = ||mu_x - mu_z||`` on L2-normalised rows: how far the
    substitutes' centre still sits from the target modality's centre.  The
    rows need not be paired.  Lower is better.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    substitutes : array-like of shape (n_substitutes, n_features)
        Substitutes ``Z = T(Y)``.

    Returns
    -------
    delta_mu : float
        ``Delta_mu``, in ``[0, 2]``.

    See Also
    --------
    centroid_displacement : The same distance between target and source rows.

    References
    ----------
    .. [1] AnisoAlign, Sec. 5 and App. B.2 (``Delta_mu``).

    Examples
    --------
    >>> from sklearn_modgap.metrics import centroid_discrepancy
    >>> round(centroid_discrepancy([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0]]), 4)
    0.7071
    """
    target, substitutes = prepare_two(target, substitutes, names=("target", "substitutes"))
    gap = target.mean(axis=0, dtype=np.float64) - substitutes.mean(axis=0, dtype=np.float64)
    return float(np.linalg.norm(gap))


@validate_params(
    {"source": ["array-like"], "substitutes": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def instance_consistency(source: ArrayLike, substitutes: ArrayLike) -> float:
    """Mean cosine between each source row and its own substitute.

    ``Phi = mean_i y_i^T z_i`` on L2-normalised rows: how much of each
    source embedding survives the map.  Higher is better; 1 for the identity.

    Parameters
    ----------
    source : array-like of shape (n_samples, n_features)
        Source rows ``Y``.
    substitutes : array-like of shape (n_samples, n_features)
        Their substitutes ``Z = T(Y)``, row ``i`` the image of row ``i``.

    Returns
    -------
    phi : float
        ``Phi``, in ``[-1, 1]``.

    See Also
    --------
    relative_geometry_consistency : Preservation of the pairwise geometry.

    References
    ----------
    .. [1] AnisoAlign, App. B.2 (``Phi``).

    Examples
    --------
    >>> from sklearn_modgap.metrics import instance_consistency
    >>> round(instance_consistency([[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 1.0]]), 4)
    0.8536
    """
    source, substitutes = prepare_two(
        source, substitutes, names=("source", "substitutes"), paired=True
    )
    return float(np.einsum("ij,ij->", source, substitutes, dtype=np.float64) / source.shape[0])


def _pair_indices(n_rows, n_pairs, random_state):
    """All pairs ``i < j`` if at most ``n_pairs``, else a seeded sample of pairs ``i != j``."""
    n_all = n_rows * (n_rows - 1) // 2
    if n_all <= n_pairs:
        return np.triu_indices(n_rows, k=1)
    rng = check_random_state(random_state)
    first = rng.randint(n_rows, size=n_pairs)
    second = rng.randint(n_rows - 1, size=n_pairs)
    second += second >= first
    return first, second


def _pair_cosines(A, first, second):
    out = np.empty(first.shape[0])
    with single_threaded_blas():
        for start in range(0, first.shape[0], _PAIR_BLOCK):
            block = slice(start, start + _PAIR_BLOCK)
            out[block] = np.einsum(
                "ij,ij->i", A[first[block]], A[second[block]], dtype=np.float64
            )
    return out


@validate_params(
    {
        "source": ["array-like"],
        "substitutes": ["array-like"],
        "n_pairs": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def relative_geometry_consistency(
    source: ArrayLike,
    substitutes: ArrayLike,
    *,
    n_pairs: int = 20_000,
    random_state: int | np.random.RandomState | None = 0,
) -> float:
    """Correlation of pairwise cosines before and after the map.

    ``Psi = corr({y_i^T y_j}, {z_i^T z_j})`` (Pearson) over a seeded random
    set of pairs ``i != j`` (all pairs ``i < j`` when there are at most
    ``n_pairs``): whether the map keeps the source's relative geometry.
    Higher is better; 1 for any map that rescales all cosines alike.

    Parameters
    ----------
    source : array-like of shape (n_samples, n_features)
        Source rows ``Y``.
    substitutes : array-like of shape (n_samples, n_features)
        Their substitutes ``Z = T(Y)``.
    n_pairs : int, default=20_000
        Number of pairs sampled when there are more than that.
    random_state : int, RandomState instance or None, default=0
        Seed of the pair sample.

    Returns
    -------
    psi : float
        ``Psi``, in ``[-1, 1]``.  When either set of cosines is constant (for
        example all substitutes equal) the correlation is undefined: 0 is
        returned with an :class:`~sklearn.exceptions.UndefinedMetricWarning`.

    See Also
    --------
    neighborhood_consistency : Preservation of the local neighbourhoods.

    References
    ----------
    .. [1] AnisoAlign, App. B.2 (``Psi``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap.metrics import relative_geometry_consistency
    >>> source = np.random.default_rng(0).normal(size=(30, 4))
    >>> round(relative_geometry_consistency(source, -source), 6)
    1.0
    """
    source, substitutes = prepare_two(
        source, substitutes, names=("source", "substitutes"), paired=True
    )
    first, second = _pair_indices(source.shape[0], n_pairs, random_state)
    before = _pair_cosines(source, first, second)
    after = _pair_cosines(substitutes, first, second)
    if np.ptp(before) <= 1e-12 or np.ptp(after) <= 1e-12:
        warnings.warn(
            "Psi is undefined because the pairwise cosines of the "
            f"{'source' if np.ptp(before) <= 1e-12 else 'substitutes'} are constant "
            "(constant or identical rows); returning 0.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return 0.0
    return float(np.corrcoef(before, after)[0, 1])


def _overlap_counts(first, second):
    """Size of the intersection of each row of two index arrays with unique entries."""
    merged = np.sort(np.hstack([first, second]), axis=1)
    return (merged[:, 1:] == merged[:, :-1]).sum(axis=1)


@validate_params(
    {
        "source": ["array-like"],
        "substitutes": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left")],
        "knn": [StrOptions(set(KNN_METHODS))],
    },
    prefer_skip_nested_validation=True,
)
def neighborhood_consistency(source: ArrayLike, substitutes: ArrayLike, k: int = 20, *, knn: str = "exact") -> float:
    """Mean overlap of each row's k-NN set before and after the map.

    ``Omega_k = mean_i |N_k(y_i; Y) ∩ N_k(z_i; Z)| / k``, the neighbours found
    among the other rows of the same set (self excluded), by cosine.  Higher
    is better; 1 when the map keeps every neighbourhood.

    Parameters
    ----------
    source : array-like of shape (n_samples, n_features)
        Source rows ``Y``.
    substitutes : array-like of shape (n_samples, n_features)
        Their substitutes ``Z = T(Y)``.
    k : int, default=20
        Neighbourhood size, at most ``n_samples - 1``.
    knn : {"exact", "approximate"}, default="exact"
        k-NN back-end: exact brute force, or an approximate index for large
        ``n`` (neighbour recall about 0.95 or more, many times faster).

    Returns
    -------
    omega : float
        ``Omega_k``, in ``[0, 1]``.

    See Also
    --------
    relative_geometry_consistency : Preservation of the global geometry.

    References
    ----------
    .. [1] AnisoAlign, App. B.2 (``Omega_k``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap.metrics import neighborhood_consistency
    >>> source = np.random.default_rng(0).normal(size=(30, 4))
    >>> neighborhood_consistency(source, 2 * source, k=5)
    1.0
    """
    source, substitutes = prepare_two(
        source, substitutes, names=("source", "substitutes"), paired=True
    )
    check_k(k, source.shape[0] - 1, what="each source row (the other source rows)")
    warn_duplicate_rows(source, name="source", k=k, stacklevel=4)
    warn_duplicate_rows(substitutes, name="substitutes", k=k, stacklevel=4)
    before = self_neighbors(source, k, knn=knn)
    after = self_neighbors(substitutes, k, knn=knn)
    return float(_overlap_counts(before, after).mean() / k)


def _binary_entropy(p):
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1.0 - p) * np.log2(1.0 - p))
    return np.nan_to_num(h, nan=0.0)


def _random_label_entropy(n_candidates, n_target_candidates, k):
    """``E[H2(K / k)]`` with ``K ~ Hypergeom(n_candidates, n_target_candidates, k)``.

    Under a uniformly random permutation of the modality labels, the number
    of target-labelled rows among a row's ``k`` neighbours is hypergeometric:
    ``k`` draws without replacement from the ``n_candidates`` other rows, of
    which ``n_target_candidates`` carry the target label.
    """
    counts = np.arange(k + 1)
    weights = hypergeom(n_candidates, n_target_candidates, k).pmf(counts)
    return float(weights @ _binary_entropy(counts / k))


def _mixing_scores(target, substitutes, k, directions, knn="exact"):
    """``M_k`` for each requested direction from one k-NN search of ``X ∪ Z``."""
    pool = stack_normalized((target, substitutes), names=("target", "substitutes"))
    n_target = len(target)
    n_pool = pool.shape[0]
    for rows, name in ((n_target, "target"), (n_pool - n_target, "substitutes")):
        if rows < 2:
            raise ValueError(
                f"modality mixing needs at least 2 rows of each modality, {name} has {rows}."
            )
    if k < 2:
        raise ValueError(
            "modality mixing needs k >= 2: with a single neighbour the fraction p_k is "
            "0 or 1 and its entropy is always 0."
        )
    check_k(k, n_pool - 1, what="each row of the pooled target and substitutes")
    warn_duplicate_rows(pool[:n_target], name="target", k=k, stacklevel=5)
    warn_duplicate_rows(pool[n_target:], name="substitutes", k=k, stacklevel=5)
    if set(directions) == {"substitute"}:
        rows = slice(n_target, n_pool)
    elif set(directions) == {"target"}:
        rows = slice(0, n_target)
    else:
        rows = slice(0, n_pool)
    neighbors = self_neighbors(pool, k, rows=rows, knn=knn)
    own = np.arange(n_pool)[rows]
    entropy = _binary_entropy((neighbors < n_target).mean(axis=1))
    scores = {}
    for direction in directions:
        if direction == "substitute":
            observed = entropy[own >= n_target].mean()
            baseline = _random_label_entropy(n_pool - 1, n_target, k)
        else:
            observed = entropy[own < n_target].mean()
            baseline = _random_label_entropy(n_pool - 1, n_target - 1, k)
        scores[direction] = float(observed / baseline)
    return scores


@validate_params(
    {
        "target": ["array-like"],
        "substitutes": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left")],
        "direction": [StrOptions({"substitute", "target"})],
        "knn": [StrOptions(set(KNN_METHODS))],
    },
    prefer_skip_nested_validation=True,
)
def modality_mixing(
    target: ArrayLike,
    substitutes: ArrayLike,
    k: int = 20,
    direction: str = "substitute",
    *,
    knn: str = "exact",
) -> float:
    """How well the substitutes mix with the target rows, against random labels.

    Search the ``k`` nearest neighbours of every row in the pool ``X ∪ Z``
    (self excluded, cosine), take ``p_k(u)``, the fraction of ``u``'s
    neighbours that are target rows, and its binary entropy ``H2(p_k(u))``.
    ``M_k^Z`` averages it over the substitutes (``direction="substitute"``),
    ``M_k^X`` over the target rows (``direction="target"``); each is divided
    by its exact expectation under a uniformly random permutation of the
    modality labels (hypergeometric neighbour-label counts).  About 1 when
    the two sets are indistinguishable, 0 when they are separated.  The rows
    need not be paired.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``; at least 2.
    substitutes : array-like of shape (n_substitutes, n_features)
        Substitutes ``Z = T(Y)``; at least 2.
    k : int, default=20
        Neighbourhood size, from 2 to ``n_target + n_substitutes - 1``.
    direction : {"substitute", "target"}, default="substitute"
        Average over the substitutes (``M_k^Z``) or over the target rows
        (``M_k^X``).
    knn : {"exact", "approximate"}, default="exact"
        k-NN back-end: exact brute force, or an approximate index for large
        ``n``.

    Returns
    -------
    mixing : float
        ``M_k^Z`` or ``M_k^X``, non-negative, about 1 for perfect mixing.

    See Also
    --------
    alignment_balance : Mixing and geometry preservation in one number.

    References
    ----------
    .. [1] AnisoAlign, App. B.2 (``M_k^Z``, ``M_k^X``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap.metrics import modality_mixing
    >>> target = np.random.default_rng(0).normal(size=(40, 3)) + [5.0, 0.0, 0.0]
    >>> modality_mixing(target, -target, k=5)
    0.0
    """
    return _mixing_scores(target, substitutes, k, (direction,), knn)[direction]


@validate_params(
    {
        "target": ["array-like"],
        "source": ["array-like"],
        "substitutes": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "knn": [StrOptions(set(KNN_METHODS))],
    },
    prefer_skip_nested_validation=True,
)
def alignment_balance(
    target: ArrayLike,
    source: ArrayLike,
    substitutes: ArrayLike,
    *,
    k: int = 20,
    random_state: int | np.random.RandomState | None = 0,
    knn: str = "exact",
) -> float:
    """Harmonic mean of geometry preservation and modality mixing.

    ``B = HM(max(Psi, 0), (M_k^Z + M_k^X) / 2)``: keep the source's semantic
    geometry *and* enter the target's support.  The identity map (no mixing),
    a collapse onto one point (no geometry) and random target replacement (no
    geometry) all score near 0.  0 when both parts are 0.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X`` (aligned, for two-sided methods).
    source : array-like of shape (n_samples, n_features)
        Source rows ``Y``.
    substitutes : array-like of shape (n_samples, n_features)
        Their substitutes ``Z = T(Y)``, paired with ``source``.
    k : int, default=20
        Neighbourhood size of the mixing scores.
    random_state : int, RandomState instance or None, default=0
        Seed of the pair sample of ``Psi``.
    knn : {"exact", "approximate"}, default="exact"
        k-NN back-end of the mixing scores.

    Returns
    -------
    balance : float
        Higher is better.

    See Also
    --------
    relative_geometry_consistency : ``Psi``.
    modality_mixing : ``M_k^Z`` and ``M_k^X``.

    References
    ----------
    .. [1] AnisoAlign, Sec. 5 (the preservation--mixing trade-off).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap.metrics import alignment_balance
    >>> rng = np.random.default_rng(0)
    >>> target, source = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    >>> round(alignment_balance(target, source, source, k=5), 1)
    1.0
    >>> far = [20.0, 0, 0, 0, 0, 0, 0, 0]
    >>> round(alignment_balance(target + far, source - far, source - far, k=5), 1)
    0.0
    """
    source, substitutes = prepare_two(
        source, substitutes, names=("source", "substitutes"), paired=True, min_samples=2
    )
    psi = relative_geometry_consistency(source, substitutes, random_state=random_state)
    geometry = max(psi, 0.0)
    mixing = _mixing_scores(target, substitutes, k, ("substitute", "target"), knn)
    mixing = (mixing["substitute"] + mixing["target"]) / 2.0
    if geometry + mixing == 0.0:
        return 0.0
    return float(2.0 * geometry * mixing / (geometry + mixing))
