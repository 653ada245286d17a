"""Saving fitted aligners: skops files that are safe to share, and joblib.

A pickle (joblib) file runs code when it is loaded, so it is only for files
you wrote yourself.  A ``.skops`` file is loaded by :mod:`skops.io`, which
builds only the types it is told to trust; :func:`load` trusts exactly the
package's own classes (aligners and the plain objects they hold) besides
what skops trusts by default (numpy arrays, dicts, numbers, ...), and refuses
a file that holds anything else.  A file of plain state only (what
:func:`save` writes for the closed-form aligners and for nets' states) is
read by the package's own reader of the skops format, which builds the same
object under the same trust without importing :mod:`skops.io`.

The torch nets inside an aligner (AnisoAlign's phase prior and refiner,
ContrastiveAdapter's heads) cannot go into a skops file as they are: skorch
nets pickle their torch modules to bytes, and loading those bytes would run
the unpickler skops exists to avoid.  :func:`save` therefore replaces every
net by a :class:`NetState` (its class, its plain hyper-parameters and its
module's ``state_dict`` as numpy arrays) and :func:`load` rebuilds the net on
the CPU from it.  The rebuilt net transforms exactly as the saved one;
training-only objects (callbacks, optimiser state, history) are not saved,
and refitting the aligner builds its nets afresh from its parameters.
"""

import importlib
import inspect
import re
from pathlib import Path

import numpy as np

SKOPS_SUFFIX = ".skops"
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")

_PACKAGE = "sklearn_modgap"
_QUALIFIED_NAME = re.compile(r"^sklearn_modgap(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class NetState:
    """A fitted skorch net as plain data, for a skops file.

    Parameters
    ----------
    net_class : str
        Qualified name of the net's class (a class of this package).
    params : dict
        The net's hyper-parameters that are plain values (numbers, strings,
        tuples of them); parameters that are classes of this package (the
        torch module, a criterion) are kept as their qualified names.
    module_state : dict of str to ndarray or None
        The module's ``state_dict``, ``None`` for a net never initialised.
    fitted : dict
        Fitted attributes set on the net from outside (e.g. the prior's
        ``noise_range_``), plain values only.
    frozen : bool
        Whether the module's parameters had ``requires_grad`` switched off.
    """

    def __init__(self, net_class, params, module_state=None, fitted=None, frozen=False):
        self.net_class = net_class
        self.params = params
        self.module_state = module_state
        self.fitted = {} if fitted is None else fitted
        self.frozen = frozen

    @classmethod
    def of(cls, net):
        """Describe a skorch net as a :class:`NetState`.

        Parameters
        ----------
        net : skorch.NeuralNet
            A net of this package, fitted or not.

        Returns
        -------
        state : NetState
            Its class, plain hyper-parameters and module weights.
        """
        params = {}
        for name, value in net.get_params(deep=False).items():
            if name.startswith("_"):
                continue
            if isinstance(value, type):
                if _is_package_name(_qualified_name(value)):
                    params[name] = {"class": _qualified_name(value)}
            elif _is_plain(value):
                params[name] = _plain(value)
        module_state = None
        frozen = False
        if getattr(net, "initialized_", False):
            module_state = {
                key: tensor.detach().cpu().numpy().copy() for key, tensor in net.module_.state_dict().items()
            }
            parameters = list(net.module_.parameters())
            frozen = bool(parameters) and not any(p.requires_grad for p in parameters)
        own = set(vars(type(net)(**_constructor_params(net))).keys())
        fitted = {
            name: _plain(value)
            for name, value in vars(net).items()
            if name.endswith("_") and not name.startswith("_") and name not in own
            and name not in _SKORCH_STATE and _is_plain(value)
        }
        return cls(_qualified_name(type(net)), params, module_state, fitted, frozen)

    def build(self):
        """The net, on the CPU, with its module's weights restored."""
        import torch

        net_class = _resolve_package_class(self.net_class)
        params = {
            name: _resolve_package_class(value["class"])
            if isinstance(value, dict) and set(value) == {"class"}
            else _restore(value)
            for name, value in self.params.items()
        }
        params["device"] = "cpu"
        net = net_class(**params)
        if self.module_state is not None:
            net.initialize()
            net.module_.load_state_dict(
                {key: torch.from_numpy(np.array(value)) for key, value in self.module_state.items()}
            )
            net.module_.eval()
            if self.frozen:
                net.module_.requires_grad_(False)
        for name, value in self.fitted.items():
            setattr(net, name, _restore(value))
        return net


# Attributes every skorch net sets on itself when initialised or fitted.
_SKORCH_STATE = {
    "history_", "initialized_", "virtual_params_", "init_context_", "callbacks_", "prefixes_",
    "cuda_dependent_attributes_", "module_", "criterion_", "optimizer_",
}


def save(aligner, path):
    """Save a fitted aligner to ``path``: skops for ``.skops``, joblib for ``.joblib``/``.pkl``.

    Parameters
    ----------
    aligner : estimator
        A fitted aligner of this package.
    path : str or path-like
        Where to write.  ``.skops`` files load with :func:`load` without
        running code from the file; joblib files are pickles.

    Returns
    -------
    path : Path
        The file written.
    """
    path = Path(path)
    if path.suffix == SKOPS_SUFFIX:
        from . import _skops_format

        plain = _with_net_states(aligner)
        if not _skops_format.write(plain, path):
            import skops.io

            skops.io.dump(plain, path)
    elif path.suffix in PICKLE_SUFFIXES:
        import joblib

        joblib.dump(aligner, path)
    else:
        raise ValueError(
            f"cannot tell how to save to {path}: use a {SKOPS_SUFFIX} file (safe to share) or "
            f"{', '.join(PICKLE_SUFFIXES)} (joblib, a pickle)."
        )
    return path


def load(path, *, allow_pickle=False):
    """Load an aligner saved by :func:`save`.

    Parameters
    ----------
    path : str or path-like
        A ``.skops`` file, or (with ``allow_pickle=True``) a joblib file.
    allow_pickle : bool, default=False
        Unpickle a joblib file.  Only for files you trust: unpickling runs
        code from the file.

    Returns
    -------
    aligner : estimator
        The fitted aligner; its nets, if any, on the CPU.

    Raises
    ------
    ValueError
        A file that holds a type other than the package's own classes and
        skops' default trusted types, a file that is not a skops file, or a
        pickle file without ``allow_pickle=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    if path.suffix != SKOPS_SUFFIX:
        if path.suffix in PICKLE_SUFFIXES and allow_pickle:
            import joblib

            return joblib.load(path)
        how = (
            f"Models are read from {SKOPS_SUFFIX} files (write one with "
            "sklearn_modgap.persistence.save(model, 'model.skops'))."
        )
        if path.suffix in PICKLE_SUFFIXES:
            raise ValueError(
                f"refusing to unpickle {path}: a pickle file can run any code when loaded. {how}"
            )
        raise ValueError(f"{path} is not a model file (its name does not end in {SKOPS_SUFFIX}). {how}")
    import zipfile

    from . import _skops_format

    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a skops file (a skops file is a zip archive).")
    # A file of plain state and package classes is read without importing
    # skops.io, which is slow to import; the reader trusts what is trusted below.
    aligner = _skops_format.read(path)
    if aligner is not _skops_format.NOT_READ:
        return _with_nets(aligner)
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    refused = [name for name in untrusted if not _is_trusted(name)]
    if refused:
        raise ValueError(
            f"refusing to load {path}: it holds types that are not trusted: {', '.join(refused)}."
        )
    return _with_nets(skops.io.load(path, trusted=untrusted))


def _with_net_states(aligner):
    """A shallow copy of ``aligner`` with every skorch net replaced by a :class:`NetState`.

    An aligner fitted by ``partial_fit`` is finished first, and its stream
    (moments and row samples) is left out, as when it is pickled.
    """
    if hasattr(aligner, "_finish_stream"):
        aligner._finish_stream()
    state = {name: value for name, value in vars(aligner).items() if name not in _STREAM_STATE}
    nets = {name: value for name, value in state.items() if _is_skorch_net(value)}
    if not nets and len(state) == len(vars(aligner)):
        return aligner
    copy = object.__new__(type(aligner))
    copy.__dict__.update(state)
    for name, net in nets.items():
        setattr(copy, name, NetState.of(net))
    return copy


_STREAM_STATE = ("_stream", "_stream_stale")


def _with_nets(aligner):
    states = {name: value for name, value in vars(aligner).items() if isinstance(value, NetState)}
    for name, state in states.items():
        setattr(aligner, name, state.build())
    if states and hasattr(aligner, "device_"):
        aligner.device_ = "cpu"
    return aligner


def _is_skorch_net(value):
    return any(
        base.__module__.startswith("skorch.") and base.__name__ == "NeuralNet"
        for base in type(value).__mro__
    )


def _is_trusted(name):
    """Whether the type ``name`` is a class of this package that holds no torch or skorch object."""
    if not _is_package_name(name):
        return False
    try:
        cls = _resolve_package_class(name)
    except ValueError:
        return False
    return not any(base.__module__.split(".")[0] in {"torch", "skorch"} for base in cls.__mro__)


def _is_package_name(name):
    return bool(_QUALIFIED_NAME.match(name))


def _qualified_name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _resolve_package_class(name):
    """The class named ``name``, importing only modules of this package."""
    module_name, _, attribute = name.rpartition(".")
    if not (_is_package_name(name) and (module_name == _PACKAGE or _is_package_name(module_name))):
        raise ValueError(f"{name} is not a class of {_PACKAGE}.")
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{name} is not a class of {_PACKAGE}.") from exc
    if not isinstance(cls, type) or not cls.__module__.startswith(_PACKAGE):
        raise ValueError(f"{name} is not a class of {_PACKAGE}.")
    return cls


def _constructor_params(net):
    signature = inspect.signature(type(net).__init__)
    required = [
        name for name, parameter in signature.parameters.items()
        if name != "self" and parameter.default is inspect.Parameter.empty
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    ]
    return {name: getattr(net, name) for name in required}


def _is_plain(value):
    if value is None or isinstance(value, (bool, int, float, str, np.integer, np.floating, np.bool_)):
        return True
    if isinstance(value, (tuple, list)):
        return all(_is_plain(item) for item in value)
    return False


def _plain(value):
    """``value`` with numpy scalars as Python scalars; tuples marked so they come back as tuples."""
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, tuple):
        return {"tuple": [_plain(item) for item in value]}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _restore(value):
    if isinstance(value, dict) and set(value) == {"tuple"}:
        return tuple(_restore(item) for item in value["tuple"])
    if isinstance(value, list):
        return [_restore(item) for item in value]
    return value
