"""Synthetic paired embeddings with a modality gap, and loaders for real ones."""

import zipfile
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from ._validation import check_embeddings, check_same_features

# Rows generated per step: bounds the float64 temporaries of large draws, and
# being fixed it keeps the output independent of anything but random_state.
_GENERATION_BLOCK = 4096


@validate_params(
    {
        "n_pairs": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 3, None, closed="left")],
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "semantic_rank": [Interval(Integral, 1, None, closed="left"), None],
        "centroid_norm": [Interval(Real, 0, 1, closed="neither")],
        "centroid_gap": [Interval(Real, 0, None, closed="left")],
        "shared_variance": [Interval(Real, 0, 1, closed="both")],
        "residual_decay": [Interval(Real, 0, None, closed="left")],
        "cluster_spread": [Interval(Real, 0, None, closed="left")],
        "return_labels": ["boolean"],
        "dtype": [type, str],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_modality_gap(
    n_pairs=1000,
    n_features=512,
    *,
    n_clusters=10,
    semantic_rank=None,
    centroid_norm=0.73,
    centroid_gap=0.85,
    shared_variance=0.3,
    residual_decay=0.9,
    cluster_spread=1.0,
    return_labels=False,
    dtype=np.float32,
    random_state=None,
):
    """Generate paired unit-norm embeddings of two modalities with a gap.

    Each pair ``(x_i, y_i)`` is built as ``Norm(mu + s_i + e_i)`` per modality:

    - ``mu_x`` and ``mu_y`` are two fixed centroids of norm ``centroid_norm``
      at distance ``centroid_gap`` (the centroid gap ``G_mu``);
    - ``s_i`` is the *shared* semantic part, identical in both modalities: a
      point of a mixture of ``n_clusters`` Gaussians (the labels) in a random
      subspace of rank ``semantic_rank``, carrying a fraction
      ``shared_variance`` of each modality's spread;
    - ``e_i`` is a modality-specific variation, drawn independently for ``x``
      and ``y`` in a random basis of each modality, with the power-law
      variance spectrum ``lambda_j ~ j**(-residual_decay)``.  It makes the
      paired residual ``r_i = (x_i - mu_x) - (y_i - mu_y)`` anisotropic:
      concentrated in a few directions, as in real contrastive embeddings.

    The defaults reproduce the geometry of OpenAI CLIP ViT-B/16 features of
    MSCOCO (image = target, caption = source): on 1000 pairs of dimension
    512 the centroid gap ``||mu_x - mu_y||`` is about 0.85, the true-pair
    cosine about 0.31, the residual ratio ``D_tilde / D`` about 0.69 and the
    residual anisotropy ``A_r`` about 28 (real features: 0.851, 0.310, 0.686,
    28.3).

    Parameters
    ----------
    n_pairs : int, default=1000
        Number of pairs (rows of each output).
    n_features : int, default=512
        Embedding dimension ``d``; must exceed ``semantic_rank + 1``.
    n_clusters : int, default=10
        Number of semantic clusters (the labels).
    semantic_rank : int, default=None
        Dimension of the subspace holding the shared semantic part; at most
        ``n_features - 2``.  ``None`` uses ``max(1, min(32, n_features // 4))``
        (32 at ``d = 512``).
    centroid_norm : float, default=0.73
        Norm of each modality's centroid before row normalisation, in (0, 1).
    centroid_gap : float, default=0.85
        Distance between the two centroids before row normalisation; at most
        ``2 * centroid_norm``.
    shared_variance : float, default=0.3
        Fraction of each modality's spread around its centroid shared by the
        two members of a pair; sets the true-pair cosine.
    residual_decay : float, default=0.9
        Exponent of the power-law spectrum of the modality-specific
        variations; ``0`` is isotropic, larger values concentrate the
        residual in fewer directions (larger ``A_r``).
    cluster_spread : float, default=1.0
        Standard deviation of the cluster centres relative to the spread
        within a cluster; larger values separate the clusters more.
    return_labels : bool, default=False
        Also return the cluster label of every pair.
    dtype : dtype, default=np.float32
        Floating dtype of the returned embeddings.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw; a fixed value gives identical arrays.

    Returns
    -------
    target : ndarray of shape (n_pairs, n_features)
        Unit-norm rows of the target modality ``X`` (e.g. images).
    source : ndarray of shape (n_pairs, n_features)
        Unit-norm rows of the source modality ``Y`` (e.g. text); row ``i`` is
        paired with ``target[i]``.
    labels : ndarray of shape (n_pairs,)
        Cluster of each pair; only when ``return_labels=True``.

    See Also
    --------
    load_embedding_pairs : Read real paired embeddings from ``.npy``/``.npz``.

    References
    ----------
    .. [1] W. Liang, Y. Zhang, Y. Kwon, S. Yeung, J. Zou. "Mind the Gap:
       Understanding the Modality Gap in Multi-modal Contrastive Representation
       Learning". NeurIPS 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> target, source, labels = make_modality_gap(
    ...     n_pairs=300, n_features=64, return_labels=True, random_state=0)
    >>> target.shape, source.dtype, labels.shape
    ((300, 64), dtype('float32'), (300,))
    >>> bool(np.allclose(np.linalg.norm(source, axis=1), 1, atol=1e-6))
    True
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating dtype, got {dtype}.")
    if semantic_rank is None:
        semantic_rank = max(1, min(32, n_features // 4))
    if semantic_rank > n_features - 2:
        raise ValueError(
            f"semantic_rank={semantic_rank} leaves no room for the two centroid "
            f"directions in n_features={n_features}; use semantic_rank <= {n_features - 2}."
        )
    if centroid_gap > 2 * centroid_norm:
        raise ValueError(
            f"centroid_gap={centroid_gap} is impossible for two centroids of norm "
            f"{centroid_norm}; it must be at most 2 * centroid_norm = {2 * centroid_norm}."
        )
    rng = np.random.default_rng(check_random_state(random_state).randint(2**32, dtype=np.uint64))

    basis = _random_rotation(rng, n_features)
    # Two centroids of norm c at distance g: cosine 1 - g^2 / (2 c^2) between them.
    cos_means = 1.0 - centroid_gap**2 / (2.0 * centroid_norm**2)
    target_mean = centroid_norm * basis[:, 0]
    source_mean = centroid_norm * (
        cos_means * basis[:, 0] + np.sqrt(max(0.0, 1.0 - cos_means**2)) * basis[:, 1]
    )
    semantic_basis = basis[:, 2 : 2 + semantic_rank]

    # Spread around the centroid is 1 - c^2 so that rows are about unit norm
    # before the final normalisation, which then changes little.
    spread = 1.0 - centroid_norm**2
    semantic_scale = np.sqrt(shared_variance * spread / (semantic_rank * (1.0 + cluster_spread**2)))
    spectrum = np.arange(1, n_features + 1, dtype=np.float64) ** -residual_decay
    spectrum *= (1.0 - shared_variance) * spread / spectrum.sum()
    specific_bases = [
        _random_rotation(rng, n_features) * np.sqrt(spectrum) for _ in range(2)
    ]
    centers = cluster_spread * rng.standard_normal((n_clusters, semantic_rank))

    target = np.empty((n_pairs, n_features), dtype=dtype)
    source = np.empty((n_pairs, n_features), dtype=dtype)
    labels = np.empty(n_pairs, dtype=np.intp)
    for start in range(0, n_pairs, _GENERATION_BLOCK):
        rows = slice(start, min(start + _GENERATION_BLOCK, n_pairs))
        n_rows = rows.stop - rows.start
        labels[rows] = rng.integers(n_clusters, size=n_rows)
        latent = centers[labels[rows]] + rng.standard_normal((n_rows, semantic_rank))
        shared = (semantic_scale * latent) @ semantic_basis.T
        for out, mean, specific in zip(
            (target, source), (target_mean, source_mean), specific_bases
        ):
            rows_out = mean + shared + rng.standard_normal((n_rows, n_features)) @ specific.T
            rows_out /= np.linalg.norm(rows_out, axis=1, keepdims=True)
            out[rows] = rows_out
    if return_labels:
        return target, source, labels
    return target, source


def _random_rotation(rng, n):
    """A Haar-distributed orthogonal ``n x n`` matrix."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def load_embedding_pairs(
    path, target_path=None, *, target_key="target", source_key="source", mmap_mode=None
):
    """Read paired embeddings of two modalities from ``.npy`` or ``.npz`` files.

    Three layouts are understood:

    - one array of shape ``(2, n, d)`` (a ``.npy`` file, or a ``.npz`` holding
      a single array): index 0 is the target modality, index 1 the source,
      rows are pairs, as in the Mind-the-Gap feature files;
    - a ``.npz`` file holding two named arrays of shape ``(n, d)``
      (``target_key`` and ``source_key``);
    - two files of shape ``(n, d)`` each: ``path`` holds the source rows and
      ``target_path`` the target rows.

    Parameters
    ----------
    path : str or path-like
        The pairs file, or the source file when ``target_path`` is given.
    target_path : str or path-like, default=None
        The target file, for the two-file layout.
    target_key, source_key : str, default="target", "source"
        Names of the arrays in a ``.npz`` file with named arrays.
    mmap_mode : {None, "r"}, default=None
        Memory-map ``.npy`` files instead of reading them (see
        :func:`numpy.load`); useful for arrays larger than memory.

    Returns
    -------
    target : ndarray of shape (n, d)
        Target-modality rows (float32 or float64; other dtypes become float64).
    source : ndarray of shape (n, d)
        Source-modality rows, row ``i`` paired with ``target[i]``.

    Raises
    ------
    FileNotFoundError
        When a file does not exist.
    ValueError
        When a file cannot be read as ``.npy``/``.npz``, when an array has the
        wrong shape or non-finite values, or when the two modalities differ in
        dimension or number of rows.

    See Also
    --------
    make_modality_gap : Synthetic pairs with the same layout.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sklearn_modgap.datasets import load_embedding_pairs, make_modality_gap
    >>> target, source = make_modality_gap(n_pairs=50, n_features=16, random_state=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "pairs.npy")
    ...     np.save(path, np.stack([target, source]))
    ...     loaded_target, loaded_source = load_embedding_pairs(path)
    >>> bool(np.array_equal(loaded_source, source))
    True
    """
    if target_path is not None:
        source = _single_array(_read(path, mmap_mode), path)
        target = _single_array(_read(target_path, mmap_mode), target_path)
        source = _as_rows(source, f"source file {path}")
        target = _as_rows(target, f"target file {target_path}")
        return _check_pairs(target, source, "the target file", "the source file")

    content = _read(path, mmap_mode)
    if isinstance(content, dict):
        if target_key in content and source_key in content:
            target = _as_rows(content[target_key], f"array '{target_key}' of {path}")
            source = _as_rows(content[source_key], f"array '{source_key}' of {path}")
            return _check_pairs(target, source, f"'{target_key}'", f"'{source_key}'")
        if len(content) != 1:
            raise ValueError(
                f"{path} holds arrays {sorted(content)}; expected '{target_key}' and "
                f"'{source_key}' (name them with --target-key/--source-key, or target_key/source_key in Python), or a single (2, n, d) array."
            )
    stacked = _single_array(content, path)
    if stacked.ndim != 3 or stacked.shape[0] != 2:
        raise ValueError(
            f"{path} holds an array of shape {stacked.shape}; a pairs file needs shape "
            "(2, n, d) with index 0 the target and index 1 the source, or pass the "
            "source and target as two (n, d) files."
        )
    target = _as_rows(stacked[0], f"target (index 0) of {path}")
    source = _as_rows(stacked[1], f"source (index 1) of {path}")
    return _check_pairs(target, source, "the target", "the source")


def _read(path, mmap_mode):
    """Load a ``.npy`` array or the arrays of a ``.npz`` as a dict, with one-line errors."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a .npy/.npz file")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
        raise ValueError(
            f"cannot read {path}: it is not a .npy or .npz file (it does not start with "
            "numpy's or zip's header); save the embeddings with numpy.save or numpy.savez"
        )
    try:
        loaded = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {key: _npz_array(loaded, key, path) for key in loaded.files}
        return loaded
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        if any(word in str(exc) for word in ("pickled", "Python objects", "Object arrays")):
            raise ValueError(
                f"cannot read {path}: it holds Python objects (pickled data), which are "
                "never unpickled; save the embeddings as a numeric array"
            ) from None
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"cannot read {path} as a .npy/.npz array file: {reason}") from None


class _PickledArray:
    """An array of a ``.npz`` that holds Python objects: never unpickled, refused when asked for."""

    def __init__(self, key, path):
        self.key, self.path = key, path

    @property
    def ndim(self):
        raise ValueError(
            f"array '{self.key}' of {self.path} holds Python objects, which are never "
            "unpickled; name the numeric arrays with --target-key/--source-key"
        )


def _npz_array(archive, key, path):
    try:
        return archive[key]
    except ValueError:
        return _PickledArray(key, path)


def _single_array(content, path):
    if isinstance(content, dict):
        if len(content) != 1:
            raise ValueError(f"{path} holds {len(content)} arrays {sorted(content)}; expected one.")
        (content,) = content.values()
    return content


def _as_rows(array, what):
    if array.ndim != 2:
        raise ValueError(
            f"the {what} has shape {array.shape}; expected a 2-D (n, d) array of embeddings."
        )
    if array.dtype.kind not in "fiu":
        raise ValueError(f"the {what} has dtype {array.dtype}; expected numbers.")
    if array.shape[0] < 2:
        raise ValueError(f"the {what} has {array.shape[0]} row(s); at least 2 are needed.")
    rows = check_embeddings(array, name=what, finite=False)
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
    if bad.size:
        raise ValueError(
            f"the {what} has {bad.size} row(s) with NaN or infinity (first at row {bad[0]} of "
            "the file); fix or remove them."
        )
    zero = np.flatnonzero(~np.any(rows, axis=1))
    if zero.size:
        raise ValueError(
            f"the {what} has {zero.size} row(s) of zero norm (first at row {zero[0]} of the "
            "file) that have no direction; remove them from the file."
        )
    return rows


def _check_pairs(target, source, target_name, source_name):
    check_same_features(
        source.shape[1], target, name=target_name.capitalize(), reference=source_name
    )
    if target.shape[0] != source.shape[0]:
        raise ValueError(
            f"{target_name} has {target.shape[0]} rows but {source_name} has "
            f"{source.shape[0]}; rows must be pairs."
        )
    return target, source
