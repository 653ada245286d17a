"""Liang et al.'s two-sided shift of both modalities along the gap direction."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.utils._param_validation import Interval, StrOptions

from .._validation import check_same_features, normalize_rows
from ._checks import prepare_two, validate_params
from ._knn import KNN_METHODS
from ._tasks import retrieval_recall


@validate_params(
    {
        "target": ["array-like"],
        "source": ["array-like"],
        "deltas": ["array-like", None],
        "k": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "direction": ["array-like", None],
        "knn": [StrOptions(set(KNN_METHODS))],
    },
    prefer_skip_nested_validation=True,
)
def liang_shift_sweep(
    target: ArrayLike,
    source: ArrayLike,
    deltas: ArrayLike | None = None,
    *,
    k: int | ArrayLike = (1, 5, 10),
    direction: ArrayLike | None = None,
    knn: str = "exact",
) -> pd.DataFrame:
    """Move both modalities along the gap direction and record gap and retrieval.

    The experiment of Liang et al. (2022, Table 1 and the ``move_features``
    function of their ``shift_features.ipynb``): with the unit gap direction
    ``g = (mu_x - mu_y) / ||mu_x - mu_y||`` of the L2-normalised rows, for
    each ``delta``

    - ``y'_i = Norm(y_i + delta / 2 * g)`` (the source moves towards the target),
    - ``x'_i = Norm(x_i - delta / 2 * g)`` (the target towards the source),

    and the gap distance ``||mean(y') - mean(x')||`` and the retrieval recall
    of the shifted pairs are recorded.  ``delta = 0`` is the unshifted
    embedding; the gap distance falls to a minimum and grows again once the
    two modalities have passed each other.  Both modalities move by the same
    amount along a *unit* direction, so ``delta`` is a length, not a fraction
    of the gap: this is not :class:`~sklearn_modgap.CentroidShift`, which
    moves only the source by ``alpha`` times the gap vector (the AnisoAlign
    paper's ``T_mu``).

    Parameters
    ----------
    target : array-like of shape (n_pairs, n_features)
        Target-modality rows ``X`` (images in the paper).
    source : array-like of shape (n_pairs, n_features)
        Source-modality rows ``Y`` (texts), row ``i`` paired with target row ``i``.
    deltas : array-like of shape (n_deltas,), default=None
        Shift lengths; None is the notebook's ``numpy.arange(-5, 5, 0.25)``.
    k : int or sequence of int, default=(1, 5, 10)
        Recall cut-offs.
    direction : array-like of shape (n_features,), default=None
        The shift direction, normalised here; None is ``g`` of these rows
        (the notebook also shifts one set along the direction of another).
    knn : {"exact", "approximate"}, default="exact"
        k-NN back-end of the recall.

    Returns
    -------
    sweep : pandas.DataFrame
        One row per ``delta``, in the order given: ``delta``,
        ``gap_distance``, ``signed_gap_distance`` (the gap distance, negated
        for the deltas that come after the smallest gap in increasing
        ``delta``, as the x-axis of the paper's figure), and the recalls of
        :func:`retrieval_recall` with the shifted target rows as ``target``
        and the shifted source rows as ``substitutes``:
        ``target_to_substitute_recall@k`` (image -> text, the notebook's
        "Text R@k") and ``substitute_to_target_recall@k`` (text -> image,
        "Image R@k").

    See Also
    --------
    sklearn_modgap.plotting.plot_shift_sweep : The figure of the sweep.
    sklearn_modgap.CentroidShift : The one-sided shift by a fraction of the gap.

    References
    ----------
    .. [1] W. Liang, Y. Zhang, Y. Kwon, S. Yeung, J. Zou. "Mind the Gap:
       Understanding the Modality Gap in Multi-modal Contrastive
       Representation Learning". NeurIPS 2022, Sec. 4.3 and Table 1; code:
       https://github.com/Weixin-Liang/Modality-Gap
       (``Table_1_Implications_CLIP_Zero_Shot/shifting/shift_features.ipynb``).

    Examples
    --------
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.metrics import liang_shift_sweep
    >>> target, source = make_modality_gap(n_pairs=100, n_features=16, random_state=0)
    >>> sweep = liang_shift_sweep(target, source, deltas=[0.0, 0.5, 1.0], k=1)
    >>> list(sweep.columns[:3])
    ['delta', 'gap_distance', 'signed_gap_distance']
    """
    import pandas as pd

    target, source = prepare_two(target, source, names=("target", "source"), paired=True, min_samples=2)
    deltas = np.arange(-5, 5, 0.25) if deltas is None else np.asarray(deltas, dtype=np.float64)
    if deltas.ndim != 1 or deltas.size == 0 or not np.all(np.isfinite(deltas)):
        raise ValueError("deltas must be a non-empty 1-D sequence of finite numbers.")
    target = target.astype(np.float64, copy=False)
    source = source.astype(np.float64, copy=False)
    given = direction
    if direction is None:
        direction = target.mean(axis=0) - source.mean(axis=0)
    else:
        direction = np.asarray(direction, dtype=np.float64)
        if direction.ndim != 1:
            raise ValueError(f"direction must be 1-D, got shape {direction.shape}.")
        check_same_features(target.shape[1], direction[None, :], name="direction", reference="target")
    length = np.linalg.norm(direction)
    if not np.isfinite(length) or length == 0:
        what = "the two means coincide" if given is None else "pass a direction of positive, finite length"
        raise ValueError(f"The shift direction has zero or non-finite length: {what}.")
    direction = direction / length
    rows = []
    for delta in deltas:
        shifted_source = normalize_rows(source + 0.5 * delta * direction, name=f"The source shifted by {delta:g}")
        shifted_target = normalize_rows(target - 0.5 * delta * direction, name=f"The target shifted by {delta:g}")
        row = {
            "delta": float(delta),
            "gap_distance": float(np.linalg.norm(shifted_source.mean(axis=0) - shifted_target.mean(axis=0))),
        }
        row.update(retrieval_recall(shifted_target, shifted_source, k=k, knn=knn))
        rows.append(row)
    sweep = pd.DataFrame(rows)
    increasing = np.argsort(deltas, kind="stable")
    past_minimum = increasing[np.argmin(sweep["gap_distance"].to_numpy()[increasing]) + 1 :]
    signed = sweep["gap_distance"].to_numpy().copy()
    signed[past_minimum] *= -1.0
    sweep.insert(2, "signed_gap_distance", signed)
    return sweep

