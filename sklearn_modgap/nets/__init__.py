"""Pieces shared by the neural parts of the package.

Importing this package does not import torch; the functions do, when called.
"""


def resolve_device(device):
    """Resolve ``"auto"`` to ``"cuda"`` when a GPU is visible, else ``"cpu"``.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, or anything ``torch.device`` accepts.

    Returns
    -------
    device : str
        The device to use, e.g. ``"cpu"`` or ``"cuda"``.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but no CUDA device is available.")
    return str(resolved)


_LAZY = {
    "SeededNet": "._training",
    "Batches": "._training",
    "AdapterNet": "._adapter_net",
    "InfoNCECriterion": "._adapter_net",
    "CMACriterion": "._adapter_net",
    "ATPCUCriterion": "._adapter_net",
    "PairedHeads": "._heads",
    "ResidualHead": "._heads",
    "CompromiseCurriculum": "._callbacks",
    "GapClosingSchedule": "._callbacks",
}


def __getattr__(name):
    # The torch-backed pieces load on first access, keeping this package torch-free to import.
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["resolve_device", *_LAZY]
