"""C3: connect, collapse, corrupt."""

from numbers import Real

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .._array_api import Constant
from .._base import BaseAligner
from .._maps import BlockMap, interpolate

# Rows used by noise_std="auto": enough for a stable mean nearest-neighbour
# distance, few enough that the estimate costs well under a second.
_AUTO_SOURCE_ROWS = 2000
_AUTO_TARGET_ROWS = 10000


class C3(BaseAligner):
    """Remove each modality's mean, then corrupt the source with Gaussian noise.

    Zhang et al. (2024) explain the modality gap as a constant offset plus a
    residual and close it in two steps: *collapse* (remove the offset) and
    *corrupt* (add isotropic Gaussian noise so that a model trained on the
    substitutes tolerates the residual).  With ``eps ~ N(0, noise_std^2 I)``:

    - ``shift="center"`` (the default; C3 as its official code runs it): each
      modality is centred on its own mean.  Training rows become
      ``z = Norm(y - mu_y + eps)`` and, as at C3's test time,
      ``transform_target`` returns ``Norm(x - mu_x)``;
    - ``shift="target"`` (the baseline the AnisoAlign paper calls C3, not the
      C3 code): ``z = Norm(y - mu_y + mu_x + eps)``, target rows unchanged.

    The two settings of the official code are the constructors
    :meth:`captioning` (the default parameters) and :meth:`imagebind`.
    ``alpha`` interpolates before the final normalisation,
    ``Norm((1 - alpha) * y + alpha * T(y))``, on both sides.

    Parameters
    ----------
    noise_std : float or "auto", default=sqrt(0.016)
        Standard deviation of the noise per coordinate.  The default is the
        variance 0.016 used with CLIP by the C3 authors.  ``"auto"`` estimates
        the scale of the residual gap without pairs: the root mean squared
        distance from each centred source row to its nearest centred target
        row, per coordinate, ``sqrt(mean_i min_j ||(y_i - mu_y) - (x_j -
        mu_x)||^2 / d)`` on a seeded subsample of at most 2,000 source and
        10,000 target rows.  A nearest neighbour is never farther than the true
        partner, so this is a lower estimate of the paired residual scale
        ``sqrt(tr(S_r) / d)``; on the four real feature sets in the project's
        data it lies 5-20% below it (CLIP: 0.034 vs 0.036; ConVIRT: 0.035 vs
        0.040; VideoCLIP: 0.028 vs 0.030; CLASP: 0.024 vs 0.030), while the
        fixed default (0.126) is 3.5 times larger than any of them.
    shift : {"target", "center"}, default="target"
        Which variant (see above).
    alpha : float, default=1.0
        Correction strength in ``[0, 1]``.
    normalize : bool, default=True
        L2-normalise input rows before anything else.
    n_jobs : int, default=None
        Threads streaming the row blocks of ``fit`` and ``transform``, in
        joblib's meaning (``-1`` all CPUs).  ``None`` follows
        :func:`joblib.parallel_config`, runs on one thread inside a worker of
        an outer joblib loop (such as ``GridSearchCV(n_jobs=...)``), and
        otherwise uses up to 8 of the CPUs and BLAS threads available.
        Results do not depend on it.
    random_state : int, RandomState instance or None, default=None
        Seeds the noise (drawn anew, identically, at every ``transform`` call)
        and the subsample of ``noise_std="auto"``.

    Attributes
    ----------
    source_mean_ : ndarray of shape (n_features,)
        ``mu_y``.
    target_mean_ : ndarray of shape (n_features,)
        ``mu_x``.
    noise_std_ : float
        The noise scale used.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features, when ``X`` had string column names.

    See Also
    --------
    CentroidShift : The collapse onto the target's mean, without noise.

    References
    ----------
    .. [1] Y. Zhang, E. Sui, S. Yeung-Levy. "Connect, Collapse, Corrupt:
       Learning Cross-Modal Tasks with Uni-Modal Data". ICLR 2024.
       Official code: https://github.com/yuhui-zh15/C3 (branches ``main``
       and ``imagebind``).

    Examples
    --------
    >>> from sklearn_modgap import C3
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> target, source = make_modality_gap(n_pairs=200, n_features=32, random_state=0)
    >>> c3 = C3(noise_std="auto", random_state=0).fit(source, y=target)
    >>> c3.transform(source).shape
    (200, 32)
    >>> C3.imagebind(random_state=0).get_params()["noise_std"]
    0.1
    """

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "noise_std": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "shift": [StrOptions({"center", "target"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        noise_std=float(np.sqrt(0.016)),
        *,
        shift="center",
        alpha=1.0,
        normalize=True,
        n_jobs=None,
        random_state=None,
    ):
        self.noise_std = noise_std
        self.shift = shift
        self.alpha = alpha
        self.normalize = normalize
        self.n_jobs = n_jobs
        self.random_state = random_state

    @classmethod
    def captioning(cls, **params):
        """C3 as the official image-captioning code runs it (the default parameters).

        ``image_captioning/src/datasets/dataset_coco.py`` of the official
        code (the defaults of ``run.py`` and ``train_unimodal_c3.sh``): each
        text embedding is L2-normalised, the mean of the normalised texts is
        subtracted, noise of variance 0.016 per coordinate is added and the
        row is normalised again; at test time each image embedding is
        normalised, the mean of the normalised images is subtracted and the
        row is normalised again.  That is ``noise_std=sqrt(0.016)``,
        ``shift="center"``, ``normalize=True``.

        Parameters
        ----------
        **params : dict
            Further parameters of :class:`C3` (``random_state``, ``alpha``),
            or overrides of the preset's.

        Returns
        -------
        c3 : C3
            An unfitted estimator with plain parameters (``clone`` and
            ``get_params`` see no preset).
        """
        return cls(**{"noise_std": float(np.sqrt(0.016)), "shift": "center", "normalize": True, **params})

    @classmethod
    def imagebind(cls, **params):
        """C3 as the official code's ``imagebind`` branch runs it.

        ``train.py`` of that branch subtracts the mean of the raw
        (unnormalised) training embeddings of each modality and adds noise
        of standard deviation 0.1 per coordinate to the texts, with no
        normalisation before or after: ``noise_std=0.1``,
        ``shift="center"``, ``normalize=False``.  The package still returns
        unit-norm rows; the branch feeds the unnormalised vectors to its
        decoder.  Every metric of the package normalises its inputs first,
        so that final normalisation changes none of them.

        Parameters
        ----------
        **params : dict
            Further parameters of :class:`C3` (``random_state``, ``alpha``),
            or overrides of the preset's.

        Returns
        -------
        c3 : C3
            An unfitted estimator with plain parameters.
        """
        return cls(**{"noise_std": 0.1, "shift": "center", "normalize": False, **params})

    _array_api_support = True
    _stream_orders = (1, 1)
    _stream_sampled = ("X", "y")

    def _stream_capacity(self, side):
        # Only noise_std="auto" reads rows, at most these many of each side.
        return _AUTO_SOURCE_ROWS if side == "X" else _AUTO_TARGET_ROWS

    def _fit_stream(self, source_stats, target_stats, source_rows, target_rows):
        self.source_mean_ = source_stats.mean
        self.target_mean_ = target_stats.mean
        if self.noise_std == "auto":
            self.noise_std_ = self._residual_scale(source_rows, target_rows)
        else:
            self.noise_std_ = float(self.noise_std)

    def _residual_scale(self, source, target):
        rng = check_random_state(self.random_state)
        source_rows = _subsample(source, _AUTO_SOURCE_ROWS, rng)
        target_rows = _subsample(target, _AUTO_TARGET_ROWS, rng)
        centred_source = self._prepare(source_rows, "X") - self.source_mean_
        centred_target = self._prepare(target_rows, "y") - self.target_mean_
        distances, _ = NearestNeighbors(n_neighbors=1).fit(centred_target).kneighbors(centred_source)
        return float(np.sqrt(np.mean(distances[:, 0] ** 2) / source.shape[1]))

    def _source_map(self):
        rng = check_random_state(self.random_state)
        offset = -self.source_mean_ + (self.target_mean_ if self.shift == "target" else 0.0)

        offset = Constant(offset)

        def corrupt(block):
            noise = Constant(rng.standard_normal(tuple(block.shape))).of(block)
            return block + offset.of(block) + self.noise_std_ * noise

        # The noise advances one generator block by block.
        return interpolate(BlockMap(corrupt, in_order=True, row_wise=False), self.alpha)

    def _target_map(self):
        if self.shift == "target":
            return None
        mean = Constant(self.target_mean_)
        return interpolate(lambda block: block - mean.of(block), self.alpha)


def _subsample(A, n_rows, rng):
    if A.shape[0] <= n_rows:
        return A
    return A[np.sort(rng.choice(A.shape[0], size=n_rows, replace=False))]
