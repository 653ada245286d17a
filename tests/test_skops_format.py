"""The skops writer and reader that need no import of skops.io: the same nodes and objects as skops.io."""

import collections
import io
import json
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import skops.io
from skops.io._protocol import PROTOCOL as SKOPS_PROTOCOL

from sklearn_modgap import ContrastiveAdapter, ReAlign, _skops_format
from sklearn_modgap._skops_format import NOT_READ
from sklearn_modgap.cli import available_aligners
from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.persistence import NetState, _with_net_states, _with_nets, load, save


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

    back = skops.io.load(ours, trusted=skops.io.get_untrusted_types(file=ours))
    if name == "AnisoAlign":
        back = _with_nets(back)
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
    assert _skops_format.read(path) is NOT_READ
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


# The reader: what skops.io.load builds, without skops.io, or NOT_READ.


def _assert_same(ours, theirs, where="model"):
    """Equal values of the same types, arrays equal with their dtype and shape, recursively."""
    assert type(ours) is type(theirs), where
    if isinstance(theirs, np.ndarray):
        assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape), where
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for key, value in theirs.items():
            _assert_same(ours[key], value, f"{where}[{key!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for index, (mine, value) in enumerate(zip(ours, theirs)):
            _assert_same(mine, value, f"{where}[{index}]")
    elif type(theirs).__module__.startswith("sklearn_modgap"):
        _assert_same(vars(ours), vars(theirs), f"{where}.__dict__")
    else:
        assert ours == theirs or (ours != ours and theirs != theirs), where


def _shared(value, path="model", seen=None):
    """The groups of paths that reach one and the same mutable object (array, dict, list, object)."""
    seen = {} if seen is None else seen
    if isinstance(value, (np.ndarray, dict, list)) or type(value).__module__.startswith("sklearn_modgap"):
        seen.setdefault(id(value), []).append(path)
        if len(seen[id(value)]) > 1:
            return seen
    if isinstance(value, dict):
        for key, item in value.items():
            _shared(item, f"{path}[{key!r}]", seen)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _shared(item, f"{path}[{index}]", seen)
    elif type(value).__module__.startswith("sklearn_modgap"):
        _shared(vars(value), f"{path}.__dict__", seen)
    return sorted(paths for paths in seen.values() if len(paths) > 1) if path == "model" else seen


def _skops_load(path):
    return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))


@pytest.mark.parametrize("name", [*available_aligners(), "ContrastiveAdapter"])
def test_read_builds_what_skops_load_builds(tmp_path, data, name):
    target, source = data
    if name == "ContrastiveAdapter":
        aligner = ContrastiveAdapter(device="cpu", random_state=0)
    else:
        aligner = available_aligners(random_state=0)[name]
    if name == "AnisoAlign":
        aligner.set_params(rank=4, max_epochs=2, device="cpu")
    aligner.fit(source, y=target)
    if name == "ReAlign":
        # Numpy scalars, a tuple, a nested dict and an array held twice, as skops keeps them.
        aligner.extras_ = {"scalars": (np.float32(1.5), np.int64(-3), np.bool_(True)), "twice": aligner.source_mean_}
    path = save(aligner, tmp_path / "model.skops")
    ours, theirs = _skops_format.read(path), _skops_load(path)
    assert ours is not NOT_READ
    _assert_same(ours, theirs)
    assert _shared(ours) == _shared(theirs)
    if name == "ReAlign":
        assert ours.extras_["twice"] is ours.source_mean_
    ours, theirs = _with_nets(ours), _with_nets(theirs)
    np.testing.assert_array_equal(ours.transform(source), theirs.transform(source))
    np.testing.assert_array_equal(ours.transform(source), aligner.transform(source))
    np.testing.assert_array_equal(ours.transform_target(target), aligner.transform_target(target))


def test_loading_a_closed_form_aligner_does_not_import_skops_io(tmp_path, data):
    target, source = data
    aligner = ReAlign().fit(source, y=target)
    save(aligner, tmp_path / "m.skops")
    np.save(tmp_path / "x.npy", source)
    script = (
        "import sys, numpy as np\n"
        "from sklearn_modgap.persistence import load\n"
        "aligner = load(sys.argv[1])\n"
        "np.save(sys.argv[2], aligner.transform(np.load(sys.argv[3])))\n"
        "print(type(aligner).__name__, 'skops.io' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, *(str(tmp_path / n) for n in ("m.skops", "y.npy", "x.npy"))],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ReAlign", "False"]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), aligner.transform(source))


@pytest.mark.parametrize("extra", [
    collections.OrderedDict(a=1), collections.Counter("abca"), "StandardScaler", {"nested": collections.Counter("ab")},
])
def test_foreign_types_are_left_to_skops(tmp_path, data, extra):
    target, source = data
    aligner = ReAlign().fit(source, y=target)
    if extra == "StandardScaler":
        from sklearn.preprocessing import StandardScaler

        extra = StandardScaler().fit(source)
    aligner.extra_ = extra
    path = save(aligner, tmp_path / "foreign.skops")
    assert _skops_format.read(path) is NOT_READ
    if "Counter" in repr(extra):
        # Not a default type of skops, not a package class: refused, as before.
        with pytest.raises(ValueError, match=r"refusing to load .*not trusted: collections\.Counter"):
            load(path)
        return
    # skops trusts these by default; load builds them through skops, types kept.
    back = load(path)
    assert type(back.extra_) is type(extra)
    np.testing.assert_array_equal(back.transform(source), aligner.transform(source))


def _rewrite(source, target, edit=None, members=()):
    """Copy the skops file ``source`` to ``target``, its schema changed by ``edit`` and members replaced."""
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(files["schema.json"])
    if edit is not None:
        edit(schema)
    files["schema.json"] = json.dumps(schema).encode()
    files.update(members)
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return target


@pytest.fixture
def realign_file(tmp_path, data):
    target, source = data
    return save(ReAlign().fit(source, y=target), tmp_path / "realign.skops")


def _attributes(schema):
    return schema["content"]["content"]


def _add_attribute(schema, name, node):
    """Give the saved aligner one more attribute, its key's type listed as skops lists it."""
    _attributes(schema)[name] = node
    key_types = schema["content"]["key_types"]["content"]
    key_types.append(dict(key_types[0]))


def _empty_dict_node(first_id):
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "__id__": first_id,
            "content": {}, "key_types": {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
                                         "__id__": first_id + 1, "content": []}}


def _object_node(module, name, first_id):
    return {"__class__": name, "__module__": module, "__loader__": "ObjectNode", "__id__": first_id,
            "content": _empty_dict_node(first_id + 1)}


@pytest.mark.parametrize("node", [
    _object_node("os", "system", 10**15),
    {"__class__": "system", "__module__": "os", "__loader__": "FunctionNode", "__id__": 10**15},
    _object_node("sklearn_modgap_planted", "Thing", 10**15),
    _object_node("sklearn_modgap.persistence", "load", 10**15),
    _object_node("sklearn_modgap.aniso._refiner", "Refiner", 10**15),
    {**_empty_dict_node(10**15), "__class__": "Counter", "__module__": "collections"},
])
def test_a_class_outside_the_trust_rule_is_not_imported_and_still_refused(tmp_path, monkeypatch, realign_file, node):
    # A module that would announce its import: the file names it, nothing may import it.
    marker = tmp_path / "imported"
    (tmp_path / "sklearn_modgap_planted.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _rewrite(realign_file, tmp_path / "planted.skops", lambda schema: _add_attribute(schema, "evil_", node))
    assert _skops_format.read(path) is NOT_READ
    assert "sklearn_modgap_planted" not in sys.modules and not marker.exists()
    with pytest.raises(ValueError, match=rf"refusing to load .*{node['__module__']}\.{node['__class__']}"):
        load(path)
    assert "sklearn_modgap_planted" not in sys.modules and not marker.exists()


def test_an_added_attribute_of_plain_nodes_is_read(tmp_path, realign_file):
    # The counterpart of the refusals above: the same edit with a trusted class is read.
    node = _object_node("sklearn_modgap.persistence", "NetState", 10**15)
    path = _rewrite(realign_file, tmp_path / "added.skops", lambda schema: _add_attribute(schema, "state_", node))
    ours, theirs = _skops_format.read(path), _skops_load(path)
    assert type(ours.state_) is NetState and vars(ours.state_) == {}
    _assert_same(ours, theirs)


class _OpensOnUnpickle:
    """Unpickling it creates a file: the sign that an archive member was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_pickled_array_member_is_never_unpickled(tmp_path, realign_file):
    marker = tmp_path / "unpickled"
    buffer = io.BytesIO()
    np.save(buffer, np.array([_OpensOnUnpickle(str(marker))], dtype=object), allow_pickle=True)
    name = _attributes(json.loads(zipfile.ZipFile(realign_file).read("schema.json")))["source_mean_"]["file"]
    for member in (buffer.getvalue(), pickle.dumps(_OpensOnUnpickle(str(marker)))):
        path = _rewrite(realign_file, tmp_path / "pickled.skops", members={name: member})
        assert _skops_format.read(path) is NOT_READ
        with pytest.raises(ValueError):
            load(path)
        assert not marker.exists()
    # The payload is live: unpickling the member does create the file.
    np.load(io.BytesIO(buffer.getvalue()), allow_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize("protocol", [1, 0, 3, "2", True, None])
def test_another_protocol_is_left_to_skops(tmp_path, data, realign_file, protocol):
    def edit(schema):
        schema["protocol"] = protocol

    path = _rewrite(realign_file, tmp_path / "protocol.skops", edit)
    assert _skops_format.read(path) is NOT_READ
    if protocol in (0, 1) and protocol is not True:
        target, source = data
        np.testing.assert_array_equal(load(path).transform(source), load(realign_file).transform(source))
    else:
        with pytest.raises((TypeError, ValueError), match="protocol"):
            load(path)


def test_shared_ids_resolve_as_in_skops(tmp_path, realign_file):
    # A node whose id was seen before is that earlier node, whatever else it says.
    def edit(schema):
        attributes = _attributes(schema)
        attributes["target_mean_"]["__id__"] = attributes["source_mean_"]["__id__"]

    path = _rewrite(realign_file, tmp_path / "shared.skops", edit)
    ours, theirs = _skops_format.read(path), _skops_load(path)
    assert theirs.target_mean_ is theirs.source_mean_
    assert ours.target_mean_ is ours.source_mean_
    _assert_same(ours, theirs)
    assert not np.array_equal(load(realign_file).target_mean_, ours.target_mean_)


def _self_reference(schema):
    _add_attribute(schema, "loop_", {"__id__": schema["__id__"], "__loader__": "JsonNode"})


def _dropped_key_type(schema):
    schema["content"]["key_types"]["content"].pop()


def _int_key_type(schema):
    schema["content"]["key_types"]["content"][0]["__class__"] = "int"


def _none_type(schema):
    _add_attribute(schema, "kind_", {"__class__": "NoneType", "__module__": "builtins", "__loader__": "TypeNode",
                                     "__id__": 10**15})


def _string_id(schema):
    _attributes(schema)["alpha"]["__id__"] = "1"


def _list_state(schema):
    schema["content"] = {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "__id__": 10**15,
                         "content": []}


def _matrix(schema):
    _attributes(schema)["source_mean_"]["__class__"] = "matrix"


def _json_of_other_class(schema):
    _attributes(schema)["alpha"]["__class__"] = "eval"


@pytest.mark.parametrize("edit", [_self_reference, _dropped_key_type, _int_key_type, _none_type, _string_id,
                                  _list_state, _matrix, _json_of_other_class])
def test_nodes_it_does_not_build_are_left_to_skops(tmp_path, monkeypatch, realign_file, edit):
    path = _rewrite(realign_file, tmp_path / "edited.skops", edit)

    def build_nothing(cls, attrs):
        raise AssertionError(f"{cls} built from a file left to skops")

    # The whole file is checked before any object is made.
    monkeypatch.setattr(_skops_format, "_build_object", build_nothing)
    assert _skops_format.read(path) is NOT_READ


@pytest.mark.parametrize("members", [{"schema.json": b"{not json"}, {"schema.json": b"\xff\xfe"},
                                     {"schema.json": b"[]"}])
def test_a_broken_schema_is_left_to_skops(tmp_path, realign_file, members):
    path = _rewrite(realign_file, tmp_path / "broken.skops", members=members)
    assert _skops_format.read(path) is NOT_READ
    with pytest.raises(Exception):  # noqa: B017 - skops' own error, whichever it is
        load(path)
    assert _skops_format.read(realign_file) is not NOT_READ
