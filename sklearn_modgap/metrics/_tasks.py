"""Task-level measures: retrieval, joint clustering and cross-modal transfer.

These ask what an alignment buys downstream: can one modality find its
partner in the other, do the two modalities cluster by meaning rather than
by modality, and does a decoder trained on substitutes alone work when fed
real target embeddings (the text-only training protocol of the seeds'
captioning experiments).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, v_measure_score
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions

from .._deprecation import DEPRECATED, DEPRECATED_OPTION, renamed
from .._validation import check_same_features
from ._checks import prepare_rows, prepare_two, validate_params
from ._knn import KNN_METHODS, check_k, query_neighbors


def _recall_levels(k):
    levels = (k,) if isinstance(k, Integral) else tuple(k)
    if not levels or any(not isinstance(level, Integral) or level < 1 for level in levels):
        raise ValueError(f"k must be a positive int or a non-empty sequence of them, got {k!r}.")
    return tuple(sorted(set(int(level) for level in levels)))


def _check_groups(groups, n_target, n_substitutes):
    if groups is None:
        if n_target != n_substitutes:
            raise ValueError(
                f"target has {n_target} rows and substitutes {n_substitutes}: without "
                "groups the rows must be paired one to one; pass groups[j] = the target "
                "row of substitute j."
            )
        return np.arange(n_target)
    groups = column_or_1d(groups)
    if groups.shape[0] != n_substitutes:
        raise ValueError(
            f"groups has {groups.shape[0]} entries but substitutes has {n_substitutes} rows."
        )
    if not np.issubdtype(groups.dtype, np.integer):
        raise TypeError(f"groups must hold integer target-row indices, got dtype {groups.dtype}.")
    if groups.min() < 0 or groups.max() >= n_target:
        raise ValueError(f"groups must index target rows, i.e. lie in [0, {n_target - 1}].")
    if np.unique(groups).shape[0] != n_target:
        raise ValueError(
            "every target row needs at least one substitute in groups, otherwise it has "
            "nothing to retrieve."
        )
    return groups


@validate_params(
    {
        "target": ["array-like"],
        "substitutes": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "groups": ["array-like", None],
        "knn": [StrOptions(set(KNN_METHODS))],
    },
    prefer_skip_nested_validation=True,
)
def retrieval_recall(
    target: ArrayLike,
    substitutes: ArrayLike,
    k: int | ArrayLike = (1, 5, 10),
    groups: ArrayLike | None = None,
    *,
    knn: str = "exact",
) -> dict[str, float]:
    """Cross-modal retrieval recall at ``k``, in both directions.

    ``R@k`` target -> substitutes: the fraction of target rows with at least
    one of their own substitutes among their ``k`` nearest substitutes
    (cosine).  Substitutes -> target: the fraction of substitutes whose own
    target row is among their ``k`` nearest target rows.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X`` (e.g. images).
    substitutes : array-like of shape (n_substitutes, n_features)
        Substitutes ``Z`` (e.g. aligned captions).
    k : int or sequence of int, default=(1, 5, 10)
        Cut-offs.
    groups : array-like of shape (n_substitutes,), default=None
        ``groups[j]`` is the index of the target row substitute ``j`` belongs
        to, for several captions per image; every target row needs one.
        None means row ``i`` of each is a pair (equal row counts).
    knn : {"exact", "approximate"}, default="exact"
        k-NN back-end: exact brute force, or an approximate index for large
        ``n``.

    Returns
    -------
    recalls : dict
        ``"target_to_substitute_recall@k"`` and
        ``"substitute_to_target_recall@k"`` for every cut-off, in ``[0, 1]``.

    See Also
    --------
    cross_modal_transfer : Retrieval through a decoder trained on substitutes.

    References
    ----------
    .. [1] A. Radford et al. "Learning Transferable Visual Models From Natural
       Language Supervision". ICML 2021 (zero-shot retrieval protocol).

    Examples
    --------
    >>> from sklearn_modgap.metrics import retrieval_recall
    >>> target = [[1.0, 0.0], [0.0, 1.0]]
    >>> substitutes = [[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]]
    >>> retrieval_recall(target, substitutes, k=1, groups=[0, 0, 1])
    {'target_to_substitute_recall@1': 1.0, 'substitute_to_target_recall@1': 1.0}
    """
    levels = _recall_levels(k)
    target, substitutes = prepare_two(target, substitutes, names=("target", "substitutes"))
    groups = _check_groups(groups, target.shape[0], substitutes.shape[0])
    deepest = levels[-1]
    check_k(deepest, substitutes.shape[0], what="each target row (the substitutes)")
    check_k(deepest, target.shape[0], what="each substitute (the target rows)")
    found_substitutes = groups[query_neighbors(substitutes, target, deepest, knn=knn)]
    found_targets = query_neighbors(target, substitutes, deepest, knn=knn)
    hit_substitute = found_substitutes == np.arange(target.shape[0])[:, None]
    hit_target = found_targets == groups[:, None]
    recalls = {}
    for level in levels:
        recalls[f"target_to_substitute_recall@{level}"] = float(
            hit_substitute[:, :level].any(axis=1).mean()
        )
    for level in levels:
        recalls[f"substitute_to_target_recall@{level}"] = float(
            hit_target[:, :level].any(axis=1).mean()
        )
    return recalls


@validate_params(
    {
        "target": ["array-like"],
        "substitutes": ["array-like"],
        "labels": ["array-like"],
        "n_clusters": [Interval(Integral, 2, None, closed="left"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def joint_clustering_scores(
    target: ArrayLike,
    substitutes: ArrayLike,
    labels: ArrayLike,
    *,
    n_clusters: int | None = None,
    random_state: int | np.random.RandomState | None = 0,
) -> dict[str, float]:
    """Agreement of k-means on the pooled modalities with the semantic labels.

    Run :class:`~sklearn.cluster.KMeans` on ``[X; Z]`` and compare its
    clusters with the class labels by the adjusted Rand index and the
    V-measure.  With a modality gap the clusters split by modality and both
    scores stay low; after a good alignment they follow the classes.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    substitutes : array-like of shape (n_substitutes, n_features)
        Substitutes ``Z``.
    labels : array-like of shape (n_target + n_substitutes,) or (n_pairs,)
        Class labels of the pooled rows (target rows first), or, when the rows
        are paired, one label per pair used for both of its rows.
    n_clusters : int, default=None
        Number of clusters; None means the number of distinct labels.
    random_state : int, RandomState instance or None, default=0
        Seed of k-means.

    Returns
    -------
    scores : dict
        ``"adjusted_rand"`` and ``"v_measure"``.

    See Also
    --------
    modality_mixing : Mixing of the modalities without labels.

    References
    ----------
    .. [1] L. Hubert, P. Arabie. "Comparing partitions". Journal of
       Classification, 1985.
    .. [2] A. Rosenberg, J. Hirschberg. "V-Measure: A conditional
       entropy-based external cluster evaluation measure". EMNLP 2007.

    Examples
    --------
    >>> from sklearn_modgap.metrics import joint_clustering_scores
    >>> target = [[1.0, 0.1], [0.1, 1.0]]
    >>> joint_clustering_scores(target, [[1.0, 0.0], [0.0, 1.0]], labels=[0, 1])
    {'adjusted_rand': 1.0, 'v_measure': 1.0}
    """
    target, substitutes = prepare_two(target, substitutes, names=("target", "substitutes"))
    labels = column_or_1d(labels)
    n_pooled = target.shape[0] + substitutes.shape[0]
    if labels.shape[0] == target.shape[0] == substitutes.shape[0]:
        labels = np.concatenate([labels, labels])
    elif labels.shape[0] != n_pooled:
        raise ValueError(
            f"labels has {labels.shape[0]} entries; expected {n_pooled} (target rows then "
            "substitutes) or, for paired rows, one per pair."
        )
    n_clusters = np.unique(labels).shape[0] if n_clusters is None else n_clusters
    if n_clusters < 2 or n_clusters > n_pooled:
        raise ValueError(
            f"n_clusters={n_clusters} must be between 2 and the {n_pooled} pooled rows."
        )
    pooled = np.vstack([target, substitutes])
    found = KMeans(n_clusters=n_clusters, n_init=4, random_state=random_state).fit_predict(pooled)
    return {
        "adjusted_rand": float(adjusted_rand_score(labels, found)),
        "v_measure": float(v_measure_score(labels, found)),
    }


def _ridge_decoder(inputs, outputs, penalty):
    """Affine ridge map ``inputs -> outputs``, the penalty scaled by the mean input variance."""
    input_mean = inputs.mean(axis=0, dtype=np.float64)
    output_mean = outputs.mean(axis=0, dtype=np.float64)
    centred = inputs - input_mean
    scatter = centred.T @ centred
    ridge = penalty * np.trace(scatter) / scatter.shape[0]
    weights = np.linalg.solve(
        scatter + ridge * np.eye(scatter.shape[0]), centred.T @ (outputs - output_mean)
    )
    return lambda rows: (rows - input_mean) @ weights + output_mean


@validate_params(
    {
        "target": ["array-like"],
        "source": ["array-like"],
        "substitutes": ["array-like"],
        "penalty": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left"), DEPRECATED_OPTION],
    },
    prefer_skip_nested_validation=True,
)
def cross_modal_transfer(
    target: ArrayLike,
    source: ArrayLike,
    substitutes: ArrayLike,
    *,
    penalty: float = 0.01,
    alpha: float | str = DEPRECATED,
) -> float:
    """Top-1 accuracy of a substitute-trained decoder fed target embeddings.

    An affine ridge "decoder" learns to reconstruct each source row ``y_i``
    from its substitute ``z_i`` (source side only, as when a captioner is trained on
    text alone).  It is then fed the target rows ``x_i``; the score is how
    often the decoded ``x_i`` is nearest (cosine) to its own source row
    ``y_i`` among all source rows.  Good substitutes stand in for the target
    modality, so the decoder transfers.  Chance level is ``1 / n_samples``.

    Parameters
    ----------
    target : array-like of shape (n_samples, n_features)
        Target rows ``X``, paired with ``source``.
    source : array-like of shape (n_samples, n_features)
        Source rows ``Y``.
    substitutes : array-like of shape (n_samples, n_features)
        Their substitutes ``Z = T(Y)``.
    penalty : float, default=0.01
        Ridge penalty of the decoder, relative to the mean variance of the
        substitutes (so that it does not depend on their spread); needed when
        there are fewer rows than features.
    alpha : float, default="deprecated"
        The former name of ``penalty`` (in this package ``alpha`` is a
        correction strength), accepted with a FutureWarning until the next
        release.

    Returns
    -------
    accuracy : float
        In ``[0, 1]``.

    See Also
    --------
    retrieval_recall : Direct retrieval between targets and substitutes.

    References
    ----------
    .. [1] The text-only training / image-input protocol of the seed papers'
       captioning experiments (e.g. "Closing the Modality Gap").

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap.metrics import cross_modal_transfer
    >>> source = np.random.default_rng(0).normal(size=(40, 8))
    >>> cross_modal_transfer(source, source, source)
    1.0
    """
    source, substitutes = prepare_two(
        source, substitutes, names=("source", "substitutes"), paired=True
    )
    target = prepare_rows(target, name="target")
    check_same_features(source.shape[1], target, name="target")
    if target.shape[0] != source.shape[0]:
        raise ValueError(
            f"target and source must be paired row by row, but target has {target.shape[0]} "
            f"rows and source has {source.shape[0]}."
        )
    penalty = renamed(alpha, penalty, old="alpha", new="penalty", owner="cross_modal_transfer")
    decoded = _ridge_decoder(substitutes, source, penalty)(target)
    decoded /= np.maximum(np.linalg.norm(decoded, axis=1, keepdims=True), np.finfo(float).tiny)
    nearest = query_neighbors(source, decoded.astype(source.dtype, copy=False), 1)[:, 0]
    return float(np.mean(nearest == np.arange(source.shape[0])))
