"""Input checks and row normalisation shared by aligners and metrics.

Every public entry point of the package sends its arrays through these
functions, so that bad input fails in one place with one kind of message.
"""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar

import joblib
import numpy as np
from joblib.parallel import get_active_backend
from scipy.linalg import blas
from sklearn.utils import check_array
from threadpoolctl import ThreadpoolController

FLOAT_DTYPES = (np.float64, np.float32)

# Rows per block for streaming passes: about 2 MiB (1,024 rows of float32 at
# d=512), so a block and its temporaries stay in cache while the few numpy
# calls per block cost little: on 1,000,000 x 512 rows, fit + transform of
# CentroidShift took 2.06 s with 0.5 MiB blocks, 1.30 s with 1 MiB, 1.08 s
# with 2 MiB and 1.13 s with 4 MiB (ReAlign 2.64, 1.46, 1.34, 1.34 s).
_BLOCK_BYTES = 2**21
# Consecutive blocks handed to a worker thread at a time.
_BLOCKS_PER_TASK = 8
# Threads of a block pass when nothing asks for a number: the passes are
# memory-bound, and more threads than memory channels buy little.
_DEFAULT_BLOCK_THREADS = 8
# The ``n_jobs`` of the estimator running block passes in this context.
_block_n_jobs = ContextVar("block_n_jobs", default=None)
_BLAS: list = []


def check_embeddings(X, *, name="X", min_samples=2, dtype=FLOAT_DTYPES, finite=True):
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
    finite : bool, default=True
        Check for NaN and infinity here; ``False`` leaves it to a streaming
        pass that computes row norms anyway (:func:`squared_row_norms`).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The validated array (not a copy when none was needed).
    """
    check_numeric(X, name)
    X = check_array(
        X,
        accept_sparse=False,
        dtype=dtype,
        ensure_2d=True,
        ensure_all_finite=False,
        ensure_min_samples=min_samples,
        input_name=name,
    )
    if finite:
        check_finite_rows(X, name=name)
    return X


def check_numeric(X, name):
    """Raise a ``TypeError`` for text (also inside object arrays) instead of converting it."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None and hasattr(dtypes, "items"):
        bad = [
            str(column) for column, dtype in dtypes.items()
            if getattr(dtype, "kind", "O") not in "fiu"
        ]
        if bad:
            raise TypeError(
                f"{name} has non-numeric column(s) {', '.join(bad[:5])}"
                f"{' ...' if len(bad) > 5 else ''}: embeddings must be numbers; drop those columns."
            )
        return
    kind = getattr(getattr(X, "dtype", None), "kind", None)
    # Object arrays of numbers are converted as scikit-learn does; text is not.
    if kind in ("U", "S") or (
        kind == "O" and any(isinstance(value, (str, bytes)) for value in np.ravel(X))
    ):
        raise TypeError(
            f"{name} has dtype {X.dtype}; embeddings must be a float or integer array "
            "(convert text or objects to numbers explicitly)."
        )


def block_slices(n_rows, n_features, itemsize=4):
    """Yield row slices of about ``_BLOCK_BYTES`` each."""
    step = max(64, _BLOCK_BYTES // max(1, n_features * itemsize))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


@contextmanager
def block_threads(n_jobs):
    """Context in which :func:`map_blocks` runs on ``n_jobs`` threads.

    Estimators enter it with their ``n_jobs`` around ``fit`` and
    ``transform``; ``None`` leaves the choice to :func:`n_block_workers`.
    """
    token = _block_n_jobs.set(n_jobs)
    try:
        yield
    finally:
        _block_n_jobs.reset(token)


def n_block_workers():
    """Threads used by :func:`map_blocks`, composing with joblib and BLAS limits.

    In order:

    1. an ``n_jobs`` set by :func:`block_threads` (an estimator's), then one
       set by :func:`joblib.parallel_config`, in joblib's meaning (``-1``
       all CPUs, ``-2`` all but one, ...), at most the CPUs;
    2. inside a worker of an outer joblib loop (a ``GridSearchCV(n_jobs=...)``
       fitting candidates side by side, in processes or threads), one
       thread: the outer loop already occupies the cores;
    3. otherwise the CPUs this process may use (its affinity and cgroup
       quota, as :func:`joblib.cpu_count` counts them), at most the threads
       BLAS may use here (a :func:`threadpoolctl.threadpool_limits` in
       force, or the thread limits joblib gives its worker processes), and
       at most ``_DEFAULT_BLOCK_THREADS``.

    Each block thread runs BLAS on one thread, so threads times BLAS threads
    never exceeds the count chosen.
    """
    n_cpus = joblib.cpu_count()
    n_jobs = _block_n_jobs.get()
    if n_jobs is None:
        backend, n_jobs = get_active_backend()
        if n_jobs is None:
            if (getattr(backend, "nesting_level", 0) or 0) > 0:
                return 1
            return max(1, min(n_cpus, _blas_threads(), _DEFAULT_BLOCK_THREADS))
    if n_jobs < 0:
        n_jobs = n_cpus + 1 + n_jobs
    return max(1, min(n_jobs, n_cpus))


def _blas_controller():
    """The BLAS libraries the block passes call (numpy's and scipy's), found once.

    Scanning the loaded libraries costs milliseconds (every library torch
    and numba bring); the BLAS ones are loaded with this module's imports.
    """
    if not _BLAS:
        _BLAS.append(ThreadpoolController().select(user_api="blas"))
    return _BLAS[0]


def _blas_threads():
    """The most threads any of those BLAS libraries may use now."""
    threads = [info["num_threads"] for info in _blas_controller().info()]
    return max(threads, default=_DEFAULT_BLOCK_THREADS)


def map_blocks(func, n_rows, n_features, itemsize=4, *, parallel=True):
    """Apply ``func(rows)`` to every block of rows, over a few threads.

    The work inside a block (row norms, products with a few vectors, one
    write) is memory-bound numpy and BLAS code that releases the GIL, so
    blocks run side by side on the available cores, each with single-threaded
    BLAS. Tasks are a few consecutive blocks handed out as threads free up, so
    a core held by another process slows the pass only by its share.

    Parameters
    ----------
    func : callable
        Called with one ``slice`` of rows; may write into its own rows of a
        shared output array.
    n_rows, n_features, itemsize : int
        Shape and item size of the array being streamed.
    parallel : bool, default=True
        ``False`` runs the blocks in order on the calling thread, for a
        ``func`` with state that must advance block by block (a random
        generator).

    Returns
    -------
    results : list
        ``func``'s return values in block order, so reductions over them are
        deterministic whatever the number of threads.
    """
    slices = list(block_slices(n_rows, n_features, itemsize))
    n_workers = min(n_block_workers(), -(-len(slices) // _BLOCKS_PER_TASK)) if parallel else 1
    with single_threaded_blas():
        if n_workers <= 1:
            return [func(rows) for rows in slices]
        tasks = [
            slices[start : start + _BLOCKS_PER_TASK]
            for start in range(0, len(slices), _BLOCKS_PER_TASK)
        ]
        with ThreadPoolExecutor(n_workers) as pool:
            done = pool.map(lambda task: [func(rows) for rows in task], tasks)
            return [result for task_results in done for result in task_results]


def single_threaded_blas():
    """Context in which BLAS runs on one thread, for loops over blocks.

    The products inside a streaming loop are small (one block by a few
    vectors) and memory-bound: splitting each over threads buys nothing and,
    when another process holds a core, the threads' synchronisation made them
    20-40 times slower in measurements on a shared 2-core machine.
    """
    return _blas_controller().limit(limits=1)


def add_product(out, weights, directions):
    """``out += weights @ directions`` in place, without a temporary.

    BLAS ``gemm`` with ``beta=1`` accumulates straight into ``out`` (seen as
    the Fortran-ordered transpose of a C-ordered block); the plain expression
    would build the product in a new array and add it in a second pass (a
    block of 1,024 x 512 float32 rows took 0.70 ms that way, 0.42 ms this
    way, scaling included).
    """
    if out.dtype not in (np.float32, np.float64) or not out.flags.c_contiguous:
        out += weights @ directions
        return
    gemm = blas.sgemm if out.dtype == np.float32 else blas.dgemm
    result = gemm(
        1.0, directions.T.astype(out.dtype, copy=False), weights.T.astype(out.dtype, copy=False),
        beta=1.0, c=out.T, overwrite_c=1,
    )
    if not np.shares_memory(result, out):
        out[...] = result.T


def squared_row_norms(X, *, name="X", refuse_overflow=True):
    """Squared Euclidean norm of every row, in float64.

    Doubles as the streaming check for NaN and infinity: a row with a
    non-finite entry has a non-finite squared norm.  Finite entries whose
    squares overflow the dtype are recomputed in float64; a squared norm that
    overflows float64 too is refused, or left infinite with
    ``refuse_overflow=False`` for a caller that rescales those rows
    (:func:`rescale_extreme_rows`).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        sq_norms = np.vecdot(X, X) if hasattr(np, "vecdot") else np.einsum("ij,ij->i", X, X)
    sq_norms = sq_norms.astype(np.float64)
    if not np.isfinite(sq_norms).all():
        check_finite_rows(X, name=name)
        with np.errstate(over="ignore"):
            sq_norms = np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64))
        too_large = np.flatnonzero(~np.isfinite(sq_norms))
        if too_large.size and refuse_overflow:
            largest = float(np.max(np.abs(X[too_large[0]])))
            raise ValueError(
                f"{name} has {too_large.size} row(s) whose squared norm overflows float64 "
                f"(first at index {too_large[0]}, largest |value| {largest:.3g}); divide the "
                "rows by a common scale (e.g. their largest absolute value) first."
            )
    return sq_norms


# Squared row norms inside these bounds (per dtype of the rows) are computed
# without underflow of the squares that matter and leave room for the products
# that follow; rows outside are rescaled before they are normalised.
_SAFE_SQ_NORMS = {
    np.dtype(np.float32): (2.0**-100, 2.0**100),
    np.dtype(np.float64): (2.0**-600, 2.0**600),
}


def extreme_rows(sq_norms, X):
    """Mask of the rows of ``X`` whose squared norm (from :func:`squared_row_norms`) is out of the safe range.

    Rows of zero norm are not extreme (they cannot be normalised at all), but
    rows whose squares all underflow to a zero squared norm are.
    """
    low, high = _SAFE_SQ_NORMS.get(X.dtype, _SAFE_SQ_NORMS[np.dtype(np.float64)])
    extreme = (sq_norms < low) | (sq_norms > high)
    underflowed = np.flatnonzero(sq_norms == 0)
    if underflowed.size:
        extreme[underflowed] = np.any(X[underflowed] != 0, axis=1)
    return extreme


def rescale_extreme_rows(X, *, name="X", sq_norms=None):
    """``X`` with each row of extreme norm multiplied by a power of two.

    The factor brings the row's largest absolute value into ``[0.5, 1)``.
    A power of two changes only the exponent of every entry, so the
    normalised row is the one the unscaled squares would have given, while
    squares of rows of norm 1e-160 (float64) underflow and those of rows of
    norm 1e160 overflow.  ``X`` itself is returned when no row is extreme,
    otherwise a new array (float64 or float32, as ``X``).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Finite rows.
    name : str, default="X"
        Name used in error messages.
    sq_norms : ndarray of shape (n_rows,), default=None
        The rows' squared norms, when known.

    Returns
    -------
    X_rescaled : ndarray of shape (n_rows, n_features)
        Rows of safe norm.
    """
    if sq_norms is None:
        sq_norms = squared_row_norms(X, name=name, refuse_overflow=False)
    extreme = np.flatnonzero(extreme_rows(sq_norms, X))
    if not extreme.size:
        return X
    rows = np.asarray(X[extreme])
    _, exponents = np.frexp(np.max(np.abs(rows), axis=1))
    rescaled = np.array(X, copy=True)
    rescaled[extreme] = np.ldexp(rows, -exponents[:, None])
    return rescaled


class ExtremeRowsError(ArithmeticError):
    """Raised inside a streaming pass that met rows of extreme norm.

    The pass is repeated on :func:`rescale_extreme_rows` of its input, so the
    fast path never pays for the rescaling.
    """


def check_finite_rows(X, *, name="X"):
    """Raise if ``X`` holds NaN or infinity, naming how many rows and the first."""
    if not isinstance(X, np.ndarray):
        from sklearn.utils import assert_all_finite

        assert_all_finite(X, input_name=name)
        return
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        kind = "NaN" if np.isnan(X[bad[0]]).any() else "infinity"
        raise ValueError(
            f"Input {name} contains NaN or infinity ({kind}): {bad.size} row(s), the first at "
            f"index {bad[0]}; remove or repair those rows."
        )


_ZERO_ROW_HINT = "remove them or pass normalize=False"


def checked_row_norms(X, *, name="X", hint=_ZERO_ROW_HINT):
    """Euclidean norm of every row, refusing rows that cannot be normalised.

    ``hint`` ends the error message: what the caller can do about zero rows.
    Norms of rows of extreme norm are computed from rescaled rows, so only
    rows that are exactly zero are refused.
    """
    sq_norms = squared_row_norms(X, name=name, refuse_overflow=False)
    extreme = np.flatnonzero(extreme_rows(sq_norms, X))
    norms = np.sqrt(sq_norms)
    if extreme.size:
        rows = np.asarray(X[extreme], dtype=np.float64)
        _, exponents = np.frexp(np.max(np.abs(rows), axis=1))
        rescaled = np.ldexp(rows, -exponents[:, None])
        norms[extreme] = np.ldexp(np.sqrt(np.einsum("ij,ij->i", rescaled, rescaled)), exponents)
    return _checked_norms(norms, X.dtype, name, hint)


def _checked_norms(norms, dtype, name, hint):
    norms = norms.astype(dtype, copy=False)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(
            f"{name} has {zero.size} row(s) of zero norm (first at index {zero[0]}) "
            f"that cannot be L2-normalized; {hint}."
        )
    return norms


def normalize_rows(X, *, name="X", hint=_ZERO_ROW_HINT):
    """Return a new array whose rows are ``X``'s rows divided by their norms.

    Rows of extreme norm are rescaled first (:func:`rescale_extreme_rows`),
    so rows of norm 1e-200 or 1e200 normalise as rows of norm 1 do.
    """
    X = np.asarray(X)
    sq_norms = squared_row_norms(X, name=name, refuse_overflow=False)
    extreme = extreme_rows(sq_norms, X)
    if extreme.any():
        X = rescale_extreme_rows(X, name=name, sq_norms=sq_norms)
        sq_norms = sq_norms.copy()
        sq_norms[extreme] = squared_row_norms(X[extreme], name=name)
    return X / _checked_norms(np.sqrt(sq_norms), X.dtype, name, hint)[:, None]


def check_same_features(n_expected, X, *, name, reference="the source"):
    """Raise if ``X`` does not have ``n_expected`` columns."""
    if X.shape[1] != n_expected:
        raise ValueError(
            f"{name} has {X.shape[1]} features but {reference} has {n_expected}: "
            "both modalities must live in the same embedding space."
        )
