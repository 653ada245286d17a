"""Every object of the API reference has a docstring the docs build accepts.

The docs are built with ``-W``: a parameter missing from a docstring, a
documented parameter the signature lacks, or a bare ``name_`` that reST reads
as a link target fails the build.  These tests find such a docstring without
building the site.
"""

import importlib
import inspect
import io
import re
from pathlib import Path

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")
docutils_core = pytest.importorskip("docutils.core")
SphinxDocString = pytest.importorskip("numpydoc.docscrape_sphinx").SphinxDocString

API = Path(__file__).resolve().parents[1] / "docs" / "api.rst"
CHECKS = {"GL08", "PR01", "PR02", "PR10", "RT03"}  # as numpydoc_validation_checks in docs/conf.py


def _api_objects():
    module, names, listing = None, [], False
    for line in API.read_text().splitlines():
        match = re.match(r"\.\. currentmodule:: (\S+)", line)
        if match:
            module = match.group(1)
            continue
        if line.startswith(".. autosummary::"):
            listing = True
            continue
        if listing:
            entry = line.strip()
            if not entry or entry.startswith(":"):
                continue
            if not line.startswith("   "):
                listing = False
                continue
            names.append(f"{module}.{entry}")
    return names


API_OBJECTS = _api_objects()


def _resolve(name):
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def test_api_reference_lists_every_public_aligner():
    import sklearn_modgap

    listed = {name.rsplit(".", 1)[1] for name in API_OBJECTS}
    missing = [name for name in sklearn_modgap.__all__ if name not in listed and name[0].isupper()]
    assert not missing, f"public aligners missing from docs/api.rst: {missing}"


@pytest.mark.parametrize("name", API_OBJECTS)
def test_numpydoc_validation_passes(name):
    obj = _resolve(name)
    qualified = f"{obj.__module__}.{obj.__qualname__}"
    report = numpydoc_validate.validate(qualified)
    errors = [f"{code}: {message}" for code, message in report["errors"] if code in CHECKS]
    assert not errors, f"{name}: {errors}"


@pytest.mark.parametrize("name", API_OBJECTS)
def test_docstring_has_no_unknown_link_targets(name):
    # a bare ``n_features_in_`` is a reST reference to an undefined target
    obj = _resolve(name)
    doc = str(SphinxDocString(inspect.getdoc(obj), config={"show_class_members": False}))
    stream = io.StringIO()
    docutils_core.publish_doctree(
        doc, settings_overrides={"report_level": 3, "halt_level": 5, "warning_stream": stream}
    )
    unknown = [line for line in stream.getvalue().splitlines() if "Unknown target name" in line]
    assert not unknown, f"{name}: {unknown}"
