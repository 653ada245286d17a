"""Circular statistics of the target phases and the sparse phase graph (Sec. 4.3).

Pure numpy: stage I computes these once, from target rows only; the drift
field and the phase constraint of stage II read them.
"""

import numpy as np

# Added to denominators that may vanish (Eq. 3, Eq. 9).
CIRCULAR_EPS = 1e-12


def circular_statistics(phase):
    """Mean phase, mean resultant length and pairwise phase coupling of each block.

    Parameters
    ----------
    phase : ndarray of shape (n, m)
        Target phases ``theta_k``.

    Returns
    -------
    mean_phase : ndarray of shape (m,)
        ``psi_bar_k = arg E[exp(i theta_k)]``.
    resultant : ndarray of shape (m,)
        ``|E[exp(i theta_k)]|``, the mean resultant length.
    coupling : ndarray of shape (m, m)
        ``A_kl = |M_kl|`` with ``M_kl = E[exp(i (theta_k - theta_l))]``, the
        phase-locking value (``A_kk = 1``).
    offset : ndarray of shape (m, m)
        ``eta_kl = arg M_kl``, the typical phase of block ``k`` relative to
        block ``l`` (``eta_lk = -eta_kl``).
    """
    unit = np.exp(1j * phase)
    first = unit.mean(axis=0)
    pairwise = unit.T @ unit.conj() / phase.shape[0]
    return np.angle(first), np.abs(first), np.abs(pairwise), np.angle(pairwise)


def energy_share(radius):
    """Eq. 3: ``alpha_k = E[rho_k^2] / (sum_u E[rho_u^2] + eps)``, each block's share of the energy."""
    energy = np.mean(np.asarray(radius, dtype=np.float64) ** 2, axis=0)
    return energy / (energy.sum() + CIRCULAR_EPS)


def top_p_graph(coupling, p):
    """The sparse graph ``E`` of Sec. 4.3: each block's ``p`` strongest couplings.

    For every block ``k`` the ``p`` other blocks of largest ``|M_kl|`` (ties
    broken by the lower index) are its neighbours; ``E`` is the union of
    these pairs, undirected.

    Parameters
    ----------
    coupling : ndarray of shape (m, m)
        ``|M_kl|``.
    p : int >= 1
        Neighbours chosen per block (capped at ``m - 1``).

    Returns
    -------
    edges : ndarray of shape (m, m), bool
        Symmetric adjacency of ``E``, false on the diagonal.
    """
    m = coupling.shape[0]
    edges = np.zeros((m, m), dtype=bool)
    if m == 1:
        return edges
    others = np.where(np.eye(m, dtype=bool), -np.inf, coupling)
    chosen = np.argsort(-others, axis=1, kind="stable")[:, : min(p, m - 1)]
    edges[np.arange(m)[:, None], chosen] = True
    return edges | edges.T


def nucleus_graph(coupling, mass, temperature):
    """A block-adaptive alternative to :func:`top_p_graph`, with weights.

    For every block ``k`` the couplings to the other blocks become weights
    ``softmax_l(|M_kl| / temperature)``; ``k`` keeps the fewest strongest
    neighbours whose weights sum to at least ``mass`` (so strongly coupled
    blocks keep few neighbours and weakly, evenly coupled blocks keep many),
    and the kept weights are renormalised to sum to one.  Directed: row ``k``
    holds the weights of ``k``'s neighbours.

    Parameters
    ----------
    coupling : ndarray of shape (m, m)
        ``|M_kl|``.
    mass : float in (0, 1]
        Cumulative weight kept per block.
    temperature : float > 0
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
        logits = coupling[k, others] / temperature
        soft = np.exp(logits - logits.max())
        soft /= soft.sum()
        order = np.argsort(-soft, kind="stable")
        cumulative = np.cumsum(soft[order])
        keep = order[: int(np.searchsorted(cumulative, mass - 1e-12)) + 1]
        weights[k, others[keep]] = soft[keep] / soft[keep].sum()
    return weights
