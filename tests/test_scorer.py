"""GapScorer in scikit-learn's model selection, in both ways of passing the target."""

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate

from sklearn_modgap import C3, CentroidShift, MomentMatch, ReAlign
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.metrics import (
    GapScorer,
    alignment_balance,
    centroid_discrepancy,
    cross_modal_transfer,
    instance_consistency,
    modality_mixing,
    neighborhood_consistency,
    paired_distance,
    relative_geometry_consistency,
    residual_anisotropy,
    retrieval_recall,
    true_pair_cosine,
)


@pytest.fixture(scope="module")
def pairs():
    target, source = make_modality_gap(n_pairs=150, n_features=16, random_state=0)
    return target, source


@pytest.fixture(scope="module")
def fitted(pairs):
    target, source = pairs
    return CentroidShift(alpha=0.7).fit(source[:100], target[:100])


def test_single_metric_is_a_float_equal_to_the_metric(pairs, fitted):
    target, source = pairs
    X, y = source[100:], target[100:]
    value = GapScorer("alignment_balance", k=5)(fitted, X, y)
    assert isinstance(value, float)
    expected = alignment_balance(fitted.transform_target(y), X, fitted.transform(X), k=5)
    assert value == pytest.approx(expected)


def test_every_metric_by_name_with_neg_signs(pairs, fitted):
    target, source = pairs
    X, y = source[100:], target[100:]
    Z, T = fitted.transform(X), fitted.transform_target(y)
    mixing_z = modality_mixing(T, Z, k=5)
    mixing_x = modality_mixing(T, Z, k=5, direction="target")
    recall = retrieval_recall(T, Z, k=5)
    expected = {
        "alignment_balance": alignment_balance(T, X, Z, k=5),
        "modality_mixing": (mixing_z + mixing_x) / 2,
        "modality_mixing_substitute": mixing_z,
        "modality_mixing_target": mixing_x,
        "neg_centroid_discrepancy": -centroid_discrepancy(T, Z),
        "instance_consistency": instance_consistency(X, Z),
        "relative_geometry_consistency": relative_geometry_consistency(X, Z),
        "neighborhood_consistency": neighborhood_consistency(X, Z, k=5),
        "true_pair_cosine": true_pair_cosine(T, Z),
        "neg_paired_distance": -paired_distance(T, Z),
        "neg_residual_anisotropy": -residual_anisotropy(T, Z, centered=False),
        "neg_residual_anisotropy_centered": -residual_anisotropy(T, Z),
        "cross_modal_transfer": cross_modal_transfer(T, X, Z),
        "retrieval_recall@5": (
            recall["target_to_substitute_recall@5"] + recall["substitute_to_target_recall@5"]
        ) / 2,
    }
    scores = GapScorer(tuple(expected), k=5)(fitted, X, y)
    assert list(scores) == list(expected)
    for name, value in expected.items():
        assert scores[name] == pytest.approx(value), name
    assert scores["neg_centroid_discrepancy"] < 0


def test_transforms_each_side_once(pairs, fitted):
    target, source = pairs
    calls = {"transform": 0, "transform_target": 0}

    class Counting(CentroidShift):
        def transform(self, X):
            calls["transform"] += 1
            return super().transform(X)

        def transform_target(self, X):
            calls["transform_target"] += 1
            return super().transform_target(X)

    aligner = Counting().fit(source[:100], target[:100])
    GapScorer(("alignment_balance", "true_pair_cosine", "modality_mixing"), k=5)(
        aligner, source[100:], target[100:]
    )
    assert calls == {"transform": 1, "transform_target": 1}


def test_bad_names_and_missing_data_are_clear_errors(pairs, fitted):
    target, source = pairs
    with pytest.raises(ValueError, match="request it as 'neg_centroid_discrepancy'"):
        GapScorer("centroid_discrepancy")
    with pytest.raises(ValueError, match="Unknown metric 'balance'"):
        GapScorer(("balance",))
    with pytest.raises(ValueError, match="duplicates"):
        GapScorer(("alignment_balance", "alignment_balance"))
    with pytest.raises(ValueError, match="needs target rows"):
        GapScorer("alignment_balance", k=5)(fitted, source[100:])
    with pytest.raises(ValueError, match="needs true pairs"):
        GapScorer("true_pair_cosine")(fitted, source[100:], target[90:])
    with pytest.raises(TypeError, match="with a transform method; object has none"):
        GapScorer("instance_consistency")(object(), source[100:])
    # Source-only metrics need no target at all.
    assert GapScorer("instance_consistency")(fitted, source[100:]) > 0


def test_grid_search_refits_by_name_on_held_out_pairs(pairs):
    target, source = pairs
    scorer = GapScorer(("neg_centroid_discrepancy", "alignment_balance"), k=5)
    search = GridSearchCV(
        CentroidShift(), {"alpha": [0.0, 0.5, 1.0]}, scoring=scorer,
        refit="neg_centroid_discrepancy", cv=3,
    )
    search.fit(source, target)
    assert search.best_params_ == {"alpha": 1.0}
    discrepancy = -search.cv_results_["mean_test_neg_centroid_discrepancy"]
    assert np.all(np.diff(discrepancy) < 0)
    assert "mean_test_alignment_balance" in search.cv_results_


@pytest.mark.parametrize("aligner", [C3(random_state=0), ReAlign(), MomentMatch()])
def test_grid_search_over_the_closed_form_aligners(pairs, aligner):
    target, source = pairs
    scorer = GapScorer(("alignment_balance", "true_pair_cosine"), k=5)
    search = GridSearchCV(aligner, {"alpha": [0.0, 1.0]}, scoring=scorer,
                          refit="alignment_balance", cv=3, error_score="raise")
    search.fit(source, target)
    balance = search.cv_results_["mean_test_alignment_balance"]
    # alpha=0 keeps the gap: the two modalities do not mix and the balance is low.
    assert balance[1] > balance[0]
    assert search.best_params_ == {"alpha": 1.0}


def test_cross_validate_and_cross_val_score(pairs):
    target, source = pairs
    scores = cross_validate(
        ReAlign(), source, target, cv=3,
        scoring=GapScorer(("alignment_balance", "neg_centroid_discrepancy"), k=5),
    )
    assert scores["test_alignment_balance"].shape == (3,)
    assert np.all(scores["test_neg_centroid_discrepancy"] <= 0)
    single = cross_val_score(ReAlign(), source, target, cv=3,
                             scoring=GapScorer("alignment_balance", k=5))
    np.testing.assert_allclose(single, scores["test_alignment_balance"])


@pytest.fixture(scope="module")
def stacked(pairs):
    target, source = pairs
    X = np.vstack([source[:90], target[:60]])
    domain = np.r_[np.ones(90, dtype=int), -np.ones(60, dtype=int)]
    order = np.random.default_rng(0).permutation(len(X))
    return X[order], domain[order]


def test_stacked_mode_routes_sample_domain_to_the_scorer(stacked):
    X, domain = stacked
    scorer = GapScorer(("alignment_balance", "neg_centroid_discrepancy"), k=5)
    cv = KFold(4, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(CentroidShift(), {"alpha": [0.0, 1.0]}, scoring=scorer,
                              refit="alignment_balance", cv=cv, error_score="raise")
        search.fit(X, sample_domain=domain)
        folds = cross_validate(CentroidShift(), X, scoring=scorer, cv=cv,
                               params={"sample_domain": domain})
    assert search.best_params_ == {"alpha": 1.0}
    # Every fold by hand: fit on the training rows, score the held-out rows.
    counts = set()
    for fold, (train, test) in enumerate(cv.split(X)):
        aligner = CentroidShift().fit(X[train], sample_domain=domain[train])
        source, target = X[test][domain[test] >= 0], X[test][domain[test] < 0]
        counts.add((len(source), len(target)))
        expected = alignment_balance(aligner.transform_target(target), source,
                                     aligner.transform(source), k=5)
        assert folds["test_alignment_balance"][fold] == pytest.approx(expected)
    assert len(counts) > 1
    assert any(n_source != n_target for n_source, n_target in counts)


def test_stacked_mode_has_no_pairs(stacked):
    X, domain = stacked
    aligner = CentroidShift().fit(X, sample_domain=domain)
    with pytest.raises(ValueError, match="stacked input with sample_domain carries no pairs"):
        GapScorer("true_pair_cosine")(aligner, X, sample_domain=domain)


def test_metadata_request_can_be_switched_off(stacked):
    X, domain = stacked
    scorer = GapScorer("alignment_balance", k=5)
    assert scorer.get_metadata_routing().score.requests == {"sample_domain": True}
    scorer.set_score_request(sample_domain=False)
    assert scorer.get_metadata_routing().score.requests == {"sample_domain": False}
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(ValueError, match="needs target rows"):
            cross_validate(CentroidShift(), X, scoring=scorer, cv=3, error_score="raise",
                           params={"sample_domain": domain})
