"""AnisoAlign: anisotropic modality alignment (Yu et al., 2026, Sec. 4)."""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._base import BaseAligner, _check_params
from .._validation import block_slices, checked_row_norms, single_threaded_blas
from . import _frame
from ._circular import circular_statistics, phase_graph

# The automatic rank, capped by what the data supports; chosen by the rank
# sweep on the four real sets (see docs/anisoalign.md).
_AUTO_RANK = 16
# Rows each net trains on at most (a seeded subsample); the statistics use
# every row.  At 50,000 rows x 512 this keeps the default fit near 3 minutes
# on 2 CPU cores (see docs/anisoalign.md).
_MAX_NET_ROWS = 16_384


class AnisoAlign(BaseAligner):
    """Anisotropic modality alignment: a target phase prior and a bounded refinement.

    Source rows ``y`` become substitutes ``z`` in four steps, all learned from
    unpaired samples of the two modalities:

    1. **Fixed frame** (Sec. 4.1-4.2). ``Q_U``, the top-``rank`` eigenvectors
       of ``Sigma_t + Sigma_i + lambda I`` (source and target covariances),
       mixed by the orthogonal ``R`` that diagonalises the target covariance
       inside ``U`` (signs fixed by the centroid gap), so the blocks do not
       depend on the order or signs of the eigenvectors.  ``z = z_U + z_V``;
       ``z_U`` is cut into ``m = rank / 2`` planes with polar coordinates
       ``(rho_k, theta_k)``; ``V`` is spanned by the remaining eigenvectors.
    2. **Stage I, target periodic prior** (Sec. 4.3), from target rows only:
       circular means ``psi_bar_k``, concentrations ``alpha_k``, couplings
       ``M_kl``, a block-adaptive top-``p`` graph, the drift field (Eq. 4),
       drifted centres (Eq. 5) and a phase score network trained by
       denoising score matching under wrapped Gaussian noise (Eq. 6).
    3. **Stage II, global initialisation** (Sec. 4.4.1): recentring on the
       target mean, the radial quantile map ``F_x^-1(F_y(rho_k))`` per block
       and the diagonal rescaling of the V-part to the target's variances.
    4. **Stage II, bounded refinement** (Sec. 4.4.2): a refiner network moves
       each phase by at most ``alpha * bound_theta``, each log-radius by at
       most ``alpha * bound_radius`` and each V coordinate by at most
       ``alpha * bound_complement`` target standard deviations, trained on
       source rows only with the frozen prior (``L^II``, Eq. 8), the target's
       circular moments (``L^Phi``, Eq. 9) and a fidelity penalty.  The
       result is rebuilt from the polar blocks and the V-part, shifted by the
       final centroid calibration (computed on the fit source rows) and
       normalised.

    The statistics use every fit row; each net trains on at most 16,384 of
    them (a seeded subsample).

    Parameters
    ----------
    rank : "auto" or int, default="auto"
        Dimension ``r`` of the dominant subspace ``U``; must be even (blocks
        of two).  ``"auto"`` is 16, capped by what the data supports.  An
        explicit rank the data cannot support is an error.
    alpha : float, default=1.0
        Scales the three bounds of the refinement: ``0`` is the global
        initialisation alone (no network is trained).
    bound_theta : float, default=0.3
        ``alpha_theta``, the largest phase update in radians (at ``alpha=1``).
    bound_radius : float, default=0.1
        ``alpha_rho``, the largest log-radius update.
    bound_complement : float, default=0.25
        ``alpha_v``, the largest V-coordinate update, in target standard
        deviations along that coordinate.
    top_p : float in (0, 1], default=0.5
        Share of the softmax coupling weight each block keeps in the phase
        graph.
    tau : float, default=0.1
        Temperature of that softmax.
    lambda_reg : float, default=1.0
        Ridge ``lambda`` of the joint matrix, in units of the mean variance
        per direction ``(tr Sigma_t + tr Sigma_i) / (2 d)``.  It also
        regularises the V-side rescaling,
        ``s_j = sqrt((v_x,j + lambda g) / (v_y,j + lambda))`` with
        ``g = tr Sigma_i / tr Sigma_t``, which shrinks the scale of weakly
        populated directions towards the isotropic scale ``sqrt(g)``.
    noise_range : tuple of two floats, default=(0.05, 1.5)
        ``(sigma_min, sigma_max)`` of the geometric noise schedule
        ``sigma_t = sigma_min (sigma_max / sigma_min)^t``, ``t ~ U(0, 1)``.
    prior_weight : float, default=1.0
        Weight of ``L^II``.
    phase_weight : float, default=1.0
        Weight of ``L^Phi``.
    fidelity_weight : float, default=0.1
        Weight of the fidelity penalty (mean squared update over its bound).
    use_prior : bool, default=True
        Train the stage I prior and use ``L^II``; ablation switch.
    use_phase_constraint : bool, default=True
        Use ``L^Phi``; ablation switch.
    prior : PhasePrior or None, default=None
        The skorch net of stage I; cloned in ``fit``.  ``None`` uses
        ``PhasePrior()``.  Pass an instance to tune it, e.g.
        ``AnisoAlign(prior=PhasePrior())`` and then ``prior__lr`` in a grid.
    refiner : Refiner or None, default=None
        The skorch net of stage II, likewise (``refiner__max_epochs``, ...).
    max_epochs : int or None, default=None
        When set, overrides ``max_epochs`` of both nets.
    batch_size : int or None, default=None
        When set, overrides ``batch_size`` of both nets.
    random_state : int, RandomState instance or None, default=None
        Seeds both nets (initialisation, held-out slice, noise).  Fix it for
        reproducible results.
    device : str, default="auto"
        Torch device of the nets; ``"auto"`` is CUDA when available.
    verbose : int, default=0
        Print the nets' training progress (one line per epoch).
    normalize : bool, default=True
        L2-normalise input rows before anything else.

    Attributes
    ----------
    rank_ : int
        The rank used.
    n_blocks_ : int
        ``m = rank_ / 2``.
    source_mean_, target_mean_ : ndarray of shape (n_features,)
        ``mu_y`` and ``mu_x``.
    frame_ : ndarray of shape (n_features, ``rank_``)
        ``Q_U R``: block ``k`` is spanned by columns ``2k`` and ``2k + 1``.
    mixing_ : ndarray of shape (``rank_``, ``rank_``)
        ``R``.
    complement_ : ndarray of shape (n_features, n_features - ``rank_``)
        Orthonormal basis of ``V``.
    complement_scale_ : ndarray of shape (n_features - ``rank_``,)
        V-side diagonal rescaling.
    complement_std_ : ndarray of shape (n_features - ``rank_``,)
        Target standard deviation along each complement axis.
    source_radius_quantiles_, target_radius_quantiles_ : ndarray of shape (257, ``n_blocks_``)
        Per-block radius quantiles (levels ``0, 1/256, ..., 1``) of the fit rows.
    radius_center_, radius_scale_ : ndarray of shape (``n_blocks_``,)
        Mean and standard deviation of the target's ``log(rho + eps)``, the
        standardisation of the networks' radial input.
    mean_phase_, concentration_ : ndarray of shape (``n_blocks_``,)
        ``psi_bar_k`` and ``alpha_k`` of the target.
    phase_coupling_, phase_offset_ : ndarray of shape (``n_blocks_``, ``n_blocks_``)
        ``M_kl`` and ``delta_kl`` of the target.
    phase_graph_ : ndarray of shape (``n_blocks_``, ``n_blocks_``)
        Weights of the sparse graph ``E`` (zero off the graph).
    prior_ : PhasePrior or None
        The fitted stage I net (``None`` when not used).
    refiner_ : Refiner or None
        The fitted stage II net (``None`` when ``alpha=0`` or no loss is on).
    calibration_shift_ : ndarray of shape (n_features,)
        ``mu_x - mu_hat``, the final centroid calibration.
    ridge_ : float
        The absolute ridge ``lambda``.
    device_ : str
        The resolved torch device.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features, when ``X`` had string column names.

    See Also
    --------
    ReAlign : Isotropic closed-form alignment (anchor, trace, centroid).
    MomentMatch : Matches the whole covariance.

    References
    ----------
    .. [1] X. Yu, Y. Li, Y. Zhang, et al. "Anisotropic Modality Align",
       arXiv:2605.07825, 2026.

    Examples
    --------
    >>> from sklearn_modgap import AnisoAlign
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> target, source = make_modality_gap(n_pairs=200, n_features=16, random_state=0)
    >>> aligner = AnisoAlign(rank=4, max_epochs=2, device="cpu", random_state=0)
    >>> aligner.fit(source, y=target).transform(source[:3]).shape
    (3, 16)
    """

    _parameter_constraints: dict = {
        "rank": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "bound_theta": [Interval(Real, 0, math.pi, closed="both")],
        "bound_radius": [Interval(Real, 0, None, closed="left")],
        "bound_complement": [Interval(Real, 0, None, closed="left")],
        "top_p": [Interval(Real, 0, 1, closed="right")],
        "tau": [Interval(Real, 0, None, closed="neither")],
        "lambda_reg": [Interval(Real, 0, None, closed="left")],
        "noise_range": [tuple],
        "prior_weight": [Interval(Real, 0, None, closed="left")],
        "phase_weight": [Interval(Real, 0, None, closed="left")],
        "fidelity_weight": [Interval(Real, 0, None, closed="left")],
        "use_prior": ["boolean"],
        "use_phase_constraint": ["boolean"],
        "prior": [None, HasMethods(["fit", "set_params"])],
        "refiner": [None, HasMethods(["fit", "set_params"])],
        "max_epochs": [None, Interval(Integral, 1, None, closed="left")],
        "batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
        "normalize": ["boolean"],
    }

    def __init__(
        self,
        rank="auto",
        alpha=1.0,
        *,
        bound_theta=0.3,
        bound_radius=0.1,
        bound_complement=0.25,
        top_p=0.5,
        tau=0.1,
        lambda_reg=1.0,
        noise_range=(0.05, 1.5),
        prior_weight=1.0,
        phase_weight=1.0,
        fidelity_weight=0.1,
        use_prior=True,
        use_phase_constraint=True,
        prior=None,
        refiner=None,
        max_epochs=None,
        batch_size=None,
        random_state=None,
        device="auto",
        verbose=0,
        normalize=True,
    ):
        self.rank = rank
        self.alpha = alpha
        self.bound_theta = bound_theta
        self.bound_radius = bound_radius
        self.bound_complement = bound_complement
        self.top_p = top_p
        self.tau = tau
        self.lambda_reg = lambda_reg
        self.noise_range = noise_range
        self.prior_weight = prior_weight
        self.phase_weight = phase_weight
        self.fidelity_weight = fidelity_weight
        self.use_prior = use_prior
        self.use_phase_constraint = use_phase_constraint
        self.prior = prior
        self.refiner = refiner
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.normalize = normalize

    # ------------------------------------------------------------------ fit
    def _fit(self, source, target):
        self._check_noise_range()
        if source.shape[1] < 2:
            raise ValueError(
                f"AnisoAlign needs at least 2 features to form a polar block; got "
                f"{source.shape[1]} feature(s)."
            )
        # The passes over the rows are block products and small eigenproblems:
        # multi-threaded BLAS gains little on them and, when other processes
        # hold the cores, its threads' synchronisation made them up to 100
        # times slower (a 512 x 512 eigh: 0.02 s alone, 3.8 s next to two busy
        # processes on 2 cores).
        with single_threaded_blas():
            self._fit_statistics(source, target)

    def _fit_statistics(self, source, target):
        self.source_mean_, source_cov = _frame.streaming_moments(source, lambda b: self._prepare(b, "X"))
        self.target_mean_, target_cov = _frame.streaming_moments(target, lambda b: self._prepare(b, "y"))
        # lambda is relative to the mean variance per direction, so that one
        # default suits any embedding dimension and scale.
        self.ridge_ = self.lambda_reg * (np.trace(source_cov) + np.trace(target_cov)) / (2 * source_cov.shape[0])
        _, eigenvectors = _frame.joint_eigenbasis(source_cov, target_cov, self.ridge_)
        self.rank_ = self._resolve_rank(source_cov, target_cov, len(source), len(target))
        self.n_blocks_ = self.rank_ // 2
        self._fit_frame(eigenvectors, source_cov, target_cov)

        # Stage I statistics, from target rows only.
        target_radius, target_phase = self._polar(target, self.target_mean_, "y")
        target_log_radius = _frame.log_radius(target_radius)
        self.radius_center_ = target_log_radius.mean(axis=0)
        self.radius_scale_ = np.maximum(target_log_radius.std(axis=0), 1e-6)
        (self.mean_phase_, self.concentration_, self.phase_coupling_, self.phase_offset_) = (
            circular_statistics(target_phase)
        )
        self.phase_graph_ = phase_graph(self.phase_coupling_, self.top_p, self.tau)

        # Stage II global initialisation statistics.
        source_radius, source_phase = self._polar(source, self.source_mean_, "X")
        self.target_radius_quantiles_ = _frame.radius_quantiles(target_radius)
        self.source_radius_quantiles_ = _frame.radius_quantiles(source_radius)

        self.prior_ = None
        self.refiner_ = None
        self.device_ = "cpu"
        if self._trains_refiner():
            from ..nets import resolve_device

            self.device_ = resolve_device(self.device)
            rng = check_random_state(self.random_state)
            prior_seed, refiner_seed = rng.randint(2**31 - 1, size=2)
            if self.use_prior:
                rows = _subsample(len(target), rng)
                self.prior_ = self._fit_prior(target_phase[rows], target_log_radius[rows], int(prior_seed))
            rows = _subsample(len(source), rng)
            radius, complement = self._global_init(source_radius[rows], self._complement(source[rows], "X"))
            self.refiner_ = self._fit_refiner(
                self._features(radius, source_phase[rows], complement), int(refiner_seed)
            )

        # Final centroid calibration: mu_hat over the fit source rows.  The
        # rebuild is linear in the aligned coordinates, so mu_hat is rebuilt
        # from their mean instead of rebuilding every row.
        total = np.zeros(source.shape[1])
        basis = self._basis(source.dtype)
        for rows in block_slices(*source.shape, source.itemsize):
            coords = self._aligned_coords(self._prepare(source[rows], "X"), basis)
            total += coords.sum(axis=0, dtype=np.float64)
        self.calibration_shift_ = -(total / len(source)) @ self._basis(np.float64).T

    def _check_noise_range(self):
        noise = self.noise_range
        if len(noise) != 2 or not all(isinstance(s, Real) for s in noise) or not 0 < noise[0] <= noise[1]:
            raise ValueError(
                f"noise_range must be a tuple (sigma_min, sigma_max) with 0 < sigma_min <= sigma_max, "
                f"got {noise!r}."
            )

    def _resolve_rank(self, source_cov, target_cov, n_source, n_target):
        supported = _frame.supported_rank(source_cov, target_cov, n_source, n_target)
        if self.rank == "auto":
            if supported < 2:
                raise ValueError(
                    "The data supports no polar block: the joint covariance has fewer than 2 "
                    "directions with variance. Pass more (and more varied) rows."
                )
            return min(_AUTO_RANK, supported)
        if self.rank % 2:
            raise ValueError(
                f"rank={self.rank} is odd: AnisoAlign cuts the dominant subspace into polar blocks "
                "of two dimensions, so rank must be even."
            )
        if self.rank > supported:
            raise ValueError(
                f"rank={self.rank} exceeds what the data supports: the joint covariance of "
                f"{n_source} source and {n_target} target rows in {source_cov.shape[0]} features has "
                f"{supported} usable (even) dimensions. Pass rank <= {supported} or rank='auto'."
            )
        return self.rank

    def _fit_frame(self, eigenvectors, source_cov, target_cov):
        dominant = eigenvectors[:, : self.rank_]
        self.mixing_ = _frame.mixing_rotation(dominant, target_cov, self.target_mean_ - self.source_mean_)
        self.frame_ = dominant @ self.mixing_
        self.complement_ = eigenvectors[:, self.rank_ :]
        self.complement_scale_ = _frame.complement_scale(source_cov, target_cov, self.complement_, self.ridge_)
        self.complement_std_ = _frame.complement_std(target_cov, self.complement_, self.ridge_)

    def _polar(self, A, centre, name):
        coords = np.empty((len(A), self.rank_))
        for rows in block_slices(*A.shape, A.itemsize):
            coords[rows] = (self._prepare(A[rows], name) - centre) @ self.frame_
        return _frame.to_polar(coords)

    def _complement(self, A, name):
        coords = np.empty((len(A), self.complement_.shape[1]))
        for rows in block_slices(*A.shape, A.itemsize):
            coords[rows] = (self._prepare(A[rows], name) - self.source_mean_) @ self.complement_
        return coords

    def _trains_refiner(self):
        active = self.use_prior * self.prior_weight + self.use_phase_constraint * self.phase_weight
        return self.alpha > 0 and (active > 0 or self.fidelity_weight > 0)

    # -------------------------------------------------------------- nets
    def _net_settings(self, seed):
        settings = {"device": self.device_, "random_state": seed, "verbose": self.verbose}
        if self.max_epochs is not None:
            settings["max_epochs"] = self.max_epochs
        if self.batch_size is not None:
            settings["batch_size"] = self.batch_size
        return settings

    def _phase_field(self):
        from ._prior import PhaseField

        return PhaseField(
            self.mean_phase_,
            self.concentration_,
            self.phase_coupling_,
            self.phase_offset_,
            self.phase_graph_,
            self.device_,
        )

    def _fit_prior(self, phase, log_radius, seed):
        from ._prior import PhasePrior

        prior = clone(self.prior) if self.prior is not None else PhasePrior()
        prior.set_params(module__n_blocks=self.n_blocks_, **self._net_settings(seed))
        prior.phase_field_ = self._phase_field()
        prior.noise_range_ = tuple(float(s) for s in self.noise_range)
        X = {
            "phase": phase.astype(np.float32),
            "log_radius": ((log_radius - self.radius_center_) / self.radius_scale_).astype(np.float32),
        }
        prior.fit(X)
        del prior.phase_field_
        prior.module_.requires_grad_(False)
        prior.module_.eval()
        return prior

    def _global_init(self, radius, complement):
        """Sec. 4.4.1 on recentred rows: radial quantile map and V-side rescaling."""
        radius = _frame.radial_quantile_map(
            radius, self.source_radius_quantiles_, self.target_radius_quantiles_
        )
        return radius, complement * self.complement_scale_

    def _features(self, radius, phase, complement):
        """Network inputs of globally initialised rows."""
        return {
            "phase": phase.astype(np.float32),
            "log_radius": ((_frame.log_radius(radius) - self.radius_center_) / self.radius_scale_).astype(
                np.float32
            ),
            "complement": (complement / self.complement_std_).astype(np.float32),
        }

    def _fit_refiner(self, features, seed):
        import torch

        from ._refiner import RefinementObjective, Refiner

        refiner = clone(self.refiner) if self.refiner is not None else Refiner()
        refiner.set_params(
            module__n_blocks=self.n_blocks_,
            module__n_complement=self.complement_.shape[1],
            module__bound_theta=self.alpha * self.bound_theta,
            module__bound_radius=self.alpha * self.bound_radius,
            module__bound_complement=self.alpha * self.bound_complement,
            **self._net_settings(seed),
        )
        refiner.objective_ = RefinementObjective(
            prior=self.prior_.module_ if self.prior_ is not None else None,
            field=self._phase_field(),
            noise_range=tuple(float(s) for s in self.noise_range),
            radius_scale=torch.as_tensor(self.radius_scale_, dtype=torch.float32, device=self.device_),
            prior_weight=self.prior_weight if self.use_prior else 0.0,
            phase_weight=self.phase_weight if self.use_phase_constraint else 0.0,
            fidelity_weight=self.fidelity_weight,
        )
        refiner.fit(features)
        del refiner.objective_
        refiner.module_.eval()
        return refiner

    # ------------------------------------------------------------ transform
    def _basis(self, dtype):
        """``[Q_U R, V]``, the orthonormal basis of the aligned coordinates."""
        return np.hstack([self.frame_, self.complement_]).astype(dtype, copy=False)

    def _aligned_coords(self, block, basis):
        """Coordinates in ``basis`` of the substitutes of prepared source rows.

        Around the target mean, before calibration and normalisation.  The
        projection runs in the dtype of the block and of ``basis``, so float32
        input is projected in float32.
        """
        dtype = block.dtype
        coords = (block - self.source_mean_.astype(dtype)) @ basis
        radius, phase = _frame.to_polar(coords[:, : self.rank_])
        radius, complement = self._global_init(radius, coords[:, self.rank_ :])
        if self.refiner_ is not None:
            phase, radius, complement = self._refine(self._features(radius, phase, complement))
        return np.hstack([_frame.from_polar(radius, phase), complement]).astype(dtype, copy=False)

    def _refine(self, features):
        import torch

        from ._training import single_torch_thread

        net = self.refiner_
        device = next(net.module_.parameters()).device
        with torch.no_grad(), single_torch_thread():
            tensors = {key: torch.as_tensor(value, device=device) for key, value in features.items()}
            scale = torch.as_tensor(self.radius_scale_, dtype=torch.float32, device=device)
            (phase, log_radius, complement), _ = net.refine(
                tensors["phase"], tensors["log_radius"], tensors["complement"], scale
            )
        phase = phase.cpu().numpy().astype(np.float64)
        log_radius = log_radius.cpu().numpy().astype(np.float64) * self.radius_scale_ + self.radius_center_
        radius = np.maximum(np.exp(log_radius) - _frame.RADIUS_EPS, 0.0)
        complement = complement.cpu().numpy().astype(np.float64) * self.complement_std_
        return phase, radius, complement

    def transform(self, X):
        """Turn source rows into substitutes in the target modality.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source-modality rows.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            Substitutes, unit-norm, in the dtype of ``X``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, **_check_params(min_samples=1))
        out = np.empty_like(X)
        basis = self._basis(X.dtype)
        # mu_x and the calibration shift are added together, once per row.
        shift = (self.target_mean_ + self.calibration_shift_).astype(X.dtype)
        with single_threaded_blas():
            for rows in block_slices(*X.shape, X.itemsize):
                moved = self._aligned_coords(self._prepare(X[rows], "X"), basis) @ basis.T + shift
                out[rows] = moved / checked_row_norms(moved, name="The aligned rows")[:, None]
        return out


def _subsample(n_rows, rng):
    """Sorted indices of at most ``_MAX_NET_ROWS`` rows, all of them when fewer."""
    if n_rows <= _MAX_NET_ROWS:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, _MAX_NET_ROWS, replace=False))
