"""Light per-modality heads on frozen embeddings (plain torch modules)."""

import torch
import torch.nn.functional as F
from torch import nn


class ResidualHead(nn.Module):
    """``Norm(x + delta(x))`` with ``delta`` initialised to zero.

    At initialisation the head is the identity on unit rows, so training
    starts from the frozen model's own geometry and moves away from it only
    as far as the loss asks.

    Parameters
    ----------
    n_features : int
        Width of the embeddings.
    kind : {"linear", "mlp"}, default="linear"
        ``delta(x) = W x + c`` or ``delta(x) = W_2 relu(W_1 x + c_1) + c_2``.
    hidden_units : int, default=None
        Width of the MLP's hidden layer; ``n_features`` when None.
    """

    def __init__(self, n_features, kind="linear", hidden_units=None):
        super().__init__()
        if kind == "linear":
            last = nn.Linear(n_features, n_features)
            self.delta = last
        elif kind == "mlp":
            hidden_units = n_features if hidden_units is None else hidden_units
            last = nn.Linear(hidden_units, n_features)
            self.delta = nn.Sequential(nn.Linear(n_features, hidden_units), nn.ReLU(), last)
        else:
            raise ValueError(f"kind must be 'linear' or 'mlp', got {kind!r}.")
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x):
        return F.normalize(x + self.delta(x), dim=1)


class PairedHeads(nn.Module):
    """One :class:`ResidualHead` per modality, applied to paired batches.

    Parameters
    ----------
    n_features : int
        Width of the embeddings.
    head : {"linear", "mlp"}, default="linear"
        Kind of both heads.
    hidden_units : int, default=None
        Hidden width of MLP heads.
    """

    def __init__(self, n_features, head="linear", hidden_units=None):
        super().__init__()
        self.source_head = ResidualHead(n_features, head, hidden_units)
        self.target_head = ResidualHead(n_features, head, hidden_units)

    def forward(self, source, target):
        return self.source_head(source), self.target_head(target)


def apply_head(head, block, device):
    """Run a trained head on a numpy block, returning float32 numpy rows."""
    with torch.no_grad():
        rows = torch.as_tensor(block, dtype=torch.float32, device=device)
        return head(rows).cpu().numpy()
