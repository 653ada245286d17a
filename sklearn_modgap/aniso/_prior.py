"""Stage I of AnisoAlign (Sec. 4.3): the target periodic prior.

The phases of the target rows are perturbed by a wrapped Gaussian around
drifted centres, and a phase score network ``s_phi(phi_tilde, t, log rho)``
learns the score of that perturbation by denoising score matching (Eq. 6).
"""

import math

import numpy as np
import torch
from torch import nn

from ..nets._training import SeededNet

# Images 2*pi*n of the wrapped Gaussian kept in its score: with noise levels
# up to pi the omitted terms weigh less than exp(-12).
_WRAPS = 3


def wrap(phase):
    """Phases wrapped into ``[-pi, pi)``."""
    return torch.remainder(phase + math.pi, 2 * math.pi) - math.pi


class PhaseField:
    """The circular statistics of stage I as tensors, and what is built from them.

    Parameters
    ----------
    mean_phase : ndarray of shape (m,)
        ``psi_bar_k``.
    block_weight : ndarray of shape (m,)
        The weight ``alpha_k`` of each block's pull towards its mean phase in
        ``Psi`` (Eq. 3: the energy share; or the mean resultant length).
    resultant : ndarray of shape (m,)
        Mean resultant length ``|E[exp(i theta_k)]|`` (for the moment loss).
    coupling, offset : ndarray of shape (m, m)
        ``A_kl = |M_kl|`` and ``eta_kl = arg M_kl``.
    strength : ndarray of shape (m, m)
        Weight of edge ``(k, l)`` in the gradient of ``Psi``: ``A_kl`` on the
        graph ``E`` (or the nucleus weights times ``A_kl``), zero elsewhere.
    drift_step : float or None
        ``tau`` of the drifted centre ``wrap(phi - tau grad Psi(phi))``;
        ``None`` for the saturating step ``1 - exp(-sigma_t^2 / 2)``.
    device : str
    """

    def __init__(self, mean_phase, block_weight, resultant, coupling, offset, strength, drift_step, device):
        def tensor(a):
            return torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)

        self.mean_phase = tensor(mean_phase)
        self.block_weight = tensor(block_weight)
        self.strength = tensor(strength)
        self.offset = tensor(offset)
        self.drift_step = drift_step
        self.edges = tensor(np.asarray(strength) > 0)
        resultant = tensor(resultant)
        self.first_moment = torch.stack(
            [resultant * torch.cos(self.mean_phase), resultant * torch.sin(self.mean_phase)]
        )
        # E[exp(i (theta_l - theta_k))] = conj(M_kl) on the edges.
        pair = tensor(coupling) * self.edges
        self.pair_moment = torch.stack([pair * torch.cos(self.offset), -pair * torch.sin(self.offset)])

    def potential_gradient(self, phase):
        """Eq. 4: ``grad Psi`` of ``Psi(phi) = -sum_k alpha_k cos(phi_k - psi_bar_k)
        - sum_(k,l) A_kl cos(phi_k - phi_l - eta_kl)``.

        ``d Psi / d phi_k = alpha_k sin(phi_k - psi_bar_k)
        + sum_l A_kl sin(phi_k - phi_l - eta_kl)``: descending it pulls each
        block towards its mean phase, as strongly as the block weighs, and
        towards the phase offsets the target keeps with its graph neighbours.
        """
        own = self.block_weight * torch.sin(phase - self.mean_phase)
        relative = phase[:, :, None] - phase[:, None, :] - self.offset
        return own + (self.strength * torch.sin(relative)).sum(dim=-1)

    def drift(self, phase):
        """The drift field ``b(phi) = -grad Psi(phi)``."""
        return -self.potential_gradient(phase)

    def centre(self, phase, noise_level):
        """Eq. 5: the drifted centre ``mu_phi = wrap(phi - tau grad Psi(phi))``.

        With ``drift_step=None`` the step is ``1 - exp(-sigma_t^2 / 2)``
        instead of ``tau``: it grows with the noise level like a Langevin step
        of size ``sigma_t^2 / 2`` but saturates at one.
        """
        step = self.drift_step if self.drift_step is not None else 1.0 - torch.exp(-noise_level**2 / 2)
        return wrap(phase - step * self.potential_gradient(phase))

    def moment_mismatch(self, phase):
        """Squared distance of a batch's trigonometric moments to the target's.

        Per block the first moment ``E[exp(i theta_k)]``, and on each edge of
        the graph the relative moment ``E[exp(i (theta_l - theta_k))]``.  An
        alternative to Eq. 9 that pulls the batch's phase distribution towards
        the target's instead of keeping each row's own relative phases.
        """
        first = torch.stack([torch.cos(phase).mean(0), torch.sin(phase).mean(0)])
        own = ((first - self.first_moment) ** 2).sum(0).mean()
        relative = phase[:, None, :] - phase[:, :, None]
        pair = torch.stack([torch.cos(relative).mean(0), torch.sin(relative).mean(0)])
        n_edges = self.edges.sum().clamp(min=1)
        coupled = ((((pair - self.pair_moment) ** 2).sum(0)) * self.edges).sum() / n_edges
        return own + coupled

    def relative_phase_penalty(self, phase, initial_phase, initial_radius):
        """Eq. 9 (``L^Phi``): deformation of each row's relative phases on the graph.

        ``1/|E| sum_(k,l) w_kl [1 - cos((theta_k - theta_l) - (theta0_k - theta0_l))]``
        with ``w_kl = rho0_k rho0_l / (sum_E rho0_u rho0_v + eps)``, over the
        undirected edges of ``E``, averaged over the rows of the batch.  Zero
        when the refinement keeps every row's phase differences.
        """
        return relative_phase_penalty(phase, initial_phase, initial_radius, self.edges)


def relative_phase_penalty(phase, initial_phase, initial_radius, edges):
    """Eq. 9 for a batch; ``edges`` is the (symmetric) adjacency of ``E``."""
    upper = torch.triu(edges.bool(), diagonal=1)
    k, l = upper.nonzero(as_tuple=True)
    if k.numel() == 0:
        return phase.new_zeros(())
    deformation = (phase[:, k] - phase[:, l]) - (initial_phase[:, k] - initial_phase[:, l])
    products = initial_radius[:, k] * initial_radius[:, l]
    weights = products / (products.sum(dim=1, keepdim=True) + 1e-12)
    return ((weights * (1 - torch.cos(deformation))).sum(dim=1) / k.numel()).mean()


def wrapped_gaussian_score(perturbed, centre, noise_std):
    """``d/d phi_tilde log WN(phi_tilde; centre, noise_std^2)``, the target of Eq. 6."""
    delta = wrap(perturbed - centre)
    shifts = 2 * math.pi * torch.arange(-_WRAPS, _WRAPS + 1, device=perturbed.device, dtype=perturbed.dtype)
    images = delta[..., None] + shifts
    variance = (noise_std**2)[..., None]
    weights = torch.softmax(-(images**2) / (2 * variance), dim=-1)
    return -(weights * images).sum(-1) / noise_std**2


def noise_levels(uniform, sigma_min, sigma_max):
    """Geometric schedule ``sigma_t = sigma_min (sigma_max / sigma_min)^t``."""
    return sigma_min * (sigma_max / sigma_min) ** uniform


def score_matching_terms(score_module, field, phase, log_radius, uniform, noise, sigma_min, sigma_max):
    """The network's score, its target and ``sigma_t`` of Eq. 6, for given draws of ``t`` and noise.

    ``phi_tilde = wrap(mu_phi + sqrt(2) sigma_t eps)`` around the drifted
    centre ``mu_phi``; the target is the score of that wrapped Gaussian
    (variance ``2 sigma_t^2``).
    """
    sigma = noise_levels(uniform, sigma_min, sigma_max)
    centre = field.centre(phase, sigma)
    noise_std = math.sqrt(2.0) * sigma
    perturbed = wrap(centre + noise_std * noise)
    target = wrapped_gaussian_score(perturbed, centre, noise_std)
    return score_module(perturbed, log_radius, sigma), target, sigma


def weighted_score_error(predicted, target, sigma):
    """Eq. 6 with ``lambda_t = 2 sigma_t^2``, averaged over rows and blocks."""
    return (2 * sigma**2 * (predicted - target) ** 2).mean()


def score_matching_loss(score_module, field, phase, log_radius, uniform, noise, sigma_min, sigma_max):
    """Eq. 6 for given draws of ``t`` and noise (see :func:`score_matching_terms`)."""
    return weighted_score_error(
        *score_matching_terms(score_module, field, phase, log_radius, uniform, noise, sigma_min, sigma_max)
    )


class PhaseScoreModule(nn.Module):
    """The phase score network ``s_phi(phi_tilde, t, log rho)``.

    An MLP on ``[sin phi_tilde, cos phi_tilde, log rho, log sigma_t]`` whose
    output is divided by ``sigma_t``, the scale of the score it estimates.

    Parameters
    ----------
    n_blocks : int
        ``m``, the number of polar blocks.
    hidden_units : int, default=128
    n_layers : int, default=2
        Hidden layers.
    """

    def __init__(self, n_blocks=1, hidden_units=128, n_layers=2):
        super().__init__()
        layers, width = [], 3 * n_blocks + 1
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden_units), nn.SiLU()]
            width = hidden_units
        layers.append(nn.Linear(width, n_blocks))
        self.body = nn.Sequential(*layers)

    def forward(self, phase, log_radius, noise_level):
        features = torch.cat(
            [torch.sin(phase), torch.cos(phase), log_radius, torch.log(noise_level)], dim=1
        )
        return self.body(features) / noise_level


class PhasePrior(SeededNet):
    """skorch net that trains the phase score network of stage I.

    ``fit(X)`` takes ``X = {"phase": theta, "log_radius": r}`` of target rows
    (``r`` is the standardised ``log(rho + eps)``).  Each step draws
    ``t ~ U(0, 1)`` and Gaussian noise per row, perturbs the phases around
    the drifted centres of ``phase_field`` (``forward_batch``) and minimises
    the denoising score-matching loss of Eq. 6 (``get_loss``).
    :class:`AnisoAlign` passes its phase field and noise schedule; the net
    can also be fitted on its own with a :class:`PhaseField`.

    Parameters
    ----------
    module : torch module class, default=PhaseScoreModule
        The network trained.
    phase_field : PhaseField or None, default=None
        The circular statistics of the drift; required by ``fit``.
    noise_range : tuple of float, default=(0.05, 1.5)
        ``(sigma_min, sigma_max)`` of the geometric noise schedule.
    lr : float, default=2e-3
        Learning rate.
    **kwargs
        Any parameter of :class:`~sklearn_modgap.nets.SeededNet` (seeding,
        batching, early stopping, device) or of ``skorch.NeuralNet``.
    """

    def __init__(
        self, module=PhaseScoreModule, *, phase_field=None, noise_range=(0.05, 1.5), lr=2e-3, **kwargs
    ):
        super().__init__(module, lr=lr, **kwargs)
        self.phase_field = phase_field
        self.noise_range = noise_range

    def forward_batch(self, X, training):
        if self.phase_field is None:
            raise ValueError("PhasePrior needs phase_field, the PhaseField of the drift, to be fitted.")
        phase, log_radius = X["phase"], X["log_radius"]
        uniform = self.rand((phase.shape[0], 1), training)
        noise = self.randn(phase.shape, training)
        return score_matching_terms(
            self.module_, self.phase_field, phase, log_radius, uniform, noise, *self.noise_range
        )

    def get_loss(self, y_pred, y_true=None, X=None, training=False):
        return weighted_score_error(*y_pred)
