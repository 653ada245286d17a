"""The package ships its type hints (``py.typed``) and they check with mypy."""

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_is_marked_typed():
    assert (ROOT / "sklearn_modgap" / "py.typed").exists()


@pytest.mark.slow
def test_mypy_finds_no_errors_in_the_package():
    pytest.importorskip("mypy")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def _public_functions():
    import sklearn_modgap.metrics
    import sklearn_modgap.plotting
    import sklearn_modgap.report

    for module in (sklearn_modgap.metrics, sklearn_modgap.report, sklearn_modgap.plotting):
        names = getattr(module, "__all__", None)
        if names is None:
            names = [name for name in vars(module) if not name.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if not inspect.isfunction(obj):
                continue
            if module.__name__ == "sklearn_modgap.metrics" or obj.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", obj


def test_the_public_functions_are_annotated():
    functions = dict(_public_functions())
    assert len(functions) >= 35, sorted(functions)
    missing = []
    for qualname, function in functions.items():
        signature = inspect.signature(function)
        if signature.return_annotation is inspect.Signature.empty:
            missing.append(f"{qualname}: return")
        missing += [
            f"{qualname}: {name}"
            for name, parameter in signature.parameters.items()
            if parameter.annotation is inspect.Parameter.empty
        ]
    assert not missing, "\n".join(missing)


def test_validated_functions_still_check_their_arguments():
    from sklearn.utils._param_validation import InvalidParameterError

    from sklearn_modgap.metrics import centroid_gap, effective_rank

    X = np.eye(3)
    assert list(inspect.signature(effective_rank).parameters) == ["X", "center"]
    assert centroid_gap(X, X) == pytest.approx(0.0)
    with pytest.raises(InvalidParameterError, match="center"):
        effective_rank(X, center="yes")


@pytest.mark.slow
def test_mypy_accepts_typed_use_of_the_public_api():
    pytest.importorskip("mypy")
    snippet = ROOT / "tests" / "typing_snippets" / "public_api.py"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--ignore-missing-imports", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


@pytest.mark.slow
def test_mypy_sees_the_signatures_through_validate_params(tmp_path):
    # Without the typed validate_params, a decorated metric reads as Any and this passes unnoticed.
    pytest.importorskip("mypy")
    wrong_use = tmp_path / "wrong_use.py"
    wrong_use.write_text("from sklearn_modgap.metrics import centroid_gap\nwrong: str = centroid_gap([[1.0]], [[1.0]])\n")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--ignore-missing-imports", str(wrong_use)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'has type "float", variable has type "str"' in done.stdout
