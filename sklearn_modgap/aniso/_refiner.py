"""Stage II of AnisoAlign (Sec. 4.4.2): the prior-guided bounded refinement."""

import torch
from torch import nn

from ._prior import score_matching_loss
from ..nets._training import SeededNet


class RefinerModule(nn.Module):
    """The refiner ``g_eta`` with its bounded updates.

    An MLP on ``[sin theta0; cos theta0; log rho0; v0]`` whose output is
    bounded by ``tanh``: ``Delta theta = alpha_theta tanh(h_theta)``,
    ``Delta log rho = alpha_rho tanh(h_rho)`` and ``Delta v = alpha_v tanh(h_v)``
    (``v`` in units of the target's standard deviation along each
    complement axis, so the V-part stays in ``V``).  The output layer starts
    at zero: an untrained refiner returns the global initialisation.

    Parameters
    ----------
    n_blocks : int
        ``m``.
    n_complement : int
        ``d - r``, the dimension of ``V``.
    hidden_units : int, default=128
    n_layers : int, default=2
    bound_theta, bound_radius, bound_complement : float
        ``alpha_theta``, ``alpha_rho``, ``alpha_v`` (already scaled by the
        aligner's ``alpha``).
    """

    def __init__(
        self,
        n_blocks=1,
        n_complement=0,
        hidden_units=128,
        n_layers=2,
        bound_theta=0.0,
        bound_radius=0.0,
        bound_complement=0.0,
    ):
        super().__init__()
        self.sizes = (n_blocks, n_blocks, n_complement)
        self.bounds = (bound_theta, bound_radius, bound_complement)
        layers, width = [], 3 * n_blocks + n_complement
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden_units), nn.SiLU()]
            width = hidden_units
        head = nn.Linear(width, sum(self.sizes))
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        self.body = nn.Sequential(*layers, head)

    def forward(self, phase, log_radius, complement):
        features = torch.cat([torch.sin(phase), torch.cos(phase), log_radius, complement], dim=1)
        raw = torch.tanh(self.body(features)).split(self.sizes, dim=1)
        return tuple(bound * part for bound, part in zip(self.bounds, raw))


class Refiner(SeededNet):
    """skorch net that trains the bounded refiner of stage II.

    ``fit(X)`` takes the globally initialised source rows,
    ``X = {"phase": theta0, "log_radius": r0, "complement": v0, "radius": rho0}``
    (``r0`` standardised like the prior's input, ``v0`` in target standard
    deviations, ``rho0`` the radii that weigh Eq. 9).  Source rows only: no
    target row enters a batch, so no pairing can be used.  The step refines
    the batch (``forward_batch``) and ``get_loss`` is
    ``prior_weight * L^II + phase_weight * L^Phi + fidelity_weight * L^fid``
    of its ``objective`` (a :class:`RefinementObjective`), where ``L^II``
    (Eq. 8) is the frozen prior's denoising score-matching loss evaluated on
    the refined phases (low where the refined phases look like target phases
    to the prior), ``L^Phi`` (Eq. 9) the radius-weighted deformation of each
    row's relative phases on the graph ``E`` (or, with
    ``phase_loss="moments"``, the mismatch of the batch's trigonometric
    moments to the target's), and ``L^fid`` an optional mean squared update
    relative to its bound.  :class:`AnisoAlign` passes its objective; the
    net can also be fitted on its own.

    Parameters
    ----------
    module : torch module class, default=RefinerModule
        The network trained.
    objective : RefinementObjective or None, default=None
        What the loss needs besides the batch; required by ``fit``.
    **kwargs
        Any parameter of :class:`~sklearn_modgap.nets.SeededNet` (seeding,
        batching, early stopping, device) or of ``skorch.NeuralNet``.
    """

    def __init__(self, module=RefinerModule, *, objective=None, **kwargs):
        super().__init__(module, **kwargs)
        self.objective = objective

    def refine(self, phase, log_radius, complement, radius_scale):
        """Refined ``(theta, r, v)`` of a batch; ``r`` standardised like its input."""
        d_phase, d_log_radius, d_complement = self.module_(phase, log_radius, complement)
        return (
            phase + d_phase,
            log_radius + d_log_radius / radius_scale,
            complement + d_complement,
        ), (d_phase, d_log_radius, d_complement)

    def forward_batch(self, X, training):
        if self.objective is None:
            raise ValueError("Refiner needs objective, a RefinementObjective, to be fitted.")
        return self.refine(X["phase"], X["log_radius"], X["complement"], self.objective.radius_scale)

    def get_loss(self, y_pred, y_true=None, X=None, training=False):
        objective = self.objective
        (phase, log_radius, _), updates = y_pred
        loss = torch.zeros((), device=phase.device)
        if objective.prior_weight > 0:
            uniform = self.rand((phase.shape[0], 1), training)
            noise = self.randn(phase.shape, training)
            # Eq. 8: the frozen prior judges the refined phases.
            loss = loss + objective.prior_weight * score_matching_loss(
                objective.prior, objective.field, phase, log_radius, uniform, noise, *objective.noise_range
            )
        if objective.phase_weight > 0:
            if objective.phase_loss == "relative":
                # Eq. 9: each row keeps its own relative phases on the graph.
                phase_loss = objective.field.relative_phase_penalty(phase, X["phase"], X["radius"])
            else:
                phase_loss = objective.field.moment_mismatch(phase)
            loss = loss + objective.phase_weight * phase_loss
        if objective.fidelity_weight > 0:
            fidelity = sum(
                (update / bound).pow(2).mean()
                for update, bound in zip(updates, self.module_.bounds)
                if bound > 0 and update.shape[1] > 0
            )
            loss = loss + objective.fidelity_weight * fidelity
        return loss


class RefinementObjective:
    """What the refiner's loss needs besides its batch (``Refiner(objective=...)``).

    Parameters
    ----------
    prior : torch module or None
        The frozen phase score network (needed when ``prior_weight > 0``).
    field : PhaseField
        The phase field of the target.
    noise_range : tuple of float
        ``(sigma_min, sigma_max)`` of the prior's noise schedule.
    radius_scale : float or tensor
        Scale of the standardised log radii.
    prior_weight, phase_weight, fidelity_weight : float
        Weights of ``L^II``, ``L^Phi`` and ``L^fid``.
    phase_loss : {"relative", "moments"}
        The form of ``L^Phi``.
    """

    def __init__(
        self, prior, field, noise_range, radius_scale, prior_weight, phase_weight, fidelity_weight, phase_loss
    ):
        self.prior = prior
        self.phase_loss = phase_loss
        self.field = field
        self.noise_range = noise_range
        self.radius_scale = radius_scale
        self.prior_weight = prior_weight
        self.phase_weight = phase_weight
        self.fidelity_weight = fidelity_weight
