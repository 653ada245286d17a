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
    higher_is_better : bool
        The direction.
    needs : {"source", "target", "pairs"}
        The data it needs besides the source rows and substitutes.
    needs_neighbors : bool
        It computes k-NN sets (``gap_report`` runs it on a bounded sample).
    compute : callable
        ``compute(target, source, substitutes, k, random_state, knn) -> float``.
    description : str
        One line for legends and help texts.
    """

    name: str
    symbol: str
    higher_is_better: bool
    needs: str
    needs_neighbors: bool
    compute: Callable
    description: str

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


def _mixing_mean(x, y, z, k, seed, knn):
    return float(np.mean(list(_mixing_scores(x, z, k, ("substitute", "target"), knn).values())))


def recall_metric(level):
    """The retrieval recall at ``level``, mean of both directions, as a :class:`Metric`."""

    def compute(x, y, z, k, seed, knn):
        return float(np.mean(list(retrieval_recall(x, z, k=level, knn=knn).values())))

    return Metric(
        f"retrieval_recall@{level}",
        f"recall@{level}",
        True,
        "pairs",
        True,
        compute,
        f"retrieval recall@{level}, mean of target->substitute and substitute->target",
    )


# The first eight are gap_report's default columns.
METRICS = (
    Metric(
        "centroid_discrepancy", "Delta_mu", False, "target", False,
        lambda x, y, z, k, seed, knn: centroid_discrepancy(x, z),
        "centroid discrepancy ||mu_x - mu_z|| of targets and substitutes",
    ),
    Metric(
        "true_pair_cosine", "cos_tp", True, "pairs", False,
        lambda x, y, z, k, seed, knn: true_pair_cosine(x, z),
        "mean cosine of each substitute to its true target",
    ),
    Metric(
        "instance_consistency", "Phi", True, "source", False,
        lambda x, y, z, k, seed, knn: instance_consistency(y, z),
        "instance consistency: mean cosine of each substitute to its source row",
    ),
    Metric(
        "relative_geometry_consistency", "Psi", True, "source", False,
        lambda x, y, z, k, seed, knn: relative_geometry_consistency(y, z, random_state=seed),
        "relative geometry consistency of source and substitutes",
    ),
    Metric(
        "neighborhood_consistency", "Omega_k", True, "source", True,
        lambda x, y, z, k, seed, knn: neighborhood_consistency(y, z, k=k, knn=knn),
        "k-NN overlap of source rows and their substitutes",
    ),
    Metric(
        "modality_mixing_substitute", "M_k^Z", True, "target", True,
        lambda x, y, z, k, seed, knn: modality_mixing(x, z, k=k, direction="substitute", knn=knn),
        "modality mixing averaged over the substitutes, 1 = fully mixed",
    ),
    Metric(
        "modality_mixing_target", "M_k^X", True, "target", True,
        lambda x, y, z, k, seed, knn: modality_mixing(x, z, k=k, direction="target", knn=knn),
        "modality mixing averaged over the target rows, 1 = fully mixed",
    ),
    Metric(
        "alignment_balance", "alignment_balance", True, "target", True,
        lambda x, y, z, k, seed, knn: alignment_balance(x, y, z, k=k, random_state=seed, knn=knn),
        "harmonic mean of max(Psi, 0) and (M_k^Z + M_k^X) / 2",
    ),
    Metric(
        "modality_mixing", "M_k", True, "target", True, _mixing_mean,
        "mean of M_k^Z and M_k^X",
    ),
    Metric(
        "paired_distance", "D", False, "pairs", False,
        lambda x, y, z, k, seed, knn: paired_distance(x, z),
        "mean distance ||x_i - z_i|| of each substitute to its true target",
    ),
    Metric(
        "residual_anisotropy", "A_r", False, "pairs", False,
        lambda x, y, z, k, seed, knn: residual_anisotropy(x, z, centered=False),
        "A_r(T): anisotropy of the uncentred residual x_i - z_i left by the alignment",
    ),
    Metric(
        "residual_anisotropy_centered", "A_r_centered", False, "pairs", False,
        lambda x, y, z, k, seed, knn: residual_anisotropy(x, z),
        "A_r of the mean-corrected residual (x_i - mu_x) - (z_i - mu_z)",
    ),
    Metric(
        "raw_gap", "raw_gap", False, "pairs", False,
        lambda x, y, z, k, seed, knn: raw_gap(x, z),
        "mean 1 - cos(x_i, z_i)",
    ),
    Metric(
        "distribution_gap", "distribution_gap", False, "pairs", False,
        lambda x, y, z, k, seed, knn: distribution_gap(x, z),
        "mean 1 - cos(x_i - mu_x, z_i - mu_z)",
    ),
    Metric(
        "gap_angle", "gap_angle", False, "target", False,
        lambda x, y, z, k, seed, knn: gap_angle(x, z),
        "angle between the centroids of targets and substitutes, in degrees",
    ),
    *(recall_metric(level) for level in (1, 5, 10)),
    Metric(
        "cross_modal_transfer", "transfer", True, "pairs", True,
        lambda x, y, z, k, seed, knn: cross_modal_transfer(x, y, z),
        "top-1 accuracy of a substitute-trained ridge decoder fed target rows",
    ),
)

DEFAULT_SYMBOLS = tuple(metric.symbol for metric in METRICS[:8])
