"""The skorch net that trains :class:`PairedHeads`, and the criteria of its objectives."""

import math

import torch
from torch import nn

from ..losses import atp_loss, cma_loss, cu_loss, info_nce
from ._heads import PairedHeads
from ._training import SeededNet


class InfoNCECriterion(nn.Module):
    """Symmetric InfoNCE of the head outputs (see :func:`~sklearn_modgap.losses.info_nce`)."""

    def __init__(self, temperature=0.07):
        super().__init__()
        self.temperature = temperature

    def forward(self, target, source):
        return info_nce(target, source, self.temperature)


class CMACriterion(nn.Module):
    """TPC-CMA loss; ``alpha`` is set during training by the curriculum callback.

    With ``learn_temperature`` the temperature is ``exp(log_temperature)``, a
    parameter trained with the heads (initialised at ``temperature``, floored
    at 0.01 as CLIP caps its logit scale at 100).
    """

    def __init__(self, temperature=0.07, reweight=0.05, reweighting="hadamard", learn_temperature=False):
        super().__init__()
        self.reweight = reweight
        self.reweighting = reweighting
        self.learn_temperature = learn_temperature
        self.initial_temperature = temperature
        if learn_temperature:
            self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        self.alpha = 0.0

    @property
    def temperature(self):
        if self.learn_temperature:
            return self.log_temperature.exp().clamp(min=0.01)
        return self.initial_temperature

    def forward(self, target, source):
        return cma_loss(target, source, self.alpha, self.temperature, self.reweight, self.reweighting)


class ATPCUCriterion(nn.Module):
    """``InfoNCE + a * s_a * ATP + b * s_b * CU``; the scales ``s`` follow a schedule callback."""

    def __init__(self, temperature=0.07, atp_weight=1.0, cu_weight=1.0, cu_t=2.0):
        super().__init__()
        self.temperature = temperature
        self.atp_weight = atp_weight
        self.cu_weight = cu_weight
        self.cu_t = cu_t
        self.atp_scale = 1.0
        self.cu_scale = 1.0

    def forward(self, target, source):
        loss = info_nce(target, source, self.temperature)
        loss = loss + self.atp_weight * self.atp_scale * atp_loss(target, source)
        return loss + self.cu_weight * self.cu_scale * cu_loss(target, source, self.cu_t)


class AdapterNet(SeededNet):
    """skorch net of :class:`~sklearn_modgap.ContrastiveAdapter`.

    A :class:`~sklearn_modgap.nets.SeededNet` whose module maps a paired
    batch to the two head outputs and whose ``get_loss`` hands them to the
    criterion.  Pass an instance as ``ContrastiveAdapter(net=...)`` to set
    training options (``lr``, ``max_epochs``, ``batch_size``, ``optimizer``,
    callbacks) and to search them as ``net__lr`` and so on; the adapter
    clones it in ``fit`` and sets the module's width, the criterion, the
    seed, the device and the curriculum.

    Parameters
    ----------
    module : type, default=PairedHeads
        The paired-heads module class.
    criterion : type, default=InfoNCECriterion
        Loss module class, called as ``criterion(target_out, source_out)``.
    optimizer : type, default=torch.optim.AdamW
        Optimiser class.
    batch_size : int, default=256
        Pairs per contrastive batch (the negatives of each pair); a one-row
        tail joins the last batch (``min_batch_rows = 2``).  The pairs are
        shuffled at every epoch (``iterator_train__shuffle=True``), from a
        generator seeded with ``iterator_train__seed``.
    validation_fraction : float, default=0.0
        No held-out split and no early stopping: the adapter is evaluated on
        held-out pairs by the caller.
    min_batches : int, default=1
        Batches are ``batch_size`` pairs whatever the data size.
    torch_threads : int or None, default=None
        torch's own thread setting: the heads are ``d x d`` products.
    **kwargs
        Any other parameter of :class:`~sklearn_modgap.nets.SeededNet`
        (``lr``, ``max_epochs``, ``random_state``, ...) or of
        :class:`skorch.NeuralNet`, including prefixed ones such as
        ``optimizer__weight_decay``.
    """

    # A one-row contrastive batch has no negatives.
    min_batch_rows = 2

    def __init__(
        self,
        module=PairedHeads,
        criterion=InfoNCECriterion,
        optimizer=torch.optim.AdamW,
        batch_size=256,
        validation_fraction=0.0,
        min_batches=1,
        torch_threads=None,
        **kwargs,
    ):
        kwargs.setdefault("iterator_train__shuffle", True)
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            batch_size=batch_size,
            validation_fraction=validation_fraction,
            min_batches=min_batches,
            torch_threads=torch_threads,
            **kwargs,
        )

    def get_loss(self, y_pred, y_true=None, X=None, training=False):
        source_out, target_out = y_pred
        return self.criterion_(target_out, source_out)
