"""Dask arrays in ``fit`` and ``transform``: the same code on a cluster.

``fit`` on dask arrays runs one task per chunk, each computing that chunk's
part of a :class:`~sklearn_modgap._stream.FitStream` (the mergeable moments
of its prepared rows and its rows' share of the stream's sample, at the
chunk's global row positions), merges the parts in a tree of fan-in
:data:`FAN_IN`, and computes the fitted attributes once on the driver from the
merged moments and sample.  Since the sample is chosen by each row's global
position alone, the fit is the one ``partial_fit`` gives over the same rows in
any blocking, and the driver knows the sampled positions before any row is
read (:func:`sampled_positions`): each chunk sends up only its rows among
them, so the reduction moves at most the sample's capacity of rows whatever
the number of chunks.

``transform`` is ``map_blocks`` of the fitted aligner's own ``transform`` over
row chunks.  A map that draws random numbers (C3's noise, random target
replacement) would repeat the same draws in every chunk if each chunk started
the aligner's generator afresh; instead, chunk ``i`` uses ``random_state =
SeedSequence(base, spawn_key=(i,))``, where ``base`` is drawn once per
``transform`` call from the aligner's ``random_state``.  With a fixed
``random_state`` a rerun is identical, whatever the scheduler; the draws
differ from those of an in-memory ``transform``, which uses one generator for
all rows.

Nothing here imports dask until a dask array is passed: ``import
sklearn_modgap`` never imports it.
"""

import copy
import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._stream import position_keys
from ._validation import check_same_features

# Parts merged by each task of the tree reduction.
FAN_IN = 4


def is_dask_array(A):
    """Whether ``A`` is a dask array, told by its type's module so that dask is never imported."""
    return type(A).__module__.split(".")[0] == "dask" and hasattr(A, "chunks")


def fit(aligner, X, y, sample_domain):
    """Fit ``aligner`` on dask arrays by a tree reduction of its streaming statistics.

    Parameters
    ----------
    aligner : BaseAligner
        A streaming aligner (``_stream_orders`` set).
    X : dask array or array-like of shape (n_source, n_features)
        Source rows.
    y : dask array or array-like of shape (n_target, n_features)
        Target rows.
    sample_domain : None
        Stacked rows are not supported with dask arrays.

    Returns
    -------
    aligner : BaseAligner
        The fitted aligner.
    """
    import dask

    name = type(aligner).__name__
    if not aligner._streams():
        raise TypeError(
            f"{name} cannot fit on dask arrays: it has no streaming fit (its training needs "
            "every row in memory). Compute the rows first (X.compute(), y.compute()) or use a "
            "streaming aligner (CentroidShift, C3, ReAlign, MomentMatch, SSP, "
            "RandomTargetReplacement, AnisoAlign)."
        )
    if sample_domain is not None:
        raise ValueError(
            "sample_domain is not supported with dask arrays: pass the source rows as X and "
            "the target rows as y."
        )
    if y is None or len(getattr(y, "shape", np.shape(y))) != 2:
        raise ValueError(
            f"{name} on dask arrays needs y: a 2-D array (dask or numpy) of target-modality "
            "rows; call fit(X_source, y=X_target)."
        )
    source = _as_rows(X, "X", known_chunks=True)
    target = _as_rows(y, "y", known_chunks=True, chunk_rows=source.chunks[0][0] or 1)
    check_same_features(source.shape[1], target, name="The target sample y")
    for label, rows in (("source X", source), ("target y", target)):
        if rows.shape[0] < 2:
            raise ValueError(f"The {label} has {rows.shape[0]} row(s); each modality needs at least 2.")

    empty = aligner._new_stream(source.shape[1])
    # One key each in the graph, sent once to each worker.
    worker_aligner = dask.delayed(clone(aligner), traverse=False)
    empty_part = dask.delayed(empty, traverse=False)
    parts = []
    for side, rows, order in zip(("X", "y"), (source, target), aligner._stream_orders):
        sample = empty.samples.get(side)
        chosen = None if sample is None else sampled_positions(sample.seed, rows.shape[0], sample.capacity)
        bounds = np.concatenate([[0], np.cumsum(rows.chunks[0])]).astype(int)
        for index, block in enumerate(rows.to_delayed().ravel()):
            start, stop = bounds[index], bounds[index + 1]
            kept = None
            if chosen is not None:
                kept = chosen[np.searchsorted(chosen, start) : np.searchsorted(chosen, stop)]
            task = dask.delayed(_fit_chunk, pure=True)
            parts.append(task(worker_aligner, empty_part, block, side, order, int(start), index, kept))
    while len(parts) > 1:
        parts = [
            dask.delayed(_merge, pure=True)(*parts[i : i + FAN_IN]) for i in range(0, len(parts), FAN_IN)
        ]
    (stream,) = dask.compute(parts[0])

    for attribute in ("_stream", "_stream_stale", "feature_names_in_"):
        aligner.__dict__.pop(attribute, None)
    aligner._fit_stream(stream.moments["X"], stream.moments["y"], stream.rows("X"), stream.rows("y"))
    aligner.n_features_in_ = source.shape[1]
    return aligner


def transform(aligner, X, method, sample_domain=None):
    """``aligner.<method>`` of a dask array, chunk by chunk: a lazy dask array of the same chunks.

    Parameters
    ----------
    aligner : BaseAligner
        A fitted aligner.
    X : dask array of shape (n_samples, n_features)
        Rows to map.
    method : {"transform", "transform_target"}
        The map to apply.
    sample_domain : None
        Stacked rows are not supported with dask arrays.

    Returns
    -------
    Z : dask array of shape (n_samples, n_features)
        The mapped rows, in the dtype of ``X`` (float64 for non-float input).
    """
    import dask

    check_is_fitted(aligner)
    if sample_domain is not None:
        raise ValueError(
            "sample_domain is not supported with dask arrays: call transform on the source "
            "rows and transform_target on the target rows."
        )
    rows = _as_rows(X, "X")
    if rows.shape[1] != aligner.n_features_in_:
        raise ValueError(
            f"X has {rows.shape[1]} features, but {type(aligner).__name__} is expecting "
            f"{aligner.n_features_in_} features as input."
        )
    base = None
    if "random_state" in aligner.get_params(deep=False):
        base = int(check_random_state(aligner.random_state).randint(2**31 - 1))
    fitted = dask.delayed(aligner, traverse=False)
    return rows.map_blocks(
        _transform_chunk,
        fitted,
        method,
        base,
        dtype=rows.dtype,
        meta=np.empty((0, rows.shape[1]), dtype=rows.dtype),
    )


def chunk_random_state(base, index):
    """The ``random_state`` of chunk ``index`` of a ``transform`` whose draws start from ``base``."""
    return int(np.random.SeedSequence(base, spawn_key=(index,)).generate_state(1)[0])


def _as_rows(A, name, known_chunks=False, chunk_rows=None):
    """``A`` as a 2-D float dask array with one chunk across the columns."""
    import dask.array as da

    if not is_dask_array(A):
        A = np.asarray(A)
        A = da.from_array(A, chunks=(chunk_rows or max(len(A), 1), -1) if A.ndim == 2 else -1)
    if A.dtype.kind not in "fiu":
        raise TypeError(f"{name} has dtype {A.dtype}: embeddings must be numbers.")
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, features), got a {A.ndim}-D dask array.")
    if known_chunks and any(np.isnan(size) for size in A.chunks[0]):
        raise ValueError(
            f"{name} has chunks of unknown size (e.g. after boolean indexing): call "
            f"{name}.compute_chunk_sizes() first, so that each row's position is known."
        )
    if A.dtype not in (np.float32, np.float64):
        A = A.astype(np.float64)
    if A.numblocks[1] != 1:
        A = A.rechunk({1: -1})
    return A


def sampled_positions(seed, n_rows, capacity, block=1 << 20):
    """The positions a stream's :class:`~sklearn_modgap._stream.RowSample` keeps of ``n_rows`` rows, sorted.

    The sample's choice depends only on the positions (their keys'
    ``capacity`` smallest, ties to the earlier position), so it is known
    before any row is read; ``None`` when every row is kept.  Time is linear
    in ``n_rows`` and memory bounded by ``capacity + block`` positions.
    """
    if capacity is None or n_rows <= capacity:
        return None
    positions = np.empty(0, dtype=np.int64)
    keys = np.empty(0, dtype=np.uint64)
    for start in range(0, n_rows, block):
        new = np.arange(start, min(start + block, n_rows), dtype=np.int64)
        positions = np.concatenate([positions, new])
        keys = np.concatenate([keys, position_keys(seed, new)])
        best = np.lexsort((positions, keys))[:capacity]
        positions, keys = positions[best], keys[best]
    return np.sort(positions)


def _fit_chunk(aligner, empty, block, side, order, start, index, kept):
    """The stream part of one chunk: its moments and those of its rows the final sample keeps.

    ``kept`` lists the chunk's positions in the final sample (``None``: all
    the chunk's sample keeps); only those rows travel up the reduction.
    """
    stream = copy.deepcopy(empty)
    if len(block) == 0:
        return stream
    try:
        aligner._stream_update(stream, side, block, order, start=start)
    except ValueError as error:
        raise _located(error, block, side, start, index) from error
    sample = stream.samples.get(side)
    if kept is not None and sample.kept is not None:
        keep = np.isin(sample.positions, kept)
        sample.positions, sample.keys, sample.kept = sample.positions[keep], sample.keys[keep], sample.kept[keep]
    return stream


def _merge(first, *others):
    return first.merge(*others)


def _transform_chunk(block, aligner, method, base, block_info=None):
    if len(block) == 0:
        return np.empty(block.shape, dtype=block.dtype)
    local = copy.copy(aligner)
    # Each chunk's output is a plain array, whatever set_output says.
    local.__dict__["_sklearn_output_config"] = {}
    location = block_info[0]
    index = location["chunk-location"][0]
    if base is not None:
        local.random_state = chunk_random_state(base, index)
    try:
        return getattr(local, method)(block)
    except ValueError as error:
        raise _located(error, block, "X", location["array-location"][0][0], index) from error


def _located(error, block, name, start, index):
    """``error`` with the global row (or the row range) of ``block`` where it arose."""
    bad = np.flatnonzero(~np.isfinite(block).all(axis=1))
    if bad.size:
        return ValueError(
            f"Input {name} contains NaN or infinity: row {start + bad[0]} (row {bad[0]} of "
            f"chunk {index}; {bad.size} such row(s) in that chunk)."
        )
    where = f"indices within chunk {index} of {name}, which holds rows {start} to {start + len(block) - 1}"
    zero = np.flatnonzero(~np.any(block, axis=1))
    if zero.size and "zero norm" in str(error):
        where += f"; its first row of zeros is row {start + zero[0]}"
    return ValueError(f"{error} ({where})")
