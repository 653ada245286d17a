"""Diagnostics of the modality gap and of the quality of an alignment.

Every function takes embeddings as rows and L2-normalises them first.
Argument order follows scikit-learn's ``metric(reference, produced)``:
``(target, substitutes)`` for where the substitutes land,
``(source, substitutes)`` for what the map keeps, and ``(target, source)``
for diagnostics of the two modalities.
"""

from ._alignment import (
    alignment_balance,
    centroid_discrepancy,
    instance_consistency,
    modality_mixing,
    neighborhood_consistency,
    relative_geometry_consistency,
)
from ._gaps import (
    centroid_gap,
    distribution_gap,
    effective_rank,
    fusion_index,
    gap_angle,
    principal_angles,
    raw_gap,
    true_pair_cosine,
)
from ._geometry import (
    centroid_displacement,
    covariance_discrepancy,
    cumulative_energy,
    effective_dimension,
    paired_distance,
    residual_anisotropy,
    residual_coverage,
    residual_ratio,
    spectral_correlation,
    subspace_overlap,
)
from ._checks import DuplicateRowsWarning
from ._scorer import GapScorer
from ._shift_sweep import liang_shift_sweep
from ._tasks import cross_modal_transfer, joint_clustering_scores, retrieval_recall

__all__ = [
    "DuplicateRowsWarning",
    "GapScorer",
    "alignment_balance",
    "centroid_discrepancy",
    "centroid_displacement",
    "centroid_gap",
    "covariance_discrepancy",
    "cross_modal_transfer",
    "cumulative_energy",
    "distribution_gap",
    "effective_dimension",
    "effective_rank",
    "fusion_index",
    "gap_angle",
    "instance_consistency",
    "joint_clustering_scores",
    "liang_shift_sweep",
    "modality_mixing",
    "neighborhood_consistency",
    "paired_distance",
    "principal_angles",
    "raw_gap",
    "relative_geometry_consistency",
    "residual_anisotropy",
    "residual_coverage",
    "residual_ratio",
    "retrieval_recall",
    "spectral_correlation",
    "subspace_overlap",
    "true_pair_cosine",
]
