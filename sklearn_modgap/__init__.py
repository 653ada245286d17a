"""Measure and close the modality gap of contrastive embeddings."""

from .aligners import (
    C3,
    CentroidShift,
    ContrastiveAdapter,
    MomentMatch,
    RandomTargetReplacement,
    ReAlign,
    SSP,
)

__all__ = [
    "C3",
    "CentroidShift",
    "ContrastiveAdapter",
    "MomentMatch",
    "RandomTargetReplacement",
    "ReAlign",
    "SSP",
]

__version__ = "0.1.0.dev0"
