"""The fixed frame of AnisoAlign (Sec. 4.1-4.2), blockwise polar coordinates
(Sec. 4.1) and the global initialisation of stage II (Sec. 4.4.1).

Everything here is numpy and works on prepared (normalised) rows; the
estimator streams large inputs through these functions block by block.
"""

import numpy as np

from .._stats import descending_eigh

# Added to radii before taking logarithms and dividing by them.
RADIUS_EPS = 1e-6
# The eps of D_V = sigma_x / (sigma_y + eps) (Sec. 4.4.1).
COMPLEMENT_EPS = 1e-6
# Quantile levels stored per block for the radial map F_x^-1(F_y(rho)).
N_RADIUS_QUANTILES = 257


def supported_rank(source_cov, target_cov, n_source, n_target):
    """Largest even subspace rank the two samples support.

    The joint matrix ``Sigma_t + Sigma_i`` has rank at most
    ``(n_t - 1) + (n_i - 1)``; eigenvalues below a relative tolerance are
    numerical zeros, and directions that carry no variance cannot be split
    into meaningful polar blocks.
    """
    eigenvalues = np.linalg.eigvalsh(source_cov + target_cov)
    tol = eigenvalues[-1] * source_cov.shape[0] * np.finfo(np.float32).eps
    numerical = int(np.sum(eigenvalues > tol))
    bound = min(numerical, n_source - 1 + n_target - 1, source_cov.shape[0])
    return bound - bound % 2


def joint_eigenbasis(source_cov, target_cov, lambda_reg):
    """Eigenvectors of ``Sigma_t + Sigma_i + lambda * I``, by decreasing eigenvalue.

    Returns
    -------
    eigenvalues : ndarray of shape (d,)
    eigenvectors : ndarray of shape (d, d)
        Columns ``Q``; the first ``rank`` span the dominant subspace ``U``.
    """
    joint = source_cov + target_cov + lambda_reg * np.eye(source_cov.shape[0])
    return descending_eigh(joint)


def random_rotation(rank, random_state):
    """A Haar-distributed random orthogonal ``R`` of shape ``(rank, rank)`` (Sec. 4.2).

    The QR decomposition of a Gaussian matrix, with the signs of ``R``'s
    diagonal moved into ``Q`` so that the distribution is uniform over the
    orthogonal group.
    """
    gaussian = random_state.standard_normal((rank, rank))
    q, r = np.linalg.qr(gaussian)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs


def target_axes_rotation(dominant, target_cov, gap):
    """A deterministic alternative to the random mixing ``R`` of Sec. 4.2.

    ``R`` diagonalises the target covariance restricted to ``U``,
    ``Q_U^T Sigma_i Q_U = R diag(s) R^T``, with ``s`` decreasing, so that the
    columns of ``Q_U R`` are the target's principal axes inside ``U``.  Each
    column's sign is fixed so that the centroid gap ``mu_x - mu_y`` has a
    non-negative coordinate on it.  ``Q_U R`` then depends only on the
    subspace ``U`` and the data, not on the order or the signs of the
    eigenvectors that spanned ``U``: the polar blocks (consecutive pairs of
    its columns) are basis-independent.

    Parameters
    ----------
    dominant : ndarray of shape (d, r)
        An orthonormal basis ``Q_U`` of the dominant subspace.
    target_cov : ndarray of shape (d, d)
        ``Sigma_i``, the target covariance.
    gap : ndarray of shape (d,)
        ``mu_x - mu_y``.

    Returns
    -------
    rotation : ndarray of shape (r, r)
        The orthogonal matrix ``R``.
    """
    restricted = dominant.T @ target_cov @ dominant
    rotation = descending_eigh(restricted)[1]
    signs = np.sign(gap @ dominant @ rotation)
    signs[signs == 0] = 1.0
    return rotation * signs


def to_polar(coords):
    """Blockwise polar coordinates of ``z_U`` coordinates.

    Block ``k`` holds coordinates ``2k`` and ``2k + 1``:
    ``rho_k = ||(u_2k, u_2k+1)||``, ``theta_k = atan2(u_2k+1, u_2k)``.

    Parameters
    ----------
    coords : ndarray of shape (n, r)

    Returns
    -------
    radius, phase : ndarrays of shape (n, r // 2)
    """
    pairs = coords.reshape(coords.shape[0], -1, 2)
    return np.hypot(pairs[..., 0], pairs[..., 1]), np.arctan2(pairs[..., 1], pairs[..., 0])


def from_polar(radius, phase):
    """Inverse of :func:`to_polar`: ``(rho cos theta, rho sin theta)`` per block."""
    coords = np.stack([radius * np.cos(phase), radius * np.sin(phase)], axis=-1)
    return coords.reshape(radius.shape[0], -1)


def log_radius(radius):
    """``log(rho + eps)``, the radial feature seen by the networks."""
    return np.log(radius + RADIUS_EPS)


def radius_quantiles(radius):
    """Per-block empirical quantiles of the radii, shape ``(N_RADIUS_QUANTILES, m)``."""
    levels = np.linspace(0.0, 1.0, N_RADIUS_QUANTILES)
    return np.quantile(radius, levels, axis=0)


def radial_quantile_map(radius, source_quantiles, target_quantiles):
    """``F_x^-1(F_y(rho))`` per block, both distributions piecewise linear.

    ``F_y`` interpolates the source quantiles (values outside the fit range
    clip to the extreme levels); ``F_x^-1`` interpolates the target quantiles.
    """
    levels = np.linspace(0.0, 1.0, source_quantiles.shape[0])
    mapped = np.empty_like(radius)
    for k in range(radius.shape[1]):
        source_k = source_quantiles[:, k]
        # Ties (a block with repeated radii) would make F_y step-shaped;
        # np.interp needs increasing abscissae.
        source_k = source_k + np.arange(source_k.size) * 1e-12
        mapped[:, k] = np.interp(
            np.interp(radius[:, k], source_k, levels), levels, target_quantiles[:, k]
        )
    return mapped


def complement_variances(cov, complement):
    """Variance of ``cov`` along each column of the complement basis."""
    return np.maximum(np.sum(complement * (cov @ complement), axis=0), 0)


def complement_std_ratio(source_cov, target_cov, complement, eps=COMPLEMENT_EPS):
    """Sec. 4.4.1: ``D_V = Diag(sigma_V^x / (sigma_V^y + eps))`` along each complement axis."""
    target_std = np.sqrt(complement_variances(target_cov, complement))
    source_std = np.sqrt(complement_variances(source_cov, complement))
    return target_std / (source_std + eps)


def complement_shrunk_scale(source_cov, target_cov, complement, lambda_reg):
    """An alternative V-side scale: ``s_j = sqrt((v_x,j + lambda g) / (v_y,j + lambda))``.

    ``v_x,j`` and ``v_y,j`` are the target and source variances along the
    ``j``-th column of the complement basis and ``g = tr Sigma_i / tr Sigma_t``
    the ratio of the total variances.  The ridge shrinks the scale of weakly
    populated directions towards the isotropic scale ``sqrt(g)`` (ReAlign's
    trace alignment): a direction the fit rows barely populate still carries
    held-out rows' variance, and without evidence of its own ratio the global
    one is the better guess.
    """
    target_var = complement_variances(target_cov, complement)
    source_var = complement_variances(source_cov, complement)
    source_total = np.trace(source_cov)
    ratio = np.trace(target_cov) / source_total if source_total > 0 else 1.0
    return np.sqrt((target_var + lambda_reg * ratio) / (source_var + lambda_reg))


def complement_std(cov, complement, lambda_reg):
    """Standard deviation along each column of the complement basis."""
    return np.sqrt(complement_variances(cov, complement) + lambda_reg)
