"""The closed-form aligners, one module per method."""

from ._centroid import CentroidShift

__all__ = ["CentroidShift"]
