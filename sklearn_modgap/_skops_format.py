"""Writing a skops file for plain fitted state without importing :mod:`skops.io`.

Importing :mod:`skops.io` builds its list of trusted types from every
scikit-learn estimator, which imports most of scikit-learn (and torch
through scikit-learn's array-API support): about 3 s, more than a whole
``modgap align`` of 200,000 rows takes otherwise.  A fitted closed-form
aligner holds only numbers, strings, ``None``, dicts with string keys,
lists, tuples, numeric numpy arrays and scalars, and objects of this
package, so its skops file is written here directly, node for node as
:func:`skops.io.dump` writes it (protocol 2: a stored zip archive of one
``.npy`` file per array and a ``schema.json`` tree of nodes).  Anything
else makes :func:`write` return ``False`` and the caller falls back to
:func:`skops.io.dump`.  The files load with :func:`skops.io.load`; the tests
compare the schema written here with the one skops writes, node by node.
"""

import io
import json
import zipfile

import numpy as np

#: The skops persistence protocol these nodes belong to.
PROTOCOL = 2

_JSON_TYPES = (type(None), bool, int, float, str)


class _Unsupported(Exception):
    """A value this writer does not encode; skops itself must write the file."""


class _Writer:
    def __init__(self, archive):
        self.archive = archive
        # Every encoded value stays referenced until the file is written, so
        # that ``id`` (the nodes' ``__id__`` and the arrays' file names) is
        # never reused for two values, as skops' save context guarantees.
        self.alive = []
        self.files = set()

    def node(self, value):
        self.alive.append(value)
        kind = type(value)
        if kind in _JSON_TYPES:
            state = _plain_node("str", "builtins", "JsonNode")
            state.update(content=json.dumps(value), is_json=True)
        elif kind is dict:
            state = self.dict_node(value)
        elif kind is list or kind is tuple:
            state = _plain_node(kind.__name__, "builtins", "ListNode" if kind is list else "TupleNode")
            state["content"] = [self.node(item) for item in value]
        elif kind is np.ndarray or isinstance(value, np.generic):
            state = self.array_node(value)
        elif isinstance(value, type) and value in _JSON_TYPES:
            state = _plain_node(value.__name__, "builtins", "TypeNode")
        elif kind.__module__.split(".")[0] == "sklearn_modgap":
            state = self.object_node(value)
        else:
            raise _Unsupported(kind)
        state["__id__"] = id(value)
        return state

    def dict_node(self, value):
        if any(type(key) is not str for key in value):
            raise _Unsupported(dict)
        state = _plain_node("dict", "builtins", "DictNode")
        state["content"] = {key: self.node(item) for key, item in value.items()}
        state["key_types"] = self.node([type(key) for key in value])
        return state

    def array_node(self, value):
        if value.dtype.hasobject or value.dtype.fields is not None:
            raise _Unsupported(value.dtype)
        kind = type(value)
        state = _plain_node(kind.__name__, kind.__module__, "NdArrayNode")
        name = f"{id(value)}.npy"
        if name not in self.files:
            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=False)
            self.archive.writestr(name, buffer.getbuffer())
            self.files.add(name)
        state.update(type="numpy", file=name)
        return state

    def object_node(self, value):
        kind = type(value)
        reduced = value.__reduce__()
        if len(reduced) >= 2 and reduced[0] is kind:
            raise _Unsupported(kind)
        attrs = value.__getstate__()
        if type(attrs) is not dict:
            raise _Unsupported(kind)
        state = _plain_node(kind.__name__, kind.__module__, "ObjectNode")
        state["content"] = self.node(attrs)
        return state


def _plain_node(class_name, module, loader):
    return {"__class__": class_name, "__module__": module, "__loader__": loader}


def write(obj, path):
    """Write ``obj`` to the skops file ``path`` if every value in it is plain.

    Parameters
    ----------
    obj : object
        An object of this package whose state holds only the plain values
        listed in the module's docstring.
    path : path-like
        The ``.skops`` file to write.

    Returns
    -------
    written : bool
        ``False`` (and nothing written) when ``obj`` holds a value this
        writer does not encode; :func:`skops.io.dump` must write it then.

    Raises
    ------
    ModuleNotFoundError
        skops is not installed (a file nobody here could load is not written).
    """
    try:
        from skops import __version__ as skops_version
    except ImportError as error:  # pragma: no cover - skops is a dependency of the corpus extra
        raise ModuleNotFoundError(
            "saving a .skops file needs skops: pip install skops (or sklearn-modgap[corpus])"
        ) from error
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        writer = _Writer(archive)
        try:
            schema = writer.node(obj)
        except _Unsupported:
            return False
        schema["protocol"] = PROTOCOL
        schema["_skops_version"] = skops_version
        archive.writestr("schema.json", json.dumps(schema, indent=2))
    with open(path, "wb") as handle:
        handle.write(buffer.getbuffer())
    return True
