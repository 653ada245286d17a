"""Figures of the modality gap and of how aligners close it.

Every function returns a :class:`matplotlib.figure.Figure`.  Figures are
built without pyplot, so that they need no interactive back-end, are not kept
alive by pyplot's figure registry, and save to PNG with the Agg renderer;
functions that draw one panel also accept ``ax`` to draw into an existing
axes (and then return that axes' figure).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils import check_random_state

from . import metrics as _metrics
from ._validation import check_same_features
from .metrics._checks import prepare_rows, prepare_two
from .metrics._geometry import descending_eigh, mean_and_covariance

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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


def plot_spectra(
    target: ArrayLike,
    source: ArrayLike,
    *,
    labels: Sequence[str] = ("target", "source"),
    ax: Axes | None = None,
) -> Figure:
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
    labels = _check_labels(labels)
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


def plot_subspace_overlap(
    target: ArrayLike,
    source: ArrayLike,
    *,
    qs: ArrayLike | None = None,
    labels: Sequence[str] = ("target", "source"),
    ax: Axes | None = None,
) -> Figure:
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
    labels : tuple of str, default=("target", "source")
        Names of the two modalities, used in the title.
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
    labels = _check_labels(labels)
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
    axes.set_title(f"Overlap of the principal subspaces\nof {labels[0]} and {labels[1]}")
    axes.legend()
    return figure


def plot_residual_spectrum(
    target: ArrayLike,
    source: ArrayLike,
    *,
    labels: Sequence[str] = ("target", "source"),
) -> Figure:
    """Spectrum of the paired residual and its cumulative energy ``E(K)`` (Fig. 2).

    Left: the share of the residual energy along each principal direction,
    ``lambda_k(S_r) / tr(S_r)`` against ``k`` (log-log), for the residual
    ``r_i = (x_i - mu_x) - (y_i - mu_y)``.  Right: the cumulative energy
    ``E(K)`` against ``K/d`` with the isotropic reference ``E(K) = K/d``.

    With ``n`` pairs the centred residuals span at most ``n - 1`` directions.
    When ``n - 1 < d`` the remaining directions carry no energy because of
    the sample size, not because of the geometry: both panels mark where
    that tail begins and shade it.

    Parameters
    ----------
    target : array-like of shape (n_pairs, n_features)
        Target-modality rows ``X``.
    source : array-like of shape (n_pairs, n_features)
        Source rows ``Y`` (or substitutes ``Z``), paired with ``target``.
    labels : tuple of str, default=("target", "source")
        Names of the two modalities, used in the title.

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
    labels = _check_labels(labels)
    target, source = prepare_two(
        target, source, names=("target", "source"), paired=True, min_samples=2
    )
    energy = _metrics.cumulative_energy(target, source)
    share = np.diff(energy, prepend=0.0)
    n_pairs, n_features = target.shape
    a_r = _metrics.residual_anisotropy(target, source)
    d_eff = _metrics.effective_dimension(target, source)
    figure, (left, right) = _new_axes(None, ncols=2)
    figure.suptitle(f"Residual between paired {labels[0]} and {labels[1]}, after removing the mean gap")
    positive = share > share[0] * 1e-10
    ranks = np.arange(1, n_features + 1)
    left.plot(ranks[positive], share[positive], color="tab:red")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("principal direction $k$ of the residual")
    left.set_ylabel("share of residual energy $\\lambda_k(S_r) / \\mathrm{tr}(S_r)$")
    left.set_title(
        f"Energy per direction: anisotropy $A_r$ = {a_r:.1f},\n"
        f"effective dimension $d_{{eff}}$ = {d_eff:.1f} of $d$ = {n_features}",
        fontsize=10,
    )
    fraction = ranks / n_features
    right.plot(fraction, energy, color="tab:red", label="cumulative energy $E(K)$")
    right.plot(fraction, fraction, linestyle="--", color="gray", label="isotropic residual $E(K) = K/d$")
    supported = n_pairs - 1
    if supported < n_features:
        tail = f"beyond $n - 1$ = {supported}: no estimate ($n$ < $d$)"
        left.axvline(supported, color="black", linestyle=":", linewidth=1, label=tail)
        # The tail has no line to draw: shade it so that it is seen, up to d.
        left.axvspan(supported, n_features, color="gray", alpha=0.15)
        left.set_xlim(right=n_features)
        left.legend(fontsize=8)
        right.axvspan(supported / n_features, 1.0, color="gray", alpha=0.15, label=tail)
    right.set_xlabel("fraction of directions kept $K/d$")
    right.set_ylabel("cumulative energy $E(K)$")
    right.set_ylim(0, 1.02)
    right.set_title("Energy in the top $K$ directions", fontsize=10)
    right.legend(fontsize=8, loc="lower right")
    return figure


def _check_labels(labels):
    """The two modality names as a tuple of str, or a clear error."""
    if isinstance(labels, str) or len(labels) != 2 or not all(isinstance(name, str) for name in labels):
        raise ValueError(
            f"labels must be two strings naming the target and source modalities, got {labels!r}."
        )
    return tuple(labels)


def plot_tradeoff(
    report: pd.DataFrame,
    *,
    preservation: str = "Psi",
    labels: Sequence[str] = ("target", "source"),
    reference: str | None = "identity",
    ax: Axes | None = None,
) -> Figure:
    """The preservation-mixing trade-off of several aligners (Fig. 3a).

    One point per aligner: mixing ``(M_k^Z + M_k^X) / 2`` on the horizontal
    axis, preservation of the source geometry (``Psi`` by default) on the
    vertical axis, each point labelled with the aligner's name.  A good
    aligner sits at the top right, the corner marked *better*; the
    un-aligned source rows keep their geometry whole (preservation 1, the
    dotted reference line) and mix little; collapse and random target
    replacement sit at the bottom.  The row named ``reference`` (the
    identity) is that un-aligned point: it is ringed and labelled
    *un-aligned*.  Aligners that land on the same point (within 0.03 on
    both axes) share one label listing their names.

    Parameters
    ----------
    report : pandas.DataFrame
        A :func:`sklearn_modgap.report.gap_report` table: one row per aligner
        with columns ``M_k^Z``, ``M_k^X`` and ``preservation``.
    preservation : str, default="Psi"
        Column drawn on the vertical axis (``"Psi"``, ``"Omega_k"``, ``"Phi"``).
    labels : tuple of str, default=("target", "source")
        Names of the two modalities, used in the axis labels.
    reference : str or None, default="identity"
        Row of ``report`` that leaves the source rows as they are; ``None``,
        or a name not in the report, rings no point.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure when None.

    Returns
    -------
    figure : matplotlib.figure.Figure
        One scatter point per aligner (``gid="aligners"``), a ring around
        the un-aligned point (``gid="reference"``), one text label per group
        of coinciding points (``gid="aligner"``), the reference line of
        preservation 1 (``gid="identity"``) and the *better* corner
        (``gid="better"``).

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
    >>> axes = plot_tradeoff(report).axes[0]
    >>> [text.get_text() for text in axes.texts if text.get_gid() == "aligner"]
    ['identity (un-aligned)', 'ReAlign']
    """
    labels = _check_labels(labels)
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
    axes.axhline(1.0, color="gray", linestyle=":", linewidth=1, zorder=1)
    axes.annotate(
        f"un-aligned {labels[1]}: geometry kept whole", (0.25, 1.0), textcoords="offset points",
        xycoords=axes.get_yaxis_transform(), xytext=(0, 3), fontsize=8, color="gray", gid="identity",
    )
    axes.scatter(mixing, kept, color="tab:purple", zorder=3, gid="aligners")
    names = [str(name) for name in report.index]
    unaligned = np.array([reference is not None and name == str(reference) for name in names])
    if unaligned.any():
        axes.scatter(
            mixing[unaligned], kept[unaligned], s=150, facecolors="none", edgecolors="black",
            linewidths=1.2, zorder=4, gid="reference",
        )
        names = [f"{name} (un-aligned)" if is_reference else name
                 for name, is_reference in zip(names, unaligned)]
    for members in _coinciding(mixing, kept, tolerance=0.03):
        x, y = mixing[members[0]], kept[members[0]]
        right_edge = x > 0.7
        axes.annotate(
            ", ".join(names[i] for i in members), (x, y), textcoords="offset points",
            fontsize=9, xytext=(-5 if right_edge else 5, -12 if y > 0.95 else 4),
            ha="right" if right_edge else "left", gid="aligner",
        )
    x_high = max(1.1, float(np.nanmax(mixing)) + 0.1)
    y_low = min(-0.05, float(np.nanmin(kept)) - 0.05)
    axes.annotate(
        "better", xy=(x_high, 1.1), xytext=(-30, -45), textcoords="offset points",
        ha="right", va="top", fontsize=9, fontweight="bold", color="tab:green", gid="better",
        arrowprops={"arrowstyle": "->", "color": "tab:green"},
    )
    axes.set_xlabel(f"modality mixing $(M_k^Z + M_k^X)/2$ of substitutes and {labels[0]}")
    axes.set_ylabel(f"{labels[1]} geometry preserved {_axis_symbol(preservation)}")
    axes.set_xlim(-0.05, x_high)
    axes.set_ylim(y_low, 1.1)
    axes.set_title("Preservation-mixing trade-off")
    axes.grid(alpha=0.3)
    return figure


def plot_shift_sweep(
    sweep: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("target_to_substitute_recall@1", "substitute_to_target_recall@1"),
    labels: Sequence[str] = ("target", "source"),
    ax: Axes | None = None,
) -> Figure:
    """Retrieval against the gap distance along Liang et al.'s two-sided shift.

    The figure of Liang et al.'s shift experiment: the signed gap distance on
    the horizontal axis (positive before the two modalities meet, negative
    once they have passed each other), one line per metric on the vertical
    axis, and a dashed vertical line at the gap of the unshifted embeddings
    (``delta = 0``, when the sweep has it).

    Parameters
    ----------
    sweep : pandas.DataFrame
        A :func:`sklearn_modgap.metrics.liang_shift_sweep` table.
    metrics : sequence of str, default=("target_to_substitute_recall@1", \
"substitute_to_target_recall@1")
        Columns of ``sweep`` to draw.
    labels : tuple of str, default=("target", "source")
        Names of the two modalities, used in the legend.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure when None.

    Returns
    -------
    figure : matplotlib.figure.Figure
        One line per metric, the unshifted gap marked ``gid="unshifted"``.

    See Also
    --------
    sklearn_modgap.metrics.liang_shift_sweep : Computes the table.

    References
    ----------
    .. [1] W. Liang et al. "Mind the Gap". NeurIPS 2022, Sec. 4.3 and the
       ``plot_metrics`` function of its ``shift_features.ipynb``.

    Examples
    --------
    >>> from sklearn_modgap.datasets import make_modality_gap
    >>> from sklearn_modgap.metrics import liang_shift_sweep
    >>> from sklearn_modgap.plotting import plot_shift_sweep
    >>> target, source = make_modality_gap(n_pairs=60, n_features=8, random_state=0)
    >>> sweep = liang_shift_sweep(target, source, deltas=[-1.0, 0.0, 1.0, 2.0], k=1)
    >>> len(plot_shift_sweep(sweep).axes[0].get_lines())
    3
    """
    labels = _check_labels(labels)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    missing = [c for c in ("delta", "signed_gap_distance", *metrics) if c not in sweep.columns]
    if missing:
        raise ValueError(f"sweep lacks the column(s) {missing}; compute it with liang_shift_sweep.")
    if len(sweep) == 0 or not metrics:
        raise ValueError("nothing to draw: the sweep has no rows or no metric was asked for.")
    ordered = sweep.sort_values("delta")
    figure, (axes,) = _new_axes(ax, figsize=(6.0, 4.5))
    for column in metrics:
        axes.plot(ordered["signed_gap_distance"], ordered[column], "o-", label=_sweep_label(column, labels))
    unshifted = sweep.loc[sweep["delta"] == 0, "gap_distance"]
    if len(unshifted):
        axes.axvline(float(unshifted.iloc[0]), color="k", linestyle="--", linewidth=1, gid="unshifted")
    axes.set_xlabel("gap distance (negative: the modalities have passed each other)")
    axes.set_ylabel("recall")
    axes.set_title("Shifting both modalities along the gap (Liang et al.)")
    axes.legend()
    axes.grid(alpha=0.3)
    return figure


def _sweep_label(column, labels):
    for prefix, (first, second) in (
        ("target_to_substitute_recall@", labels),
        ("substitute_to_target_recall@", labels[::-1]),
    ):
        if column.startswith(prefix):
            return f"{first} -> {second} R@{column[len(prefix):]}"
    return column


def _coinciding(x, y, *, tolerance):
    """Groups of indices whose points lie within ``tolerance`` of a group's first point, in input order."""
    groups, assigned = [], np.zeros(x.size, dtype=bool)
    for i in range(x.size):
        if assigned[i]:
            continue
        close = ~assigned & (np.abs(x - x[i]) <= tolerance) & (np.abs(y - y[i]) <= tolerance)
        if np.isnan(x[i]) or np.isnan(y[i]):
            close = np.zeros(x.size, dtype=bool)
            close[i] = True
        assigned |= close
        groups.append(list(np.flatnonzero(close)))
    return groups


def _axis_symbol(column):
    return {"Psi": "$\\Psi$", "Omega_k": "$\\Omega_k$", "Phi": "$\\Phi$"}.get(column, column)


def plot_cosine_densities(
    target: ArrayLike,
    source: ArrayLike,
    *,
    max_rows: int = 2000,
    bins: int = 100,
    labels: Sequence[str] = ("target", "source"),
    random_state: int | np.random.RandomState | None = 0,
    ax: Axes | None = None,
) -> Figure:
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
    labels : tuple of str, default=("target", "source")
        Names of the two modalities, used in the legend.
    random_state : int, RandomState instance or None, default=0
        Seed of the sample.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure when None.

    Returns
    -------
    figure : matplotlib.figure.Figure
        Four lines, labelled (with the default ``labels``) ``target-target``,
        ``source-source``, ``paired target-source`` and ``unpaired
        target-source``.

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
    ['target-target', 'source-source', 'paired target-source', 'unpaired target-source']
    """
    first, second = _check_labels(labels)
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
        f"{first}-{first}": ((target @ target.T)[upper], TARGET_COLOR, "-"),
        f"{second}-{second}": ((source @ source.T)[upper], SOURCE_COLOR, "-"),
        f"paired {first}-{second}": (np.diag(cross), "tab:green", "-"),
        f"unpaired {first}-{second}": (cross[off_diagonal], "tab:gray", "--"),
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
    target: ArrayLike,
    source: ArrayLike,
    *,
    n_lines: int = 50,
    max_points: int = 2000,
    labels: Sequence[str] = ("target", "source"),
    random_state: int | np.random.RandomState | None = 0,
    ax: Axes | None = None,
) -> Figure:
    """Both modalities in the plane of the first two principal components.

    PCA is fitted on the pooled L2-normalised rows of both modalities; the
    gap appears as two separated clouds.  Thin grey lines join ``n_lines``
    randomly chosen pairs ``(x_i, y_i)``, so that the length and direction of
    the gap between an item and its partner can be seen; the legend says so
    and sits below the axes, off the data.  Each axis label gives the share
    of the pooled variance its component explains.

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

    labels = _check_labels(labels)
    target, source = prepare_two(
        target, source, names=("target", "source"), paired=True, min_samples=2
    )
    rng = check_random_state(random_state)
    if target.shape[0] > max_points:
        rows = np.sort(rng.choice(target.shape[0], max_points, replace=False))
        target, source = target[rows], source[rows]
    n = target.shape[0]
    pca = PCA(n_components=2, random_state=0)
    planar = pca.fit_transform(np.vstack([target, source]))
    target_2d, source_2d = planar[:n], planar[n:]
    joined = rng.choice(n, size=min(n_lines, n), replace=False)
    figure, (axes,) = _new_axes(ax)
    segments = np.stack([target_2d[joined], source_2d[joined]], axis=1)
    axes.add_collection(LineCollection(
        segments, colors="gray", linewidths=0.5, alpha=0.6,
        label=f"pair lines: {len(joined)} of {n} pairs joined",
    ))
    axes.scatter(*target_2d.T, s=6, color=TARGET_COLOR, label=labels[0], alpha=0.7)
    axes.scatter(*source_2d.T, s=6, color=SOURCE_COLOR, label=labels[1], alpha=0.7)
    share = pca.explained_variance_ratio_
    axes.set_xlabel(f"PC 1 ({100 * share[0]:.1f}% of the variance)")
    axes.set_ylabel(f"PC 2 ({100 * share[1]:.1f}% of the variance)")
    axes.set_title("Both modalities, first two principal components")
    if ax is None:
        figure.legend(markerscale=3, fontsize=8, loc="outside lower center", ncols=3, frameon=False)
    else:
        axes.legend(markerscale=3, fontsize=8, loc="best", framealpha=0.8)
    return figure


def save_diagnostic_figures(
    target: ArrayLike,
    source: ArrayLike,
    output_dir: str | Path,
    *,
    q: int = 128,
    labels: Sequence[str] = ("target", "source"),
    dpi: int = 120,
) -> list[Path]:
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
    labels : tuple of str, default=("target", "source")
        Names of the two modalities, used in every figure.
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
        "spectra": plot_spectra(target, source, labels=labels),
        "subspace_overlap": plot_subspace_overlap(target, source, qs=qs, labels=labels),
        "residual_spectrum": plot_residual_spectrum(target, source, labels=labels),
        "cosine_densities": plot_cosine_densities(target, source, labels=labels),
        "pca_pairs": plot_pca_pairs(target, source, labels=labels),
    }
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in figures.items():
        path = output_dir / f"{name}.png"
        figure.savefig(path, dpi=dpi)
        paths.append(path)
    return paths
