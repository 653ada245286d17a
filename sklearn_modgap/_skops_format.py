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

:func:`read` is the matching reader, for the same reason: it builds the
object of a file whose every node is one :func:`write` emits, exactly as
:func:`skops.io.load` builds it (shared ``__id__`` references resolved as
skops resolves them, objects made with ``__new__`` and given their state
with ``__setstate__`` or ``__dict__``), trusting the same classes as
:func:`sklearn_modgap.persistence.load`.  It never unpickles (arrays are
read with ``allow_pickle=False``), imports no module outside this package
and calls nothing of a class before the whole file has been checked.  For
any other file it returns :data:`NOT_READ` and the caller loads the file
with :mod:`skops.io`, which then applies its own checks and errors.
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


class _NotRead:
    def __repr__(self):
        return "NOT_READ"


#: What :func:`read` returns for a file it leaves to :mod:`skops.io`.
NOT_READ = _NotRead()

# The numpy scalar types whose nodes the writer emits and skops trusts by
# default (numbers and booleans; no strings, bytes, voids or objects).
_NUMPY_SCALARS = {
    kind.__name__: kind
    for kind in set(np.sctypeDict.values())
    if kind.__module__ == "numpy" and issubclass(kind, (np.number, np.bool_))
}
# The types a TypeNode may name: those the writer emits that skops trusts
# by default (``builtins.NoneType`` is not among them).
_BUILTIN_TYPES = {kind.__name__: kind for kind in (bool, int, float, str)}
_NPY_MAGIC = b"\x93NUMPY"


class _Node:
    """One node of the schema, checked; ``build`` makes its value once, as skops' ``construct`` does."""

    __slots__ = ("build_value", "parts", "value", "built", "parsing")

    def __init__(self):
        self.parsing = True
        self.built = False

    def build(self):
        if not self.built:
            self.value = self.build_value(*self.parts)
            self.built = True
        return self.value


class _Reader:
    def __init__(self, archive, is_trusted, resolve):
        self.archive = archive
        self.is_trusted = is_trusted
        self.resolve = resolve
        self.memo = {}

    def node(self, state):
        if type(state) is not dict:
            raise _Unsupported(state)
        saved_id = state.get("__id__")
        if type(saved_id) is not int:
            raise _Unsupported(saved_id)
        # As skops' get_tree: an id seen before is that earlier node, whatever
        # this state says, and a node is remembered before its children are read.
        if saved_id in self.memo:
            known = self.memo[saved_id]
            if known.parsing:
                raise _Unsupported("a node that contains itself")
            return known
        node = _Node()
        if saved_id:
            self.memo[saved_id] = node
        loader = state.get("__loader__")
        where = (state.get("__module__"), state.get("__class__"))
        if loader == "JsonNode" and where == ("builtins", "str") and type(state.get("content")) is str:
            node.build_value, node.parts = json.loads, (state["content"],)
        elif loader == "DictNode" and where == ("builtins", "dict"):
            node.build_value, node.parts = self.dict_parts(state)
        elif loader == "ListNode" and where == ("builtins", "list"):
            node.build_value, node.parts = _build_list, (self.children(state),)
        elif loader == "TupleNode" and where == ("builtins", "tuple"):
            node.build_value, node.parts = _build_tuple, (self.children(state),)
        elif loader == "NdArrayNode":
            node.build_value, node.parts = _given, (self.array(state, where),)
        elif loader == "TypeNode" and where[0] == "builtins" and where[1] in _BUILTIN_TYPES:
            node.build_value, node.parts = _given, (_BUILTIN_TYPES[where[1]],)
        elif loader == "ObjectNode":
            node.build_value, node.parts = self.object_parts(state, where)
        else:
            raise _Unsupported(loader)
        node.parsing = False
        return node

    def children(self, state):
        content = state.get("content")
        if type(content) is not list:
            raise _Unsupported(content)
        return [self.node(item) for item in content]

    def dict_parts(self, state):
        content = state.get("content")
        if type(content) is not dict:
            raise _Unsupported(content)
        key_types = self.node(state.get("key_types"))
        items = {key: self.node(value) for key, value in content.items()}
        # skops builds ``key_type(key)`` for the keys zipped with their types;
        # here every key must be a str, and have its type.
        if not (
            key_types.build_value is _build_list
            and len(key_types.parts[0]) == len(items)
            and all(item.build_value is _given and item.parts[0] is str for item in key_types.parts[0])
        ):
            raise _Unsupported("dict keys")
        return _build_dict, (items,)

    def array(self, state, where):
        if where == ("numpy", "ndarray"):
            kind = None
        elif where[0] == "numpy" and where[1] in _NUMPY_SCALARS:
            kind = _NUMPY_SCALARS[where[1]]
        else:
            raise _Unsupported(where)
        name = state.get("file")
        if state.get("type") != "numpy" or type(name) is not str:
            raise _Unsupported(state.get("type"))
        data = self.archive.read(name)
        if not data.startswith(_NPY_MAGIC):
            raise _Unsupported(name)
        array = np.load(io.BytesIO(data), allow_pickle=False)
        if type(array) is not np.ndarray or array.dtype.hasobject or array.dtype.fields is not None:
            raise _Unsupported(name)
        return array if kind is None else kind(array)

    def object_parts(self, state, where):
        module, name = where
        if not (type(module) is str and type(name) is str and name.isidentifier()):
            raise _Unsupported(where)
        qualified = f"{module}.{name}"
        if not self.is_trusted(qualified):
            raise _Unsupported(qualified)
        cls = self.resolve(qualified)
        content = state.get("content")
        if content is None:
            return _build_object, (cls, None)
        attrs = self.node(content)
        if attrs.build_value is not _build_dict:
            raise _Unsupported("object state")
        return _build_object, (cls, attrs)


def _given(value):
    return value


def _build_list(items):
    return [item.build() for item in items]


def _build_tuple(items):
    return tuple(item.build() for item in items)


def _build_dict(items):
    return {key: value.build() for key, value in items.items()}


def _build_object(cls, attrs):
    # As skops' ObjectNode: ``__new__`` without ``__init__``, then the state.
    instance = cls.__new__(cls)
    if attrs is not None:
        state = attrs.build()
        if hasattr(instance, "__setstate__"):
            instance.__setstate__(state)
        else:
            instance.__dict__.update(state)
    return instance


def read(path):
    """Load the skops file ``path`` without :mod:`skops.io` if it holds only what :func:`write` writes.

    Parameters
    ----------
    path : path-like
        A ``.skops`` file.

    Returns
    -------
    obj : object or NOT_READ
        The object :func:`skops.io.load` would build from the file, trusting
        the package's own classes as :func:`sklearn_modgap.persistence.load`
        does; :data:`NOT_READ` when the file holds a node, a type or a class
        this reader does not build, names another protocol than
        :data:`PROTOCOL`, or is not a readable zip archive with a
        ``schema.json``: :mod:`skops.io` must load (or refuse) it then.
    """
    from .persistence import _is_trusted, _resolve_package_class

    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
            if type(schema) is not dict or type(schema.get("protocol")) is not int or schema["protocol"] != PROTOCOL:
                return NOT_READ
            # Every node is checked, and every array read, before anything is built.
            root = _Reader(archive, _is_trusted, _resolve_package_class).node(schema)
    except (_Unsupported, zipfile.BadZipFile, KeyError, ValueError, TypeError, EOFError, OSError, RecursionError):
        return NOT_READ
    try:
        return root.build()
    except RecursionError:
        return NOT_READ
