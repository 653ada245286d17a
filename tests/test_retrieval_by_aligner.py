"""What the retrieval-by-aligner benchmark measures, checked by hand on small sets."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ortho_group

from sklearn_modgap import CentroidShift, MomentMatch, ReAlign

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "retrieval_by_aligner.py"
_spec = importlib.util.spec_from_file_location("retrieval_by_aligner", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _pairs(n_rows=40, n_features=8, gap=1.5, noise=0.6, seed=0):
    """Unit images and captions: caption = image + noise + a constant offset."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n_rows, n_features))
    texts = images + noise * rng.normal(size=(n_rows, n_features))
    texts[:, 0] += gap
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    return images, texts


def _recall_by_argsort(images, queries, k):
    """Fraction of queries whose own image is among the k of largest cosine."""
    unit_images = images / np.linalg.norm(images, axis=1, keepdims=True)
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    ranks = np.argsort(-(unit_queries @ unit_images.T), axis=1)
    return float(np.mean([i in ranks[i, :k] for i in range(len(queries))]))


def test_identity_row_is_the_raw_embedding_retrieval():
    images, texts = _pairs()
    fit_rows, test_rows = bench.split(len(images))
    row = bench.evaluate(None, images, texts, fit_rows, test_rows)
    held_images, held_texts = images[test_rows], texts[test_rows]
    assert row["R@1"] == _recall_by_argsort(held_images, held_texts, 1)
    assert row["R@5"] == _recall_by_argsort(held_images, held_texts, 5)
    # The toy is neither trivial nor hopeless, so the check can fail.
    assert 0.1 < row["R@1"] < 0.9


def test_centroid_shift_ranks_images_by_text_plus_gap():
    # A translation of the query changes its cosine ranking: image x scores
    # (y + mu_x - mu_y) . x, so images far along the gap direction move up.
    images, texts = _pairs(gap=3.0)
    fit_rows, test_rows = bench.split(len(images))
    row = bench.evaluate(CentroidShift(), images, texts, fit_rows, test_rows)
    delta = images[fit_rows].mean(axis=0) - texts[fit_rows].mean(axis=0)
    held_images, held_texts = images[test_rows], texts[test_rows]
    expected = _recall_by_argsort(held_images, held_texts + delta, 1)
    assert row["R@1"] == expected
    assert expected != _recall_by_argsort(held_images, held_texts, 1)


@pytest.mark.parametrize(
    "make", [CentroidShift, ReAlign, MomentMatch]
)
def test_recall_is_unchanged_by_a_common_rotation(make):
    images, texts = _pairs()
    rotation = ortho_group.rvs(images.shape[1], random_state=1)
    fit_rows, test_rows = bench.split(len(images))
    plain = bench.evaluate(make(), images, texts, fit_rows, test_rows)
    turned = bench.evaluate(make(), images @ rotation, texts @ rotation, fit_rows, test_rows)
    assert turned["R@1"] == plain["R@1"]
    assert turned["R@5"] == plain["R@5"]
    assert turned["M_k^Z"] == pytest.approx(plain["M_k^Z"], abs=1e-9)
