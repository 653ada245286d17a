"""Fixtures shared by the test modules."""

import os
from pathlib import Path

import numpy as np
import pytest

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mind-the-gap"


def load_real(name="clip"):
    """Return ``(target, source)`` float32 arrays of a real feature file.

    Index 0 of each file is the non-text modality (the target), index 1 the
    paired text (the source).  Under ``CI`` a missing folder is a failure, not
    a skip: the real-data tests must run there.
    """
    path = DATA_DIR / f"features_{name}.npy"
    if not path.exists():
        message = f"real embeddings not found at {path}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pairs = np.load(path)
    return pairs[0], pairs[1]


class FakeTerminal:
    """A text stream that says it is a terminal (for output meant for a tty)."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass

    def isatty(self):
        return True

    def getvalue(self):
        return "".join(self.parts)


@pytest.fixture
def clip_pairs():
    """Real OpenAI CLIP ViT-B/16 features of 500 MSCOCO image-caption pairs."""
    return load_real("clip")
