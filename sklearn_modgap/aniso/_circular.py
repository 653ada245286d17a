"""Circular statistics of the target phases and the sparse phase graph (Sec. 4.3).

Pure numpy: stage I computes these once, from target rows only; the drift
field and the phase constraint of stage II read them.
"""

import numpy as np


def circular_statistics(phase):
    """Mean phase, concentration and pairwise phase coupling of each block.

    Parameters
    ----------
    phase : ndarray of shape (n, m)
        Target phases ``theta_k``.

    Returns
    -------
    mean_phase : ndarray of shape (m,)
        ``psi_bar_k = arg E[exp(i theta_k)]``.
    concentration : ndarray of shape (m,)
        ``alpha_k = |E[exp(i theta_k)]|``, the mean resultant length.
    coupling : ndarray of shape (m, m)
        ``M_kl = |E[exp(i (theta_l - theta_k))]|``, the phase-locking value
        (``M_kk = 1``).
    offset : ndarray of shape (m, m)
        ``delta_kl = arg E[exp(i (theta_l - theta_k))]``, the typical phase
        of block ``l`` relative to block ``k``.
    """
    unit = np.exp(1j * phase)
    first = unit.mean(axis=0)
    pairwise = unit.conj().T @ unit / phase.shape[0]
    return np.angle(first), np.abs(first), np.abs(pairwise), np.angle(pairwise)


def phase_graph(coupling, top_p, tau):
    """The block-adaptive top-``p`` sparse graph ``E`` with its weights.

    For every block ``k`` the couplings to the other blocks become weights
    ``softmax_l(M_kl / tau)``; ``k`` keeps the fewest strongest neighbours
    whose weights sum to at least ``top_p`` (so strongly coupled blocks keep
    few neighbours and weakly, evenly coupled blocks keep many), and the kept
    weights are renormalised to sum to one.

    Parameters
    ----------
    coupling : ndarray of shape (m, m)
        ``M_kl``.
    top_p : float in (0, 1]
        Cumulative weight kept per block.
    tau : float > 0
        Softmax temperature.

    Returns
    -------
    weights : ndarray of shape (m, m)
        ``w_kl``; zero off the graph and on the diagonal.
    """
    m = coupling.shape[0]
    weights = np.zeros((m, m))
    if m == 1:
        return weights
    for k in range(m):
        others = np.delete(np.arange(m), k)
        logits = coupling[k, others] / tau
        soft = np.exp(logits - logits.max())
        soft /= soft.sum()
        order = np.argsort(-soft, kind="stable")
        cumulative = np.cumsum(soft[order])
        keep = order[: int(np.searchsorted(cumulative, top_p - 1e-12)) + 1]
        weights[k, others[keep]] = soft[keep] / soft[keep].sum()
    return weights
