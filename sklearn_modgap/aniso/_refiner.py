"""Stage II of AnisoAlign (Sec. 4.4.2): the prior-guided bounded refinement."""

import torch
from skorch.dataset import unpack_data
from torch import nn

from ._prior import score_matching_loss
from ._training import SeededNet


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
    deviations, ``rho0`` the radii that weigh Eq. 9).  Source rows only: no target row enters a batch, so no
    pairing can be used.  :class:`AnisoAlign` sets ``objective_`` (the frozen
    prior, the phase field and the loss weights) before fitting.  The loss is
    ``prior_weight * L^II + phase_weight * L^Phi + fidelity_weight * L^fid``
    where ``L^II`` (Eq. 8) is the frozen prior's denoising score-matching
    loss evaluated on the refined phases (low where the refined phases look
    like target phases to the prior), ``L^Phi`` (Eq. 9) the radius-weighted
    deformation of each row's relative phases on the graph ``E`` (or, with
    ``phase_loss="moments"``, the
    mismatch of the batch's trigonometric moments to the target's), and
    ``L^fid`` an optional mean squared update relative to its bound.

    Parameters
    ----------
    module : torch module class, default=RefinerModule
        The network trained.
    criterion : torch loss class, default=torch.nn.MSELoss
        Required by skorch; the loss actually minimised is ``step_loss``.
    optimizer : torch optimizer class, default=torch.optim.Adam
        The optimizer.
    lr : float, default=1e-3
        Learning rate.
    max_epochs : int, default=20
        Largest number of epochs.
    batch_size : int, default=256
        Rows per batch (smaller on small data, see ``min_batches``).
    validation_fraction : float, default=0.1
        Share of the fit rows held out to judge early stopping; 0 disables it.
    patience : int, default=5
        Epochs without improvement of the held-out loss before stopping.
    min_batches : int, default=16
        Least number of batches in a training epoch.
    random_state : int, default=0
        Seed of the whole fit (initialisation, shuffling, noise, held-out slice).
    verbose : int, default=0
        skorch verbosity.
    **kwargs
        Any other ``skorch.NeuralNet`` parameter, e.g. ``module__hidden_units``.
    """

    def __init__(
        self,
        module=RefinerModule,
        *,
        criterion=nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=20,
        batch_size=256,
        validation_fraction=0.1,
        patience=5,
        min_batches=16,
        random_state=0,
        verbose=0,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            validation_fraction=validation_fraction,
            patience=patience,
            min_batches=min_batches,
            random_state=random_state,
            verbose=verbose,
            **kwargs,
        )

    def refine(self, phase, log_radius, complement, radius_scale):
        """Refined ``(theta, r, v)`` of a batch; ``r`` standardised like its input."""
        d_phase, d_log_radius, d_complement = self.module_(phase, log_radius, complement)
        return (
            phase + d_phase,
            log_radius + d_log_radius / radius_scale,
            complement + d_complement,
        ), (d_phase, d_log_radius, d_complement)

    def step_loss(self, batch, training):
        objective = self.objective_
        Xi = self.to_device(unpack_data(batch)[0])
        (phase, log_radius, _), updates = self.refine(
            Xi["phase"], Xi["log_radius"], Xi["complement"], objective.radius_scale
        )
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
                phase_loss = objective.field.relative_phase_penalty(phase, Xi["phase"], Xi["radius"])
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
        return loss, phase.detach()


class RefinementObjective:
    """What the refiner's loss needs besides its batch (set as ``Refiner.objective_``)."""

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
