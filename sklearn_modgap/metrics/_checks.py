"""Input preparation shared by the metric functions.

Every metric sees L2-normalised rows: the checks and the normalisation of the
package's ``_validation`` module are applied here once, with messages that
name the argument at fault.
"""

import warnings
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np
from sklearn.utils._param_validation import validate_params as _sklearn_validate_params

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


def prepare_pairs(target, source):
    """Prepare paired target and source rows: the same count, at least two pairs."""
    return prepare_two(target, source, names=("target", "source"), paired=True, min_samples=2)


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


class DuplicateRowsWarning(UserWarning):
    """Many rows of one modality are exact copies of one another.

    Copies are each other's nearest neighbours at distance 0, so the k-NN
    measures (``M_k^Z``, ``M_k^X``, ``Omega_k``, ``alignment_balance``,
    ``recall@k``) count a row's copies among its neighbours.
    """


# Copies of an earlier row, as a fraction of the rows, from which k-NN
# measures are flagged (Flickr8k repeats each image for its 5 captions: 0.8).
_DUPLICATE_FRACTION = 0.05


def duplicate_row_counts(A):
    """How many rows repeat an earlier row exactly, and the size of the largest group of copies.

    Rows are compared by a 64-bit hash of their bytes, one pass over ``A``.
    """
    A = np.ascontiguousarray(A)
    if A.shape[0] < 2:
        return 0, 1
    words = A.view(np.uint64 if A.itemsize == 8 else np.uint32).astype(np.uint64)
    weights = np.random.default_rng(0).integers(1, 2**63, size=A.shape[1], dtype=np.uint64) | 1
    # Integer products wrap modulo 2^64: a multiplicative hash of the row's bits.
    hashes = words @ weights
    _, counts = np.unique(hashes, return_counts=True)
    return int(A.shape[0] - counts.size), int(counts.max())


def warn_duplicate_rows(A, *, name, k, stacklevel=3):
    """Emit a :class:`DuplicateRowsWarning` when many rows of ``A`` are exact copies."""
    n_copies, largest = duplicate_row_counts(A)
    if n_copies < max(1, _DUPLICATE_FRACTION * A.shape[0]):
        return
    effect = (
        f"rows with {k} or more copies have only copies among their k={k} neighbours, so "
        "M_k^Z (or M_k^X) of such rows is exactly 0 and Omega_k compares copies"
        if largest > k
        else f"up to {largest - 1} of a row's k={k} neighbours are its copies, which lowers "
        "M_k^Z / M_k^X and inflates Omega_k"
    )
    warnings.warn(
        f"{name} has {n_copies} of {A.shape[0]} rows that repeat another row exactly "
        f"({A.shape[0] - n_copies} distinct, the most repeated {largest} times, as with "
        f"several captions per image or one prompt per class). Copies are each other's "
        f"nearest neighbours at distance 0: {effect}. Evaluate the k-NN measures on one "
        "pair per distinct row (np.unique(rows, axis=0, return_index=True)).",
        DuplicateRowsWarning,
        stacklevel=stacklevel,
    )


_Function = TypeVar("_Function", bound=Callable[..., Any])

if TYPE_CHECKING:

    def validate_params(
        parameter_constraints: dict[str, Any], *, prefer_skip_nested_validation: bool
    ) -> Callable[[_Function], _Function]:
        """Scikit-learn's ``validate_params``, typed to keep the decorated function's signature."""

else:
    validate_params = _sklearn_validate_params
