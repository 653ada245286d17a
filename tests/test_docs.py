"""The documentation builds without warnings and its gallery pages show their figures."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _figures_drawn(example):
    """Figures an example draws: pyplot figures plus package plot calls bound to a name."""
    source = example.read_text()
    pyplot = len(re.findall(r"plt\.(?:subplots|figure)\(", source))
    package = len(re.findall(r"^\w+ = plot_\w+\(", source, flags=re.MULTILINE))
    return pyplot + package


@pytest.fixture(scope="module")
def built_html(tmp_path_factory):
    pytest.importorskip("sphinx_gallery")
    pytest.importorskip("myst_nb")
    out = tmp_path_factory.mktemp("html")
    doctrees = tmp_path_factory.mktemp("doctrees")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
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
    assert len(images) >= _figures_drawn(example) >= 1
    for image in images:
        assert (built_html / "_images" / image).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_each_notebook_is_rendered_with_its_figures(built_html, notebook):
    page = (built_html / "notebooks" / f"{notebook.stem}.html").read_text()
    assert re.search(r"<img [^>]*src=\"[^\"]+\.png\"", page)
