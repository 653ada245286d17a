"""Measure and close the modality gap of contrastive embeddings."""

from .aligners import CentroidShift

__all__ = ["CentroidShift"]

__version__ = "0.1.0.dev0"
