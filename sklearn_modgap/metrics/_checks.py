"""Input preparation shared by the metric functions.

Every metric sees L2-normalised rows: the checks and the normalisation of the
package's ``_validation`` module are applied here once, with messages that
name the argument at fault.
"""

import numpy as np

from .._validation import (
    block_slices,
    check_embeddings,
    check_same_features,
    normalize_rows,
)

# The metrics compare directions and have no normalize parameter.
_ZERO_ROW_HINT = "remove them: a row of zero norm has no direction to compare"


def prepare_rows(A, *, name, min_samples=1):
    """Validate ``A`` and return its rows L2-normalised (dtype kept)."""
    if np.ndim(A) == 2 and np.shape(A)[0] == 0:
        raise ValueError(
            f"{name} is empty: every modality needs at least {min_samples} row(s)."
        )
    A = check_embeddings(A, name=name, min_samples=min_samples)
    return normalize_rows(A, name=name, hint=_ZERO_ROW_HINT)


def prepare_two(A, B, *, names, paired=False, min_samples=1):
    """Prepare two embedding sets that must share their feature space.

    With ``paired=True`` the two sets must also have the same number of rows,
    row ``i`` of one being the partner of row ``i`` of the other.
    """
    A = prepare_rows(A, name=names[0], min_samples=min_samples)
    B = prepare_rows(B, name=names[1], min_samples=min_samples)
    check_same_features(A.shape[1], B, name=names[1], reference=names[0])
    if paired and A.shape[0] != B.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must be paired row by row, but {names[0]} has "
            f"{A.shape[0]} rows and {names[1]} has {B.shape[0]}."
        )
    return A, B


def stack_normalized(parts, *, names):
    """Validate several embedding sets and stack their normalised rows in one new array.

    Rows are normalised block by block straight into the stacked array, so
    the only copy made is the result.
    """
    checked = []
    for part, name in zip(parts, names):
        if np.ndim(part) == 2 and np.shape(part)[0] == 0:
            raise ValueError(f"{name} is empty: every modality needs at least 1 row(s).")
        checked.append(check_embeddings(part, name=name, min_samples=1))
    for part, name in zip(checked[1:], names[1:]):
        check_same_features(checked[0].shape[1], part, name=name, reference=names[0])
    pool = np.empty(
        (sum(part.shape[0] for part in checked), checked[0].shape[1]),
        dtype=np.result_type(*checked),
    )
    start = 0
    for part, name in zip(checked, names):
        for rows in block_slices(*part.shape, part.itemsize):
            block = part[rows]
            pool[start + rows.start:start + rows.stop] = normalize_rows(
                block, name=name, hint=_ZERO_ROW_HINT
            )
        start += part.shape[0]
    return pool


def check_subspace_size(q, A, B, *, names):
    """Resolve ``q`` and refuse one the data cannot support.

    ``None`` is ``min(128, n_features)``; ``"auto"`` is also capped by what
    the rows support, ``min(128, n_features, n_rows - 1)``.
    """
    n_features = A.shape[1]
    if q is None:
        q = min(128, n_features)
    elif isinstance(q, str) and q == "auto":
        q = max(1, min(128, n_features, A.shape[0] - 1, B.shape[0] - 1))
    if q > n_features:
        raise ValueError(f"q={q} is larger than the number of features {n_features}.")
    for rows, name in ((A.shape[0], names[0]), (B.shape[0], names[1])):
        if q > rows - 1:
            raise ValueError(
                f"q={q} needs at least {q + 1} rows of {name}: the covariance of its "
                f"{rows} rows has rank at most {rows - 1}."
            )
    return q
