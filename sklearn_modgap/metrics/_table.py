"""The one table of the alignment metrics: GapScorer, gap_report and the CLI read it.

Each entry is computed from held-out data: the target rows ``x_i`` (through
the aligner's ``transform_target``), the source rows ``y_i`` and their
substitutes ``z_i``, with the neighbourhood size ``k``, the seed and the
k-NN back-end.  Its ``needs`` says which of them must be present: only the
source rows, a target sample, or target rows paired with the source rows.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._alignment import (
    _mixing_scores,
    alignment_balance,
    centroid_discrepancy,
    instance_consistency,
    modality_mixing,
    neighborhood_consistency,
    relative_geometry_consistency,
)
from ._gaps import distribution_gap, gap_angle, raw_gap, true_pair_cosine
from ._geometry import paired_distance, residual_anisotropy
from ._knn import KNN_METHODS
from ._tasks import cross_modal_transfer, retrieval_recall

__all__ = ["KNN_METHODS", "METRICS", "Metric", "recall_metric"]


@dataclass(frozen=True)
class Metric:
    """One alignment metric.

    Attributes
    ----------
    name : str
        The scorer's name (``GapScorer`` prefixes ``neg_`` when lower is better).
    symbol : str
        The column of ``gap_report`` and the CLI (the papers' symbol).
    compute : callable
        ``compute(target, source, substitutes, k, random_state, knn) -> float``.
    description : str
        One line for legends and help texts.
    needs : {"source", "target", "pairs"}, default="target"
        The data it needs besides the source rows and substitutes.
    higher_is_better : bool, default=True
        The direction.
    needs_neighbors : bool, default=False
        It computes k-NN sets (``gap_report`` runs it on a bounded sample).
    """

    name: str
    symbol: str
    compute: Callable
    description: str
    needs: str = "target"
    higher_is_better: bool = True
    needs_neighbors: bool = False

    @property
    def needs_pairs(self):
        """Whether the metric needs target rows paired with the source rows."""
        return self.needs == "pairs"

    @property
    def scorer_name(self):
        """The name under which ``GapScorer`` reports it: higher is always better."""
        return self.name if self.higher_is_better else f"neg_{self.name}"

    @property
    def legend(self):
        """The description with the direction."""
        return f"{self.description} ({'higher' if self.higher_is_better else 'lower'} is better)"


def _of_targets(function):
    """``compute`` of a metric of the targets and the substitutes, ``function(x, z)``."""
    return lambda x, y, z, k, seed, knn: function(x, z)


def _of_sources(function):
    """``compute`` of a metric of the source rows and their substitutes, ``function(y, z)``."""
    return lambda x, y, z, k, seed, knn: function(y, z)


def _mixing(direction):
    return lambda x, y, z, k, seed, knn: modality_mixing(x, z, k=k, direction=direction, knn=knn)


def _mixing_mean(x, y, z, k, seed, knn):
    return float(np.mean(list(_mixing_scores(x, z, k, ("substitute", "target"), knn).values())))


def recall_metric(level):
    """The retrieval recall at ``level``, mean of both directions, as a :class:`Metric`."""

    def compute(x, y, z, k, seed, knn):
        return float(np.mean(list(retrieval_recall(x, z, k=level, knn=knn).values())))

    return Metric(
        f"retrieval_recall@{level}",
        f"recall@{level}",
        compute,
        f"retrieval recall@{level}, mean of target->substitute and substitute->target",
        needs="pairs",
        needs_neighbors=True,
    )


_MIXED = "1 = fully mixed"

# The first eight are gap_report's default columns.
METRICS = (
    Metric("centroid_discrepancy", "Delta_mu", _of_targets(centroid_discrepancy),
           "centroid discrepancy ||mu_x - mu_z|| of targets and substitutes", higher_is_better=False),
    Metric("true_pair_cosine", "cos_tp", _of_targets(true_pair_cosine),
           "mean cosine of each substitute to its true target", needs="pairs"),
    Metric("instance_consistency", "Phi", _of_sources(instance_consistency),
           "instance consistency: mean cosine of each substitute to its source row", needs="source"),
    Metric(
        "relative_geometry_consistency", "Psi",
        lambda x, y, z, k, seed, knn: relative_geometry_consistency(y, z, random_state=seed),
        "relative geometry consistency of source and substitutes", needs="source",
    ),
    Metric(
        "neighborhood_consistency", "Omega_k",
        lambda x, y, z, k, seed, knn: neighborhood_consistency(y, z, k=k, knn=knn),
        "k-NN overlap of source rows and their substitutes", needs="source", needs_neighbors=True,
    ),
    Metric("modality_mixing_substitute", "M_k^Z", _mixing("substitute"),
           f"modality mixing averaged over the substitutes, {_MIXED}", needs_neighbors=True),
    Metric("modality_mixing_target", "M_k^X", _mixing("target"),
           f"modality mixing averaged over the target rows, {_MIXED}", needs_neighbors=True),
    Metric(
        "alignment_balance", "alignment_balance",
        lambda x, y, z, k, seed, knn: alignment_balance(x, y, z, k=k, random_state=seed, knn=knn),
        "harmonic mean of max(Psi, 0) and (M_k^Z + M_k^X) / 2", needs_neighbors=True,
    ),
    Metric("modality_mixing", "M_k", _mixing_mean, "mean of M_k^Z and M_k^X", needs_neighbors=True),
    Metric("paired_distance", "D", _of_targets(paired_distance),
           "mean distance ||x_i - z_i|| of each substitute to its true target",
           needs="pairs", higher_is_better=False),
    Metric(
        "residual_anisotropy", "A_r",
        lambda x, y, z, k, seed, knn: residual_anisotropy(x, z, centered=False),
        "A_r(T): anisotropy of the uncentred residual x_i - z_i left by the alignment",
        needs="pairs", higher_is_better=False,
    ),
    Metric("residual_anisotropy_centered", "A_r_centered", _of_targets(residual_anisotropy),
           "A_r of the mean-corrected residual (x_i - mu_x) - (z_i - mu_z)",
           needs="pairs", higher_is_better=False),
    Metric("raw_gap", "raw_gap", _of_targets(raw_gap), "mean 1 - cos(x_i, z_i)",
           needs="pairs", higher_is_better=False),
    Metric("distribution_gap", "distribution_gap", _of_targets(distribution_gap),
           "mean 1 - cos(x_i - mu_x, z_i - mu_z)", needs="pairs", higher_is_better=False),
    Metric("gap_angle", "gap_angle", _of_targets(gap_angle),
           "angle between the centroids of targets and substitutes, in degrees", higher_is_better=False),
    *(recall_metric(level) for level in (1, 5, 10)),
    Metric(
        "cross_modal_transfer", "transfer",
        lambda x, y, z, k, seed, knn: cross_modal_transfer(x, y, z),
        "top-1 accuracy of a substitute-trained ridge decoder fed target rows",
        needs="pairs", needs_neighbors=True,
    ),
)

DEFAULT_SYMBOLS = tuple(metric.symbol for metric in METRICS[:8])
