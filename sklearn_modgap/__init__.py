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
from .aniso import AnisoAlign

__all__ = [
    "AnisoAlign",
    "C3",
    "CentroidShift",
    "ContrastiveAdapter",
    "MomentMatch",
    "RandomTargetReplacement",
    "ReAlign",
    "SSP",
]

__version__ = "0.1.0.dev0"
