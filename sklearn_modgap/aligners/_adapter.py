"""ContrastiveAdapter: light heads trained on paired frozen embeddings."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from .._base import BaseAligner
from .._maps import BlockMap


# Published default temperature per objective (see the ``temperature`` parameter).
_PUBLISHED_TEMPERATURE = {"atp-cu": 0.1}


class ContrastiveAdapter(BaseAligner):
    """Fine-tune a light head per modality on paired rows of frozen embeddings.

    The fine-tuning methods of the seed papers retrain whole encoders; this
    estimator brings them to users who only have embeddings.  Each modality
    gets a residual head ``h(x) = Norm(x + delta(x))`` (linear or MLP,
    ``delta`` initialised to zero, so training starts at the identity),
    trained through a skorch net on mini-batches of pairs with one of three
    objectives:

    - ``"tpc-cma"`` (Geometry of Compromise): the CMA loss
      (:func:`~sklearn_modgap.losses.cma_loss`) under the three-phase
      curriculum :class:`~sklearn_modgap.nets.CompromiseCurriculum` -
      InfoNCE anchor, gradient-aware ramp of ``alpha`` up to
      ``alpha_target``, stabilisation.  ``alpha_target`` sets where the
      result sits on the trade-off between closing the gap and keeping the
      contrastive geometry;
    - ``"atp-cu"`` (Closing the Modality Gap): InfoNCE
      ``+ atp_weight * ATP + cu_weight * CU`` with the seed's schedules
      (:class:`~sklearn_modgap.nets.GapClosingSchedule`);
    - ``"infonce"``: the plain contrastive loss, a baseline.

    **This estimator, and only this one in the package, uses pairing to
    fit**: row ``i`` of ``X`` (source) and row ``i`` of ``y`` (target) must
    be embeddings of the same item (with ``sample_domain``, the ``i``-th
    source row and the ``i``-th target row); its ``needs_pairs`` tag says so.
    ``transform`` applies the source head, ``transform_target`` the target
    head.

    Parameters
    ----------
    objective : {"tpc-cma", "atp-cu", "infonce"}, default="tpc-cma"
        Training objective.
    alpha_target : float in [0, 1], default=0.1
        Final alignment strength of ``"tpc-cma"``.
    temperature : float or None, default=None
        Softmax temperature of the contrastive terms.  ``None`` takes each
        objective's published value: 0.1 for ``"atp-cu"`` (the fixed
        ``anchor_temperature: 0.1`` of the official ModGap training
        configuration, ``config.yaml`` of ispamm/ModGap), 0.07 otherwise
        (the package's earlier value for every objective, still available
        by passing ``temperature=0.07``).
    reweight : float in [0, 1), default=0.05
        Negative reweighting scale of the CMA loss.
    reweighting : {"hadamard", "log_additive"}, default="hadamard"
        How the CMA loss reweights the cross-modal negatives: the weight
        matrix multiplies the logits (Eq. 3-4 of the paper), or ``log w``
        is added to the negative logits (the package's earlier form).
    learn_temperature : bool, default=False
        ``"tpc-cma"`` only: learn the temperature with the heads (a
        log-temperature parameter initialised at ``temperature``), as the
        paper does; by default it stays fixed.
    ramp_gate : {"balance", "rise"}, default="balance"
        Gate of the ``"tpc-cma"`` ramp (see
        :class:`~sklearn_modgap.nets.CompromiseCurriculum`): ``"balance"``
        slows the ramp while the contrastive loss still moves and speeds it
        when balanced; ``"rise"`` (the earlier gate) only slows it while the
        loss rises.
    atp_weight : float, default=1.0
        Weight ``a`` of the ATP term of ``"atp-cu"`` (scaled by its schedule).
    cu_weight : float, default=1.0
        Weight ``b`` of the CU term of ``"atp-cu"`` (scaled by its schedule).
    head : {"linear", "mlp"}, default="linear"
        Kind of the residual heads.
    net : AdapterNet, default=None
        The skorch net holding the training options (``lr``, ``max_epochs``,
        ``batch_size``, optimiser, extra callbacks); cloned in ``fit``.  None
        uses ``AdapterNet()``.  Pass one to search its options, e.g.
        ``{"net__lr": [...], "net__max_epochs": [...]}``.
    normalize : bool, default=True
        L2-normalise input rows before anything else.
    device : str, default="auto"
        Torch device; ``"auto"`` is cuda when available, else cpu.
    random_state : int, RandomState instance or None, default=None
        Seeds the head initialisation and the batch order.
    verbose : int, default=0
        skorch's per-epoch printing.

    Attributes
    ----------
    net_ : AdapterNet
        The fitted net; ``net_.module_.source_head`` and ``target_head`` are
        the heads and ``net_.history`` the training record (with ``"alpha"``
        per batch and per epoch for ``"tpc-cma"``).
    device_ : str
        The device used.
    loss_curve_ : ndarray of shape (n_epochs,)
        Mean training loss of each epoch.
    temperature_ : float
        Temperature at the end of training (the learned one with
        ``learn_temperature``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features, when ``X`` had string column names.

    See Also
    --------
    SSP : A closed-form two-sided projection, fitted without pairs.
    sklearn_modgap.losses.cma_loss : The TPC-CMA loss.

    References
    ----------
    .. [1] H. Liu et al. "The Geometry of Compromise: Unlocking Generative
       Capabilities via Controllable Modality Alignment". 2026.
    .. [2] E. Grassucci et al. "Closing the Modality Gap Aligns Group-Wise
       Semantics". ICLR 2026.

    Examples
    --------
    >>> from sklearn_modgap import ContrastiveAdapter
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.nets import AdapterNet
    >>> target, source = make_modality_gap(n_pairs=64, n_features=16, random_state=0)
    >>> adapter = ContrastiveAdapter(net=AdapterNet(max_epochs=2), random_state=0)
    >>> adapter.fit(source, y=target).transform(source).shape
    (64, 16)
    """

    _parameter_constraints: dict = {
        "objective": [StrOptions({"tpc-cma", "atp-cu", "infonce"})],
        "alpha_target": [Interval(Real, 0, 1, closed="both")],
        "temperature": [Interval(Real, 0, None, closed="neither"), None],
        "reweight": [Interval(Real, 0, 1, closed="left")],
        "reweighting": [StrOptions({"hadamard", "log_additive"})],
        "learn_temperature": ["boolean"],
        "ramp_gate": [StrOptions({"balance", "rise"})],
        "atp_weight": [Interval(Real, 0, None, closed="left")],
        "cu_weight": [Interval(Real, 0, None, closed="left")],
        "head": [StrOptions({"linear", "mlp"})],
        "net": [None, HasMethods(["fit", "get_params", "set_params"])],
        "normalize": ["boolean"],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": [Interval(Integral, 0, None, closed="left"), "boolean"],
    }

    def __init__(
        self,
        objective="tpc-cma",
        *,
        alpha_target=0.1,
        temperature=None,
        reweight=0.05,
        reweighting="hadamard",
        learn_temperature=False,
        ramp_gate="balance",
        atp_weight=1.0,
        cu_weight=1.0,
        head="linear",
        net=None,
        normalize=True,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.objective = objective
        self.alpha_target = alpha_target
        self.temperature = temperature
        self.reweight = reweight
        self.reweighting = reweighting
        self.learn_temperature = learn_temperature
        self.ramp_gate = ramp_gate
        self.atp_weight = atp_weight
        self.cu_weight = cu_weight
        self.head = head
        self.net = net
        self.normalize = normalize
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, source, target):
        self._train(
            self._prepare(source, "X").astype(np.float32, copy=False),
            self._prepare(target, "y").astype(np.float32, copy=False),
        )

    def _train(self, source, target):
        from ..nets import (
            AdapterNet,
            ATPCUCriterion,
            CMACriterion,
            CompromiseCurriculum,
            GapClosingSchedule,
            InfoNCECriterion,
            resolve_device,
        )

        self.device_ = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        net = AdapterNet() if self.net is None else clone(self.net)
        callbacks = list(net.callbacks or [])
        temperature = self.temperature
        if temperature is None:
            temperature = _PUBLISHED_TEMPERATURE.get(self.objective, 0.07)
        objective = {"temperature": temperature}
        if self.learn_temperature and self.objective != "tpc-cma":
            raise ValueError(
                f"learn_temperature=True is only available with objective='tpc-cma', "
                f"got objective={self.objective!r}."
            )
        if self.objective == "tpc-cma":
            criterion = CMACriterion
            objective.update(
                reweight=self.reweight,
                reweighting=self.reweighting,
                learn_temperature=self.learn_temperature,
            )
            curriculum = CompromiseCurriculum(alpha_target=self.alpha_target, gate=self.ramp_gate)
            callbacks.append(("curriculum", curriculum))
        elif self.objective == "atp-cu":
            criterion = ATPCUCriterion
            objective.update(atp_weight=self.atp_weight, cu_weight=self.cu_weight)
            callbacks.append(("schedule", GapClosingSchedule()))
        else:
            criterion = InfoNCECriterion
        net.set_params(
            module__n_features=source.shape[1],
            module__head=self.head,
            criterion=criterion,
            **{f"criterion__{name}": value for name, value in objective.items()},
            callbacks=callbacks,
            random_state=seed,
            iterator_train__seed=seed,
            device=self.device_,
            verbose=self.verbose,
        )
        net.fit({"source": source, "target": target}, y=None)
        self.net_ = net
        self.loss_curve_ = np.asarray(net.history[:, "train_loss"])
        temperature = net.criterion_.temperature
        self.temperature_ = float(temperature.detach() if hasattr(temperature, "detach") else temperature)

    def _source_map(self):
        return self._head_map(self.net_.module_.source_head)

    def _target_map(self):
        return self._head_map(self.net_.module_.target_head)

    def _head_map(self, head):
        """The head as a block map; heads end with their own normalisation."""
        from ..nets._heads import apply_head

        head.eval()
        device = self.net_.device
        # One device queue: blocks run in order.
        return BlockMap(lambda block: apply_head(head, block, device), in_order=True, normalized=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.needs_pairs = True
        return tags
