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
