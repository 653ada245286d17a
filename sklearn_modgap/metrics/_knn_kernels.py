"""Compiled loops of the approximate k-NN: candidate selection and exact re-scoring.

Scores of the scan come from bfloat16 (or float32) matrix products; their
bits are read as ``int16`` (or ``int32``) and mapped by :func:`_order_key` to
integers that sort like the numbers they encode, so selection needs no
conversion to float.
"""

import numpy as np
from numba import njit, prange

# Below the key of every score, -inf included.
LOWEST_KEY = np.iinfo(np.int32).min
_STRIPES = 32


def score_bits(scores):
    """The bits of a bfloat16 or float32 score array, and its sign bit's place."""
    import torch

    if scores.dtype == torch.bfloat16:
        return scores.view(torch.int16).numpy(), 15
    return scores.view(torch.int32).numpy(), 31


@njit(inline="always")
def _order_key(bits, sign):
    """An ``int32`` that orders like the float whose bits are ``bits``.

    ``sign`` is the place of the sign bit (15 for bfloat16, 31 for float32).
    Non-negative numbers keep their bits; for negative ones the bits below the
    sign are flipped so that a larger magnitude gives a smaller key.
    """
    value = np.int32(bits)
    return value ^ ((value >> sign) & ((np.int32(1) << sign) - 1))


@njit(inline="always")
def _lowest(keys):
    where = 0
    for j in range(1, keys.shape[0]):
        if keys[j] < keys[where]:
            where = j
    return where


@njit(inline="always")
def _collect(row, first, stop, step, sign, bound, found, n_found, ties, n_ties):
    """Append the columns of ``row[first:stop:step]`` whose key is above ``bound`` to ``found``
    and, while ``ties`` has room, those equal to it to ``ties``; returns the two new counts.
    """
    room = ties.shape[0]
    raw = bound >= 0  # raw bits then compare like keys
    raw_bound = row.dtype.type(bound)
    j = first
    while j < stop:
        if raw:
            above, equal = row[j] > raw_bound, row[j] == raw_bound
        else:
            key = _order_key(row[j], sign)
            above, equal = key > bound, key == bound
        if above:
            found[n_found] = j
            n_found += 1
        elif equal and n_ties < room:
            ties[n_ties] = j
            n_ties += 1
        j += step
    return n_found, n_ties


@njit(inline="always")
def _keep(row, sign, columns, n_columns, positions, skip, keys, ids):
    """Fold ``columns[:n_columns]`` of ``row`` into the best ``keys`` and ``ids``.

    Fills empty slots while there are some, then replaces the lowest key kept
    when the column's key is larger.
    """
    filled = 0
    for slot in range(keys.shape[0]):
        filled += ids[slot] >= 0
    for f in range(n_columns):
        at = positions[columns[f]]
        if at == skip:
            continue
        key = _order_key(row[columns[f]], sign)
        if filled < keys.shape[0]:
            keys[filled] = key
            ids[filled] = at
            filled += 1
        else:
            slot = _lowest(keys)
            if key > keys[slot]:
                keys[slot] = key
                ids[slot] = at


@njit(inline="always")
def _run_maxima(row, width, sign, n_best):
    """The largest key of each column group ``i, i + width, ...`` of ``row``'s first stripes.

    The maximum of the raw bits is vectorised; it is the largest key of a
    group holding a non-negative number, and a group of negative numbers has
    keys of at most -1 (that of -0.0), which stands for them.  When fewer than
    ``n_best + 1`` groups hold a non-negative number the keys themselves are
    compared, key by key.
    """
    tops = row[:width].copy()
    for stripe in range(1, _STRIPES):
        first = stripe * width
        for i in range(width):
            tops[i] = max(tops[i], row[first + i])
    top_keys = np.empty(width, dtype=np.int32)
    n_non_negative = 0
    for i in range(width):
        n_non_negative += tops[i] >= 0
        top_keys[i] = _order_key(tops[i], sign) if tops[i] >= 0 else -1
    if n_non_negative <= n_best:
        for i in range(width):
            top = np.int32(LOWEST_KEY)
            for j in range(i, width * _STRIPES, width):
                top = max(top, _order_key(row[j], sign))
            top_keys[i] = top
    return top_keys


@njit(inline="always")
def _kth_largest(values, kth, counts):
    """The ``kth`` largest (0 for the largest) of ``values``, keys of at most 16 bits.

    A radix selection: a count of the high bytes finds the byte of the
    answer, a count of the low bytes of the values with that high byte
    finds the rest.  ``counts`` is scratch of 256 integers.
    """
    counts[:] = 0
    for value in values:
        counts[((value >> 8) + 128) & 255] += 1
    above = 0
    high = 255
    while above + counts[high] <= kth:
        above += counts[high]
        high -= 1
    counts[:] = 0
    for value in values:
        if ((value >> 8) + 128) & 255 == high:
            counts[value & 255] += 1
    low = 255
    while above + counts[low] <= kth:
        above += counts[low]
        low -= 1
    return np.int32(((high - 128) << 8) | low)


@njit(parallel=True, cache=True, nogil=True)
def merge_best(scores, sign, n_rows, n_columns, positions, members, excluded, best_keys, best_ids):
    """Fold a block of scores into each query's running best.

    A row's first ``_STRIPES * width`` columns are read as ``_STRIPES``
    stripes of ``width`` and their element-wise maximum taken (a vectorised
    integer maximum), so that column group ``i`` is every ``width``-th
    column from ``i``.  The ``n_best + 1``-th largest of the groups' maxima,
    ``bound``, is a lower bound of the final ``n_best``-th best key (at least
    ``n_best`` of those maxima are not the query's own row): only groups that
    may hold a key of at least ``bound`` are then read key by key, those
    above it kept first and then, up to ``n_best``, those equal to it
    (bfloat16 scores tie often).  The last columns, fewer than ``_STRIPES``,
    are read key by key.

    Parameters
    ----------
    scores : int16 or int32 array of shape (>= n_rows, >= n_columns)
        The bits of bfloat16 or float32 scores (see :func:`score_bits`); row
        ``r`` belongs to query ``members[r]`` and column ``j`` to the scanned
        row at ``positions[j]``.
    sign : int
        The place of the scores' sign bit.
    excluded : int64 array of shape (n_queries,)
        A position each query never takes (its own row), or -1.
    best_keys, best_ids : arrays of shape (n_queries, n_best)
        Each query's best keys so far and their positions, updated in place;
        unfilled slots (-1) come last.
    """
    n_best = best_keys.shape[1]
    width = n_columns // _STRIPES
    if width <= n_best:
        width = 0
    striped = width * _STRIPES
    for r in prange(n_rows):
        query = members[r]
        keys = best_keys[query]
        ids = best_ids[query]
        skip = excluded[query]
        row = scores[r]
        # Room for every column above the bound: with 16-bit keys, at most
        # n_best runs of _STRIPES columns and the last ones (all columns when
        # there is no bound, or with the coarser bound of 32-bit keys); the
        # columns equal to it are needed only up to n_best.
        if width and sign == 15:
            found = np.empty(_STRIPES * (n_best + 1), dtype=np.int64)
        else:
            found = np.empty(n_columns, dtype=np.int64)
        ties = np.empty(n_best, dtype=np.int64)
        bound = np.int32(LOWEST_KEY)
        n_found = n_ties = 0
        if width:
            top_keys = _run_maxima(row, width, sign, n_best)
            # The radix selection takes 16 bits: those of bfloat16 keys, the
            # high half of float32 ones (whose bound is then the lowest key
            # with that high half, still a lower bound).
            coarse = top_keys >> (sign - 15)
            bound = _kth_largest(coarse, n_best, np.empty(256, dtype=np.int64)) << (sign - 15)
            for i in range(width):
                if top_keys[i] > bound or (n_ties < n_best and top_keys[i] == bound):
                    n_found, n_ties = _collect(row, i, striped, width, sign, bound,
                                               found, n_found, ties, n_ties)
        n_found, n_ties = _collect(row, striped, n_columns, 1, sign, bound,
                                   found, n_found, ties, n_ties)
        _keep(row, sign, found, n_found, positions, skip, keys, ids)
        _keep(row, sign, ties, n_ties, positions, skip, keys, ids)


@njit(parallel=True, cache=True, nogil=True, fastmath=True)
def rescore(data, queries, candidates, k, out, order):
    """The ``k`` candidates of highest exact dot product, best first; -1 where missing.

    Queries are taken in ``order`` (queries with candidates in common close
    together keep their rows in cache); ties keep the candidates' order.
    """
    n_candidates = candidates.shape[1]
    for t in prange(order.shape[0]):
        i = order[t]
        query = queries[i]
        scores = np.empty(n_candidates, dtype=query.dtype)
        for j in range(n_candidates):
            c = candidates[i, j]
            if c < 0:
                scores[j] = -np.inf
            else:
                row = data[c]
                total = query[0] - query[0]  # zero, in the rows' precision
                for f in range(query.shape[0]):
                    total += row[f] * query[f]
                scores[j] = total
        ranked = np.argsort(-scores, kind="mergesort")
        for rank in range(k):
            best = ranked[rank]
            out[i, rank] = candidates[i, best] if scores[best] > -np.inf else -1


@njit(parallel=True, cache=True, nogil=True)
def top_columns(scores, sign, n_rows, n_columns, out):
    """The ``out.shape[1]`` columns of largest score in each row, largest first.

    ``scores`` are bits as in :func:`merge_best`; ties keep the columns' order.
    """
    n_top = out.shape[1]
    for r in prange(n_rows):
        row = scores[r]
        keys = np.full(n_top, LOWEST_KEY, dtype=np.int32)
        where = out[r]
        where[:] = 0
        for j in range(n_columns):
            key = _order_key(row[j], sign)
            if key > keys[n_top - 1]:
                place = n_top - 1
                while place > 0 and keys[place - 1] < key:
                    keys[place] = keys[place - 1]
                    where[place] = where[place - 1]
                    place -= 1
                keys[place] = key
                where[place] = j
