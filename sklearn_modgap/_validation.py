"""Input checks and row normalisation shared by aligners and metrics.

Every public entry point of the package sends its arrays through these
functions, so that bad input fails in one place with one kind of message.
"""

import numpy as np
from sklearn.utils import check_array
from threadpoolctl import threadpool_limits

FLOAT_DTYPES = (np.float64, np.float32)

# Rows per block for streaming passes: about 2 MiB of float32 at d=512, so a
# block and its temporaries stay in cache while every pass over it is cheap.
_BLOCK_BYTES = 2**21


def check_embeddings(X, *, name="X", min_samples=2, dtype=FLOAT_DTYPES):
    """Validate a 2-D dense finite array of embeddings.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings, one per row.
    name : str, default="X"
        Name used in error messages.
    min_samples : int, default=2
        Fewest rows accepted.
    dtype : dtype or tuple of dtypes, default=(float64, float32)
        Accepted dtypes; other inputs are converted to the first one.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The validated array (not a copy when none was needed).
    """
    return check_array(
        X,
        accept_sparse=False,
        dtype=dtype,
        ensure_2d=True,
        ensure_all_finite=True,
        ensure_min_samples=min_samples,
        input_name=name,
    )


def block_slices(n_rows, n_features, itemsize=4):
    """Yield row slices of about ``_BLOCK_BYTES`` each."""
    step = max(64, _BLOCK_BYTES // max(1, n_features * itemsize))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def single_threaded_blas():
    """Context in which BLAS runs on one thread, for loops over blocks.

    The products inside a streaming loop are small (one block by a few
    vectors) and memory-bound: splitting each over threads buys nothing and,
    when another process holds a core, the threads' synchronisation made them
    20-40 times slower in measurements on a shared 2-core machine.
    """
    return threadpool_limits(limits=1, user_api="blas")


def checked_row_norms(X, *, name="X"):
    """Euclidean norm of every row, refusing rows that cannot be normalised."""
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(
            f"{name} has {zero.size} row(s) of zero norm (first at index {zero[0]}) "
            "that cannot be L2-normalized; remove them or pass normalize=False."
        )
    return norms


def normalize_rows(X, *, name="X"):
    """Return a new array whose rows are ``X``'s rows divided by their norms."""
    X = np.asarray(X)
    return X / checked_row_norms(X, name=name)[:, None]


def check_same_features(n_expected, X, *, name, reference="the source"):
    """Raise if ``X`` does not have ``n_expected`` columns."""
    if X.shape[1] != n_expected:
        raise ValueError(
            f"{name} has {X.shape[1]} features but {reference} has {n_expected}: "
            "both modalities must live in the same embedding space."
        )
