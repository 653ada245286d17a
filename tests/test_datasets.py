"""Tests of the synthetic generator and of the embedding-pair loader."""

import numpy as np
import pytest
from conftest import DATA_DIR, load_real

from sklearn_modgap.datasets import load_embedding_pairs, make_modality_gap


def _geometry(target, source):
    """The four CLIP facts the generator imitates, from their definitions."""
    x = target.astype(np.float64)
    y = source.astype(np.float64)
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    residual = (x - mu_x) - (y - mu_y)
    eigenvalues = np.linalg.eigvalsh(residual.T @ residual / len(x))
    return {
        "G_mu": np.linalg.norm(mu_x - mu_y),
        "cos_tp": np.mean(np.sum(x * y, axis=1)),
        "residual_ratio": np.linalg.norm(residual, axis=1).mean()
        / np.linalg.norm(x - y, axis=1).mean(),
        "A_r": eigenvalues[-1] / (eigenvalues.sum() / x.shape[1]),
    }


# Measured on features_clip.npy (all 500 pairs): see ../shared/data/README.md.
CLIP_FACTS = {"G_mu": 0.851, "cos_tp": 0.310, "residual_ratio": 0.686, "A_r": 28.3}


@pytest.mark.parametrize("seed", [0, 1])
def test_defaults_look_like_clip(seed):
    # Tolerance: +-0.05 on the three ratios/distances, +-20% on A_r.
    geometry = _geometry(*make_modality_gap(random_state=seed))
    for key in ("G_mu", "cos_tp", "residual_ratio"):
        assert geometry[key] == pytest.approx(CLIP_FACTS[key], abs=0.05), key
    assert geometry["A_r"] == pytest.approx(CLIP_FACTS["A_r"], rel=0.2)


def test_defaults_match_the_real_file_itself(clip_pairs):
    real = _geometry(*clip_pairs)
    for key, value in CLIP_FACTS.items():
        assert real[key] == pytest.approx(value, abs=0.001 if key != "A_r" else 0.05), key


def test_knobs_move_the_geometry_they_name():
    base = _geometry(*make_modality_gap(400, 128, random_state=0))
    isotropic = _geometry(*make_modality_gap(400, 128, residual_decay=0.0, random_state=0))
    no_gap = _geometry(*make_modality_gap(400, 128, centroid_gap=0.0, random_state=0))
    more_shared = _geometry(*make_modality_gap(400, 128, shared_variance=0.9, random_state=0))
    assert isotropic["A_r"] < base["A_r"] / 2
    assert no_gap["G_mu"] < 0.1 < base["G_mu"]
    assert more_shared["cos_tp"] > base["cos_tp"] + 0.2


def test_rows_are_unit_norm_and_float32_by_default():
    target, source = make_modality_gap(300, 64, random_state=0)
    for rows in (target, source):
        assert rows.dtype == np.float32
        assert rows.shape == (300, 64)
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)


def test_float64_option_gives_the_same_draw():
    target32, source32 = make_modality_gap(200, 32, random_state=3)
    target64, source64 = make_modality_gap(200, 32, dtype=np.float64, random_state=3)
    assert target64.dtype == source64.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(target64, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(target64, target32, atol=1e-6)
    np.testing.assert_allclose(source64, source32, atol=1e-6)


def test_deterministic_for_a_seed_and_different_across_seeds():
    first = make_modality_gap(100, 16, return_labels=True, random_state=7)
    again = make_modality_gap(100, 16, return_labels=True, random_state=7)
    other = make_modality_gap(100, 16, return_labels=True, random_state=8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], other[0])


def test_large_draws_span_several_blocks_with_fresh_rows():
    target, source = make_modality_gap(9000, 8, random_state=0)
    # Blocks of 4096 rows must not repeat each other.
    assert not np.allclose(target[:100], target[4096:4196])
    assert np.isfinite(source).all()


def test_labels_are_shared_semantics_of_both_modalities():
    target, source, labels = make_modality_gap(
        600, 64, n_clusters=4, cluster_spread=3.0, return_labels=True, random_state=0
    )
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    cross = target @ source.T
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    different = labels[:, None] != labels[None, :]
    # A caption is closer to images of its own cluster than to the others.
    assert cross[same].mean() > cross[different].mean() + 0.05
    # And closest of all to its own image.
    assert np.diag(cross).mean() > cross[same].mean()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"centroid_gap": 1.6, "centroid_norm": 0.5}, ValueError, "at most 2 \\* centroid_norm"),
        ({"n_features": 8, "semantic_rank": 7}, ValueError, "semantic_rank <= 6"),
        ({"n_pairs": 0}, ValueError, "n_pairs"),
        ({"centroid_norm": 1.0}, ValueError, "centroid_norm"),
        ({"dtype": np.int64}, TypeError, "floating dtype"),
    ],
)
def test_bad_parameters_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_modality_gap(**{"n_pairs": 20, "n_features": 16, **kwargs})


# ------------------------------------------------------------------ loader
@pytest.fixture
def pairs():
    return make_modality_gap(40, 12, random_state=0)


def test_load_stacked_npy(tmp_path, pairs):
    target, source = pairs
    np.save(tmp_path / "pairs.npy", np.stack([target, source]))
    loaded_target, loaded_source = load_embedding_pairs(tmp_path / "pairs.npy")
    np.testing.assert_array_equal(loaded_target, target)
    np.testing.assert_array_equal(loaded_source, source)
    assert loaded_target.dtype == np.float32


def test_load_memory_mapped(tmp_path, pairs):
    np.save(tmp_path / "pairs.npy", np.stack(pairs))
    target, source = load_embedding_pairs(tmp_path / "pairs.npy", mmap_mode="r")
    np.testing.assert_array_equal(source, pairs[1])


def test_load_named_npz_and_custom_keys(tmp_path, pairs):
    target, source = pairs
    np.savez(tmp_path / "named.npz", target=target, source=source)
    np.savez(tmp_path / "custom.npz", image=target, text=source)
    loaded = load_embedding_pairs(tmp_path / "named.npz")
    np.testing.assert_array_equal(loaded[0], target)
    np.testing.assert_array_equal(loaded[1], source)
    loaded = load_embedding_pairs(tmp_path / "custom.npz", target_key="image", source_key="text")
    np.testing.assert_array_equal(loaded[1], source)
    with pytest.raises(ValueError, match="expected 'target' and 'source'"):
        load_embedding_pairs(tmp_path / "custom.npz")


def test_load_single_array_npz(tmp_path, pairs):
    np.savez(tmp_path / "one.npz", np.stack(pairs))
    target, _ = load_embedding_pairs(tmp_path / "one.npz")
    np.testing.assert_array_equal(target, pairs[0])


def test_load_separate_files_path_is_the_source(tmp_path, pairs):
    target, source = pairs
    np.save(tmp_path / "text.npy", source)
    np.save(tmp_path / "image.npy", target.astype(np.float64))
    loaded_target, loaded_source = load_embedding_pairs(
        tmp_path / "text.npy", target_path=tmp_path / "image.npy"
    )
    np.testing.assert_array_equal(loaded_source, source)
    np.testing.assert_array_equal(loaded_target, target.astype(np.float64))
    assert loaded_target.dtype == np.float64


def test_integer_arrays_become_float(tmp_path):
    np.save(tmp_path / "ints.npy", np.arange(2 * 3 * 4).reshape(2, 3, 4))
    target, source = load_embedding_pairs(tmp_path / "ints.npy")
    assert target.dtype == np.float64
    np.testing.assert_array_equal(source[0], [12, 13, 14, 15])


def _one_line_error(error, match, *args, **kwargs):
    with pytest.raises(error, match=match) as info:
        load_embedding_pairs(*args, **kwargs)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    _one_line_error(FileNotFoundError, "no such file", tmp_path / "absent.npy")


def test_corrupt_files(tmp_path, pairs):
    (tmp_path / "noise.npy").write_bytes(b"this is not an array file at all")
    _one_line_error(ValueError, "cannot read .*noise.npy", tmp_path / "noise.npy")
    np.save(tmp_path / "full.npy", np.stack(pairs))
    data = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    _one_line_error(ValueError, "cannot read .*cut.npy", tmp_path / "cut.npy")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated zip")
    _one_line_error(ValueError, "cannot read .*bad.npz", tmp_path / "bad.npz")
    _one_line_error(ValueError, "directory", tmp_path)


@pytest.mark.parametrize(
    "array",
    [np.zeros(10), np.zeros((3, 4, 5)), np.ones((7, 5)), np.zeros((2, 3, 4, 5))],
    ids=["1-D", "three-first", "2-D-single", "4-D"],
)
def test_wrong_shape(tmp_path, array):
    np.save(tmp_path / "shape.npy", array)
    _one_line_error(ValueError, "shape", tmp_path / "shape.npy")


def test_mismatched_dimensions_and_rows(tmp_path):
    np.save(tmp_path / "source.npy", np.ones((5, 4)))
    np.save(tmp_path / "target8.npy", np.ones((5, 8)))
    np.save(tmp_path / "target6rows.npy", np.ones((6, 4)))
    _one_line_error(
        ValueError, "8 features but the source file has 4",
        tmp_path / "source.npy", target_path=tmp_path / "target8.npy",
    )
    _one_line_error(
        ValueError, "rows must be pairs",
        tmp_path / "source.npy", target_path=tmp_path / "target6rows.npy",
    )
    np.savez(tmp_path / "dims.npz", target=np.ones((5, 3)), source=np.ones((5, 4)))
    _one_line_error(ValueError, "3 features", tmp_path / "dims.npz")


def test_non_finite_and_non_numeric(tmp_path):
    values = np.ones((2, 3, 4))
    values[1, 2, 0] = np.nan
    np.save(tmp_path / "nan.npy", values)
    _one_line_error(ValueError, "NaN", tmp_path / "nan.npy")
    np.save(tmp_path / "text.npy", np.array([[["a", "b"]] * 2] * 2))
    _one_line_error(ValueError, "dtype", tmp_path / "text.npy")


def test_load_the_real_clip_file():
    expected_target, expected_source = load_real("clip")
    target, source = load_embedding_pairs(DATA_DIR / "features_clip.npy")
    np.testing.assert_array_equal(target, expected_target)
    np.testing.assert_array_equal(source, expected_source)
    assert target.shape == (500, 512)
