"""Saving and loading aligners: skops with trusted types only, joblib, torch nets as state dicts."""

import joblib
import numpy as np
import pytest
import skops.io

from sklearn_modgap import AnisoAlign, ContrastiveAdapter
from sklearn_modgap.cli import available_aligners
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.persistence import NetState, _is_trusted, load, save


@pytest.fixture(scope="module")
def data():
    target, source = make_modality_gap(400, 16, random_state=0)
    return target, source


class Untrusted:
    """A type skops does not know and the package does not own."""


@pytest.mark.parametrize("name", [n for n in available_aligners() if n != "identity"])
def test_skops_round_trip_transforms_identically(tmp_path, data, name):
    target, source = data
    aligner = available_aligners(random_state=0)[name]
    if name == "AnisoAlign":
        aligner.set_params(rank=4, max_epochs=2, device="cpu")
    aligner.fit(source, y=target)
    path = save(aligner, tmp_path / "model.skops")
    back = load(path)
    assert type(back) is type(aligner)
    assert back.get_params(deep=False).keys() == aligner.get_params(deep=False).keys()
    np.testing.assert_array_equal(back.transform(source), aligner.transform(source))
    np.testing.assert_array_equal(back.transform_target(target), aligner.transform_target(target))


def test_aniso_nets_persist_as_state_dicts(tmp_path, data):
    target, source = data
    aligner = AnisoAlign(rank=4, max_epochs=2, device="cpu", random_state=0).fit(source, y=target)
    state = NetState.of(aligner.refiner_)
    weights = aligner.refiner_.module_.state_dict()
    assert set(state.module_state) == set(weights)
    for key, value in weights.items():
        assert isinstance(state.module_state[key], np.ndarray)
        np.testing.assert_array_equal(state.module_state[key], value.numpy())
    # The bounds are plain hyper-parameters of the module, kept with the net.
    assert state.params["module__bound_theta"] == pytest.approx(aligner.alpha * aligner.bound_theta)

    back = load(save(aligner, tmp_path / "aniso.skops"))
    for original, restored in ((aligner.prior_, back.prior_), (aligner.refiner_, back.refiner_)):
        assert type(restored) is type(original)
        assert not restored.module_.training
        assert next(restored.module_.parameters()).device.type == "cpu"
        for key, value in original.module_.state_dict().items():
            np.testing.assert_array_equal(restored.module_.state_dict()[key].numpy(), value.numpy())
    assert not any(p.requires_grad for p in back.prior_.module_.parameters())
    assert back.prior_.noise_range == aligner.prior_.noise_range == (0.05, 1.5)
    # The nets inside the file are plain data: skops itself finds only package classes to trust.
    untrusted = skops.io.get_untrusted_types(file=tmp_path / "aniso.skops")
    assert sorted(untrusted) == ["sklearn_modgap.aniso._estimator.AnisoAlign", "sklearn_modgap.persistence.NetState"]


def test_adapter_nets_persist(tmp_path, data):
    target, source = data
    adapter = ContrastiveAdapter(device="cpu", random_state=0).fit(source, y=target)
    back = load(save(adapter, tmp_path / "adapter.skops"))
    np.testing.assert_array_equal(back.transform(source), adapter.transform(source))


def test_skops_refuses_untrusted_types(tmp_path, data):
    target, source = data
    skops.io.dump({"payload": Untrusted()}, tmp_path / "evil.skops")
    with pytest.raises(ValueError, match=r"not trusted: .*Untrusted"):
        load(tmp_path / "evil.skops")
    # A net dumped as skorch pickles it (bytes unpickled on load) is refused too.
    aligner = AnisoAlign(rank=4, max_epochs=1, device="cpu", random_state=0).fit(source, y=target)
    skops.io.dump(aligner, tmp_path / "raw.skops")
    with pytest.raises(ValueError, match="not trusted: .*Refiner"):
        load(tmp_path / "raw.skops")


def test_trusted_types_are_package_classes_without_torch():
    assert _is_trusted("sklearn_modgap.aligners._realign.ReAlign")
    assert _is_trusted("sklearn_modgap.persistence.NetState")
    assert not _is_trusted("sklearn_modgap.aniso._refiner.Refiner")
    assert not _is_trusted("sklearn_modgap.aniso._refiner.RefinerModule")
    assert not _is_trusted("builtins.eval")
    assert not _is_trusted("sklearn_modgap.os.system")
    assert not _is_trusted("sklearn_modgap.persistence.load")
    assert not _is_trusted("sklearn_modgap..aligners")


def test_a_data_file_is_not_taken_for_a_model(tmp_path):
    rows = tmp_path / "texts.npy"
    np.save(rows, np.ones((3, 4)))
    for allow_pickle in (False, True):
        with pytest.raises(ValueError, match=r"texts.npy is not a model file \(its name does not end in .skops\)"):
            load(rows, allow_pickle=allow_pickle)


def test_pickles_need_allow_pickle(tmp_path, data):
    target, source = data
    aligner = available_aligners()["ReAlign"].fit(source, y=target)
    path = save(aligner, tmp_path / "model.joblib")
    with pytest.raises(ValueError, match="refusing to unpickle"):
        load(path)
    back = load(path, allow_pickle=True)
    np.testing.assert_array_equal(back.transform(source), aligner.transform(source))
    # A pickle renamed to .skops is not mistaken for a skops file.
    joblib.dump(aligner, tmp_path / "renamed.skops")
    with pytest.raises(ValueError, match="not a skops file"):
        load(tmp_path / "renamed.skops")


def test_bad_paths(tmp_path, data):
    target, source = data
    aligner = available_aligners()["ReAlign"].fit(source, y=target)
    with pytest.raises(ValueError, match="cannot tell how to save"):
        save(aligner, tmp_path / "model.bin")
    with pytest.raises(FileNotFoundError, match="no model file"):
        load(tmp_path / "absent.skops")
