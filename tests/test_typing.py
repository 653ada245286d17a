"""The package ships its type hints (``py.typed``) and they check with mypy."""

import subprocess
import sys
from pathlib import Path

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
