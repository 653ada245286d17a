"""SSP: shared space projection onto the intersection of the modality subspaces."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .._array_api import Constant
from .._base import BaseAligner
from .._deprecation import DEPRECATED, DEPRECATED_OPTION, renamed
from .._maps import interpolate
from .._stats import descending_eigh


def _second_moment(stats, center):
    """Mean and ``A^T A / n`` of prepared rows (their covariance when ``center``)."""
    return stats.mean, stats.covariance if center else stats.second_moment


def modality_basis(gram, variance):
    """Leading eigenvectors of a second-moment matrix up to a variance share.

    Parameters
    ----------
    gram : ndarray of shape (n_features, n_features)
        ``A^T A / n`` (or the covariance) of one modality.
    variance : float in (0, 1]
        Cumulative share of the total variance the basis must keep.

    Returns
    -------
    basis : ndarray of shape (n_features, n_kept)
        Orthonormal columns, by decreasing eigenvalue.
    """
    eigenvalues, eigenvectors = descending_eigh(gram)
    total = eigenvalues.sum()
    if total <= 0:
        raise ValueError("A modality has zero variance: its rows are all identical.")
    share = np.cumsum(eigenvalues) / total
    n_kept = int(np.searchsorted(share, variance * (1 - 1e-12)) + 1)
    return eigenvectors[:, : min(n_kept, len(eigenvalues))]


def shared_directions(target_basis, source_basis):
    """Principal angles between two subspaces and the principal vector pairs.

    Parameters
    ----------
    target_basis, source_basis : ndarray of shape (n_features, k_x), (n_features, k_y)
        Orthonormal bases ``B_x`` and ``B_y``.

    Returns
    -------
    cosines : ndarray of shape (min(k_x, k_y),)
        Cosines of the principal angles, decreasing (singular values of
        ``B_x^T B_y``).
    directions : ndarray of shape (n_features, min(k_x, k_y))
        Unit bisectors of the principal vector pairs ``B_x u_i`` and
        ``B_y v_i``; mutually orthogonal, and equal to the shared directions
        themselves where the angle is zero.
    """
    left, cosines, right_t = np.linalg.svd(target_basis.T @ source_basis, full_matrices=False)
    cosines = np.clip(cosines, 0.0, 1.0)
    bisectors = target_basis @ left + source_basis @ right_t.T
    return cosines, bisectors / np.sqrt(2.0 + 2.0 * cosines)


class SSP(BaseAligner):
    """Shared space projection: keep only the directions both modalities span.

    Under dimension collapse each modality of a contrastive model lies near
    its own low-dimensional subspace, and the modality gap lives largely in
    the directions one modality uses and the other does not (Yi, Douady &
    Chen).  SSP estimates each modality's subspace from an unpaired sample,
    ``B_x`` and ``B_y``, by eigen-decomposition up to a cumulative variance
    share; the principal angles between them come from the SVD of
    ``B_x^T B_y``; the directions whose angle has cosine above ``1 - eps``
    span the shared space ``B``.  Both modalities are then projected onto
    it and renormalised: ``T(y) = Norm(B B^T y)`` for source rows and
    ``Norm(B B^T x)`` for target rows, so substitutes and target rows are
    compared in the same ``n_features``-dimensional space.

    Parameters
    ----------
    alpha : float in [0, 1], default=1.0
        Interpolation ``Norm((1 - alpha) y + alpha T(y))`` towards the
        projection, on both sides; ``0`` is the identity up to normalisation.
    variance : float in (0, 1], default=0.99
        Cumulative variance share that each modality's basis keeps.
    eps : float in [0, 1), default=1e-3
        A principal direction is shared when the cosine of its angle exceeds
        ``1 - eps``: the threshold is on ``1 - cos(theta)``, not on the angle
        (``eps=1e-3`` admits angles up to about 2.6 degrees).  With the
        defaults no direction passes on most real features; on the shared
        CLIP pairs ``variance=0.999, eps=1e-2`` does.
    rank : "auto" or int, default="auto"
        Number of shared directions kept, those of largest projected
        variance. ``"auto"`` keeps every direction that passes ``eps``; an
        integer larger than that number is an error.
    center : bool, default=False
        Estimate the subspaces from centered rows and project centered rows
        (each modality minus its own fit mean), which also removes the
        centroid offset.  By default the subspaces are the linear spans of
        the rows, as the hyperplanes of the paper pass through the origin.
    normalize : bool, default=True
        L2-normalise input rows before anything else.
    n_jobs : int, default=None
        Threads streaming the row blocks of ``fit`` and ``transform``, in
        joblib's meaning (``-1`` all CPUs).  ``None`` follows
        :func:`joblib.parallel_config`, runs on one thread inside a worker of
        an outer joblib loop (such as ``GridSearchCV(n_jobs=...)``), and
        otherwise uses up to 8 of the CPUs and BLAS threads available.
        Results do not depend on it.
    centre : bool, default="deprecated"
        The former spelling of ``center``, accepted with a FutureWarning
        until the next release.

    Attributes
    ----------
    shared_basis_ : ndarray of shape (n_features, ``n_shared_``)
        Orthonormal basis ``B`` of the shared space, by decreasing projected
        variance.
    principal_angles_ : ndarray of shape (min(k_x, k_y),)
        Principal angles between the two modality subspaces, in radians,
        increasing.
    n_shared_ : int
        Number of shared directions kept.
    target_rank_ : int
        Dimension ``k_x`` of the target basis.
    source_rank_ : int
        Dimension ``k_y`` of the source basis.
    n_forced_ : int
        ``max(0, k_x + k_y - n_features)``: the number of principal angles
        that are zero by dimension count alone, whatever the data.  Shared
        directions up to this number say nothing about the two modalities;
        lower ``variance`` until it is 0.
    target_mean_ : ndarray of shape (n_features,)
        Mean of the prepared target fit rows (subtracted when ``center``).
    source_mean_ : ndarray of shape (n_features,)
        Mean of the prepared source fit rows (subtracted when ``center``).
    center_ : bool
        Whether the rows were centered (``center``, or the former ``centre``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features, when ``X`` had string column names.

    See Also
    --------
    CentroidShift : Removes only the centroid offset.
    ContrastiveAdapter : Learns the alignment from paired rows.

    References
    ----------
    .. [1] Yi, Douady, Chen. "Decipher the Modality Gap in Multimodal
       Contrastive Learning".

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modgap import SSP
    >>> rng = np.random.default_rng(0)
    >>> shared = rng.normal(size=(200, 3))
    >>> target = np.hstack([shared, rng.normal(size=(200, 2)), np.zeros((200, 2))])
    >>> source = np.hstack([shared, np.zeros((200, 2)), rng.normal(size=(200, 2))])
    >>> ssp = SSP().fit(source, y=target)
    >>> ssp.n_shared_
    3
    >>> ssp.transform(source).shape
    (200, 7)
    """

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "variance": [Interval(Real, 0, 1, closed="right")],
        "eps": [Interval(Real, 0, 1, closed="left")],
        "rank": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "center": ["boolean"],
        "centre": ["boolean", DEPRECATED_OPTION],
    }

    def __init__(
        self,
        alpha=1.0,
        *,
        variance=0.99,
        eps=1e-3,
        rank="auto",
        center=False,
        normalize=True,
        n_jobs=None,
        centre=DEPRECATED,
    ):
        self.alpha = alpha
        self.variance = variance
        self.eps = eps
        self.rank = rank
        self.center = center
        self.normalize = normalize
        self.n_jobs = n_jobs
        self.centre = centre

    _array_api_support = True
    _stream_orders = (2, 2)

    def _fit_stream(self, source_stats, target_stats, source_rows, target_rows):
        self.center_ = renamed(self.centre, self.center, old="centre", new="center", owner="SSP")
        self.source_mean_, source_gram = _second_moment(source_stats, self.center_)
        self.target_mean_, target_gram = _second_moment(target_stats, self.center_)
        target_basis = modality_basis(target_gram, self.variance)
        source_basis = modality_basis(source_gram, self.variance)
        self.target_rank_ = target_basis.shape[1]
        self.source_rank_ = source_basis.shape[1]
        self.n_forced_ = max(0, self.target_rank_ + self.source_rank_ - target_gram.shape[0])

        cosines, directions = shared_directions(target_basis, source_basis)
        self.principal_angles_ = np.arccos(cosines)
        passing = cosines > 1.0 - self.eps
        n_passing = int(passing.sum())
        if n_passing == 0:
            raise ValueError(
                f"No direction is shared by the two modality subspaces (dimensions "
                f"{self.target_rank_} and {self.source_rank_}): the largest principal-angle "
                f"cosine is {cosines.max(initial=0.0):.6f}, not above 1 - eps = {1 - self.eps:.6f}. "
                f"Relax eps (e.g. eps={1 - cosines.max(initial=0.0) + 1e-6:.2g}) or raise "
                f"variance (now {self.variance}) so the subspaces are larger. The default "
                f"thresholds (variance=0.99, eps=1e-3) are strict: on half of the COCO CLIP pairs "
                f"variance=0.999, eps=1e-2 finds shared directions, and where the largest cosine "
                f"stays far below 1 (VideoCLIP and CLASP: under 0.8) no setting does."
            )
        if self.rank != "auto" and self.rank > n_passing:
            raise ValueError(
                f"rank={self.rank} but only {n_passing} direction(s) are shared at "
                f"eps={self.eps}: pass rank <= {n_passing}, rank='auto', or relax eps."
            )
        directions = directions[:, passing]
        # Rank the shared directions by the variance both modalities put on them.
        spread = np.einsum("jk,jl,lk->k", directions, source_gram + target_gram, directions)
        order = np.argsort(spread)[::-1]
        n_kept = n_passing if self.rank == "auto" else self.rank
        self.shared_basis_ = directions[:, order[:n_kept]]
        self.n_shared_ = n_kept

    def _projection(self, mean):
        basis = Constant(self.shared_basis_)
        offset = Constant(mean) if self.center_ else None

        def project(block):
            local = basis.of(block)
            if offset is not None:
                block = block - offset.of(block)
            return (block @ local) @ local.T

        return project

    def _source_map(self):
        return interpolate(self._projection(self.source_mean_), self.alpha)

    def _target_map(self):
        return interpolate(self._projection(self.target_mean_), self.alpha)
