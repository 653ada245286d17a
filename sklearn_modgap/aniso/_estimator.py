"""AnisoAlign: anisotropic modality alignment (Yu et al., 2026, Sec. 4)."""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from .._base import BaseAligner
from .._maps import BlockMap
from .._validation import block_slices, checked_row_norms, single_threaded_blas
from . import _frame
from ._circular import circular_statistics, energy_share, nucleus_graph, top_p_graph

# The automatic rank, capped by what the data supports; chosen by the rank
# sweep on the four real sets (see docs/anisoalign.md).
_AUTO_RANK = 16

# The choices of the first implementation, each a parameter of its own; with
# all of them AnisoAlign computes what it computed before the published
# method became the default (docs/anisoalign.md measures each one).
EARLIER_CHOICES = {
    "mixing": "target_axes",
    "center_polar": True,
    "block_weights": "resultant",
    "graph": "nucleus",
    "drift_step": "saturating",
    "phase_loss": "moments",
    "fidelity_weight": 0.1,
    "complement_scaling": "shrunk",
    "calibration": "unnormalized",
    "max_train_rows": 16_384,
}


class AnisoAlign(BaseAligner):
    """Anisotropic modality alignment: a target phase prior and a bounded refinement.

    With default parameters this is the method of Sec. 4 of the paper [1]_:
    source rows ``y`` become substitutes ``z`` in four steps, all learned from
    unpaired samples of the two modalities.

    1. **Fixed frame** (Sec. 4.1-4.2). ``Q_U``, the top-``rank`` eigenvectors
       of ``Sigma_t + Sigma_i + lambda I`` (source and target covariances),
       mixed by a fixed random orthogonal ``R``; ``V`` is spanned by the
       remaining eigenvectors.  Coordinates in ``U`` are cut into
       ``m = rank / 2`` planes with polar coordinates ``(rho_k, theta_k)``,
       taken of the rows themselves (Eq. 2): of ``x`` for target rows and of
       ``y_bar = y - mu_t + mu_i`` for source rows.
    2. **Stage I, target periodic prior** (Sec. 4.3), from target rows only:
       circular means ``psi_bar_k``, energy shares
       ``alpha_k = E[rho_k^2] / (sum_u E[rho_u^2] + eps)`` (Eq. 3), couplings
       ``M_kl = E[exp(i (theta_k - theta_l))]`` with ``A_kl = |M_kl|`` and
       ``eta_kl = arg M_kl``, the graph ``E`` of each block's ``top_p``
       strongest couplings, the potential ``Psi`` and its drifted centres
       ``mu_phi = wrap(phi - tau grad Psi(phi))`` (Eq. 4-5), and a phase score
       network trained by denoising score matching on
       ``wrap(mu_phi + sqrt(2) sigma_t eps)`` with ``lambda_t = 2 sigma_t^2``
       (Eq. 6).
    3. **Stage II, global initialisation** (Sec. 4.4.1): the phases of
       ``y_bar``, the radial quantile map ``F_x^-1(F_y(rho_k))`` per block and
       ``v^(0) = mu_i,V + D_V (y_V - mu_t,V)`` with
       ``D_V = Diag(sigma_V^x / (sigma_V^y + eps))``.
    4. **Stage II, bounded refinement** (Sec. 4.4.2): a refiner network moves
       each phase by at most ``alpha * bound_theta``, each log-radius by at
       most ``alpha * bound_radius`` and each V coordinate by at most
       ``alpha * bound_complement`` target standard deviations, trained on
       source rows only with ``L^II + lambda L^Phi``: the frozen prior's
       score-matching loss (Eq. 8) and the radius-weighted deformation of
       each row's relative phases on ``E`` (Eq. 9).  Then
       ``e' = Norm(Q_U c(rho, theta) + v)``, ``mu_hat = E[e']`` over the fit
       source rows, and ``e = Norm(e' - mu_hat + mu_i)``.

    Every choice where the package departs from the paper, or where the
    paper leaves a choice open, is a parameter; ``EARLIER_CHOICES`` in this
    module lists the settings of the package's first implementation.

    Parameters
    ----------
    rank : "auto" or int, default="auto"
        Dimension ``r`` of the dominant subspace ``U``; must be even (blocks
        of two).  ``"auto"`` is 16, capped by what the data supports.  An
        explicit rank the data cannot support is an error.
    alpha : float in [0, 10], default=1.0
        Scales the three bounds of the refinement: ``0`` is the global
        initialisation alone (no network is trained).
    bound_theta : float, default=0.3
        ``alpha_theta``, the largest phase update in radians (at ``alpha=1``).
    bound_radius : float, default=0.1
        ``alpha_rho``, the largest log-radius update.
    bound_complement : float, default=0.25
        ``alpha_v``, the largest V-coordinate update, in target standard
        deviations along that coordinate.
    lambda_reg : float, default=1.0
        Ridge ``lambda`` of the joint matrix, in units of the mean variance
        per direction ``(tr Sigma_t + tr Sigma_i) / (2 d)``.  With
        ``complement_scaling="shrunk"`` it also regularises the V-side scale.
    mixing : {"random", "target_axes"}, default="random"
        ``R`` of Sec. 4.2: a fixed Haar-random orthogonal matrix drawn from
        ``random_state`` (the paper), or the deterministic rotation onto the
        target's principal axes inside ``U`` (signs fixed by the centroid
        gap), which makes the blocks independent of the eigenvector basis.
    center_polar : bool, default=False
        Take polar coordinates of rows centred on their own modality's mean
        (``x - mu_i``, ``y - mu_t``) instead of the paper's uncentred ``x`` and
        ``y_bar``.  Centred target phases are close to uniform, which empties
        the phase prior of information.
    block_weights : {"energy", "resultant"}, default="energy"
        ``alpha_k`` in ``Psi``: the energy share of Eq. 3, or the mean
        resultant length ``|E[exp(i theta_k)]|``.
    graph : {"top_p", "nucleus"}, default="top_p"
        The graph ``E``: the union of each block's ``top_p`` strongest
        couplings with edge weights ``A_kl`` (the paper), or a softmax nucleus
        per block (``softmax(A_kl / nucleus_temperature)``, the fewest
        neighbours whose weights reach ``nucleus_mass``) with edge weights
        ``w_kl A_kl``.
    top_p : int, default=2
        ``p``, the neighbours each block picks with ``graph="top_p"``.
    nucleus_mass : float in (0, 1], default=0.5
        Cumulative softmax weight each block keeps with ``graph="nucleus"``.
    nucleus_temperature : float, default=0.1
        Softmax temperature of ``graph="nucleus"``.
    drift_step : float or "saturating", default=0.5
        ``tau``, the fixed step of the drifted centre
        ``wrap(phi - tau grad Psi(phi))`` (Eq. 5), or ``"saturating"`` for a
        step ``1 - exp(-sigma_t^2 / 2)`` that grows with the noise level.
    noise_range : tuple of two floats, default=(0.05, 1.5)
        ``(sigma_min, sigma_max)`` of the geometric noise schedule
        ``sigma_t = sigma_min (sigma_max / sigma_min)^t``, ``t ~ U(0, 1)``;
        the perturbation's standard deviation is ``sqrt(2) sigma_t``.
    phase_loss : {"relative", "moments"}, default="relative"
        ``L^Phi``: Eq. 9, the deformation of each row's relative phases on
        ``E`` (it keeps rows' own phase structure), or ``"moments"``, the
        squared distance of each batch's trigonometric moments to the
        target's (it pulls the batch's phases towards the target's).
    prior_weight : float, default=1.0
        Weight of ``L^II``.
    phase_weight : float, default=1.0
        ``lambda``, the weight of ``L^Phi``.
    fidelity_weight : float, default=0.0
        Weight of an extra fidelity penalty (mean squared update over its
        bound); the paper has none.
    complement_scaling : {"std_ratio", "shrunk"}, default="std_ratio"
        The V-side scale: ``D_V = sigma_V^x / (sigma_V^y + eps)`` (the paper),
        or ``sqrt((v_x,j + lambda g) / (v_y,j + lambda))`` with
        ``g = tr Sigma_i / tr Sigma_t``, which shrinks weakly populated
        directions towards the isotropic trace ratio.
    calibration : {"normalized", "unnormalized"}, default="normalized"
        ``"normalized"``: ``e = Norm(Norm(e_raw) - mu_hat + mu_i)`` with
        ``mu_hat`` the mean of the normalised rebuilt fit rows (the paper);
        ``"unnormalized"``: ``e = Norm(e_raw - mu_hat + mu_i)`` with
        ``mu_hat`` the mean of the rebuilt rows before normalisation.
    max_train_rows : int or None, default=None
        Train each net on a seeded subsample of at most this many rows (the
        statistics always use every row); ``None`` trains on every row, as
        the paper does.
    partial_fit_sample : int or None, default=100_000
        Rows of each modality :meth:`partial_fit` keeps, a seeded uniform
        sample chosen by position in the stream, for the steps that need rows
        once the covariances are final: the polar statistics, the radius
        quantiles, the nets (which then train on at most ``max_train_rows``
        of them) and ``mu_hat``.  The means and covariances use every row.
        ``None`` keeps every row.  :meth:`fit` uses every row.
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
        Seeds ``R`` and both nets (initialisation, held-out slice, noise).
        Fix it for reproducible results.
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
        ``mu_t`` (source) and ``mu_i`` (target).
    polar_origin_ : ndarray of shape (n_features,)
        The point polar coordinates are taken around: zero, or ``mu_i`` with
        ``center_polar=True``.
    frame_ : ndarray of shape (n_features, ``rank_``)
        ``Q_U R``: block ``k`` is spanned by columns ``2k`` and ``2k + 1``.
    mixing_ : ndarray of shape (``rank_``, ``rank_``)
        ``R``.
    complement_ : ndarray of shape (n_features, n_features - ``rank_``)
        Orthonormal basis of ``V``.
    complement_scale_ : ndarray of shape (n_features - ``rank_``,)
        V-side diagonal rescaling ``D_V``.
    complement_std_ : ndarray of shape (n_features - ``rank_``,)
        Target standard deviation along each complement axis (the refiner's
        unit of V updates).
    source_radius_quantiles_, target_radius_quantiles_ : ndarray of shape (257, ``n_blocks_``)
        Per-block radius quantiles (levels ``0, 1/256, ..., 1``) of the fit rows.
    radius_center_, radius_scale_ : ndarray of shape (``n_blocks_``,)
        Mean and standard deviation of the target's ``log(rho + eps)``, the
        standardisation of the networks' radial input.
    mean_phase_ : ndarray of shape (``n_blocks_``,)
        ``psi_bar_k`` of the target.
    mean_resultant_ : ndarray of shape (``n_blocks_``,)
        ``|E[exp(i theta_k)]|`` of the target.
    energy_share_ : ndarray of shape (``n_blocks_``,)
        ``alpha_k`` of Eq. 3.
    phase_coupling_, phase_offset_ : ndarray of shape (``n_blocks_``, ``n_blocks_``)
        ``A_kl = |M_kl|`` and ``eta_kl = arg M_kl`` of the target.
    phase_graph_ : ndarray of shape (``n_blocks_``, ``n_blocks_``)
        Edge strengths of ``grad Psi`` on the graph ``E`` (zero off the graph).
    prior_ : PhasePrior or None
        The fitted stage I net (``None`` when not used).
    refiner_ : Refiner or None
        The fitted stage II net (``None`` when ``alpha=0`` or no loss is on).
    calibration_shift_ : ndarray of shape (n_features,)
        ``mu_i - mu_hat``, the final centroid calibration.
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
        "alpha": [Interval(Real, 0, 10, closed="both")],
        "bound_theta": [Interval(Real, 0, math.pi, closed="both")],
        "bound_radius": [Interval(Real, 0, 5, closed="both")],
        "bound_complement": [Interval(Real, 0, 100, closed="both")],
        "lambda_reg": [Interval(Real, 0, None, closed="left")],
        "mixing": [StrOptions({"random", "target_axes"})],
        "center_polar": ["boolean"],
        "block_weights": [StrOptions({"energy", "resultant"})],
        "graph": [StrOptions({"top_p", "nucleus"})],
        "top_p": [Interval(Integral, 1, None, closed="left")],
        "nucleus_mass": [Interval(Real, 0, 1, closed="right")],
        "nucleus_temperature": [Interval(Real, 0, None, closed="neither")],
        "drift_step": [StrOptions({"saturating"}), Interval(Real, 0, None, closed="left")],
        "noise_range": [tuple],
        "phase_loss": [StrOptions({"relative", "moments"})],
        "prior_weight": [Interval(Real, 0, None, closed="left")],
        "phase_weight": [Interval(Real, 0, None, closed="left")],
        "fidelity_weight": [Interval(Real, 0, None, closed="left")],
        "complement_scaling": [StrOptions({"std_ratio", "shrunk"})],
        "calibration": [StrOptions({"normalized", "unnormalized"})],
        "max_train_rows": [None, Interval(Integral, 2, None, closed="left")],
        "partial_fit_sample": [None, Interval(Integral, 2, None, closed="left")],
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
        lambda_reg=1.0,
        mixing="random",
        center_polar=False,
        block_weights="energy",
        graph="top_p",
        top_p=2,
        nucleus_mass=0.5,
        nucleus_temperature=0.1,
        drift_step=0.5,
        noise_range=(0.05, 1.5),
        phase_loss="relative",
        prior_weight=1.0,
        phase_weight=1.0,
        fidelity_weight=0.0,
        complement_scaling="std_ratio",
        calibration="normalized",
        max_train_rows=None,
        partial_fit_sample=100_000,
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
        self.lambda_reg = lambda_reg
        self.mixing = mixing
        self.center_polar = center_polar
        self.block_weights = block_weights
        self.graph = graph
        self.top_p = top_p
        self.nucleus_mass = nucleus_mass
        self.nucleus_temperature = nucleus_temperature
        self.drift_step = drift_step
        self.noise_range = noise_range
        self.phase_loss = phase_loss
        self.prior_weight = prior_weight
        self.phase_weight = phase_weight
        self.fidelity_weight = fidelity_weight
        self.complement_scaling = complement_scaling
        self.calibration = calibration
        self.max_train_rows = max_train_rows
        self.partial_fit_sample = partial_fit_sample
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
    # The means and covariances stream; the rest needs rows of both sides.
    _stream_orders = (2, 2)
    _stream_sampled = ("X", "y")

    def _fit(self, source, target):
        self._check_inputs(source.shape[1])
        # The passes over the rows are block products and small eigenproblems:
        # multi-threaded BLAS gains little on them, and its threads'
        # synchronisation slows them badly when other processes hold the cores.
        with single_threaded_blas():
            source_stats = self._statistics(source, "X", order=2)
            target_stats = self._statistics(target, "y", order=2)
            self._fit_statistics(source_stats, target_stats, source, target)

    def _fit_stream(self, source_stats, target_stats, source_rows, target_rows):
        self._check_inputs(source_stats.n_features)
        with single_threaded_blas():
            self._fit_statistics(source_stats, target_stats, source_rows, target_rows)

    def _check_inputs(self, n_features):
        self._check_noise_range()
        if n_features < 2:
            raise ValueError(
                f"AnisoAlign needs at least 2 features to form a polar block; got "
                f"{n_features} feature(s)."
            )

    def _fit_statistics(self, source_stats, target_stats, source, target):
        rng = check_random_state(self.random_state)
        self.source_mean_, source_cov = source_stats.mean, source_stats.covariance
        self.target_mean_, target_cov = target_stats.mean, target_stats.covariance
        # lambda is relative to the mean variance per direction, so that one
        # default suits any embedding dimension and scale.
        self.ridge_ = self.lambda_reg * (np.trace(source_cov) + np.trace(target_cov)) / (2 * source_cov.shape[0])
        _, eigenvectors = _frame.joint_eigenbasis(source_cov, target_cov, self.ridge_)
        self.rank_ = self._resolve_rank(source_cov, target_cov, source_stats.count, target_stats.count)
        self.n_blocks_ = self.rank_ // 2
        self._fit_frame(eigenvectors, source_cov, target_cov, rng)

        # Stage I statistics, from target rows only.
        target_radius, target_phase = self._target_polar(target)
        target_log_radius = _frame.log_radius(target_radius)
        self.radius_center_ = target_log_radius.mean(axis=0)
        self.radius_scale_ = np.maximum(target_log_radius.std(axis=0), 1e-6)
        self.mean_phase_, self.mean_resultant_, self.phase_coupling_, self.phase_offset_ = (
            circular_statistics(target_phase)
        )
        self.energy_share_ = energy_share(target_radius)
        if self.graph == "top_p":
            self.phase_graph_ = self.phase_coupling_ * top_p_graph(self.phase_coupling_, self.top_p)
        else:
            weights = nucleus_graph(self.phase_coupling_, self.nucleus_mass, self.nucleus_temperature)
            self.phase_graph_ = weights * self.phase_coupling_

        # Stage II global initialisation statistics.
        source_coords = self._source_coords(source)
        source_radius, source_phase = _frame.to_polar(source_coords[:, : self.rank_])
        self.target_radius_quantiles_ = _frame.radius_quantiles(target_radius)
        self.source_radius_quantiles_ = _frame.radius_quantiles(source_radius)

        self.prior_ = None
        self.refiner_ = None
        self.device_ = "cpu"
        if self._trains_refiner():
            from ..nets import resolve_device

            self.device_ = resolve_device(self.device)
            prior_seed, refiner_seed = rng.randint(2**31 - 1, size=2)
            if self.use_prior:
                rows = self._train_rows(len(target), rng)
                self.prior_ = self._fit_prior(target_phase[rows], target_log_radius[rows], int(prior_seed))
            rows = self._train_rows(len(source), rng)
            radius, phase, complement = self._global_init(source_coords[rows])
            self.refiner_ = self._fit_refiner(self._features(radius, phase, complement), int(refiner_seed))

        self._fit_calibration(source)

    def _fit_calibration(self, source):
        """``mu_hat``, the mean of the rebuilt fit source rows (Sec. 4.4.2, last step)."""
        total = np.zeros(source.shape[1])
        basis = self._basis(source.dtype)
        for rows in block_slices(*source.shape, source.itemsize):
            rebuilt = self._rebuild(self._prepare(source[rows], "X"), basis)
            total += rebuilt.sum(axis=0, dtype=np.float64)
        self.calibration_shift_ = self.target_mean_ - total / len(source)

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

    def _fit_frame(self, eigenvectors, source_cov, target_cov, rng):
        dominant = eigenvectors[:, : self.rank_]
        if self.mixing == "random":
            self.mixing_ = _frame.random_rotation(self.rank_, rng)
        else:
            self.mixing_ = _frame.target_axes_rotation(
                dominant, target_cov, self.target_mean_ - self.source_mean_
            )
        self.frame_ = dominant @ self.mixing_
        self.complement_ = eigenvectors[:, self.rank_ :]
        if self.complement_scaling == "std_ratio":
            self.complement_scale_ = _frame.complement_std_ratio(source_cov, target_cov, self.complement_)
        else:
            self.complement_scale_ = _frame.complement_shrunk_scale(
                source_cov, target_cov, self.complement_, self.ridge_
            )
        self.complement_std_ = _frame.complement_std(target_cov, self.complement_, self.ridge_)
        self.polar_origin_ = self.target_mean_.copy() if self.center_polar else np.zeros_like(self.target_mean_)

    def _target_polar(self, target):
        """Polar coordinates of target rows around the polar origin: ``x`` itself (Eq. 2)."""
        coords = np.empty((len(target), self.rank_))
        for rows in block_slices(*target.shape, target.itemsize):
            coords[rows] = (self._prepare(target[rows], "y") - self.polar_origin_) @ self.frame_
        return _frame.to_polar(coords)

    def _source_coords(self, source, basis=None):
        """Coordinates of ``y_bar - origin``, ``y_bar = y - mu_t + mu_i``, in ``[Q_U R, V]``.

        The V-part is returned relative to ``mu_i``: ``y_V - mu_t,V``.
        """
        basis = self._basis(np.float64) if basis is None else basis
        coords = np.empty((len(source), basis.shape[1]), dtype=basis.dtype)
        for rows in block_slices(*source.shape, source.itemsize):
            coords[rows] = self._coords_of_prepared(self._prepare(source[rows], "X"), basis)
        return coords

    def _coords_of_prepared(self, block, basis):
        dtype = block.dtype
        coords = (block - self.source_mean_.astype(dtype)) @ basis
        coords[:, : self.rank_] += ((self.target_mean_ - self.polar_origin_) @ self.frame_).astype(dtype)
        return coords

    def _train_rows(self, n_rows, rng):
        """Sorted indices of the rows a net trains on: all, or a seeded subsample."""
        if self.max_train_rows is None or n_rows <= self.max_train_rows:
            return np.arange(n_rows)
        return np.sort(rng.choice(n_rows, self.max_train_rows, replace=False))

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
            self.energy_share_ if self.block_weights == "energy" else self.mean_resultant_,
            self.mean_resultant_,
            self.phase_coupling_,
            self.phase_offset_,
            self.phase_graph_,
            None if self.drift_step == "saturating" else float(self.drift_step),
            self.device_,
        )

    def _fit_prior(self, phase, log_radius, seed):
        from ._prior import PhasePrior

        prior = clone(self.prior) if self.prior is not None else PhasePrior()
        prior.set_params(
            module__n_blocks=self.n_blocks_,
            phase_field=self._phase_field(),
            noise_range=tuple(float(s) for s in self.noise_range),
            **self._net_settings(seed),
        )
        X = {
            "phase": phase.astype(np.float32),
            "log_radius": ((log_radius - self.radius_center_) / self.radius_scale_).astype(np.float32),
        }
        prior.fit(X)
        _drop_training_inputs(prior, "phase_field")
        prior.module_.requires_grad_(False)
        prior.module_.eval()
        return prior

    def _global_init(self, coords):
        """Sec. 4.4.1 on ``y_bar`` coordinates: radial quantile map, phases kept, V-side scale.

        Returns the radii ``rho^(0)``, phases ``theta^(0)`` and the V-part
        ``D_V (y_V - mu_t,V)`` (relative to ``mu_i,V``).
        """
        radius, phase = _frame.to_polar(coords[:, : self.rank_])
        radius = _frame.radial_quantile_map(
            radius, self.source_radius_quantiles_, self.target_radius_quantiles_
        )
        return radius, phase, coords[:, self.rank_ :] * self.complement_scale_.astype(coords.dtype)

    def _features(self, radius, phase, complement):
        """Network inputs of globally initialised rows."""
        return {
            "phase": phase.astype(np.float32),
            "log_radius": ((_frame.log_radius(radius) - self.radius_center_) / self.radius_scale_).astype(
                np.float32
            ),
            "complement": (complement / self.complement_std_).astype(np.float32),
            "radius": radius.astype(np.float32),
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
            objective=RefinementObjective(
                prior=self.prior_.module_ if self.prior_ is not None else None,
                field=self._phase_field(),
                noise_range=tuple(float(s) for s in self.noise_range),
                radius_scale=torch.as_tensor(self.radius_scale_, dtype=torch.float32, device=self.device_),
                prior_weight=self.prior_weight if self.use_prior else 0.0,
                phase_weight=self.phase_weight if self.use_phase_constraint else 0.0,
                fidelity_weight=self.fidelity_weight,
                phase_loss=self.phase_loss,
            ),
            **self._net_settings(seed),
        )
        refiner.fit(features)
        _drop_training_inputs(refiner, "objective")
        refiner.module_.eval()
        return refiner

    # ------------------------------------------------------------ transform
    def _basis(self, dtype):
        """``[Q_U R, V]``, the orthonormal basis of the aligned coordinates."""
        return np.hstack([self.frame_, self.complement_]).astype(dtype, copy=False)

    def _rebuild(self, block, basis):
        """``Q_U c(rho, theta) + v`` of prepared source rows, before calibration.

        Normalised with ``calibration="normalized"`` (``e'`` of Sec. 4.4.2).
        The projections run in the dtype of the block and of ``basis``, so
        float32 input is projected in float32.
        """
        dtype = block.dtype
        radius, phase, complement = self._global_init(self._coords_of_prepared(block, basis))
        if self.refiner_ is not None:
            phase, radius, complement = self._refine(self._features(radius, phase, complement))
        offset = ((self.target_mean_ - self.polar_origin_) @ self.complement_).astype(dtype)
        coords = np.hstack([_frame.from_polar(radius, phase), complement + offset]).astype(dtype, copy=False)
        rebuilt = coords @ basis.T + self.polar_origin_.astype(dtype)
        if self.calibration == "normalized":
            rebuilt /= checked_row_norms(rebuilt, name="The rebuilt rows")[:, None]
        return rebuilt

    def _refine(self, features):
        import torch

        from ..nets._training import single_torch_thread

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

    def _source_map(self):
        # Rebuild each prepared row from its refined polar and V coordinates,
        # then the calibration shift; the base normalises.  ``alpha`` scales
        # the refinement's bounds, so the map is not blended with the identity.
        def align(block):
            return self._rebuild(block, self._basis(block.dtype)) + self.calibration_shift_.astype(block.dtype)

        # The refiner sets torch's process-wide thread count around each block.
        return BlockMap(align, in_order=True)


def _drop_training_inputs(net, name):
    """Forget a fitted net's loss inputs: tensors on the fit device that transform never reads.

    A pickle of the aligner then holds only the net's module, which skorch
    maps to the CPU on loading; the net is refitted with the inputs given again.
    """
    setattr(net, name, None)
