"""The closed-form aligners on torch tensors and array-api-strict arrays, against NumPy.

scikit-learn's Array API dispatch needs ``SCIPY_ARRAY_API=1`` before scipy is
first imported, so the cases run in one fresh process
(``array_api_cases.py``) and the tests read its results.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA_DIR

pytest.importorskip("array_api_strict")
pytestmark = pytest.mark.slow  # one fresh process runs every case (25-70 s)

HERE = Path(__file__).resolve().parent
TOLERANCE = {"float64": 1e-6, "float32": 1e-4}


@pytest.fixture(scope="module")
def cases():
    path = DATA_DIR / "features_clip.npy"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"real embeddings not found at {path}")
        pytest.skip(f"real embeddings not found at {path}")
    env = dict(os.environ, SCIPY_ARRAY_API="1", PYTHONPATH=str(HERE.parent))
    done = subprocess.run(
        [sys.executable, str(HERE / "array_api_cases.py"), str(path)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_every_namespace_and_dtype_matches_numpy(cases):
    results = cases["results"]
    assert {r["namespace"] for r in results} >= {"array_api_strict", "torch"}
    assert len({r["aligner"] for r in results}) == 7
    for r in results:
        label = f"{r['aligner']} on {r['namespace']} {r['dtype']}"
        for what in ("transform", "transform_target", "stacked", "partial_fit"):
            assert r[what] <= TOLERANCE[r["dtype"]], f"{label}: {what} differs by {r[what]}"


def test_outputs_stay_in_the_input_namespace_and_dtype(cases):
    for r in cases["results"]:
        module = r["out_type"].split(".")[0]
        assert module == r["namespace"].split("-")[0], r
        assert r["out_dtype"].endswith(r["dtype"]), r
        assert r["tag"] is True


def test_bad_rows_give_the_numpy_errors(cases):
    for r in cases["results"]:
        assert r["nan_fit"] is not None and "NaN" in r["nan_fit"], r
        assert r["nan_transform"] is not None and "NaN" in r["nan_transform"], r
        assert r["zero_transform"] == r["numpy_zero_transform"], r
        assert "index 5" in r["zero_transform"]


def test_an_aligner_without_array_api_support_says_so(cases):
    assert cases["aniso"].startswith("TypeError: AnisoAlign does not support Array API inputs")
