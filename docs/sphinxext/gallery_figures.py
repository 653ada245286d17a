"""A sphinx-gallery image scraper for figures that pyplot does not manage.

The plotting functions of the package build their figures without pyplot
(see :mod:`sklearn_modgap.plotting`), so sphinx-gallery's matplotlib scraper,
which walks pyplot's figure registry, never sees them.

How the figures are found, and why this way: while the gallery is built,
every :class:`~matplotlib.figure.Figure` is recorded at creation (a wrapper
around ``Figure.__init__``, installed by :func:`reset` before each example
and kept for the build's lifetime).  After each code block, :func:`scrape`
saves, in creation order, every figure recorded since the previous block
that pyplot does not manage, and forgets them; the pyplot figures are left
to sphinx-gallery's matplotlib scraper, which runs next.  Two other ways
were rejected:

* looking for figures among the example's variables misses a figure that is
  not bound to a name (a ``plot_*(...)`` call that is not the block's last
  statement, a figure made inside a loop or a helper, or one whose name is
  rebound in the same block);
* having the package draw through pyplot when pyplot is imported would
  change what users get (pyplot keeps every such figure alive until it is
  closed, and warns past 20) only to please the documentation.

The record holds the figures themselves, so a figure nobody keeps a
reference to still reaches the page; the record is emptied after each block
and at the start of each example, so nothing is kept longer than a block.
"""

import functools

from matplotlib.figure import Figure
from sphinx_gallery.scrapers import figure_rst

_created = []


def _track():
    """Wrap ``Figure.__init__`` once so that every new figure is recorded."""
    if getattr(Figure.__init__, "_gallery_tracked", False):
        return
    original = Figure.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        _created.append(self)

    __init__._gallery_tracked = True
    Figure.__init__ = __init__


def reset(gallery_conf, fname):
    """Start recording the figures of the next example, with an empty record.

    Parameters
    ----------
    gallery_conf : dict
        The sphinx-gallery configuration (unused).
    fname : str or None
        The example about to run (unused).
    """
    _track()
    _created.clear()


def _pyplot_managed(figure):
    return getattr(figure.canvas, "manager", None) is not None


def scrape(block, block_vars, gallery_conf, **kwargs):
    """Save the figures a block drew without pyplot and return their reST.

    Parameters
    ----------
    block : tuple
        The code block just run (unused).
    block_vars : dict
        Its variables; ``image_path_iterator`` gives the file names.
    gallery_conf : dict
        The sphinx-gallery configuration.
    **kwargs : dict
        Passed on to :meth:`~matplotlib.figure.Figure.savefig`.

    Returns
    -------
    rst : str
        The reST that embeds the saved images, empty when there are none.
    """
    figures = [figure for figure in _created if not _pyplot_managed(figure)]
    _created.clear()
    paths = []
    for figure, path in zip(figures, block_vars["image_path_iterator"]):
        figure.savefig(path, **kwargs)
        paths.append(path)
    if not paths:
        return ""
    titles = ", ".join(
        axes.get_title() for figure in figures for axes in figure.axes if axes.get_title()
    )
    return figure_rst(paths, gallery_conf["src_dir"], titles)
