"""One metric table behind GapScorer, gap_report and the CLI legend."""

import numpy as np
import pytest

from sklearn_modgap import CentroidShift
from sklearn_modgap.cli import _compare_legend
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.metrics import GapScorer, distribution_gap, gap_angle, raw_gap
from sklearn_modgap.metrics._knn import KNN_METHODS
from sklearn_modgap.metrics._table import METRICS
from sklearn_modgap.report import DEFAULT_GAP_REPORT_METRICS, GAP_REPORT_COLUMNS, gap_report

LOWER_IS_BETTER = {
    "centroid_discrepancy", "paired_distance", "residual_anisotropy",
    "residual_anisotropy_centered", "raw_gap", "distribution_gap", "gap_angle",
}


def test_names_and_symbols_are_unique_and_serve_both_consumers():
    names = [metric.name for metric in METRICS]
    symbols = [metric.symbol for metric in METRICS]
    assert len(set(names)) == len(names) and len(set(symbols)) == len(symbols)
    assert list(GAP_REPORT_COLUMNS) == symbols
    assert DEFAULT_GAP_REPORT_METRICS == (
        "Delta_mu", "cos_tp", "Phi", "Psi", "Omega_k", "M_k^Z", "M_k^X", "alignment_balance"
    )
    assert {metric.name for metric in METRICS if not metric.higher_is_better} == LOWER_IS_BETTER
    for metric in METRICS:
        assert metric.needs in ("source", "target", "pairs")
        GapScorer(metric.scorer_name)  # every table entry is a scorer metric
        assert metric.scorer_name.startswith("neg_") != metric.higher_is_better


def test_legend_has_one_line_per_column_with_its_direction():
    legend = _compare_legend(["Delta_mu", "Psi", "fit_seconds"]).strip().splitlines()
    assert legend[0].startswith("Delta_mu") and legend[0].endswith("(lower is better)")
    assert legend[1].startswith("Psi") and legend[1].endswith("(higher is better)")
    assert legend[2].startswith("Glossary")


def test_scorer_and_report_agree_on_the_new_gap_metrics():
    target, source = make_modality_gap(n_pairs=120, n_features=12, random_state=0)
    fitted = CentroidShift(alpha=0.5).fit(source[:60], target[:60])
    X, y = source[60:], target[60:]
    Z, T = fitted.transform(X), fitted.transform_target(y)
    scores = GapScorer(("neg_raw_gap", "neg_distribution_gap", "neg_gap_angle"))(fitted, X, y)
    assert scores["neg_raw_gap"] == pytest.approx(-raw_gap(T, Z))
    assert scores["neg_distribution_gap"] == pytest.approx(-distribution_gap(T, Z))
    assert scores["neg_gap_angle"] == pytest.approx(-gap_angle(T, Z))
    # gap_angle needs no pairs: a target sample of another size is enough.
    unpaired = GapScorer("neg_gap_angle")(fitted, X, y[:30])
    assert unpaired == pytest.approx(-gap_angle(fitted.transform_target(y[:30]), Z))

    report = gap_report({"half": CentroidShift(alpha=0.5)}, source, target, metrics=["raw_gap", "D"])
    assert report.loc["half", "raw_gap"] > 0 and report.loc["half", "D"] > 0


def test_one_list_of_knn_back_ends():
    assert KNN_METHODS == ("exact", "approximate")
    with pytest.raises(ValueError, match="knn"):
        GapScorer(knn="annoy")
    target, source = make_modality_gap(n_pairs=40, n_features=8, random_state=0)
    with pytest.raises(ValueError, match="knn"):
        gap_report({"shift": CentroidShift()}, source, target, knn="annoy")
    report = gap_report({"shift": CentroidShift()}, source, target, k=5, knn="approximate")
    assert np.isfinite(report.loc["shift", "Omega_k"])
