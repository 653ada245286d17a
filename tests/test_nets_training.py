"""The one training base of the nets: each net fits on its own, seeded, with its loss in get_loss."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn_modgap.aniso import PhasePrior, Refiner  # noqa: E402
from sklearn_modgap.aniso._prior import PhaseField  # noqa: E402
from sklearn_modgap.aniso._refiner import RefinementObjective  # noqa: E402
from sklearn_modgap.nets import AdapterNet, SeededNet  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402

from conftest import FakeTerminal  # noqa: E402

N_BLOCKS = 2


def _field():
    strength = np.array([[0.0, 0.5], [0.5, 0.0]])
    return PhaseField(
        mean_phase=np.array([0.3, -1.0]),
        block_weight=np.array([0.6, 0.4]),
        resultant=np.array([0.8, 0.5]),
        coupling=np.array([[1.0, 0.5], [0.5, 1.0]]),
        offset=np.array([[0.0, 0.2], [-0.2, 0.0]]),
        strength=strength,
        drift_step=None,
        device="cpu",
    )


def _rows(n=64, n_complement=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "phase": rng.uniform(-np.pi, np.pi, (n, N_BLOCKS)).astype(np.float32),
        "log_radius": rng.standard_normal((n, N_BLOCKS)).astype(np.float32),
        "complement": rng.standard_normal((n, n_complement)).astype(np.float32),
        "radius": rng.uniform(0.1, 1.0, (n, N_BLOCKS)).astype(np.float32),
    }


def _refiner(**params):
    objective = RefinementObjective(
        prior=None, field=_field(), noise_range=(0.05, 1.5), radius_scale=1.0,
        prior_weight=0.0, phase_weight=0.0, fidelity_weight=1.0, phase_loss="relative",
    )
    return Refiner(
        objective=objective, module__n_blocks=N_BLOCKS, module__n_complement=3,
        module__bound_theta=0.5, module__bound_radius=0.3, module__bound_complement=0.2,
        max_epochs=3, random_state=0, **params,
    )


def test_all_three_nets_share_the_training_base():
    for net in (PhasePrior, Refiner, AdapterNet):
        assert issubclass(net, SeededNet)
        assert "step_loss" not in vars(net) and "train_step_single" not in vars(net)


def test_a_refiner_fits_on_its_own_and_its_updates_stay_in_their_bounds():
    refiner = _refiner().fit(_rows())
    assert len(refiner.history) >= 1
    X = {key: torch.as_tensor(value) for key, value in _rows(seed=1).items()}
    with torch.no_grad():
        _, updates = refiner.refine(X["phase"], X["log_radius"], X["complement"], 1.0)
    for update, bound in zip(updates, (0.5, 0.3, 0.2)):
        assert float(update.abs().max()) <= bound
    # The output layer starts at zero: the fidelity loss alone keeps the updates at zero.
    assert refiner.history[0, "train_loss"] == pytest.approx(0.0, abs=1e-12)


def test_the_refiner_loss_is_the_weighted_sum_of_its_terms():
    refiner = _refiner().set_params(objective=RefinementObjective(
        prior=None, field=_field(), noise_range=(0.05, 1.5), radius_scale=1.0,
        prior_weight=0.0, phase_weight=2.0, fidelity_weight=0.0, phase_loss="moments",
    ))
    refiner.initialize()
    X = {key: torch.as_tensor(value) for key, value in _rows().items()}
    with torch.no_grad():
        loss = refiner.get_loss(refiner.forward_batch(X, training=False), X=X)
        # An untrained refiner returns its input, so L^Phi is the moment mismatch of the input phases.
        expected = 2.0 * float(_field().moment_mismatch(X["phase"]))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_a_prior_fits_on_its_own_deterministically():
    rows = {key: value for key, value in _rows(n=96).items() if key in ("phase", "log_radius")}

    def fitted(seed):
        prior = PhasePrior(phase_field=_field(), module__n_blocks=N_BLOCKS, module__hidden_units=8,
                           max_epochs=3, random_state=seed)
        return np.asarray(prior.fit(rows).history[:, "valid_loss"])

    np.testing.assert_array_equal(fitted(0), fitted(0))
    assert not np.array_equal(fitted(0), fitted(1))


def test_a_net_without_its_loss_inputs_says_what_it_needs():
    with pytest.raises(ValueError, match="Refiner needs objective"):
        Refiner(module__n_blocks=N_BLOCKS, module__n_complement=3, max_epochs=1).fit(_rows())
    with pytest.raises(ValueError, match="PhasePrior needs phase_field"):
        PhasePrior(module__n_blocks=N_BLOCKS, max_epochs=1).fit(
            {key: _rows()[key] for key in ("phase", "log_radius")}
        )


def test_torch_threads_are_restored_after_fit():
    before = torch.get_num_threads()
    _refiner(torch_threads=1).fit(_rows())
    assert torch.get_num_threads() == before


def test_batches_join_a_too_short_tail_and_cover_every_row_once():
    from sklearn_modgap.nets import Batches

    # 257 rows in batches of 64: four batches, the one-row tail joins the last.
    pairs = Batches(257, 64, min_rows=2)
    assert [len(batch) for batch in pairs] == [64, 64, 64, 65] and len(pairs) == 4
    # A tail long enough is its own batch; min_rows=1 keeps even one row.
    assert [len(batch) for batch in Batches(300, 64, min_rows=2)] == [64, 64, 64, 64, 44]
    assert [len(batch) for batch in Batches(257, 64)] == [64, 64, 64, 64, 1]
    assert [len(batch) for batch in Batches(257, 64, drop_last=True)] == [64, 64, 64, 64]
    # A single short batch stays: there is nothing to join it to.
    assert [len(batch) for batch in Batches(1, 64, min_rows=2)] == [1]
    assert list(Batches(0, 64)) == []
    assert [batch for batch in Batches(5, 2)] == [[0, 1], [2, 3], [4]]


def test_seeded_batches_permute_differently_each_epoch_and_reproducibly():
    import torch

    from sklearn_modgap.nets import Batches

    batches = Batches(100, 30, shuffle=True, seed=3)
    first, second = [sum(batch, []) for batch in (list(batches), list(batches))]
    assert sorted(first) == sorted(second) == list(range(100))
    assert first != second
    # The permutations are those of one generator seeded once.
    generator = torch.Generator().manual_seed(3)
    assert first == torch.randperm(100, generator=generator).tolist()
    assert second == torch.randperm(100, generator=generator).tolist()
    again = Batches(100, 30, shuffle=True, seed=3)
    assert sum(list(again), []) == first


def test_the_adapter_net_trains_on_the_shared_batches():
    from sklearn_modgap.datasets import make_modality_gap

    target, source = make_modality_gap(257, 8, random_state=0)
    net = AdapterNet(max_epochs=1, batch_size=64, module__n_features=8, iterator_train__seed=0)
    seen = []
    net.set_params(callbacks=[("count", _BatchSizes(seen))])
    net.fit({"source": source, "target": target}, y=None)
    # The one-row tail of 257 = 4 x 64 + 1 joined the last batch: no batch without negatives.
    assert seen == [64, 64, 64, 65]
    assert net.training_batches(257) == 4
    assert SeededNet(module=torch_linear(), batch_size=-1).training_batch_size(50) == 50


class _BatchSizes(Callback):
    """A callback recording the rows of every training batch."""

    def __init__(self, seen):
        self.seen = seen

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.seen.append(len(batch[0]["source"]))


def torch_linear():
    from torch import nn

    return nn.Linear


def _printed_table(monkeypatch, stream, **params):
    monkeypatch.setattr("sys.stdout", stream)
    # Several epochs with a validation split: some epochs set a best score,
    # which skorch marks with colour.
    _refiner(verbose=1, validation_fraction=0.25, **params).set_params(max_epochs=4).fit(_rows(n=256))
    return stream.getvalue()


def test_training_table_has_no_colour_codes_off_a_terminal(monkeypatch):
    import io

    monkeypatch.delenv("NO_COLOR", raising=False)
    plain = _printed_table(monkeypatch, io.StringIO())
    assert "train_loss" in plain and "valid_loss" in plain
    assert "\x1b[" not in plain
    # The same epochs on a terminal keep skorch's colour for the best scores.
    coloured = _printed_table(monkeypatch, FakeTerminal())
    assert "\x1b[" in coloured
    # NO_COLOR turns it off on a terminal too.
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in _printed_table(monkeypatch, FakeTerminal())


def test_training_table_sink_to_a_file_is_plain(monkeypatch):
    import functools
    import io

    monkeypatch.delenv("NO_COLOR", raising=False)
    log = io.StringIO()
    refiner = _refiner(
        verbose=1, validation_fraction=0.25,
        callbacks__print_log__sink=functools.partial(print, file=log),
    ).fit(_rows(n=256))
    assert len(refiner.history) >= 1
    assert "valid_loss" in log.getvalue() and "\x1b[" not in log.getvalue()
