"""Rows of other array libraries (torch, CuPy, ...) under scikit-learn's Array API dispatch.

With ``sklearn.set_config(array_api_dispatch=True)`` (and ``SCIPY_ARRAY_API=1``
in the environment, as scikit-learn requires), the closed-form aligners take
arrays of any namespace scikit-learn supports and return their substitutes in
the input's namespace, on its device, in its dtype:

- ``fit`` computes the statistics on the host, one block at a time: each
  block of rows is copied to a NumPy array (:class:`HostRows`), so the float64
  moments are the NumPy path's and memory beyond the input stays at one
  block.  The fitted attributes are NumPy arrays, as the statistics are small
  (vectors and ``d x d`` matrices).
- ``transform`` and ``transform_target`` run on the device: the fitted
  vectors are moved there once per call, and every block is normalised,
  mapped and normalised again with the namespace's own operations.  Only the
  per-row scalars of a :class:`~sklearn_modgap._maps.SpanMap` (``n x k``
  numbers for ``k`` directions) and the random draws of C3 and
  RandomTargetReplacement cross to the host and back.

A block whose rows are not finite, have zero norm or have a norm whose square
leaves the floating-point range is handed to the NumPy code, which raises its
usual error or rescales it exactly as for NumPy input.
"""

import numpy as np

from ._validation import _SAFE_SQ_NORMS


def foreign_namespace(*arrays):
    """``(xp, device)`` of arrays of a namespace other than NumPy, under Array API dispatch.

    ``None`` when dispatch is off or the arrays are NumPy arrays.
    """
    from sklearn import get_config

    if not get_config().get("array_api_dispatch", False):
        return None
    from sklearn.utils._array_api import _is_numpy_namespace, get_namespace_and_device

    arrays = [a for a in arrays if a is not None and not isinstance(a, np.ndarray)]
    if not arrays:
        return None
    xp, is_array_api, device = get_namespace_and_device(*arrays)
    if not is_array_api or _is_numpy_namespace(xp):
        return None
    return xp, device


def to_numpy(array, xp):
    """``array`` as a NumPy array on the host."""
    from sklearn.utils._array_api import _convert_to_numpy

    return _convert_to_numpy(array, xp)


def numpy_dtype(array, xp):
    """The NumPy dtype matching ``array``'s floating dtype."""
    return to_numpy(array[:0, ...], xp).dtype


class HostRows:
    """Rows of a foreign array that the NumPy code reads one block at a time.

    ``rows[slice]`` and ``rows[index_array]`` return NumPy copies of those
    rows; ``np.asarray(rows)`` copies every row.
    """

    def __init__(self, array, xp, device):
        self.array = array
        self.xp = xp
        self.device = device
        self.shape = tuple(int(n) for n in array.shape)
        self.ndim = len(self.shape)
        self.dtype = numpy_dtype(array, xp)
        self.itemsize = self.dtype.itemsize

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, np.ndarray):
            index = self.xp.asarray(rows.astype(np.int64), device=self.device)
            return to_numpy(self.xp.take(self.array, index, axis=0), self.xp)
        return to_numpy(self.array[rows, ...], self.xp)

    def __array__(self, dtype=None, copy=None):
        rows = to_numpy(self.array, self.xp)
        return rows if dtype is None else rows.astype(dtype)


class DeviceConstants:
    """Fitted NumPy arrays moved to one namespace, device and dtype, once each."""

    def __init__(self, xp, device, dtype):
        self.xp, self.device, self.dtype = xp, device, dtype
        self._moved = {}

    def __call__(self, array):
        key = id(array)
        if key not in self._moved:
            self._moved[key] = (array, self.to_device(np.asarray(array)))
        return self._moved[key][1]

    def to_device(self, array):
        return self.xp.asarray(np.ascontiguousarray(array, dtype=self.dtype), device=self.device)


class Constant:
    """A fitted NumPy array given to the blocks of a map in their namespace, device and dtype.

    The maps' functions use it for their constants, so that one function
    serves NumPy blocks (``array.astype(block.dtype)``, as before) and
    blocks of any other namespace (moved to the block's device once, then
    reused).
    """

    def __init__(self, array):
        self.array = np.asarray(array)
        self._key = None
        self._value = None

    def of(self, block):
        """The array for ``block``."""
        if isinstance(block, np.ndarray):
            return self.array.astype(block.dtype, copy=False)
        from sklearn.utils._array_api import device, get_namespace

        key = (type(block), str(device(block)), str(block.dtype))
        if key != self._key:
            xp, _ = get_namespace(block)
            self._value = xp.asarray(
                np.ascontiguousarray(self.array, dtype=numpy_dtype(block, xp)), device=device(block)
            )
            self._key = key
        return self._value


def safe_prepared(block, xp, dtype, normalize):
    """``block`` normalised with ``xp`` when every row is safely normalisable, else ``None``."""
    if not bool(xp.all(xp.isfinite(block))):
        return None
    if not normalize:
        return block
    sq_norms = xp.sum(block * block, axis=1)
    low, high = _SAFE_SQ_NORMS.get(dtype, _SAFE_SQ_NORMS[np.dtype(np.float64)])
    if not bool(xp.all((sq_norms >= low) & (sq_norms <= high))):
        return None
    return block / xp.sqrt(sq_norms)[:, None]


def unit_rows(moved, xp):
    """Rows of ``moved`` divided by their norms; an error for a zero row."""
    norms = xp.sqrt(xp.sum(moved * moved, axis=1))
    if not bool(xp.all(norms > 0)):
        raise ValueError("The aligned rows have zero norm and cannot be normalized.")
    return moved / norms[:, None]


def apply_span(span, prepared, constants, xp):
    """``T(u)`` of a :class:`~sklearn_modgap._maps.SpanMap` on prepared rows of ``xp``."""
    directions = constants(span.directions)
    dots = prepared @ directions.T
    sq_norms = xp.sum(prepared * prepared, axis=1)
    host_dots = to_numpy(dots, xp).astype(np.float64)
    host_sq = to_numpy(sq_norms, xp).astype(np.float64)
    row_weight, direction_weights = span.coefficients(host_sq, host_dots)
    row_weight = np.broadcast_to(np.asarray(row_weight, dtype=np.float64), host_sq.shape)
    direction_weights = np.broadcast_to(np.asarray(direction_weights, dtype=np.float64), host_dots.shape)
    return constants.to_device(row_weight)[:, None] * prepared + constants.to_device(direction_weights) @ directions
