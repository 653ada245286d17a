"""Tests of the figures: structure and plotted values, never pixels."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure

from sklearn_modgap.datasets import make_modality_gap
from sklearn_modgap.plotting import (
    plot_cosine_densities,
    plot_pca_pairs,
    plot_residual_spectrum,
    plot_shift_sweep,
    plot_spectra,
    plot_subspace_overlap,
    plot_tradeoff,
    save_diagnostic_figures,
)


@pytest.fixture(scope="module")
def pairs():
    return make_modality_gap(120, 24, random_state=0)


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_spectra_lines_are_the_covariance_eigenvalues(pairs):
    target, source = pairs
    figure = plot_spectra(target, source, labels=("image", "text"))
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    lines = axes.get_lines()
    assert [line.get_label() for line in lines] == ["image", "text"]
    assert axes.get_yscale() == "log"
    for line, rows in zip(lines, pairs):
        expected = np.sort(np.linalg.eigvalsh(np.cov(_unit(rows).T, bias=True)))[::-1]
        drawn = line.get_ydata()
        np.testing.assert_allclose(drawn, expected[: drawn.size], rtol=1e-6)
    assert "C_\\lambda" in axes.get_title()


def test_spectra_skip_null_eigenvalues_when_rows_are_few():
    target, source = make_modality_gap(10, 24, random_state=0)
    figure = plot_spectra(target, source)
    # 10 centred rows span at most 9 directions.
    assert all(line.get_xdata().size <= 9 for line in figure.axes[0].get_lines())


def test_subspace_overlap_curve_and_baseline(pairs):
    target, source = pairs
    figure = plot_subspace_overlap(target, source, qs=[1, 6, 12, 24])
    overlap, baseline = figure.axes[0].get_lines()
    np.testing.assert_array_equal(overlap.get_xdata(), [1, 6, 12, 24])
    np.testing.assert_allclose(baseline.get_ydata(), [1 / 24, 6 / 24, 12 / 24, 1.0])
    # Whole space: the two subspaces coincide.
    assert overlap.get_ydata()[-1] == pytest.approx(1.0)
    assert np.all((overlap.get_ydata() >= 0) & (overlap.get_ydata() <= 1 + 1e-9))


def test_subspace_overlap_default_grid_stays_supported():
    target, source = make_modality_gap(30, 64, random_state=0)
    (overlap, _) = plot_subspace_overlap(target, source).axes[0].get_lines()
    q = overlap.get_xdata()
    assert q[0] == 1 and q[-1] == 29 and np.all(np.diff(q) > 0)


def test_residual_spectrum_panels(pairs):
    target, source = pairs
    figure = plot_residual_spectrum(target, source)
    spectrum_axes, energy_axes = figure.axes
    shares = spectrum_axes.get_lines()[0].get_ydata()
    energy, diagonal = energy_axes.get_lines()
    # E(K) is the running sum of the drawn shares and ends at 1.
    np.testing.assert_allclose(np.cumsum(shares), energy.get_ydata()[: shares.size], rtol=1e-9)
    assert energy.get_ydata()[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(diagonal.get_xdata(), np.arange(1, 25) / 24)
    np.testing.assert_allclose(diagonal.get_ydata(), diagonal.get_xdata())
    assert spectrum_axes.get_xscale() == spectrum_axes.get_yscale() == "log"


def test_tradeoff_points_from_a_report():
    report = pd.DataFrame(
        {"Psi": [1.0, 0.95, 0.0], "Omega_k": [1.0, 0.8, 0.02],
         "M_k^Z": [0.0, 0.7, 1.0], "M_k^X": [0.0, 0.5, 0.9]},
        index=["identity", "ReAlign", "RandomTargetReplacement"],
    )
    figure = plot_tradeoff(report, preservation="Omega_k")
    (axes,) = figure.axes
    (points,) = [c for c in axes.collections if c.get_gid() == "aligners"]
    np.testing.assert_allclose(points.get_offsets(), [[0.0, 1.0], [0.6, 0.8], [0.95, 0.02]])
    assert [t.get_text() for t in axes.texts if t.get_gid() == "aligner"] == [
        "identity (un-aligned)", "ReAlign", "RandomTargetReplacement",
    ]
    assert "Omega" in axes.get_ylabel()


def test_tradeoff_needs_the_columns():
    with pytest.raises(ValueError, match="lacks the column"):
        plot_tradeoff(pd.DataFrame({"Psi": [1.0]}, index=["identity"]))
    with pytest.raises(ValueError, match="no rows"):
        plot_tradeoff(pd.DataFrame({"Psi": [], "M_k^Z": [], "M_k^X": []}))


def test_cosine_densities_integrate_to_one_and_sit_where_expected(pairs):
    target, source = pairs
    figure = plot_cosine_densities(target, source, bins=50)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert list(lines) == [
        "target-target", "source-source", "paired target-source", "unpaired target-source",
    ]
    x, y = _unit(target), _unit(source)
    for label, expected_mean in {
        "paired target-source": np.mean(np.sum(x * y, axis=1)),
        "unpaired target-source": (np.sum(x @ y.T) - np.trace(x @ y.T)) / (120 * 119),
    }.items():
        centers, density = lines[label].get_xdata(), lines[label].get_ydata()
        width = centers[1] - centers[0]
        assert np.sum(density) * width == pytest.approx(1.0)
        # The histogram mean agrees with the exact mean up to the bin width.
        assert np.sum(centers * density) * width == pytest.approx(expected_mean, abs=width)


def test_cosine_densities_sample_large_inputs():
    target, source = make_modality_gap(500, 8, random_state=0)
    figure = plot_cosine_densities(target, source, max_rows=50)
    assert len(figure.axes[0].get_lines()) == 4


def test_pca_view_has_both_clouds_and_pair_segments(pairs):
    target, source = pairs
    figure = plot_pca_pairs(target, source, n_lines=15)
    (axes,) = figure.axes
    segments = [c for c in axes.collections if isinstance(c, LineCollection)]
    clouds = [c for c in axes.collections if isinstance(c, PathCollection)]
    assert len(segments) == 1 and len(segments[0].get_segments()) == 15
    assert [len(c.get_offsets()) for c in clouds] == [120, 120]
    # Every segment joins a target point to a source point.
    target_points = {tuple(np.round(p, 9)) for p in clouds[0].get_offsets()}
    source_points = {tuple(np.round(p, 9)) for p in clouds[1].get_offsets()}
    for start, end in segments[0].get_segments():
        assert tuple(np.round(start, 9)) in target_points
        assert tuple(np.round(end, 9)) in source_points


def test_single_panel_plots_draw_into_a_given_axes(pairs):
    target, source = pairs
    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert plot_spectra(target, source, ax=left) is figure
    assert plot_cosine_densities(target, source, ax=right) is figure
    assert len(right.get_lines()) == 4


def test_paired_plots_refuse_unpaired_rows(pairs):
    target, source = pairs
    with pytest.raises(ValueError, match="paired row by row"):
        plot_cosine_densities(target, source[:-1])
    with pytest.raises(ValueError, match="paired row by row"):
        plot_pca_pairs(target[:-1], source)


def test_save_diagnostic_figures_writes_pngs(pairs, tmp_path):
    target, source = pairs
    paths = save_diagnostic_figures(target, source, tmp_path / "figures", q=16)
    assert [p.name for p in paths] == [
        "spectra.png", "subspace_overlap.png", "residual_spectrum.png",
        "cosine_densities.png", "pca_pairs.png",
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _all_text(figure):
    texts = [t.get_text() for t in figure.texts]
    for axes in figure.axes:
        texts += [axes.get_title(), axes.get_xlabel(), axes.get_ylabel()]
        texts += [t.get_text() for t in axes.texts]
        legend = axes.get_legend()
        texts += [t.get_text() for t in legend.get_texts()] if legend else []
    for legend in figure.legends:
        texts += [t.get_text() for t in legend.get_texts()]
    return " ".join(texts)


@pytest.mark.parametrize(
    "plot",
    [plot_spectra, plot_subspace_overlap, plot_residual_spectrum, plot_cosine_densities, plot_pca_pairs],
)
def test_every_pair_plot_names_the_modalities(pairs, plot):
    figure = plot(*pairs, labels=("images", "captions"))
    text = _all_text(figure)
    assert "images" in text and "captions" in text
    assert "target" not in text and "source" not in text


@pytest.mark.parametrize("labels", [("images",), "images", ("images", 3)])
def test_labels_must_be_two_names(pairs, labels):
    with pytest.raises(ValueError, match="labels must be two strings"):
        plot_cosine_densities(*pairs, labels=labels)


def test_cosine_densities_name_the_modalities(pairs):
    figure = plot_cosine_densities(*pairs, labels=("images", "texts"))
    assert [line.get_label() for line in figure.axes[0].get_lines()] == [
        "images-images", "texts-texts", "paired images-texts", "unpaired images-texts",
    ]


def test_pca_axes_give_the_explained_variance(pairs):
    target, source = pairs
    figure = plot_pca_pairs(target, source)
    (axes,) = figure.axes
    pooled = np.vstack([_unit(target), _unit(source)])
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(pooled.T)))[::-1]
    shares = 100 * eigenvalues[:2] / eigenvalues.sum()
    assert axes.get_xlabel() == f"PC 1 ({shares[0]:.1f}% of the variance)"
    assert axes.get_ylabel() == f"PC 2 ({shares[1]:.1f}% of the variance)"


def test_pca_legend_explains_the_lines_and_stays_off_the_data(pairs):
    figure = plot_pca_pairs(*pairs, n_lines=15)
    (axes,) = figure.axes
    assert axes.get_legend() is None
    (legend,) = figure.legends
    entries = [t.get_text() for t in legend.get_texts()]
    assert entries == ["pair lines: 15 of 120 pairs joined", "target", "source"]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()
    legend_box = legend.get_window_extent(renderer)
    axes_box = axes.get_window_extent(renderer)
    assert legend_box.y1 <= axes_box.y0


def test_residual_spectrum_titles_in_words_and_flags_the_small_sample_tail():
    target, source = make_modality_gap(10, 24, random_state=0)
    figure = plot_residual_spectrum(target, source)
    spectrum_axes, energy_axes = figure.axes
    assert "anisotropy" in spectrum_axes.get_title()
    assert "effective dimension" in spectrum_axes.get_title()
    # 10 pairs: the centred residuals span at most 9 of the 24 directions.
    (tail_line,) = [line for line in spectrum_axes.get_lines() if line.get_linestyle() == ":"]
    assert tail_line.get_xdata()[0] == 9
    (shade,) = energy_axes.patches
    left_edge = shade.get_window_extent().x0
    assert energy_axes.transData.inverted().transform((left_edge, 0))[0] == pytest.approx(9 / 24)
    assert "n < d" in _all_text(figure).replace("$", "")
    # The left panel shows the empty directions 10..24 as a shaded band up to d.
    (left_shade,) = spectrum_axes.patches
    box = left_shade.get_window_extent()
    data_left, data_right = spectrum_axes.transData.inverted().transform([(box.x0, 0), (box.x1, 0)])[:, 0]
    assert data_left == pytest.approx(9) and data_right == pytest.approx(24)
    assert spectrum_axes.get_xlim()[1] == pytest.approx(24)


def test_residual_spectrum_flags_nothing_with_enough_pairs(pairs):
    figure = plot_residual_spectrum(*pairs)
    spectrum_axes, energy_axes = figure.axes
    assert not [line for line in spectrum_axes.get_lines() if line.get_linestyle() == ":"]
    assert not energy_axes.patches


def test_tradeoff_joins_labels_of_coinciding_points_and_marks_references():
    report = pd.DataFrame(
        {"Psi": [1.0, 0.99, 0.985, 0.5], "M_k^Z": [0.0, 0.6, 0.61, 0.6], "M_k^X": [0.0, 0.5, 0.5, 0.5]},
        index=["identity", "CentroidShift", "ReAlign", "MomentMatch"],
    )
    (axes,) = plot_tradeoff(report, labels=("images", "captions")).axes
    names = [t.get_text() for t in axes.texts if t.get_gid() == "aligner"]
    assert names == ["identity (un-aligned)", "CentroidShift, ReAlign", "MomentMatch"]
    (better,) = [t for t in axes.texts if t.get_gid() == "better"]
    # The arrow points at the top-right corner of the axes.
    assert better.xy == (axes.get_xlim()[1], axes.get_ylim()[1])
    reference = [line for line in axes.get_lines() if line.get_linestyle() == ":"]
    assert len(reference) == 1 and list(reference[0].get_ydata()) == [1.0, 1.0]
    assert "captions" in axes.get_ylabel() and "images" in axes.get_xlabel()


def test_tradeoff_rings_the_unaligned_point_and_names_it():
    report = pd.DataFrame(
        {"Psi": [0.9, 1.0, 0.4], "M_k^Z": [0.7, 0.04, 0.9], "M_k^X": [0.5, 0.02, 0.8]},
        index=["ReAlign", "no alignment", "MomentMatch"],
    )
    (axes,) = plot_tradeoff(report, reference="no alignment", labels=("images", "captions")).axes
    (ring,) = [c for c in axes.collections if c.get_gid() == "reference"]
    np.testing.assert_allclose(ring.get_offsets(), [[0.03, 1.0]])
    assert len(ring.get_facecolors()) == 0 or ring.get_facecolors()[0][3] == 0  # hollow
    names = [t.get_text() for t in axes.texts if t.get_gid() == "aligner"]
    assert names == ["ReAlign", "no alignment (un-aligned)", "MomentMatch"]
    (line_label,) = [t for t in axes.texts if t.get_gid() == "identity"]
    assert "un-aligned captions" in line_label.get_text()
    # Without a reference row nothing is ringed and no label says un-aligned.
    (axes,) = plot_tradeoff(report, reference=None).axes
    assert not [c for c in axes.collections if c.get_gid() == "reference"]
    assert not [t for t in axes.texts if "(un-aligned)" in t.get_text()]


def _notebook_definitions(notebook, name):
    """Source of the definitions in the code cell of ``notebook`` that defines ``name``."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "notebooks" / notebook
    cells = json.loads(path.read_text())["cells"]
    (source,) = ["".join(c["source"]) for c in cells
                 if c["cell_type"] == "code" and f"def {name}(" in "".join(c["source"])]
    code = "\n".join(line for line in source.splitlines() if not line.startswith("%"))
    # Only the definitions: the cell's own calls need the fitted tables.
    code = code.split("\nfig, axes =")[0]
    return code


def test_notebook_frontier_labels_name_alpha_target():
    code = _notebook_definitions("04_tpc_cma_frontier.ipynb", "plot_frontier")
    alphas = (0.0, 0.05, 0.1, 0.3, 0.5)
    settings = [f"tpc-cma, alpha_target={a}" for a in alphas] + ["untouched", "infonce", "atp-cu"]
    columns = ["R@1 image->text", "R@1 text->image", "centroid gap"]
    rng = np.random.default_rng(0)
    mean = pd.DataFrame(rng.uniform(0.1, 0.9, (len(settings), 3)), index=settings, columns=columns)
    sd = mean * 0.01
    namespace = {"ALPHAS": alphas}
    exec(code, namespace)
    figure = Figure()
    axes = figure.subplots(1, 2)
    namespace["plot_frontier"](mean, sd, "test", axes)
    for ax in axes:
        texts = [t.get_text() for t in ax.texts]
        assert len(texts) == len(alphas)
        # A reader learns what the numbers are: the first label names the parameter.
        assert texts[0] == "alpha_target=0"
        assert texts[1:] == ["0.05", "0.1", "0.3", "0.5"]


def test_subspace_overlap_title_fits_a_half_width_panel(pairs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = Figure(figsize=(9, 3.5), layout="constrained")
    left, right = figure.subplots(1, 2)
    plot_subspace_overlap(*pairs, qs=[1, 4, 8], labels=("images", "captions"), ax=right)
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    title = right.title.get_window_extent(renderer)
    assert title.x1 <= figure.bbox.x1 and title.x0 >= figure.bbox.x0


def test_plot_shift_sweep_draws_recall_against_the_signed_gap():
    sweep = pd.DataFrame(
        {
            "delta": [1.0, 0.0, 2.0],
            "gap_distance": [0.4, 0.9, 0.3],
            "signed_gap_distance": [0.4, 0.9, -0.3],
            "target_to_substitute_recall@1": [0.5, 0.2, 0.6],
            "substitute_to_target_recall@1": [0.4, 0.1, 0.7],
        }
    )
    figure = plot_shift_sweep(sweep, labels=("image", "text"))
    axes = figure.axes[0]
    lines = [line for line in axes.get_lines() if line.get_gid() != "unshifted"]
    # Drawn in increasing delta: 0, 1, 2.
    np.testing.assert_allclose(lines[0].get_xdata(), [0.9, 0.4, -0.3])
    np.testing.assert_allclose(lines[0].get_ydata(), [0.2, 0.5, 0.6])
    np.testing.assert_allclose(lines[1].get_ydata(), [0.1, 0.4, 0.7])
    assert [line.get_label() for line in lines] == ["image -> text R@1", "text -> image R@1"]
    (unshifted,) = [line for line in axes.get_lines() if line.get_gid() == "unshifted"]
    np.testing.assert_allclose(unshifted.get_xdata(), [0.9, 0.9])
    with pytest.raises(ValueError, match="lacks the column"):
        plot_shift_sweep(sweep.drop(columns="signed_gap_distance"))
