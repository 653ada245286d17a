"""Typed use of the public API; mypy must accept it (tests/test_typing.py).

Only type-checked, never run: importing it does nothing.
"""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sklearn_modgap.metrics import centroid_gap, principal_angles, retrieval_recall
from sklearn_modgap.plotting import plot_spectra
from sklearn_modgap.report import diagnose, gap_report

def use_the_public_api() -> None:
    rng = np.random.default_rng(0)
    target = rng.normal(size=(40, 8))
    source = rng.normal(size=(40, 8))

    gap: float = centroid_gap(target, source)
    angles: np.ndarray = principal_angles(target, source, q=3)
    recalls: dict[str, float] = retrieval_recall(target, source, k=(1, 5))
    diagnostics: pd.Series = diagnose(target, source)
    report: pd.DataFrame = gap_report({}, source, target)
    figure: Figure = plot_spectra(target, source, labels=("image", "text"))
