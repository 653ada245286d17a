"""Diagnostics of the modality gap and of the quality of an alignment.

Every function takes embeddings as rows and L2-normalises them first.
Argument order follows scikit-learn's ``metric(reference, produced)``:
``(target, substitutes)`` for where the substitutes land,
``(source, substitutes)`` for what the map keeps, and ``(target, source)``
for paired geometry diagnostics of the two modalities.
"""

from ._alignment import (
    alignment_balance,
    centroid_discrepancy,
    instance_consistency,
    modality_mixing,
    neighborhood_consistency,
    relative_geometry_consistency,
)

__all__ = [
    "alignment_balance",
    "centroid_discrepancy",
    "instance_consistency",
    "modality_mixing",
    "neighborhood_consistency",
    "relative_geometry_consistency",
]
