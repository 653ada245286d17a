"""Fitting from a stream of blocks: the state behind ``partial_fit``.

An aligner fitted from a stream keeps, for each modality, the mergeable
:class:`~sklearn_modgap._stats.RowMoments` of its prepared rows and, where
a step needs rows once the moments are final (ReAlign's calibration mean,
AnisoAlign's polar statistics and nets, C3's automatic noise scale), a
:class:`RowSample`: a uniform sample of bounded size chosen by a seeded hash
of each row's position in the stream.  Because the choice depends only on the
position, the sample is the same however the rows were cut into blocks or
chunks, and two samples merge exactly: ``partial_fit`` over any blocking, and
a tree reduction over the chunks of a Dask array, keep the same rows.  When a
modality has no more rows than the sample holds, every row is kept and the
stream's fit equals ``fit`` on the concatenated rows.
"""

import numpy as np

from ._stats import RowMoments

_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def position_keys(seed, positions):
    """A 64-bit hash of ``(seed, position)`` for each position (SplitMix64's finaliser).

    Parameters
    ----------
    seed : int
        Any non-negative integer below ``2**64``.
    positions : ndarray of int
        Row positions in the stream.

    Returns
    -------
    keys : ndarray of uint64
    """
    with np.errstate(over="ignore"):
        z = np.asarray(positions, dtype=np.uint64) * _GOLDEN + np.uint64(seed % (1 << 64)) * _MIX_2
        z = (z ^ (z >> np.uint64(30))) * _MIX_1
        z = (z ^ (z >> np.uint64(27))) * _MIX_2
        return z ^ (z >> np.uint64(31))


class RowSample:
    """A mergeable uniform sample of at most ``capacity`` rows of a stream.

    The rows kept are those whose positions have the ``capacity`` smallest
    keys of :func:`position_keys` (a bottom-k sample), which is a uniform
    sample without replacement of the positions seen.

    Parameters
    ----------
    n_features : int
        Width of the rows.
    capacity : int or None
        Most rows kept; ``None`` keeps every row.
    seed : int
        Seed of the hash.

    Attributes
    ----------
    seen : int
        Rows offered so far (the next position of :meth:`update`).
    """

    def __init__(self, n_features, capacity, seed):
        self.n_features = int(n_features)
        self.capacity = capacity
        self.seed = int(seed)
        self.seen = 0
        self.positions = np.empty(0, dtype=np.int64)
        self.keys = np.empty(0, dtype=np.uint64)
        self.kept = None

    def update(self, block, start=None):
        """Offer the rows of ``block``, at positions ``start, start + 1, ...``; returns ``self``.

        ``start`` defaults to :attr:`seen`, the rows' position in a stream
        fed block by block.
        """
        start = self.seen if start is None else int(start)
        positions = np.arange(start, start + len(block), dtype=np.int64)
        self._absorb(positions, position_keys(self.seed, positions), np.asarray(block))
        self.seen = max(self.seen, start + len(block))
        return self

    def merge(self, *others):
        """A new sample of the rows of ``self`` and ``others`` together (disjoint positions)."""
        for other in others:
            if (other.n_features, other.capacity, other.seed) != (self.n_features, self.capacity, self.seed):
                raise ValueError("Only samples of the same width, capacity and seed can be merged.")
        merged = RowSample(self.n_features, self.capacity, self.seed)
        parts = [part for part in (self, *others) if part.kept is not None]
        merged.seen = max(part.seen for part in (self, *others))
        if parts:
            # One selection over all parts: each row is copied once, however many parts.
            merged._absorb(
                np.concatenate([part.positions for part in parts]),
                np.concatenate([part.keys for part in parts]),
                np.concatenate([part.kept for part in parts]) if len(parts) > 1 else parts[0].kept,
            )
        return merged

    def _absorb(self, positions, keys, rows):
        if len(positions) == 0:
            return
        if self.kept is None:
            all_positions, all_keys, all_rows = positions, keys, rows
        else:
            all_positions = np.concatenate([self.positions, positions])
            all_keys = np.concatenate([self.keys, keys])
            all_rows = np.concatenate([self.kept, rows.astype(self.kept.dtype, copy=False)])
        if self.capacity is not None and len(all_keys) > self.capacity:
            # Keys are distinct with overwhelming probability; ties go to the
            # earlier position, so the choice never depends on the blocking.
            order = np.lexsort((all_positions, all_keys))[: self.capacity]
        else:
            order = np.arange(len(all_keys))
        order = order[np.argsort(all_positions[order], kind="stable")]
        self.positions = all_positions[order]
        self.keys = all_keys[order]
        self.kept = all_rows[order]

    @property
    def rows(self):
        """The kept rows in stream order, shape ``(n_kept, n_features)``."""
        if self.kept is None:
            return np.empty((0, self.n_features))
        return self.kept


class FitStream:
    """The running state of a ``partial_fit`` stream: moments and samples of both modalities.

    Parameters
    ----------
    n_features : int
        Width of the rows.
    orders : tuple of int
        ``(source_order, target_order)`` of the :class:`RowMoments` kept.
    capacities : dict
        ``{"X": capacity, "y": capacity}`` for each modality whose rows are
        sampled (a capacity ``None`` keeps every row); modalities absent keep
        no rows.
    seed : int
        Seed of the samples' hash.
    """

    def __init__(self, n_features, orders, capacities, seed):
        self.n_features = int(n_features)
        self.moments = {
            side: RowMoments(n_features, order=order) for side, order in zip(("X", "y"), orders)
        }
        self.samples = {
            side: RowSample(n_features, capacity, seed + offset)
            for offset, side in enumerate(("X", "y"))
            if side in capacities
            for capacity in (capacities[side],)
        }

    @classmethod
    def of_moments(cls, source_moments, target_moments):
        """A state holding only moments (an aligner whose fit needs no rows)."""
        stream = cls.__new__(cls)
        stream.n_features = source_moments.n_features
        stream.moments = {"X": source_moments, "y": target_moments}
        stream.samples = {}
        return stream

    def rows(self, side):
        """The sampled rows of ``side`` (``None`` when it keeps none)."""
        sample = self.samples.get(side)
        return None if sample is None else sample.rows

    def count(self, side):
        return self.moments[side].count

    def merge(self, *others):
        """A new state of the rows of ``self`` and ``others`` (disjoint stream positions)."""
        merged = FitStream.__new__(FitStream)
        merged.n_features = self.n_features
        merged.moments = {}
        for side, moments in self.moments.items():
            for other in others:
                moments = moments.merge(other.moments[side])
            merged.moments[side] = moments
        merged.samples = {
            side: sample.merge(*(other.samples[side] for other in others))
            for side, sample in self.samples.items()
        }
        return merged
