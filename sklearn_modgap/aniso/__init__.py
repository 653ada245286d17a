"""AnisoAlign: the fixed frame, the stage I phase prior and the stage II refiner.

``AnisoAlign`` is importable without torch; the skorch nets ``PhasePrior`` and
``Refiner`` (and their modules) import torch when first accessed.
"""

from ._estimator import AnisoAlign

_NETS = {
    "PhasePrior": "._prior",
    "PhaseScoreModule": "._prior",
    "Refiner": "._refiner",
    "RefinerModule": "._refiner",
}

__all__ = ["AnisoAlign", *_NETS]


def __getattr__(name):
    if name in _NETS:
        from importlib import import_module

        return getattr(import_module(_NETS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
