"""Tests of the report tables: gap_report and cv_report (diagnose in its own section)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import FitFailedWarning, NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, train_test_split

from sklearn_modgap import CentroidShift, RandomTargetReplacement, ReAlign
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.metrics import GapScorer
from sklearn_modgap.report import (
    DEFAULT_GAP_REPORT_METRICS,
    GAP_REPORT_COLUMNS,
    cv_report,
    diagnose,
    gap_report,
)

CHEAP = ["Delta_mu", "cos_tp", "Phi", "Psi"]


@pytest.fixture(scope="module")
def synthetic():
    return make_modality_gap(300, 32, random_state=0)


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class _Recorder(TransformerMixin, BaseEstimator):
    """An identity aligner that keeps what ``fit`` was given."""

    seen = []

    def fit(self, X, y=None):
        type(self).seen.append((np.array(X), np.array(y)))
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return _unit(X)


def test_fit_sees_the_training_split_without_its_pairing(synthetic):
    target, source = synthetic
    _Recorder.seen = []
    gap_report({"recorder": _Recorder()}, source, target, metrics=CHEAP, random_state=3)
    (fit_source, fit_target), = _Recorder.seen
    train_index, test_index = train_test_split(
        np.arange(300), test_size=150, random_state=np.random.RandomState(3)
    )
    assert len(fit_source) == len(fit_target) == 150
    # The same rows as the training split ...
    np.testing.assert_array_equal(fit_source, source[np.sort(train_index)])
    assert {tuple(row) for row in fit_target} == {tuple(row) for row in target[train_index]}
    # ... but the targets shuffled: the pairing of the fit rows is broken.
    paired = np.all(fit_target == target[np.sort(train_index)], axis=1).mean()
    assert paired < 0.1
    # No held-out row took part in the fit.
    held_out = {tuple(row) for row in source[test_index]}
    assert not held_out & {tuple(row) for row in fit_source}


def test_identity_row_matches_the_definitions(synthetic, tmp_path):
    target, source = synthetic
    report = gap_report(
        {"identity": CentroidShift(alpha=0.0)}, source, target, metrics=CHEAP, output_dir=tmp_path
    )
    test_index = np.load(tmp_path / "test_index.npy")
    x, y = _unit(target[test_index]), _unit(source[test_index])
    row = report.loc["identity"]
    assert row["Delta_mu"] == pytest.approx(np.linalg.norm(x.mean(0) - y.mean(0)), abs=1e-5)
    assert row["cos_tp"] == pytest.approx(np.mean(np.sum(x * y, axis=1)), abs=1e-5)
    assert row["Phi"] == pytest.approx(1.0, abs=1e-6)
    assert row["Psi"] == pytest.approx(1.0, abs=1e-6)


def test_columns_order_and_timings(synthetic):
    target, source = synthetic
    report = gap_report({"shift": CentroidShift()}, source, target, k=5)
    assert report.columns.tolist() == [
        "Delta_mu", "cos_tp", "Phi", "Psi", "Omega_k", "M_k^Z", "M_k^X", "alignment_balance",
        "fit_seconds", "transform_seconds",
    ]
    assert report.index.name == "aligner"
    assert (report[["fit_seconds", "transform_seconds"]] >= 0).all().all()
    assert np.isfinite(report.to_numpy()).all()


def test_extra_columns_after_the_default_set(synthetic, tmp_path):
    target, source = synthetic
    report = gap_report(
        {"identity": CentroidShift(alpha=0.0)}, source, target,
        metrics=["A_r", "A_r_centered", "default", "raw_gap", "gap_angle"], k=5,
        output_dir=tmp_path,
    )
    assert report.columns.tolist()[:-2] == [
        "A_r", "A_r_centered", *DEFAULT_GAP_REPORT_METRICS, "raw_gap", "gap_angle"
    ]
    assert set(report.columns[:-2]) <= set(GAP_REPORT_COLUMNS)
    test_index = np.load(tmp_path / "test_index.npy")
    x, y = _unit(target[test_index]), _unit(source[test_index])
    row = report.loc["identity"]
    # App. B.2: Sigma_r^T = 1/n sum r_i r_i^T with the raw r_i = x_i - z_i.
    raw = x - y
    eigenvalues = np.linalg.eigvalsh(raw.T @ raw / len(x))
    assert row["A_r"] == pytest.approx(eigenvalues[-1] / eigenvalues.mean(), rel=1e-4)
    residual = (x - x.mean(0)) - (y - y.mean(0))
    eigenvalues = np.linalg.eigvalsh(residual.T @ residual / len(x))
    assert row["A_r_centered"] == pytest.approx(eigenvalues[-1] / eigenvalues.mean(), rel=1e-4)
    assert row["raw_gap"] == pytest.approx(1.0 - row["cos_tp"], abs=1e-6)
    cosine = x.mean(0) @ y.mean(0) / np.linalg.norm(x.mean(0)) / np.linalg.norm(y.mean(0))
    assert row["gap_angle"] == pytest.approx(np.degrees(np.arccos(cosine)), abs=1e-3)


def test_retrieval_and_transfer_columns(synthetic, tmp_path):
    target, source = synthetic
    report = gap_report(
        {"identity": CentroidShift(alpha=0.0), "ReAlign": ReAlign(),
         "RandomTargetReplacement": RandomTargetReplacement(random_state=0)},
        source, target, metrics=["recall@1", "recall@5", "transfer"], output_dir=tmp_path,
    )
    test_index = np.load(tmp_path / "test_index.npy")
    x, y = _unit(target[test_index]), _unit(source[test_index])
    similarity = x @ y.T
    own = np.arange(len(x))
    # Brute-force recall@1 of the identity, both directions averaged.
    by_target = np.mean(similarity.argmax(axis=1) == own)
    by_source = np.mean(similarity.argmax(axis=0) == own)
    assert report.loc["identity", "recall@1"] == pytest.approx((by_target + by_source) / 2)
    assert (report["recall@5"] >= report["recall@1"]).all()
    # The negative control keeps nothing of its input: chance-level transfer.
    chance = 1 / len(x)
    assert report.loc["RandomTargetReplacement", "transfer"] < 5 * chance
    assert report.loc["ReAlign", "transfer"] > 10 * chance


def test_outputs_are_the_held_out_substitutes(synthetic, tmp_path):
    target, source = synthetic
    report = gap_report(
        {"Re Align/1": ReAlign()}, source, target, metrics=["Delta_mu"], output_dir=tmp_path
    )
    test_index = np.load(tmp_path / "test_index.npy")
    assert len(test_index) == 150 and np.all(np.diff(test_index) > 0)
    substitutes = np.load(tmp_path / "Re_Align_1.npy")
    assert substitutes.shape == (150, 32) and substitutes.dtype == np.float32
    train = np.setdiff1d(np.arange(300), test_index)
    # ReAlign never uses the pairing, so fitting on the paired rows gives the same map.
    expected = ReAlign().fit(source[train], y=target[train]).transform(source[test_index])
    np.testing.assert_allclose(substitutes, expected, atol=1e-5)
    saved = pd.read_csv(tmp_path / "report.csv", index_col="aligner")
    assert saved.loc["Re Align/1", "Delta_mu"] == pytest.approx(report.iloc[0, 0])


def test_knn_sample_cap(synthetic):
    target, source = synthetic
    aligners = {"shift": CentroidShift()}
    knn = ["Omega_k", "M_k^Z", "Phi"]
    full = gap_report(aligners, source, target, metrics=knn, k=5, max_knn_pairs=None)
    capped_at_all = gap_report(aligners, source, target, metrics=knn, k=5, max_knn_pairs=150)
    sampled = gap_report(aligners, source, target, metrics=knn, k=5, max_knn_pairs=40)
    pd.testing.assert_frame_equal(full.drop(columns=["fit_seconds", "transform_seconds"]),
                                  capped_at_all.drop(columns=["fit_seconds", "transform_seconds"]))
    # Phi is not a k-NN measure: it always uses every held-out pair.
    assert sampled.loc["shift", "Phi"] == pytest.approx(full.loc["shift", "Phi"])
    assert sampled.loc["shift", "Omega_k"] != pytest.approx(full.loc["shift", "Omega_k"])


def test_approximate_neighbourhoods_are_close_to_exact():
    # 3,000 held-out pairs: enough rows for the approximate index to cut cells.
    target, source = make_modality_gap(6000, 64, random_state=1)
    aligners = {"identity": CentroidShift(alpha=0.0), "shift": CentroidShift()}
    columns = ["Omega_k", "M_k^Z", "M_k^X", "alignment_balance", "recall@5", "Phi"]
    exact = gap_report(aligners, source, target, metrics=columns, k=10, max_knn_pairs=None)
    approximate = gap_report(aligners, source, target, metrics=columns, k=10,
                             max_knn_pairs=None, knn="approximate")
    np.testing.assert_allclose(approximate[columns].to_numpy(), exact[columns].to_numpy(),
                               atol=0.02)
    with pytest.raises(ValueError, match="knn"):
        gap_report(aligners, source, target, metrics=columns, knn="fast")


def test_real_clip_centroid_gap_closes_and_negative_control_scores_zero(clip_pairs):
    target, source = clip_pairs
    report = gap_report(
        {
            "identity": CentroidShift(alpha=0.0),
            "CentroidShift": CentroidShift(),
            "ReAlign": ReAlign(),
            "RandomTargetReplacement": RandomTargetReplacement(random_state=0),
        },
        source,
        target,
        random_state=0,
    )
    assert report.loc["identity", "Delta_mu"] == pytest.approx(0.857, abs=0.03)
    assert report.loc["CentroidShift", "Delta_mu"] < 0.1
    assert report.loc["ReAlign", "Delta_mu"] < 0.1
    # Identity keeps the geometry but does not mix; the negative control mixes
    # but keeps no geometry: both score near zero, a real aligner does not.
    assert report.loc["identity", "alignment_balance"] < 0.1
    assert report.loc["RandomTargetReplacement", "Psi"] < 0.1
    assert report.loc["RandomTargetReplacement", "alignment_balance"] < 0.15
    assert report.loc["ReAlign", "alignment_balance"] > 0.3


class _Failing(_Recorder):
    def fit(self, X, y=None):
        raise ValueError("cannot fit\nthis data")


def test_a_failing_aligner_gives_a_nan_row_with_error_score(synthetic):
    target, source = synthetic
    aligners = {"broken": _Failing(), "shift": CentroidShift()}
    with pytest.warns(FitFailedWarning, match="broken failed.*cannot fit this data"):
        report = gap_report(aligners, source, target, metrics=CHEAP, error_score=np.nan)
    assert report.loc["broken"].isna().all()
    assert report.loc["shift"].notna().all()
    with pytest.raises(ValueError, match="cannot fit"):
        gap_report(aligners, source, target, metrics=CHEAP)


def test_a_failing_metric_gives_a_nan_cell(synthetic):
    target, source = synthetic
    # 10 sampled pairs cannot have 20 neighbours: Omega_k fails, Phi does not.
    with pytest.warns(FitFailedWarning, match="Omega_k of identity failed"):
        report = gap_report(
            {"identity": CentroidShift(alpha=0.0)}, source, target,
            metrics=["Phi", "Omega_k"], k=20, max_knn_pairs=10, error_score=-1.0,
        )
    assert report.loc["identity", "Omega_k"] == -1.0
    assert report.loc["identity", "Phi"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"metrics": ["Delta_mu", "nope"]}, "unknown metric"),
        ({"metrics": []}, "metrics is empty"),
        ({"aligners": {}}, "aligners is empty"),
        ({"target": np.ones((299, 32))}, "rows must be paired"),
        ({"target": np.ones((300, 8))}, "features"),
        ({"test_size": 0.999}, "fewer than 2"),
        ({"test_size": 1.5}, "test_size"),
    ],
)
def test_gap_report_bad_input(synthetic, kwargs, match):
    target, source = synthetic
    arguments = {"aligners": {"shift": CentroidShift()}, "source": source, "target": target}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gap_report(**arguments)


# -------------------------------------------------------------- cv_report
def _centroid_gap(estimator, X, y):
    substitutes = estimator.transform(X)
    return float(np.linalg.norm(_unit(substitutes).mean(0) - _unit(y).mean(0)))


def test_cv_report_undoes_neg_signs_and_sorts_by_refit(synthetic):
    target, source = synthetic
    scoring = {
        "neg_gap": lambda est, X, y: -_centroid_gap(est, X, y),
        "phi": lambda est, X, y: float(np.mean(np.sum(_unit(est.transform(X)) * _unit(X), 1))),
    }
    search = GridSearchCV(
        CentroidShift(), {"alpha": [0.0, 0.5, 1.0]}, cv=3, scoring=scoring, refit="neg_gap",
        return_train_score=True,
    ).fit(source, target)
    table = cv_report(search)
    results = search.cv_results_
    assert table.columns.tolist() == [
        "alpha", "gap", "gap_std", "gap_rank", "train_gap",
        "phi", "phi_std", "phi_rank", "train_phi", "fit_seconds", "score_seconds",
    ]
    # Sorted by the refit metric: the full shift closes the gap best.
    assert table["alpha"].tolist() == [1.0, 0.5, 0.0]
    order = np.argsort(results["rank_test_neg_gap"], kind="stable")
    np.testing.assert_allclose(table["gap"], -results["mean_test_neg_gap"][order])
    np.testing.assert_allclose(table["phi"], results["mean_test_phi"][order])
    assert (table["gap"] > 0).all() and (table["train_gap"] > 0).all()
    # Removing the gap moves substitutes away from their sources.
    assert table["phi"].iloc[0] < table["phi"].iloc[-1]


def test_cv_report_single_named_scorer():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=60)
    search = GridSearchCV(
        Ridge(), {"alpha": [0.1, 1000.0]}, cv=3, scoring="neg_mean_squared_error"
    ).fit(X, y)
    table = cv_report(search)
    assert "mean_squared_error" in table.columns
    np.testing.assert_allclose(
        np.sort(table["mean_squared_error"]), np.sort(-search.cv_results_["mean_test_score"])
    )
    assert table["alpha"].iloc[0] == 0.1


def test_cv_report_with_a_single_metric_gap_scorer(synthetic):
    target, source = synthetic
    search = GridSearchCV(
        CentroidShift(), {"alpha": [0.0, 1.0]}, cv=2,
        scoring=GapScorer("neg_centroid_discrepancy"),
    ).fit(source, target)
    table = cv_report(search)
    assert "centroid_discrepancy" in table.columns
    assert table["alpha"].tolist() == [1.0, 0.0]
    np.testing.assert_allclose(
        table["centroid_discrepancy"], -search.cv_results_["mean_test_score"][[1, 0]]
    )
    assert (table["centroid_discrepancy"] > 0).all()


def test_cv_report_with_a_multi_metric_gap_scorer(synthetic):
    target, source = synthetic
    search = GridSearchCV(
        CentroidShift(), {"alpha": [0.0, 0.5, 1.0]}, cv=2,
        scoring=GapScorer(("instance_consistency", "neg_centroid_discrepancy"), k=5),
        refit="instance_consistency",
    ).fit(source, target)
    table = cv_report(search)
    # Sorted by the refit metric: Phi is highest when nothing moves.
    assert table["alpha"].tolist() == [0.0, 0.5, 1.0]
    assert table["instance_consistency"].iloc[0] == pytest.approx(1.0)
    # Closing more of the gap leaves a smaller centroid discrepancy, with its sign undone.
    assert table["centroid_discrepancy"].is_monotonic_decreasing
    assert (table["centroid_discrepancy"] >= 0).all()


def test_cv_report_needs_a_fitted_search():
    with pytest.raises(NotFittedError):
        cv_report(GridSearchCV(CentroidShift(), {"alpha": [0.0, 1.0]}))


# --------------------------------------------------------------- diagnose
DIAGNOSE_KEYS = [
    "C_lambda", "O_q", "q_over_d", "G_mu", "G_Sigma", "D", "D_tilde",
    "residual_ratio", "A_r", "d_eff_over_d", "cos_tp",
]


def test_diagnose_on_real_clip_matches_the_independent_values(clip_pairs):
    target, source = clip_pairs
    table = diagnose(target, source, q=128)
    assert set(DIAGNOSE_KEYS) <= set(table.index)
    # Computed from the definitions by an independent implementation (issue 3).
    expected = {
        "G_mu": 0.851, "cos_tp": 0.310, "D": 1.174, "D_tilde": 0.805,
        "residual_ratio": 0.686, "A_r": 28.3, "d_eff_over_d": 0.152, "O_q": 0.367,
    }
    for key, value in expected.items():
        decimals = 1 if key == "A_r" else 3
        assert round(table[key], decimals) == pytest.approx(value), key
    assert table["q_over_d"] == 128 / 512
    assert table["residual_ratio"] == pytest.approx(table["D_tilde"] / table["D"])
    assert table["d_eff_over_d"] == pytest.approx(table["d_eff"] / 512)


def test_diagnose_invariances(synthetic):
    target, source = synthetic
    base = diagnose(target, source, q=8)
    rotation, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(32, 32)))
    rotated = diagnose(target @ rotation, source @ rotation, q=8)
    order = np.random.default_rng(2).permutation(len(target))
    permuted = diagnose(target[order], source[order], q=8)
    pd.testing.assert_series_equal(rotated, base, atol=1e-4, rtol=1e-4)
    pd.testing.assert_series_equal(permuted, base, atol=1e-4, rtol=1e-4)
    # Breaking the pairing changes only the paired quantities.
    shuffled = diagnose(target, source[order], q=8)
    unpaired = ["C_lambda", "O_q", "q_over_d", "G_mu", "G_Sigma", "gap_angle"]
    pd.testing.assert_series_equal(shuffled[unpaired], base[unpaired], atol=1e-4, rtol=1e-4)
    assert shuffled["cos_tp"] < base["cos_tp"] - 0.05
    assert shuffled["D"] > base["D"]


def test_diagnose_bad_input(synthetic):
    target, source = synthetic
    with pytest.raises(ValueError, match="q=400"):
        diagnose(target, source, q=400)
    with pytest.raises(ValueError, match="paired"):
        diagnose(target, source[:-5], q=8)
