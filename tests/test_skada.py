"""The aligners inside skada: its pipeline, its domain-aware scorers and splitters.

skada's convention for stacked rows: ``sample_domain >= 0`` marks source rows
(labelled), ``< 0`` target rows (labels masked).  Here the source is the
modality the aligner maps (images), the target the modality it maps onto.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import sklearn

_CONFIG_BEFORE_SKADA = sklearn.get_config()
skada = pytest.importorskip("skada")

from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_validate  # noqa: E402
from skada import make_da_pipeline  # noqa: E402
from skada.datasets import DomainAwareDataset  # noqa: E402
from skada.metrics import ImportanceWeightedScorer, PredictionEntropyScorer  # noqa: E402
from skada.model_selection import LeaveOneDomainOut, SourceTargetShuffleSplit  # noqa: E402

from sklearn_modgap import (  # noqa: E402
    SSP,
    C3,
    AnisoAlign,
    CentroidShift,
    MomentMatch,
    RandomTargetReplacement,
    ReAlign,
)
from sklearn_modgap.aniso import PhasePrior, Refiner  # noqa: E402
from sklearn_modgap.datasets import make_modality_gap  # noqa: E402

# Importing skada switched scikit-learn's metadata routing on for the whole
# process (collection imports every test module): the other modules test
# the package without it, and this one switches it on for its own tests.
sklearn.set_config(**_CONFIG_BEFORE_SKADA)


@pytest.fixture(autouse=True)
def metadata_routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield

N_PAIRS = 300

ALIGNERS = [
    CentroidShift(),
    C3(random_state=0),
    ReAlign(),
    MomentMatch(),
    RandomTargetReplacement(random_state=0),
    SSP(),
    AnisoAlign(
        rank=4,
        random_state=0,
        prior=PhasePrior(module__hidden_units=8, max_epochs=1, batch_size=128),
        refiner=Refiner(module__hidden_units=8, max_epochs=1, batch_size=128),
        device="cpu",
    ),
]
IDS = [type(aligner).__name__ for aligner in ALIGNERS]


@pytest.fixture(scope="module")
def stacked():
    """Images (source, labelled) then texts (target), with a label both modalities carry."""
    target, source = make_modality_gap(n_pairs=N_PAIRS, n_features=16, random_state=0)
    # The class of a pair is the side of a direction both modalities share,
    # so a classifier trained on mapped images can read it off the texts.
    direction = np.linalg.svd(np.vstack([source - source.mean(0), target - target.mean(0)]))[2][0]
    labels = (source @ direction + target @ direction > 0).astype(int)
    X = np.vstack([source, target])
    y = np.r_[labels, labels]
    sample_domain = np.r_[np.ones(N_PAIRS, dtype=int), -np.ones(N_PAIRS, dtype=int)]
    return X, y, sample_domain, source, target, labels


@pytest.mark.parametrize("aligner", ALIGNERS, ids=IDS)
def test_da_pipeline_maps_source_rows_and_sends_target_rows_through_transform_target(aligner, stacked):
    X, y, sample_domain, source, target, labels = stacked
    pipe = make_da_pipeline(clone(aligner), LogisticRegression())
    pipe.fit(X, y, sample_domain=sample_domain)
    fitted = pipe.steps[0][1].base_estimator_

    # The aligner saw the stacked rows as skada splits them: the same fit as
    # on the two samples apart.
    alone = clone(aligner).fit(source, y=target)
    np.testing.assert_allclose(fitted.transform(source), alone.transform(source), atol=1e-5)

    # Source rows through the map, target rows through transform_target, in
    # the input's row order.
    Z = pipe[:-1].transform(X, sample_domain=sample_domain)
    np.testing.assert_allclose(Z[:N_PAIRS], fitted.transform(source), atol=1e-6)
    np.testing.assert_allclose(Z[N_PAIRS:], fitted.transform_target(target), atol=1e-6)
    if not isinstance(aligner, (C3, RandomTargetReplacement)):
        # (Their draws follow the row's position, not the row.)
        shuffled = np.random.default_rng(0).permutation(2 * N_PAIRS)
        np.testing.assert_allclose(
            pipe[:-1].transform(X[shuffled], sample_domain=sample_domain[shuffled]),
            Z[shuffled],
            atol=1e-6,
        )

    # The classifier learned on the mapped, labelled source rows only (skada
    # masks the target labels), and predicts target rows from their
    # transform_target.
    classifier = pipe.steps[-1][1].base_estimator_
    reference = LogisticRegression().fit(fitted.transform(source), labels)
    np.testing.assert_allclose(classifier.coef_, reference.coef_, rtol=1e-4, atol=1e-6)
    predicted = pipe.predict(target, sample_domain=-np.ones(N_PAIRS, dtype=int))
    np.testing.assert_array_equal(predicted, reference.predict(fitted.transform_target(target)))


def test_target_rows_without_sample_domain_are_source_rows(stacked):
    """The package's convention, which skada's auto-target one does not override."""
    X, y, sample_domain, source, target, _ = stacked
    pipe = make_da_pipeline(ReAlign(), LogisticRegression()).fit(X, y, sample_domain=sample_domain)
    fitted = pipe.steps[0][1].base_estimator_
    np.testing.assert_allclose(pipe[:-1].transform(target), fitted.transform(target), atol=1e-6)
    assert np.abs(fitted.transform(target) - fitted.transform_target(target)).max() > 0.1


def _score_range_ok(scores, low, high):
    return np.all(np.isfinite(scores)) and np.all(scores >= low) and np.all(scores <= high)


@pytest.mark.parametrize("aligner", ALIGNERS[:-1], ids=IDS[:-1])
def test_prediction_entropy_with_source_target_shuffle_split(aligner, stacked):
    X, y, sample_domain, *_ = stacked
    pipe = make_da_pipeline(clone(aligner), LogisticRegression())
    result = cross_validate(
        pipe, X, y, params={"sample_domain": sample_domain},
        cv=SourceTargetShuffleSplit(n_splits=2, random_state=0),
        scoring=PredictionEntropyScorer(), error_score="raise",
    )
    # Minus the mean entropy of two-class predictions: in [-log 2, 0].
    assert _score_range_ok(result["test_score"], -np.log(2), 0.0)


def test_importance_weighted_scorer_matches_its_definition(stacked):
    X, y, sample_domain, source, target, labels = stacked
    pipe = make_da_pipeline(
        ReAlign(), LogisticRegression().set_score_request(sample_weight=True)
    ).fit(X, y, sample_domain=sample_domain)
    score = ImportanceWeightedScorer()(pipe, X, y, sample_domain=sample_domain)
    # The weighted accuracy on the labelled source rows, weights w_i >= 0
    # summing to one: a number in [0, 1], 1 only if every weighted row is right.
    assert 0.0 <= score <= 1.0
    accuracy = np.mean(pipe.predict(source, sample_domain=np.ones(N_PAIRS, dtype=int)) == labels)
    assert accuracy > 0.8
    result = cross_validate(
        make_da_pipeline(ReAlign(), LogisticRegression().set_score_request(sample_weight=True)),
        X, y, params={"sample_domain": sample_domain},
        cv=SourceTargetShuffleSplit(n_splits=2, random_state=0),
        scoring=ImportanceWeightedScorer(), error_score="raise",
    )
    assert _score_range_ok(result["test_score"], 0.0, 1.0)


def test_grid_search_over_an_aligner_in_a_da_pipeline(stacked):
    X, y, sample_domain, *_ = stacked
    search = GridSearchCV(
        make_da_pipeline(ReAlign(), LogisticRegression()),
        {"realign__alpha": [0.0, 0.5, 1.0]},
        cv=SourceTargetShuffleSplit(n_splits=2, random_state=0),
        scoring=PredictionEntropyScorer(), error_score="raise",
    ).fit(X, y, sample_domain=sample_domain)
    assert len(search.cv_results_["mean_test_score"]) == 3
    assert _score_range_ok(search.cv_results_["mean_test_score"], -np.log(2), 0.0)
    assert search.best_estimator_.steps[0][1].base_estimator_.alpha == search.best_params_["realign__alpha"]


# skada's pack_lodo passes its own deprecated return_X_y on to pack.
@pytest.mark.filterwarnings("ignore:The `return_X_y` parameter is deprecated:DeprecationWarning")
def test_leave_one_domain_out_maps_each_modality_onto_the_other(stacked):
    _, _, _, source, target, labels = stacked
    # Each modality once as a labelled source and once as the target.
    dataset = DomainAwareDataset([(source, labels, "images"), (target, labels, "texts")])
    X, y, sample_domain = dataset.pack_lodo()
    splits = list(LeaveOneDomainOut(random_state=0).split(X, y, sample_domain))
    assert len(splits) == 2
    for train, test in splits:
        # One modality's rows as the source, the other's as the target, both sides.
        assert set(np.sign(sample_domain[train])) == {-1, 1}
        assert len(set(np.abs(sample_domain[train]))) == 2
    result = cross_validate(
        make_da_pipeline(CentroidShift(), LogisticRegression()),
        X, y, params={"sample_domain": sample_domain},
        cv=LeaveOneDomainOut(random_state=0),
        scoring=PredictionEntropyScorer(), error_score="raise",
    )
    assert result["test_score"].shape == (2,)
    assert _score_range_ok(result["test_score"], -np.log(2), 0.0)


_CONFIG = """
import json, sys
import sklearn
steps = [sklearn.get_config()]
for name in sys.argv[1:]:
    __import__(name)
    steps.append(sklearn.get_config())
print(json.dumps([
    sorted(key for key in before if before[key] != after.get(key)) + sorted(set(after) - set(before))
    for before, after in zip(steps, steps[1:])
]))
"""


def _config_changes(*modules):
    """For each import in turn, the names of the configuration keys it changed."""
    out = subprocess.run(
        [sys.executable, "-c", _CONFIG, *modules], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_imports_leave_sklearn_config_as_it_was():
    # skada switches metadata routing on when imported (its pipelines route
    # sample_domain); the package itself changes nothing, before or after it.
    assert _config_changes("sklearn_modgap", "skada") == [[], ["enable_metadata_routing"]]
    assert _config_changes("skada", "sklearn_modgap") == [["enable_metadata_routing"], []]
