"""The skops writer that needs no import of skops.io: the same nodes as skops.io.dump, loadable by skops."""

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import skops.io
from skops.io._protocol import PROTOCOL as SKOPS_PROTOCOL

from sklearn_modgap import ReAlign, _skops_format
from sklearn_modgap.cli import available_aligners
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.persistence import _with_net_states, load, save


@pytest.fixture(scope="module")
def data():
    return make_modality_gap(300, 12, random_state=0)


def _canonical(schema, arrays):
    """The schema with every ``__id__`` and array file renamed by order of first appearance."""
    ids, names = {}, {}

    def walk(node):
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__":
                    out[key] = ids.setdefault(value, len(ids))
                elif key == "file":
                    out[key] = names.setdefault(value, f"array{len(names)}")
                elif key == "_skops_version":
                    continue
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    tree = walk(schema)
    return tree, {names[name]: arrays[name] for name in names}


def _read(path_or_bytes):
    archive = zipfile.ZipFile(path_or_bytes)
    schema = json.loads(archive.read("schema.json"))
    arrays = {
        name: np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
        for name in archive.namelist()
        if name.endswith(".npy")
    }
    return schema, arrays


def test_protocol_is_the_installed_skops_protocol():
    assert _skops_format.PROTOCOL == SKOPS_PROTOCOL


@pytest.mark.parametrize("name", [n for n in available_aligners() if n != "ContrastiveAdapter"])
def test_same_nodes_as_skops_dump_and_loads_with_skops(tmp_path, data, name):
    target, source = data
    aligner = available_aligners(random_state=0)[name]
    if name == "AnisoAlign":
        aligner.set_params(rank=4, max_epochs=2, device="cpu")
    aligner.fit(source, y=target)
    plain = _with_net_states(aligner)
    ours = tmp_path / "ours.skops"
    assert _skops_format.write(plain, ours)
    theirs = tmp_path / "theirs.skops"
    skops.io.dump(plain, theirs)

    our_tree, our_arrays = _canonical(*_read(ours))
    their_tree, their_arrays = _canonical(*_read(theirs))
    assert our_tree == their_tree
    assert our_arrays.keys() == their_arrays.keys()
    for key, value in their_arrays.items():
        assert our_arrays[key].dtype == value.dtype
        np.testing.assert_array_equal(our_arrays[key], value)
    assert zipfile.ZipFile(ours).getinfo("schema.json").compress_type == zipfile.ZIP_STORED

    # skops itself reads the file, trusting only what persistence.load trusts.
    back = load(ours)
    np.testing.assert_array_equal(back.transform(source), aligner.transform(source))
    np.testing.assert_array_equal(back.transform_target(target), aligner.transform_target(target))


class _Odd:
    """A value outside the plain types the writer encodes."""


@pytest.mark.parametrize("extra", [{1: "integer key"}, {"a", "set"}, _Odd(), np.array(["a", None], dtype=object)])
def test_values_it_does_not_encode_fall_back_to_skops(tmp_path, data, extra):
    target, source = data
    aligner = ReAlign().fit(source, y=target)
    aligner.extra_ = extra
    path = tmp_path / "odd.skops"
    assert not _skops_format.write(aligner, path)
    assert not path.exists()
    if isinstance(extra, _Odd):
        return  # a foreign class: save writes it with skops, and load refuses it (test_persistence)
    save(aligner, path)
    back = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    assert type(back.extra_) is type(extra)
    np.testing.assert_array_equal(back.transform(source), aligner.transform(source))


def test_same_array_twice_is_one_file(tmp_path, data):
    target, source = data
    aligner = ReAlign().fit(source, y=target)
    aligner.twin_ = aligner.source_mean_
    _skops_format.write(aligner, tmp_path / "m.skops")
    names = [n for n in zipfile.ZipFile(tmp_path / "m.skops").namelist() if n.endswith(".npy")]
    assert len(names) == len(set(names)) == 3
    back = load(tmp_path / "m.skops")
    np.testing.assert_array_equal(back.twin_, aligner.source_mean_)


def test_saving_a_closed_form_aligner_does_not_import_skops_io(tmp_path):
    script = (
        "import sys, numpy as np\n"
        "from sklearn_modgap import ReAlign\n"
        "from sklearn_modgap.persistence import save\n"
        "rng = np.random.default_rng(0)\n"
        "save(ReAlign().fit(rng.normal(size=(50, 4)), y=rng.normal(size=(40, 4))), sys.argv[1])\n"
        "print('skops.io' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.skops")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert isinstance(load(tmp_path / "m.skops"), ReAlign)
