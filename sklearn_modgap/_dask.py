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
the number of chunks.  Stacked rows (``sample_domain``) are counted per chunk
and modality first, so that each chunk's rows of a modality take their global
positions in that modality's stream, as :func:`~sklearn_modgap._base.split_source_target` orders
them.

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
    X : dask array or array-like of shape (n_rows, n_features)
        Source rows, or source and target rows stacked (with ``sample_domain``).
    y : dask array or array-like of shape (n_target, n_features)
        Target rows; ``None`` (or a 1-D ``y``, ignored) with ``sample_domain``.
    sample_domain : dask array or array-like of shape (n_rows,), or None
        Stacked rows: ``>= 0`` marks source rows, ``< 0`` target rows.

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
        if y is not None and len(getattr(y, "shape", np.shape(y))) == 2:
            raise ValueError(
                "Pass the target sample either as y or inside X with sample_domain, not both."
            )
        rows = _as_rows(X, "X", known_chunks=True)
        mask, targets = _target_mask(sample_domain, rows, count=True)
        sizes = np.asarray(rows.chunks[0], dtype=np.int64)
        counts = {"X": sizes - targets, "y": targets}
        for label, side in (("source (>= 0)", "X"), ("target (< 0)", "y")):
            if counts[side].sum() < 2:
                raise ValueError(
                    f"sample_domain marks {int(counts[side].sum())} {label} row(s); each modality "
                    "needs at least 2."
                )
        n_features = rows.shape[1]
    else:
        if y is None or len(getattr(y, "shape", np.shape(y))) != 2:
            raise ValueError(
                f"{name} on dask arrays needs y: a 2-D array (dask or numpy) of target-modality "
                "rows; call fit(X_source, y=X_target), or fit(X_stacked, sample_domain=d)."
            )
        source = _as_rows(X, "X", known_chunks=True)
        target = _as_rows(y, "y", known_chunks=True, chunk_rows=source.chunks[0][0] or 1)
        check_same_features(source.shape[1], target, name="The target sample y")
        for label, side_rows in (("source X", source), ("target y", target)):
            if side_rows.shape[0] < 2:
                raise ValueError(
                    f"The {label} has {side_rows.shape[0]} row(s); each modality needs at least 2."
                )
        n_features = source.shape[1]

    empty = aligner._new_stream(n_features)
    # One key each in the graph, sent once to each worker.
    worker_aligner = dask.delayed(clone(aligner), traverse=False)
    empty_part = dask.delayed(empty, traverse=False)
    orders = tuple(aligner._stream_orders)
    task = dask.delayed(_fit_chunk, pure=True)
    parts = []
    if sample_domain is not None:
        # Each chunk's rows of a side sit in that side's stream after the
        # side's rows of the chunks before it, as in split_source_target.
        starts = {side: np.concatenate([[0], np.cumsum(counts[side])[:-1]]) for side in counts}
        kept = {side: _kept_per_chunk(empty, side, starts[side], counts[side]) for side in counts}
        row_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        blocks, masks = rows.to_delayed().ravel(), mask.to_delayed().ravel()
        for index, (block, is_target) in enumerate(zip(blocks, masks)):
            sides = [
                (side, order, int(starts[side][index]), kept[side][index])
                for side, order in zip(("X", "y"), orders)
            ]
            parts.append(task(worker_aligner, empty_part, block, sides, int(row_starts[index]), index, is_target))
    else:
        for side, side_rows, order in zip(("X", "y"), (source, target), orders):
            sizes = np.asarray(side_rows.chunks[0], dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            kept = _kept_per_chunk(empty, side, starts, sizes)
            for index, block in enumerate(side_rows.to_delayed().ravel()):
                start = int(starts[index])
                parts.append(task(worker_aligner, empty_part, block, [(side, order, start, kept[index])],
                                  start, index))
    while len(parts) > 1:
        parts = [
            dask.delayed(_merge, pure=True)(*parts[i : i + FAN_IN]) for i in range(0, len(parts), FAN_IN)
        ]
    (stream,) = dask.compute(parts[0])

    for attribute in ("_stream", "_stream_stale", "feature_names_in_"):
        aligner.__dict__.pop(attribute, None)
    aligner._fit_stream(stream.moments["X"], stream.moments["y"], stream.rows("X"), stream.rows("y"))
    aligner.n_features_in_ = n_features
    return aligner


def _kept_per_chunk(empty, side, starts, sizes):
    """Per chunk, its positions in ``side``'s final sample (``None``: the sample keeps every row)."""
    sample = empty.samples.get(side)
    total = int(np.sum(sizes))
    chosen = None if sample is None else sampled_positions(sample.seed, total, sample.capacity)
    if chosen is None:
        return [None] * len(sizes)
    return [
        chosen[np.searchsorted(chosen, start) : np.searchsorted(chosen, start + size)]
        for start, size in zip(starts, sizes)
    ]


def _target_mask(sample_domain, rows, count=False):
    """The target rows of stacked ``rows`` as a boolean dask array of ``rows``' row chunks.

    With ``count``, also the number of target rows in each chunk (computed
    here: a pass over ``sample_domain`` only).
    """
    import dask
    import dask.array as da

    from ._base import target_rows

    n_rows = rows.shape[0]
    bounds = np.concatenate([[0], np.cumsum(rows.chunks[0])]).astype(np.int64)
    if not is_dask_array(sample_domain):
        local = target_rows(sample_domain, n_rows)
        cumulative = np.concatenate([[0], np.cumsum(local)])
        targets = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
        mask = da.from_array(local, chunks=(rows.chunks[0],))
        return (mask, targets) if count else mask
    domain = sample_domain
    if domain.ndim == 2 and domain.shape[1] == 1:
        domain = domain[:, 0]
    if domain.ndim != 1:
        raise ValueError(f"sample_domain must be 1-D (one entry per row of X), got shape {domain.shape}.")
    if any(np.isnan(size) for size in domain.chunks[0]):
        raise ValueError(
            "sample_domain has chunks of unknown size (e.g. after boolean indexing): call "
            "sample_domain.compute_chunk_sizes() first, so that each row's domain is known."
        )
    if domain.shape[0] != n_rows:
        raise ValueError(f"sample_domain has {domain.shape[0]} entries but X has {n_rows} rows.")
    if not np.issubdtype(domain.dtype, np.number):
        raise TypeError(f"sample_domain must be numeric, got dtype {domain.dtype}.")
    mask = (domain < 0).rechunk((rows.chunks[0],))
    if not count:
        return mask
    counted = dask.compute(*[dask.delayed(np.count_nonzero)(block) for block in mask.to_delayed().ravel()])
    return mask, np.asarray(counted, dtype=np.int64)


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
    sample_domain : dask array or array-like of shape (n_samples,), default=None
        Stacked rows (``transform`` only): ``>= 0`` rows are mapped by
        ``transform``, ``< 0`` rows by ``transform_target``, in place.

    Returns
    -------
    Z : dask array of shape (n_samples, n_features)
        The mapped rows, in the dtype of ``X`` (float64 for non-float input).
    """
    import dask

    check_is_fitted(aligner)
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
    meta = np.empty((0, rows.shape[1]), dtype=rows.dtype)
    if sample_domain is None:
        return rows.map_blocks(_transform_chunk, fitted, method, base, dtype=rows.dtype, meta=meta)
    if any(np.isnan(size) for size in rows.chunks[0]):
        raise ValueError(
            "X has chunks of unknown size (e.g. after boolean indexing): call "
            "X.compute_chunk_sizes() first, so that each row's sample_domain is known."
        )
    is_target = _target_mask(sample_domain, rows)[:, None]
    return rows.map_blocks(
        _transform_stacked_chunk, is_target, fitted, method, base, dtype=rows.dtype, meta=meta
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


def _fit_chunk(aligner, empty, block, sides, row_start, index, is_target=None):
    """The stream part of one chunk: its moments and those of its rows the final sample keeps.

    ``sides`` lists, for each modality the chunk holds, ``(side, order,
    start, kept)``: its rows sit at ``start, start + 1, ...`` of that side's
    stream, and ``kept`` lists their positions in the final sample
    (``None``: all the chunk's sample keeps); only those rows travel up the
    reduction.  ``is_target`` (stacked rows) marks the chunk's target rows;
    without it every row belongs to the one side listed.
    """
    stream = copy.deepcopy(empty)
    if len(block) == 0:
        return stream
    for side, order, start, kept in sides:
        rows = block if is_target is None else block[is_target == (side == "y")]
        if len(rows) == 0:
            continue
        try:
            aligner._stream_update(stream, side, rows, order, start=start)
        except ValueError as error:
            name = side if is_target is None else "X"
            raise _located(error, block, name, row_start, index) from error
        sample = stream.samples.get(side)
        if kept is not None and sample.kept is not None:
            keep = np.isin(sample.positions, kept)
            sample.positions, sample.keys, sample.kept = (
                sample.positions[keep], sample.keys[keep], sample.kept[keep]
            )
    return stream


def _merge(first, *others):
    return first.merge(*others)


def _transform_chunk(block, aligner, method, base, block_info=None, is_target=None):
    if len(block) == 0:
        return np.empty(block.shape, dtype=block.dtype)
    local = copy.copy(aligner)
    # Each chunk's output is a plain array, whatever set_output says.
    local.__dict__["_sklearn_output_config"] = {}
    location = block_info[0]
    index = location["chunk-location"][0]
    if base is not None:
        local.random_state = chunk_random_state(base, index)
    kwargs = {} if is_target is None else {"sample_domain": np.where(is_target[:, 0], -1, 0)}
    try:
        return getattr(local, method)(block, **kwargs)
    except ValueError as error:
        raise _located(error, block, "X", location["array-location"][0][0], index) from error


def _transform_stacked_chunk(block, is_target, aligner, method, base, block_info=None):
    return _transform_chunk(block, aligner, method, base, block_info=block_info, is_target=is_target)


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
