"""GapScorer: the alignment metrics as a scikit-learn scorer.

A scorer is called as ``scorer(estimator, X, y)`` on held-out data, so that
``GridSearchCV``, ``cross_validate`` and ``cross_val_score`` can tune and
compare aligners by any of the package's measures.
"""

import re
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.metadata_routing import MetadataRequest

from .._base import split_source_target
from ._knn import KNN_METHODS
from ._table import METRICS, recall_metric

_METRICS = {metric.scorer_name: metric for metric in METRICS}
_RECALL = re.compile(r"retrieval_recall@([1-9][0-9]*)$")
_LOWER_IS_BETTER = {metric.name for metric in METRICS if not metric.higher_is_better}


def _resolve(name):
    if name in _METRICS:
        return _METRICS[name]
    match = _RECALL.match(name) if isinstance(name, str) else None
    if match:
        return recall_metric(int(match.group(1)))
    if name in _LOWER_IS_BETTER:
        raise ValueError(
            f"{name!r} is lower-is-better; request it as 'neg_{name}' so that higher "
            "scores are better, as scikit-learn's model selection expects."
        )
    known = sorted(n for n in _METRICS if not _RECALL.match(n)) + ["retrieval_recall@<k>"]
    raise ValueError(f"Unknown metric {name!r}; choose from {known}.")


class GapScorer:
    """Score an aligner on held-out data by the package's alignment metrics.

    ``scorer(estimator, X, y=None)`` transforms the source rows ``X`` once
    into substitutes, brings the target rows through
    ``estimator.transform_target`` once, and evaluates every requested
    metric on them.  It returns a float for one metric and a dict for
    several, so it serves as ``scoring=`` of
    :class:`~sklearn.model_selection.GridSearchCV` (with ``refit="<name>"``
    when several), :func:`~sklearn.model_selection.cross_validate` and
    :func:`~sklearn.model_selection.cross_val_score`.

    The target rows come from ``y`` (mode B: a 2-D array of target rows,
    paired with ``X`` when it has as many rows), or from ``X`` itself in the
    stacked mode: ``sample_domain >= 0`` marks source rows, ``< 0`` target
    rows.  Under ``sklearn.config_context(enable_metadata_routing=True)`` the
    scorer requests ``sample_domain`` so that model-selection tools route each
    fold's slice to it; stacked folds carry no pairs.

    Available metrics, higher is better (lower-is-better ones carry the
    ``neg_`` prefix and are negated):

    - needing a target sample: ``"alignment_balance"``, ``"modality_mixing"``
      (mean of ``M_k^Z`` and ``M_k^X``), ``"modality_mixing_substitute"``,
      ``"modality_mixing_target"``, ``"neg_centroid_discrepancy"``,
      ``"neg_gap_angle"``;
    - needing only the source rows: ``"instance_consistency"`` (``Phi``),
      ``"relative_geometry_consistency"`` (``Psi``),
      ``"neighborhood_consistency"`` (``Omega_k``);
    - needing true pairs ``(x_i, y_i)``: ``"true_pair_cosine"`` (of ``x_i``
      and ``z_i``), ``"neg_paired_distance"``, ``"neg_residual_anisotropy"``
      (the uncentred ``A_r(T)`` of App. B.2),
      ``"neg_residual_anisotropy_centered"`` (the mean-corrected ``A_r``),
      ``"neg_raw_gap"``, ``"neg_distribution_gap"``,
      ``"cross_modal_transfer"`` and ``"retrieval_recall@<k>"``
      (mean of both directions).

    These are the metrics of :func:`~sklearn_modgap.report.gap_report`
    under their function names (one table serves both).

    Parameters
    ----------
    metrics : str or sequence of str, default=("alignment_balance",)
        The metric(s) to compute.  A single string gives a float.
    k : int, default=20
        Neighbourhood size of ``Omega_k``, ``M_k`` and the alignment balance.
    random_state : int, default=0
        Seed of the pair sample of ``Psi``.
    knn : {"exact", "approximate"}, default="exact"
        k-NN back-end of ``Omega_k``, ``M_k`` and retrieval.

    See Also
    --------
    alignment_balance : The aligners' default ``score``.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_modgap import CentroidShift
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.metrics import GapScorer
    >>> target, source = make_modality_gap(n_pairs=120, n_features=16, random_state=0)
    >>> scorer = GapScorer(("alignment_balance", "neg_centroid_discrepancy"), k=5)
    >>> search = GridSearchCV(CentroidShift(), {"alpha": [0.0, 1.0]}, scoring=scorer,
    ...                       refit="neg_centroid_discrepancy", cv=3)
    >>> search.fit(source, target).best_params_
    {'alpha': 1.0}
    """

    @validate_params(
        {
            "metrics": [str, list, tuple],
            "k": [Interval(Integral, 1, None, closed="left")],
            "random_state": [Interval(Integral, 0, None, closed="left")],
            "knn": [StrOptions(set(KNN_METHODS))],
        },
        prefer_skip_nested_validation=True,
    )
    def __init__(self, metrics=("alignment_balance",), k=20, random_state=0, knn="exact"):
        self.metrics = metrics
        self.k = k
        self.random_state = random_state
        self.knn = knn
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        if not names:
            raise ValueError("metrics must name at least one metric.")
        if len(set(names)) != len(names):
            raise ValueError(f"metrics contains duplicates: {names}.")
        self._resolved = {name: _resolve(name) for name in names}
        self._sample_domain_request = True

    def __repr__(self):
        return (
            f"GapScorer(metrics={self.metrics!r}, k={self.k}, "
            f"random_state={self.random_state}, knn={self.knn!r})"
        )

    def __call__(self, estimator, X, y=None, *, sample_domain=None):
        """Score ``estimator`` on held-out rows.

        Parameters
        ----------
        estimator : fitted aligner
            Needs ``transform`` and ``transform_target``.
        X : array-like of shape (n_samples, n_features)
            Held-out source rows, or source and target rows stacked.
        y : array-like of shape (n_target, n_features), default=None
            Held-out target rows (mode B), paired with ``X`` when they have
            as many rows.  Ignored in the stacked mode.
        sample_domain : array-like of shape (n_samples,), default=None
            Stacked mode: ``>= 0`` for source rows, ``< 0`` for target rows.

        Returns
        -------
        score : float or dict
            A float for one metric, else a dict keyed by metric name.
        """
        for method in ("transform", "transform_target"):
            if not callable(getattr(estimator, method, None)):
                raise TypeError(
                    f"GapScorer needs an aligner with a {method} method; "
                    f"{type(estimator).__name__} has none."
                )
        source, target, paired = self._split(X, y, sample_domain)
        data = {
            "source": source,
            "substitutes": estimator.transform(source),
            "target": None if target is None else estimator.transform_target(target),
        }
        for data_key in ("substitutes", "target"):
            if data[data_key] is not None:
                data[data_key] = np.asarray(data[data_key])
        scores = {}
        for name, metric in self._resolved.items():
            self._check_available(name, metric.needs, target is not None, paired, sample_domain)
            value = float(
                metric.compute(
                    data["target"], data["source"], data["substitutes"], self.k, self.random_state, self.knn
                )
            )
            scores[name] = value if metric.higher_is_better else -value
        if isinstance(self.metrics, str):
            return scores[self.metrics]
        return scores

    @staticmethod
    def _split(X, y, sample_domain):
        """Source rows, target rows (or None) and whether they are paired."""
        source, target = split_source_target(X, y, sample_domain=sample_domain)
        paired = sample_domain is None and target is not None and len(target) == len(source)
        return source, target, paired

    @staticmethod
    def _check_available(name, needs, has_target, paired, sample_domain):
        if needs == "target" and not has_target:
            raise ValueError(
                f"metric {name!r} needs target rows: pass them as y (mode B) or stack them in "
                "X with sample_domain < 0 and enable metadata routing so that sample_domain "
                "reaches the scorer."
            )
        if needs == "pairs" and not paired:
            where = (
                "stacked input with sample_domain carries no pairs"
                if sample_domain is not None
                else "y must hold one target row per row of X, in the same order"
            )
            raise ValueError(f"metric {name!r} needs true pairs (x_i, y_i): {where}.")

    # --------------------------------------------------------- metadata routing
    def set_score_request(self, *, sample_domain=True):
        """Set whether ``sample_domain`` is requested by the scorer.

        Parameters
        ----------
        sample_domain : bool, str or None, default=True
            ``True`` to request it (the default), ``False`` not to, or an
            alias under which it is passed.

        Returns
        -------
        self : GapScorer
            The scorer.
        """
        self._sample_domain_request = sample_domain
        return self

    def get_metadata_routing(self):
        """Metadata requested by the scorer: ``sample_domain``, for ``score``.

        Returns
        -------
        routing : MetadataRequest
            A :class:`~sklearn.utils.metadata_routing.MetadataRequest`.
        """
        request = MetadataRequest(owner=self)
        request.score.add_request(param="sample_domain", alias=self._sample_domain_request)
        return request
