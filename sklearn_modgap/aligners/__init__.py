"""The closed-form aligners, one module per method, and the paired diagnostic correction."""

from ._adapter import ContrastiveAdapter
from ._c3 import C3
from ._centroid import CentroidShift
from ._moment import MomentMatch, RandomTargetReplacement
from ._realign import ReAlign
from ._residual import residual_direction_correction
from ._ssp import SSP

__all__ = [
    "C3",
    "CentroidShift",
    "ContrastiveAdapter",
    "MomentMatch",
    "RandomTargetReplacement",
    "ReAlign",
    "SSP",
    "residual_direction_correction",
]
