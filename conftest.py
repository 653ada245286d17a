"""Collection rules shared by the tests, the docstring examples and the notebooks."""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data" / "mind-the-gap"


def pytest_collection_modifyitems(config, items):
    """The notebooks read the real embeddings beside the checkout.

    Without them the notebooks are skipped, except under ``CI``, where they
    must run (and fail loudly when the data are missing).
    """
    if SHARED_DATA.is_dir() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason=f"real embeddings not found at {SHARED_DATA}")
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(skip)
