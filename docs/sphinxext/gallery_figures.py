"""A sphinx-gallery image scraper for figures that pyplot does not manage.

The plotting functions of the package build their figures without pyplot
(see :mod:`sklearn_modgap.plotting`), so sphinx-gallery's matplotlib scraper,
which walks pyplot's figure registry, never sees them.  This scraper looks at
what a code block leaves behind instead: every :class:`~matplotlib.figure.Figure`
bound to a name of the example (directly or inside a list, tuple or dict) or
returned by the block's last expression, that pyplot does not manage and that
has not been shown yet, is saved and embedded below the block.
"""

import weakref

from sphinx_gallery.scrapers import figure_rst

_shown = weakref.WeakSet()


def _candidates(namespace):
    values = list(namespace.values())
    for value in list(values):
        if isinstance(value, dict):
            values.extend(value.values())
        elif isinstance(value, (list, tuple)):
            values.extend(value)
    return values


def scrape(block, block_vars, gallery_conf, **kwargs):
    """Save the figures a block drew without pyplot and return their reST.

    Runs before sphinx-gallery's matplotlib scraper: the figures pyplot
    manages now are left to it and remembered, so that once it has closed
    them they are not taken for bare figures in a later block.
    """
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    for number in plt.get_fignums():
        _shown.add(plt.figure(number))
    figures = []
    for value in _candidates(block_vars["example_globals"]):
        if isinstance(value, Figure) and value not in _shown:
            _shown.add(value)
            figures.append(value)
    paths = []
    for figure, path in zip(figures, block_vars["image_path_iterator"]):
        figure.savefig(path, **kwargs)
        paths.append(path)
    if not paths:
        return ""
    titles = ", ".join(axes.get_title() for figure in figures for axes in figure.axes if axes.get_title())
    return figure_rst(paths, gallery_conf["src_dir"], titles)
