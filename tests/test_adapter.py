"""ContrastiveAdapter: paired training, schedules, reproducibility and the frontier on CLIP."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV

from conftest import load_real
from sklearn_modgap import ContrastiveAdapter
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.metrics import centroid_gap, distribution_gap
from sklearn_modgap.nets import AdapterNet, CompromiseCurriculum, resolve_device


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny matrices: one intra-op thread is faster than two that contend."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pairs():
    target, source = make_modality_gap(n_pairs=96, n_features=16, random_state=0)
    return target, source


def _adapter(**params):
    net = params.pop("net", AdapterNet(max_epochs=3, batch_size=32))
    return ContrastiveAdapter(net=net, random_state=0, device="cpu", **params)


def _unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def test_fit_needs_paired_rows_of_equal_count(pairs):
    target, source = pairs
    with pytest.raises(ValueError, match="y is None: pass the paired target rows"):
        _adapter().fit(source)
    with pytest.raises(ValueError, match="needs y to be 2-D, got a 1-D array"):
        _adapter().fit(source, y=np.arange(len(source)))
    with pytest.raises(ValueError, match="source has 96 rows but the target has 95"):
        _adapter().fit(source, y=target[:95])


def test_heads_start_at_the_identity(pairs):
    target, source = pairs
    adapter = _adapter(net=AdapterNet(max_epochs=2, batch_size=32, lr=0.0)).fit(source, y=target)
    np.testing.assert_allclose(adapter.transform(source), _unit(source), atol=1e-6)
    np.testing.assert_allclose(adapter.transform_target(target), _unit(target), atol=1e-6)


@pytest.mark.parametrize("objective", ["tpc-cma", "atp-cu", "infonce"])
def test_training_moves_both_heads_and_outputs_unit_rows(pairs, objective):
    target, source = pairs
    adapter = _adapter(objective=objective, alpha_target=0.5).fit(source, y=target)
    substitutes, aligned = adapter.transform(source), adapter.transform_target(target)
    np.testing.assert_allclose(np.linalg.norm(substitutes, axis=1), 1.0, atol=1e-5)
    assert np.abs(substitutes - _unit(source)).max() > 1e-3
    assert np.abs(aligned - _unit(target)).max() > 1e-3
    assert adapter.loss_curve_.shape == (3,)
    assert adapter.device_ == "cpu"


def test_infonce_lowers_the_training_loss(pairs):
    target, source = pairs
    adapter = _adapter(objective="infonce", net=AdapterNet(max_epochs=8, batch_size=96))
    adapter.fit(source, y=target)
    assert adapter.loss_curve_[-1] < adapter.loss_curve_[0] - 0.05


def test_curriculum_anchors_ramps_and_stabilises(pairs):
    target, source = pairs
    # 96 pairs in batches of 32: 3 steps per epoch, 30 steps: anchor 6, ramp 15, stabilise 9.
    for gate in ("balance", "rise"):
        adapter = _adapter(alpha_target=0.3, ramp_gate=gate, net=AdapterNet(max_epochs=10, batch_size=32))
        adapter.fit(source, y=target)
        alphas = np.concatenate([epoch for epoch in adapter.net_.history[:, "batches", :, "alpha"]])
        assert alphas.shape == (30,)
        np.testing.assert_array_equal(alphas[:6], 0.0)
        assert np.all(np.diff(alphas) >= 0)
        assert 0 < alphas[6] < 0.3
        # No jump at the end of the ramp: the last ramp step adds under a third.
        assert alphas[21] - alphas[20] < 0.1
        np.testing.assert_allclose(alphas[21:], 0.3)
        assert adapter.net_.criterion_.alpha == pytest.approx(0.3)


def test_rise_gate_pauses_while_the_contrastive_loss_rises_and_catches_up_after():
    curriculum = CompromiseCurriculum(alpha_target=0.5, tolerance=0.05, gate="rise")
    curriculum.anchor_end_, curriculum.ramp_end_ = 2, 6
    curriculum.step_, curriculum.alpha_ = 3, 0.0

    curriculum.fast_, curriculum.slow_ = 1.0, 1.0  # flat loss: the full base rate 0.5 / 3
    assert curriculum._next_alpha() == pytest.approx(0.5 / 3)
    curriculum.fast_ = 1.1  # 10% rise, above the 5% tolerance: paused
    assert curriculum._next_alpha() == 0.0
    curriculum.fast_ = 1.025  # half the tolerance: half the base rate
    assert curriculum._next_alpha() == pytest.approx(0.5 * 0.5 / 3)

    curriculum.step_, curriculum.fast_ = 4, 1.0  # one step later, nothing gained: catch-up rate
    assert curriculum._next_alpha() == pytest.approx(0.5 / 2)
    curriculum.step_, curriculum.alpha_ = 6, 0.1  # stabilise at the target whatever was reached
    assert curriculum._next_alpha() == 0.5
    curriculum.step_ = 1
    assert curriculum._next_alpha() == 0.0


def test_balance_gate_slows_while_the_loss_falls_and_speeds_when_balanced():
    curriculum = CompromiseCurriculum(alpha_target=0.5, tolerance=0.05)
    assert curriculum.gate == "balance" and curriculum.max_speedup == 2.0
    curriculum.anchor_end_, curriculum.ramp_end_ = 2, 12
    curriculum.step_, curriculum.alpha_ = 2, 0.0
    base = 0.5 / 10

    assert curriculum.falling_gate == 0.5
    curriculum.fast_, curriculum.slow_ = 1.0, 1.0  # balanced: twice the base rate
    assert curriculum._next_alpha() == pytest.approx(2 * base)
    curriculum.fast_ = 0.975  # falling by half the tolerance: 0.5 + 1.5 * 0.5 = 1.25
    assert curriculum._next_alpha() == pytest.approx(1.25 * base)
    curriculum.fast_ = 0.9  # still falling fast: slowed to half the base rate
    assert curriculum._next_alpha() == pytest.approx(0.5 * base)
    curriculum.fast_ = 1.025  # rising by half the tolerance: 2 * 0.5 = the base rate
    assert curriculum._next_alpha() == pytest.approx(base)
    curriculum.fast_ = 1.1  # rising fast: paused
    assert curriculum._next_alpha() == 0.0
    # One step left, 0.05 to go: twice that would overshoot, so it stops at the target.
    curriculum.step_, curriculum.fast_, curriculum.alpha_ = 11, 1.0, 0.45
    assert curriculum._next_alpha() == 0.5


def test_unknown_gate_is_an_error(pairs):
    target, source = pairs
    net = AdapterNet(max_epochs=1, callbacks=[("c", CompromiseCurriculum(gate="fast"))])
    with pytest.raises(ValueError, match="gate must be 'balance' or 'rise'"):
        _adapter(objective="infonce", net=net).fit(source, y=target)


def test_atp_cu_follows_the_seed_schedules(pairs):
    target, source = pairs
    adapter = _adapter(objective="atp-cu", net=AdapterNet(max_epochs=10, batch_size=96))
    adapter.fit(source, y=target)
    history = adapter.net_.history
    atp = [epoch[0] for epoch in history[:, "batches", :, "atp_scale"]]
    cu = [epoch[0] for epoch in history[:, "batches", :, "cu_scale"]]
    # Progress p = 0, 0.1, ..., 0.9 over the ten single-batch epochs.
    np.testing.assert_allclose(atp, [1, 1, 1, 1, 1, 1, 1.2, 1.4, 1.6, 1.8])
    np.testing.assert_allclose(cu, [1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0, 0, 0], atol=1e-12)


def test_deterministic_and_pickle_round_trip(pairs):
    target, source = pairs
    first = _adapter(head="mlp").fit(source, y=target)
    second = _adapter(head="mlp").fit(source, y=target)
    np.testing.assert_array_equal(first.transform(source), second.transform(source))
    other = _adapter(head="mlp").set_params(random_state=1).fit(source, y=target)
    assert not np.array_equal(first.transform(source), other.transform(source))

    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(restored.transform(source), first.transform(source))
    np.testing.assert_array_equal(restored.transform_target(target), first.transform_target(target))


def test_dtype_stacked_mode_and_pandas(pairs):
    target, source = pairs
    adapter = _adapter().fit(source, y=target)
    assert adapter.transform(source.astype(np.float32)).dtype == np.float32
    assert adapter.transform(source.astype(np.float64)).dtype == np.float64
    np.testing.assert_array_equal(adapter.fit_transform(source, target), adapter.transform(source))

    stacked = np.vstack([source, target])
    domain = np.r_[np.zeros(len(source)), -np.ones(len(target))]
    from_stacked = _adapter().fit(stacked, sample_domain=domain)
    np.testing.assert_array_equal(from_stacked.transform(source), adapter.transform(source))

    names = [f"f{j}" for j in range(source.shape[1])]
    frame = pd.DataFrame(source, columns=names)
    out = _adapter().set_output(transform="pandas").fit(frame, y=target).transform(frame)
    assert list(out.columns) == names


def test_permuting_whole_pairs_changes_nothing_but_breaking_them_does(pairs):
    target, source = pairs
    full_batch = {"net": AdapterNet(max_epochs=4, batch_size=96), "objective": "infonce"}
    reference = _adapter(**full_batch).fit(source, y=target).transform(source)
    order = np.random.default_rng(0).permutation(len(source))
    permuted = _adapter(**full_batch).fit(source[order], y=target[order]).transform(source)
    np.testing.assert_allclose(permuted, reference, atol=1e-5)
    broken = _adapter(**full_batch).fit(source, y=target[order]).transform(source)
    assert np.abs(broken - reference).max() > 1e-3


def test_net_options_are_searchable_and_the_given_net_is_not_fitted(pairs):
    target, source = pairs
    net = AdapterNet(max_epochs=1, batch_size=32)
    search = GridSearchCV(
        ContrastiveAdapter(net=net, random_state=0), {"net__lr": [0.0, 1e-2]}, cv=2
    )
    search.fit(source, target)
    assert search.best_params_["net__lr"] in (0.0, 1e-2)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert not hasattr(net, "module_")
    assert search.best_estimator_.net_.lr == search.best_params_["net__lr"]
    assert search.best_estimator_.device_ == resolve_device("auto")


def test_real_clip_gap_shrinks_as_alpha_target_grows():
    target, source = load_real("clip")
    order = np.random.default_rng(0).permutation(len(target))
    train, test = order[: len(order) // 2], order[len(order) // 2 :]
    centroid, distribution = [], []
    for alpha_target in (0.0, 0.1, 0.5):
        adapter = ContrastiveAdapter(
            alpha_target=alpha_target,
            temperature=0.05,
            net=AdapterNet(max_epochs=12, batch_size=64, lr=3e-4),
            device="cpu",
            random_state=0,
        ).fit(source[train], y=target[train])
        substitutes = adapter.transform(source[test])
        aligned = adapter.transform_target(target[test])
        centroid.append(centroid_gap(aligned, substitutes))
        distribution.append(distribution_gap(aligned, substitutes))
    assert centroid[0] > centroid[1] > centroid[2]
    assert distribution[0] > distribution[2]
    assert centroid[2] < 0.75 * centroid_gap(target[test], source[test])


@pytest.mark.parametrize(
    "objective, temperature, expected",
    [("atp-cu", None, 0.1), ("tpc-cma", None, 0.07), ("infonce", None, 0.07), ("atp-cu", 0.07, 0.07)],
)
def test_default_temperature_is_each_objectives_published_one(objective, temperature, expected):
    # The official ModGap configuration trains ATP + CU at a fixed 0.1.
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(16, 4))
    adapter = ContrastiveAdapter(
        objective=objective,
        temperature=temperature,
        net=AdapterNet(max_epochs=1, batch_size=8),
        device="cpu",
        random_state=0,
    ).fit(rows, y=rows + 0.1)
    assert adapter.net_.criterion_.temperature == pytest.approx(expected)
    assert adapter.temperature is temperature


def test_learned_temperature_starts_at_the_fixed_value_and_moves(pairs):
    target, source = pairs
    fixed = _adapter(temperature=0.2, net=AdapterNet(max_epochs=3, batch_size=32, lr=1e-2))
    fixed.fit(source, y=target)
    assert fixed.temperature_ == pytest.approx(0.2)
    assert not any("log_temperature" in name for name, _ in fixed.net_.get_all_learnable_params())

    learned = _adapter(
        temperature=0.2, learn_temperature=True, net=AdapterNet(max_epochs=3, batch_size=32, lr=1e-2)
    )
    criterion = learned.fit(source, y=target).net_.criterion_
    assert criterion.initial_temperature == 0.2
    # The optimiser holds the log-temperature and moved it.
    assert any("log_temperature" in name for name, _ in learned.net_.get_all_learnable_params())
    assert learned.temperature_ == pytest.approx(float(criterion.log_temperature.exp()))
    assert abs(learned.temperature_ - 0.2) > 1e-4


def test_learn_temperature_is_refused_outside_tpc_cma(pairs):
    target, source = pairs
    with pytest.raises(ValueError, match="only available with objective='tpc-cma'"):
        _adapter(objective="atp-cu", learn_temperature=True).fit(source, y=target)


def test_reweighting_and_gate_reach_the_criterion_and_curriculum(pairs):
    target, source = pairs
    default = _adapter(alpha_target=0.3).fit(source, y=target)
    assert default.net_.criterion_.reweighting == "hadamard"
    assert dict(default.net_.callbacks_)["curriculum"].gate == "balance"
    earlier = _adapter(alpha_target=0.3, reweighting="log_additive", ramp_gate="rise")
    earlier.fit(source, y=target)
    assert earlier.net_.criterion_.reweighting == "log_additive"
    assert dict(earlier.net_.callbacks_)["curriculum"].gate == "rise"
    assert not np.allclose(earlier.loss_curve_, default.loss_curve_)
