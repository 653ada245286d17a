"""Training schedules of the adapter objectives, as skorch callbacks."""

import torch
from skorch.callbacks import Callback

from ..losses import info_nce


def _total_steps(net, X):
    return net.training_batches(len(X["source"])) * net.max_epochs


def _ramp_gate(rise, tolerance, kind, max_speedup, falling_gate):
    """Multiplier of the ramp's base rate for a relative loss change ``rise``."""
    balance = min(1.0, max(0.0, 1.0 - abs(rise) / tolerance))
    if kind == "rise":
        return min(1.0, max(0.0, 1.0 - rise / tolerance))
    if rise > 0:
        return max_speedup * balance
    return falling_gate + (max_speedup - falling_gate) * balance


class CompromiseCurriculum(Callback):
    """The three-phase curriculum of TPC-CMA, driving the criterion's ``alpha``.

    1. *Anchor*: the first ``anchor_fraction`` of the steps train with
       ``alpha = 0`` (plain InfoNCE), settling the contrastive geometry.
    2. *Ramp*: over the next ``ramp_fraction`` of the steps ``alpha`` rises
       towards ``alpha_target``.  The base rate at each step spreads what is
       left of the ramp over the steps left (a catch-up rate: steps held back
       earlier are made up later), scaled by a gate read from a fast and a
       slow exponential moving average of the InfoNCE of the batch, with
       ``rise = fast / slow - 1`` and ``b = clip(1 - |rise| / tolerance, 0,
       1)`` (1 when the loss is flat, 0 once it moves by ``tolerance``).
       ``gate="balance"`` (the paper's gradient-aware schedule): while the
       loss falls, ``gate = falling_gate + (max_speedup - falling_gate) * b``,
       so the ramp slows to ``falling_gate`` times the base rate while the
       contrastive loss still falls fast and runs at up to ``max_speedup``
       times it when balanced; while the loss rises, ``gate = max_speedup *
       b``, pausing at a rise of ``tolerance``.  ``gate="rise"`` (the package's earlier gate):
       ``gate = clip(1 - rise / tolerance, 0, 1)``, which only ever slows the
       ramp, and only while the loss rises.
    3. *Stabilise*: the remaining steps train at ``alpha = alpha_target``.

    The per-step ``alpha`` is recorded in the net's history as ``"alpha"``
    (per batch and per epoch).

    Parameters
    ----------
    alpha_target : float, default=0.1
        Final alignment strength.
    anchor_fraction : float, default=0.2
        Share of the steps in phase 1.
    ramp_fraction : float, default=0.5
        Share of the steps in phase 2.
    fast_decay : float, default=0.8
        Decay of the fast moving average.
    slow_decay : float, default=0.95
        Decay of the slow moving average.
    tolerance : float, default=0.05
        Relative change of the contrastive loss at which the ramp pauses.
    gate : {"balance", "rise"}, default="balance"
        The ramp gate (see above).
    max_speedup : float, default=2.0
        Largest gate of ``"balance"``, reached when ``fast == slow``.
    falling_gate : float, default=0.5
        Gate of ``"balance"`` while the loss falls by ``tolerance`` or more
        (0 would hold the ramp back until its last step on a loss that
        keeps falling).
    """

    def __init__(
        self,
        alpha_target=0.1,
        anchor_fraction=0.2,
        ramp_fraction=0.5,
        fast_decay=0.8,
        slow_decay=0.95,
        tolerance=0.05,
        gate="balance",
        max_speedup=2.0,
        falling_gate=0.5,
    ):
        self.alpha_target = alpha_target
        self.anchor_fraction = anchor_fraction
        self.ramp_fraction = ramp_fraction
        self.fast_decay = fast_decay
        self.slow_decay = slow_decay
        self.tolerance = tolerance
        self.gate = gate
        self.max_speedup = max_speedup
        self.falling_gate = falling_gate

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if self.gate not in ("balance", "rise"):
            raise ValueError(f"gate must be 'balance' or 'rise', got {self.gate!r}.")
        total = _total_steps(net, X)
        self.anchor_end_ = int(round(self.anchor_fraction * total))
        self.ramp_end_ = self.anchor_end_ + int(round(self.ramp_fraction * total))
        self.step_ = 0
        self.alpha_ = 0.0
        self.fast_ = self.slow_ = None

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            net.criterion_.alpha = self.alpha_
            net.history.record_batch("alpha", self.alpha_)

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if not training:
            return
        source_out, target_out = y_pred
        with torch.no_grad():
            contrastive = float(info_nce(target_out, source_out, net.criterion_.temperature))
        if self.fast_ is None:
            self.fast_ = self.slow_ = contrastive
        self.fast_ = self.fast_decay * self.fast_ + (1 - self.fast_decay) * contrastive
        self.slow_ = self.slow_decay * self.slow_ + (1 - self.slow_decay) * contrastive
        self.step_ += 1
        self.alpha_ = self._next_alpha()

    def _next_alpha(self):
        if self.step_ < self.anchor_end_:
            return 0.0
        if self.step_ >= self.ramp_end_:
            return self.alpha_target
        base_rate = (self.alpha_target - self.alpha_) / (self.ramp_end_ - self.step_)
        rise = self.fast_ / max(self.slow_, 1e-12) - 1.0
        gate = _ramp_gate(rise, self.tolerance, self.gate, self.max_speedup, self.falling_gate)
        return min(self.alpha_target, self.alpha_ + gate * base_rate)

    def on_epoch_end(self, net, **kwargs):
        net.history.record("alpha", self.alpha_)


class GapClosingSchedule(Callback):
    """The loss-weight schedules of the ATP + CU objective (Grassucci et al.).

    With ``p`` the fraction of training done, the ATP scale is ``1`` for
    ``p < 0.5`` then rises linearly to ``2`` at ``p = 1``; the CU scale is
    ``1`` for ``p < 0.2``, decays linearly to ``0`` at ``p = 0.7`` and stays
    there.  Both are written to the criterion before each training step and
    recorded in the history as ``"atp_scale"`` and ``"cu_scale"``.
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.total_ = max(1, _total_steps(net, X))
        self.step_ = 0

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        progress = self.step_ / self.total_
        atp_scale = 1.0 + max(0.0, progress - 0.5) / 0.5
        cu_scale = min(1.0, max(0.0, 1.0 - (progress - 0.2) / 0.5))
        net.criterion_.atp_scale = atp_scale
        net.criterion_.cu_scale = cu_scale
        net.history.record_batch("atp_scale", atp_scale)
        net.history.record_batch("cu_scale", cu_scale)
        self.step_ += 1
