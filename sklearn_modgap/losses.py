"""Contrastive losses of the seed papers, on batches of paired embeddings (torch).

Every function takes two tensors ``a`` (target modality, e.g. images) and
``b`` (source modality, e.g. texts) of shape ``(batch, n_features)`` whose
row ``i`` is a pair, and returns a scalar tensor.  Rows are used as given:
normalise them first when the loss is meant on the sphere.

This module imports torch; ``import sklearn_modgap`` does not import it.
"""

import math

import torch
import torch.nn.functional as F


def _pair_labels(a):
    return torch.arange(a.shape[0], device=a.device)


def _weighted_cross_entropy(logits, negative_weight):
    """Cross-entropy with the diagonal as the class, negatives scaled in the denominator.

    ``-log(exp(l_ii) / (exp(l_ii) + w * sum_{j != i} exp(l_ij)))``; ``w = 1`` is
    the plain cross-entropy.
    """
    if negative_weight == 1.0:
        return F.cross_entropy(logits, _pair_labels(logits))
    eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    shifted = logits + torch.zeros_like(logits).masked_fill(~eye, math.log(negative_weight))
    return F.cross_entropy(shifted, _pair_labels(logits))


def info_nce(a, b, temperature=0.07):
    """Symmetric InfoNCE (the CLIP loss) of paired rows.

    ``(CE(a b^T / tau) + CE(b a^T / tau)) / 2`` with the pairs on the diagonal.

    Parameters
    ----------
    a, b : torch.Tensor of shape (batch, n_features)
        Paired rows of the two modalities.
    temperature : float, default=0.07
        Softmax temperature ``tau``.

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    Examples
    --------
    >>> import torch
    >>> from sklearn_modgap.losses import info_nce
    >>> a = torch.eye(3)
    >>> round(float(info_nce(a, a, temperature=1.0)), 4)
    0.5514
    """
    logits = a @ b.T / temperature
    return 0.5 * (
        F.cross_entropy(logits, _pair_labels(a)) + F.cross_entropy(logits.T, _pair_labels(a))
    )


def _inserted_cross_entropy(anchors, partners, temperature):
    """Each anchor's paired row inserted among the anchor's own modality.

    Row ``i`` scores ``partners_i`` (the other modality) against ``anchors_j``,
    ``j != i`` (its own modality): the cross-modal pair must look closer than
    any same-modality neighbour, which pulls the modalities into one geometry.
    """
    logits = anchors @ anchors.T
    paired = (anchors * partners).sum(dim=1)
    eye = torch.eye(anchors.shape[0], dtype=torch.bool, device=anchors.device)
    logits = torch.where(eye, paired[:, None].expand_as(logits), logits) / temperature
    return F.cross_entropy(logits, _pair_labels(anchors))


def _hadamard_cross_entropy(logits, negative_weight):
    """Cross-entropy of ``W * logits`` (Hadamard), ``W`` 1 on the diagonal and ``w`` off it.

    ``-log(exp(l_ii) / (exp(l_ii) + sum_{j != i} exp(w * l_ij)))``; ``w = 1`` is
    the plain cross-entropy.
    """
    if negative_weight == 1.0:
        return F.cross_entropy(logits, _pair_labels(logits))
    eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    weighted = torch.where(eye, logits, negative_weight * logits)
    return F.cross_entropy(weighted, _pair_labels(logits))


_REWEIGHTINGS = {"hadamard": _hadamard_cross_entropy, "log_additive": _weighted_cross_entropy}


def cma_loss(a, b, alpha, temperature=0.07, reweight=0.05, reweighting="hadamard"):
    """Cross-modal alignment loss of the Geometry of Compromise (TPC-CMA).

    ``(1 - alpha) * L_cross + alpha * L_intra``:

    - ``L_cross`` is the symmetric InfoNCE with the cross-modal negatives
      reweighted by ``w = 1 - reweight * alpha``, easing the repulsion
      between the modalities as the alignment strength grows.  With
      ``reweighting="hadamard"`` (Eq. 3-4 of the paper) the weight matrix
      ``W`` (1 on the diagonal, ``w`` off it) multiplies the logits,
      ``CE(W * (a b^T / tau))``: a negative enters the softmax as
      ``exp(w * l_ij)``.  With ``"log_additive"`` (the package's earlier
      form) ``log w`` is added to the negative logits, so a negative enters
      as ``w * exp(l_ij)``;
    - ``L_intra`` matches the intra-modal geometry: each image is inserted
      among the texts (scored against the other texts for its caption) and
      each text among the images, averaged over both insertions.

    At ``alpha = 0`` both forms equal :func:`info_nce`.

    Parameters
    ----------
    a, b : torch.Tensor of shape (batch, n_features)
        Paired rows of the two modalities.
    alpha : float in [0, 1]
        Alignment strength.
    temperature : float or torch.Tensor, default=0.07
        Softmax temperature (a scalar tensor when it is learned).
    reweight : float in [0, 1), default=0.05
        Scale of the negative reweighting.
    reweighting : {"hadamard", "log_additive"}, default="hadamard"
        How the weight enters: multiplying the logits (the paper) or as
        ``log w`` added to the negative logits.

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    References
    ----------
    .. [1] H. Liu et al. "The Geometry of Compromise: Unlocking Generative
       Capabilities via Controllable Modality Alignment". 2026.

    Examples
    --------
    >>> import torch
    >>> from sklearn_modgap.losses import cma_loss, info_nce
    >>> a, b = torch.eye(3), torch.eye(3).roll(1, dims=1)
    >>> bool(torch.isclose(cma_loss(a, b, alpha=0.0), info_nce(a, b)))
    True
    """
    if not 0.0 <= reweight < 1.0:
        raise ValueError(f"reweight must be in [0, 1), got {reweight}.")
    if reweighting not in _REWEIGHTINGS:
        raise ValueError(
            f"reweighting must be one of {sorted(_REWEIGHTINGS)}, got {reweighting!r}."
        )
    cross_entropy = _REWEIGHTINGS[reweighting]
    weight = 1.0 - reweight * alpha
    logits = a @ b.T / temperature
    cross = 0.5 * (cross_entropy(logits, weight) + cross_entropy(logits.T, weight))
    if alpha == 0:
        return cross
    intra = 0.5 * (
        _inserted_cross_entropy(b, a, temperature) + _inserted_cross_entropy(a, b, temperature)
    )
    return (1.0 - alpha) * cross + alpha * intra


def atp_loss(a, b):
    """Align True Pairs: mean squared L2 distance of the paired rows.

    ``mean_i ||a_i - b_i||^2``.

    Parameters
    ----------
    a, b : torch.Tensor of shape (batch, n_features)
        Paired rows of the two modalities.

    Returns
    -------
    loss : torch.Tensor
        Scalar, non-negative.

    References
    ----------
    .. [1] E. Grassucci et al. "Closing the Modality Gap Aligns Group-Wise
       Semantics". ICLR 2026.

    Examples
    --------
    >>> import torch
    >>> from sklearn_modgap.losses import atp_loss
    >>> float(atp_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])))
    2.0
    """
    return (a - b).pow(2).sum(dim=1).mean()


def cu_loss(a, b, t=2.0):
    """Centroid Uniformity: uniformity of the normalised pair centroids.

    With ``c_i = Norm((a_i + b_i) / 2)``,
    ``log( mean_{i<j} exp(-t ||c_i - c_j||^2) )``: lower when the pair
    centroids spread over the sphere.

    Parameters
    ----------
    a, b : torch.Tensor of shape (batch, n_features)
        Paired rows of the two modalities; ``batch >= 2``.
    t : float, default=2.0
        Scale of the Gaussian potential.

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    References
    ----------
    .. [1] E. Grassucci et al. "Closing the Modality Gap Aligns Group-Wise
       Semantics". ICLR 2026.

    Examples
    --------
    >>> import torch
    >>> from sklearn_modgap.losses import cu_loss
    >>> a = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    >>> float(cu_loss(a, a))
    -8.0
    """
    if a.shape[0] < 2:
        raise ValueError("cu_loss needs at least 2 pairs.")
    centroids = F.normalize(0.5 * (a + b), dim=1)
    first, second = torch.triu_indices(a.shape[0], a.shape[0], offset=1, device=a.device)
    # Unit centroids: ||c_i - c_j||^2 = 2 - 2 c_i.c_j, from one Gram matrix.
    sq_distances = (2.0 - 2.0 * centroids @ centroids.T)[first, second]
    return torch.logsumexp(-t * sq_distances, dim=0) - math.log(sq_distances.shape[0])
