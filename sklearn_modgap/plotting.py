"""Figures of the modality gap and of how aligners close it.

Every function returns a :class:`matplotlib.figure.Figure`.  Figures are
built without pyplot, so that they need no interactive back-end, are not kept
alive by pyplot's figure registry, and save to PNG with the Agg renderer;
functions that draw one panel also accept ``ax`` to draw into an existing
axes (and then return that axes' figure).
"""

from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

from . import metrics as _metrics
from ._validation import check_same_features
from .metrics._checks import prepare_rows, prepare_two
from .metrics._geometry import descending_eigh, mean_and_covariance

TARGET_COLOR = "tab:blue"
SOURCE_COLOR = "tab:orange"


def _new_axes(ax, ncols=1, figsize=(5.0, 4.0)):
    from matplotlib.figure import Figure

    if ax is not None:
        if ncols != 1:
            raise ValueError("this figure has several panels; pass ax=None.")
        return ax.figure, [ax]
    figure = Figure(figsize=(figsize[0] * ncols, figsize[1]), layout="constrained")
    return figure, list(np.atleast_1d(figure.subplots(1, ncols)))


def plot_spectra(target, source, *, labels=("target", "source"), ax=None):
    """Covariance spectra of both modalities (AnisoAlign, Fig. 1a).

    The eigenvalues of each modality's population covariance, in decreasing
    order, on a logarithmic scale; the title gives ``C_lambda``, the
    correlation of the log spectra.  Eigenvalues that are zero up to rounding
    (with fewer rows than features) are not drawn.

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_source, n_features)
        Source-modality rows ``Y``.
    labels : tuple of str, default=("target", "source")
        Legend entries of the two modalities.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure when None.

    Returns
    -------
    figure : matplotlib.figure.Figure
        One line per modality.

    See Also
    --------
    sklearn_modgap.metrics.spectral_correlation : ``C_lambda``.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 and Fig. 1a.

    Examples
    --------
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.plotting import plot_spectra
    >>> target, source = make_modality_gap(n_pairs=100, n_features=16, random_state=0)
    >>> len(plot_spectra(target, source).axes[0].get_lines())
    2
    """
    target, source = prepare_two(target, source, names=("target", "source"), min_samples=2)
    figure, (axes,) = _new_axes(ax)
    for rows, label, color in zip((target, source), labels, (TARGET_COLOR, SOURCE_COLOR)):
        spectrum = descending_eigh(mean_and_covariance(rows)[1])[0]
        positive = spectrum[spectrum > spectrum[0] * 1e-10]
        axes.plot(np.arange(1, positive.size + 1), positive, label=label, color=color)
    axes.set_yscale("log")
    axes.set_xlabel("eigenvalue rank")
    axes.set_ylabel("covariance eigenvalue")
    c_lambda = _metrics.spectral_correlation(target, source)
    axes.set_title(f"Covariance spectra ($C_\\lambda$ = {c_lambda:.3f})")
    axes.legend()
    return figure


def plot_subspace_overlap(target, source, *, qs=None, ax=None):
    """Principal-subspace overlap ``O_q`` against ``q`` with its baseline ``q/d`` (Fig. 1b).

    Parameters
    ----------
    target : array-like of shape (n_target, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_source, n_features)
        Source-modality rows ``Y``.
    qs : array-like of int, default=None
        Subspace dimensions; ``None`` takes up to 10 values spread
        geometrically from 1 to the largest ``q`` the data supports.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure when None.

    Returns
    -------
    figure : matplotlib.figure.Figure
        Two lines: ``O_q`` (with markers) and the random baseline ``q/d``.

    See Also
    --------
    sklearn_modgap.metrics.subspace_overlap : ``O_q``.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 and Fig. 1b.

    Examples
    --------
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.plotting import plot_subspace_overlap
    >>> target, source = make_modality_gap(n_pairs=100, n_features=16, random_state=0)
    >>> figure = plot_subspace_overlap(target, source, qs=[1, 4, 8])
    >>> figure.axes[0].get_lines()[0].get_xdata().tolist()
    [1, 4, 8]
    """
    target, source = prepare_two(target, source, names=("target", "source"), min_samples=2)
    n_features = target.shape[1]
    if qs is None:
        largest = min(n_features, target.shape[0] - 1, source.shape[0] - 1)
        qs = np.unique(np.geomspace(1, largest, num=10).round().astype(int))
    qs = [int(q) for q in qs]
    overlaps = [_metrics.subspace_overlap(target, source, q=q) for q in qs]
    figure, (axes,) = _new_axes(ax)
    axes.plot(qs, overlaps, marker="o", label="$O_q$")
    axes.plot(qs, [q / n_features for q in qs], linestyle="--", color="gray",
              label="random baseline $q/d$")
    axes.set_xlabel("subspace dimension $q$")
    axes.set_ylabel("$O_q$")
    axes.set_ylim(0, 1.02)
    axes.set_title("Principal-subspace overlap")
    axes.legend()
    return figure


def plot_residual_spectrum(target, source):
    """Spectrum of the paired residual and its cumulative energy ``E(K)`` (Fig. 2).

    Left: ``lambda_k(S_r) / tr(S_r)`` against ``k`` (log-log), the residual
    ``r_i = (x_i - mu_x) - (y_i - mu_y)``.  Right: ``E(K)`` against ``K/d``
    with the isotropic reference ``E(K) = K/d``.

    Parameters
    ----------
    target : array-like of shape (n_pairs, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_pairs, n_features)
        Source rows ``Y`` (or substitutes ``Z``), paired with ``target``.

    Returns
    -------
    figure : matplotlib.figure.Figure
        Two axes; the right one holds ``E(K)`` and the diagonal.

    See Also
    --------
    sklearn_modgap.metrics.cumulative_energy : ``E(K)``.
    sklearn_modgap.metrics.residual_anisotropy : ``A_r = d E(1)``.

    References
    ----------
    .. [1] AnisoAlign, Sec. 3 and Fig. 2.

    Examples
    --------
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.plotting import plot_residual_spectrum
    >>> target, source = make_modality_gap(n_pairs=100, n_features=16, random_state=0)
    >>> len(plot_residual_spectrum(target, source).axes)
    2
    """
    energy = _metrics.cumulative_energy(target, source)
    share = np.diff(energy, prepend=0.0)
    n_features = energy.size
    a_r = _metrics.residual_anisotropy(target, source)
    d_eff = _metrics.effective_dimension(target, source)
    figure, (left, right) = _new_axes(None, ncols=2)
    positive = share > share[0] * 1e-10
    ranks = np.arange(1, n_features + 1)
    left.plot(ranks[positive], share[positive], color="tab:red")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("direction $k$")
    left.set_ylabel("$\\lambda_k(S_r) / \\mathrm{tr}(S_r)$")
    left.set_title(f"Residual spectrum ($A_r$ = {a_r:.1f}, $d_{{eff}}$ = {d_eff:.1f})")
    fraction = ranks / n_features
    right.plot(fraction, energy, color="tab:red", label="$E(K)$")
    right.plot(fraction, fraction, linestyle="--", color="gray", label="isotropic")
    right.set_xlabel("$K/d$")
    right.set_ylabel("cumulative energy $E(K)$")
    right.set_ylim(0, 1.02)
    right.set_title("Cumulative residual energy")
    right.legend()
    return figure


def plot_tradeoff(report, *, preservation="Psi", ax=None):
    """The preservation-mixing trade-off of several aligners (Fig. 3a).

    One point per aligner: mixing ``(M_k^Z + M_k^X) / 2`` on the horizontal
    axis, preservation of the source geometry (``Psi`` by default) on the
    vertical axis, each point labelled with the aligner's name.  A good
    aligner sits at the top right; the identity at the top left, collapse and
    random target replacement at the bottom.

    Parameters
    ----------
    report : pandas.DataFrame
        A :func:`sklearn_modgap.report.gap_report` table: one row per aligner
        with columns ``M_k^Z``, ``M_k^X`` and ``preservation``.
    preservation : str, default="Psi"
        Column drawn on the vertical axis (``"Psi"``, ``"Omega_k"``, ``"Phi"``).
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure when None.

    Returns
    -------
    figure : matplotlib.figure.Figure
        One scatter point and one text label per aligner.

    See Also
    --------
    sklearn_modgap.report.gap_report : Computes the table.

    References
    ----------
    .. [1] AnisoAlign, Sec. 5 and Fig. 3a.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_modgap.plotting import plot_tradeoff
    >>> report = pd.DataFrame({"Psi": [1.0, 0.9], "M_k^Z": [0.0, 0.7], "M_k^X": [0.0, 0.6]},
    ...                       index=["identity", "ReAlign"])
    >>> [text.get_text() for text in plot_tradeoff(report).axes[0].texts]
    ['identity', 'ReAlign']
    """
    missing = [c for c in ("M_k^Z", "M_k^X", preservation) if c not in report.columns]
    if missing:
        raise ValueError(
            f"report lacks the column(s) {missing}; compute them with gap_report(metrics=...)."
        )
    if len(report) == 0:
        raise ValueError("report has no rows: nothing to draw.")
    mixing = (report["M_k^Z"].to_numpy(float) + report["M_k^X"].to_numpy(float)) / 2.0
    kept = report[preservation].to_numpy(float)
    figure, (axes,) = _new_axes(ax, figsize=(6.0, 4.5))
    axes.scatter(mixing, kept, color="tab:purple", zorder=3)
    for i, (name, x, y) in enumerate(zip(report.index, mixing, kept)):
        # Aligners that land on (nearly) the same point get stacked labels;
        # labels of points near the right edge go to their left.
        stacked = np.sum((np.abs(mixing[:i] - x) < 0.04) & (np.abs(kept[:i] - y) < 0.04))
        right_edge = x > 0.7
        axes.annotate(
            str(name), (x, y), textcoords="offset points", fontsize=9,
            xytext=(-5 if right_edge else 5, 4 - 11 * stacked),
            ha="right" if right_edge else "left",
        )
    axes.set_xlabel("modality mixing $(M_k^Z + M_k^X)/2$")
    axes.set_ylabel(f"geometry preservation {_axis_symbol(preservation)}")
    axes.set_xlim(-0.05, max(1.1, float(np.nanmax(mixing)) + 0.1))
    axes.set_ylim(min(-0.05, float(np.nanmin(kept)) - 0.05), 1.1)
    axes.set_title("Preservation-mixing trade-off")
    axes.grid(alpha=0.3)
    return figure


def _axis_symbol(column):
    return {"Psi": "$\\Psi$", "Omega_k": "$\\Omega_k$", "Phi": "$\\Phi$"}.get(column, column)


def plot_cosine_densities(target, source, *, max_rows=2000, bins=100, random_state=0, ax=None):
    """Densities of the cosine similarities within and across modalities.

    The four distributions of "Decipher the Modality Gap" (Fig. 2a):
    target-target ``cos(x_i, x_j)`` and source-source ``cos(y_i, y_j)`` over
    ``i < j``, paired ``cos(x_i, y_i)`` and unpaired ``cos(x_i, y_j)`` over
    ``i != j``.  A gap shows as cross-modal densities far to the left of the
    within-modality ones.

    Parameters
    ----------
    target : array-like of shape (n_pairs, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_pairs, n_features)
        Source-modality rows ``Y``, paired with ``target``.
    max_rows : int, default=2000
        Larger inputs are drawn from a seeded sample of this many pairs.
    bins : int, default=100
        Histogram bins of each density.
    random_state : int, RandomState instance or None, default=0
        Seed of the sample.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure when None.

    Returns
    -------
    figure : matplotlib.figure.Figure
        Four lines, labelled ``target-target``, ``source-source``, ``paired``
        and ``unpaired``.

    References
    ----------
    .. [1] "Decipher the Modality Gap in Multimodal Contrastive Learning",
       Fig. 2a.

    Examples
    --------
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.plotting import plot_cosine_densities
    >>> target, source = make_modality_gap(n_pairs=100, n_features=16, random_state=0)
    >>> figure = plot_cosine_densities(target, source)
    >>> [line.get_label() for line in figure.axes[0].get_lines()]
    ['target-target', 'source-source', 'paired', 'unpaired']
    """
    target, source = prepare_two(
        target, source, names=("target", "source"), paired=True, min_samples=2
    )
    if target.shape[0] > max_rows:
        rng = check_random_state(random_state)
        rows = np.sort(rng.choice(target.shape[0], max_rows, replace=False))
        target, source = target[rows], source[rows]
    n = target.shape[0]
    upper = np.triu_indices(n, k=1)
    off_diagonal = ~np.eye(n, dtype=bool)
    cross = target @ source.T
    groups = {
        "target-target": ((target @ target.T)[upper], TARGET_COLOR, "-"),
        "source-source": ((source @ source.T)[upper], SOURCE_COLOR, "-"),
        "paired": (np.diag(cross), "tab:green", "-"),
        "unpaired": (cross[off_diagonal], "tab:gray", "--"),
    }
    # Common bins over the observed range: densities share one resolution.
    low = min(float(values.min()) for values, _, _ in groups.values())
    high = max(float(values.max()) for values, _, _ in groups.values())
    edges = np.linspace(low, max(high, low + 1e-6), bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    figure, (axes,) = _new_axes(ax)
    for label, (cosines, color, style) in groups.items():
        density, _ = np.histogram(cosines, bins=edges, density=True)
        axes.plot(centers, density, label=label, color=color, linestyle=style)
    axes.set_xlabel("cosine similarity")
    axes.set_ylabel("density")
    axes.set_title("Cosine similarities within and across modalities")
    axes.legend()
    return figure


def plot_pca_pairs(
    target, source, *, n_lines=50, max_points=2000, labels=("target", "source"),
    random_state=0, ax=None,
):
    """Both modalities in the plane of the first two principal components.

    PCA is fitted on the pooled L2-normalised rows of both modalities; the
    gap appears as two separated clouds.  Thin lines join ``n_lines``
    randomly chosen pairs ``(x_i, y_i)``.

    Parameters
    ----------
    target : array-like of shape (n_pairs, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_pairs, n_features)
        Source rows ``Y`` (or substitutes ``Z``), paired with ``target``.
    n_lines : int, default=50
        Number of pairs joined by a line (all when fewer pairs).
    max_points : int, default=2000
        Larger inputs are drawn from a seeded sample of this many pairs.
    labels : tuple of str, default=("target", "source")
        Legend entries of the two modalities.
    random_state : int, RandomState instance or None, default=0
        Seed of the samples.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure when None.

    Returns
    -------
    figure : matplotlib.figure.Figure
        Two scatter collections and one line collection of pair segments.

    Examples
    --------
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.plotting import plot_pca_pairs
    >>> target, source = make_modality_gap(n_pairs=100, n_features=16, random_state=0)
    >>> len(plot_pca_pairs(target, source, n_lines=10).axes[0].collections)
    3
    """
    from matplotlib.collections import LineCollection
    from sklearn.decomposition import PCA

    target, source = prepare_two(
        target, source, names=("target", "source"), paired=True, min_samples=2
    )
    rng = check_random_state(random_state)
    if target.shape[0] > max_points:
        rows = np.sort(rng.choice(target.shape[0], max_points, replace=False))
        target, source = target[rows], source[rows]
    n = target.shape[0]
    planar = PCA(n_components=2, random_state=0).fit_transform(np.vstack([target, source]))
    target_2d, source_2d = planar[:n], planar[n:]
    joined = rng.choice(n, size=min(n_lines, n), replace=False)
    figure, (axes,) = _new_axes(ax)
    segments = np.stack([target_2d[joined], source_2d[joined]], axis=1)
    axes.add_collection(LineCollection(segments, colors="gray", linewidths=0.5, alpha=0.6))
    axes.scatter(*target_2d.T, s=6, color=TARGET_COLOR, label=labels[0], alpha=0.7)
    axes.scatter(*source_2d.T, s=6, color=SOURCE_COLOR, label=labels[1], alpha=0.7)
    axes.set_xlabel("PC 1")
    axes.set_ylabel("PC 2")
    axes.set_title("Both modalities, first two principal components")
    axes.legend(markerscale=3)
    return figure


def save_diagnostic_figures(target, source, output_dir, *, q=128, dpi=120):
    """Write the figures of the gap's geometry as PNG files.

    ``spectra.png`` (Fig. 1a), ``subspace_overlap.png`` (Fig. 1b, ``q`` up
    to the given value), ``residual_spectrum.png`` (Fig. 2),
    ``cosine_densities.png`` and ``pca_pairs.png``.

    Parameters
    ----------
    target : array-like of shape (n_pairs, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_pairs, n_features)
        Source-modality rows ``Y``, paired with ``target``.
    output_dir : str or path
        Folder for the files; created when missing.
    q : int, default=128
        Largest subspace dimension of the overlap figure.
    dpi : int, default=120
        Resolution of the PNG files.

    Returns
    -------
    paths : list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.plotting import save_diagnostic_figures
    >>> target, source = make_modality_gap(n_pairs=100, n_features=16, random_state=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     paths = save_diagnostic_figures(target, source, folder, q=8)
    ...     print(sorted(path.name for path in paths))
    ['cosine_densities.png', 'pca_pairs.png', 'residual_spectrum.png', 'spectra.png', 'subspace_overlap.png']
    """
    target = prepare_rows(target, name="target", min_samples=2)
    source = prepare_rows(source, name="source", min_samples=2)
    check_same_features(target.shape[1], source, name="source", reference="the target")
    largest = min(q, target.shape[1], target.shape[0] - 1)
    qs = np.unique(np.geomspace(1, largest, num=10).round().astype(int))
    figures = {
        "spectra": plot_spectra(target, source),
        "subspace_overlap": plot_subspace_overlap(target, source, qs=qs),
        "residual_spectrum": plot_residual_spectrum(target, source),
        "cosine_densities": plot_cosine_densities(target, source),
        "pca_pairs": plot_pca_pairs(target, source),
    }
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in figures.items():
        path = output_dir / f"{name}.png"
        figure.savefig(path, dpi=dpi)
        paths.append(path)
    return paths
