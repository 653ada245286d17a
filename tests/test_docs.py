"""The documentation builds without warnings and its gallery pages show their figures."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Runs one example under Agg and prints how many figures it created, pyplot's
# and bare ones alike, counted at Figure.__init__ (the package's own figures
# included, bound to a name or not).
_COUNT_FIGURES = """
import runpy, sys
import matplotlib
matplotlib.use("Agg")
from matplotlib.figure import Figure
created = []
original = Figure.__init__
def counting_init(self, *args, **kwargs):
    original(self, *args, **kwargs)
    created.append(id(self))
Figure.__init__ = counting_init
runpy.run_path(sys.argv[1], run_name="__main__")
print("FIGURES", len(created))
"""


def _figures_drawn(example):
    """Number of figures ``example`` creates when run as a script."""
    result = subprocess.run(
        [sys.executable, "-c", _COUNT_FIGURES, str(example)],
        capture_output=True, text=True, cwd=example.parent,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return int(re.findall(r"^FIGURES (\d+)$", result.stdout, flags=re.MULTILINE)[-1])


@pytest.fixture(scope="module")
def built_html(tmp_path_factory):
    pytest.importorskip("sphinx_gallery")
    pytest.importorskip("myst_nb")
    out = tmp_path_factory.mktemp("html")
    doctrees = tmp_path_factory.mktemp("doctrees")
    # run_stale_examples: sphinx-gallery would otherwise reuse the images of an
    # earlier build for every example whose source has not changed.
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
         "-D", "sphinx_gallery_conf.run_stale_examples=1",
         "-d", str(doctrees), str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_each_gallery_page_shows_every_figure_its_example_draws(built_html, example):
    page = (built_html / "auto_examples" / f"{example.stem}.html").read_text()
    images = re.findall(r'<img [^>]*src="\.\./_images/(sphx_glr_[^"]+\.png)"', page)
    # One image per figure: none missing, none shown twice.
    assert len(images) == len(set(images)) == _figures_drawn(example) >= 1
    for image in images:
        assert (built_html / "_images" / image).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_each_notebook_is_rendered_with_its_figures(built_html, notebook):
    page = (built_html / "notebooks" / f"{notebook.stem}.html").read_text()
    stored = notebook.read_text().count('"image/png"')
    images = re.findall(r"<img [^>]*src=\"[^\"]+\.png\"", page)
    assert len(images) == stored >= 1


@pytest.fixture
def gallery_figures(monkeypatch):
    """The docs' figure scraper, its tracking undone after the test."""
    pytest.importorskip("sphinx_gallery")
    from matplotlib.figure import Figure

    monkeypatch.syspath_prepend(str(ROOT / "docs" / "sphinxext"))
    monkeypatch.setattr(Figure, "__init__", Figure.__init__)
    import gallery_figures

    yield gallery_figures
    gallery_figures._created.clear()


def test_scraper_embeds_every_bare_figure_of_a_block_once(gallery_figures, tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from sklearn_modgap.datasets import make_modality_gap
    from sklearn_modgap.plotting import plot_cosine_densities, plot_spectra

    gallery_figures.reset({}, None)
    before = Figure()  # created before the example: not its figure
    gallery_figures.reset({}, "example.py")
    target, source = make_modality_gap(40, 8, random_state=0)
    kept = plot_spectra(target, source)
    plot_cosine_densities(target, source)  # bound to no name
    for _ in range(2):  # the name is rebound in the same block
        loop = Figure()
        loop.subplots()
    managed = plt.figure()  # left to the matplotlib scraper
    paths = iter(tmp_path / f"image_{i}.png" for i in range(10))
    block_vars = {"image_path_iterator": paths, "example_globals": {"kept": kept}}
    rst = gallery_figures.scrape(None, block_vars, {"src_dir": str(tmp_path)})
    plt.close(managed)
    saved = sorted(path.name for path in tmp_path.glob("*.png"))
    assert saved == ["image_0.png", "image_1.png", "image_2.png", "image_3.png"]
    assert rst.count(".. image-sg::") == 4
    assert "Covariance spectra" in rst  # the figures' titles
    # The next block shows only what it draws itself.
    block_vars["image_path_iterator"] = iter(tmp_path / f"next_{i}.png" for i in range(10))
    assert gallery_figures.scrape(None, block_vars, {"src_dir": str(tmp_path)}) == ""
