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
    (points,) = [c for c in axes.collections if isinstance(c, PathCollection)]
    np.testing.assert_allclose(points.get_offsets(), [[0.0, 1.0], [0.6, 0.8], [0.95, 0.02]])
    assert [text.get_text() for text in axes.texts] == list(report.index)
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
    assert list(lines) == ["target-target", "source-source", "paired", "unpaired"]
    x, y = _unit(target), _unit(source)
    for label, expected_mean in {
        "paired": np.mean(np.sum(x * y, axis=1)),
        "unpaired": (np.sum(x @ y.T) - np.trace(x @ y.T)) / (120 * 119),
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
