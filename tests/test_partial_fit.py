"""``partial_fit``: a stream of blocks fits what ``fit`` fits on their concatenation."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_modgap import (
    C3,
    SSP,
    CentroidShift,
    ContrastiveAdapter,
    MomentMatch,
    RandomTargetReplacement,
    ReAlign,
)
from sklearn_modgap._stream import RowSample, position_keys
from sklearn_modgap.persistence import load, save

from conftest import load_real

# Every row fits in the sample of these, so the stream's fit is fit's.
EXACT = [
    CentroidShift(alpha=0.7),
    C3(random_state=0),
    ReAlign(),
    MomentMatch(),
    SSP(eps=0.0025),
    RandomTargetReplacement(random_state=0),
]
FITTED = {
    "CentroidShift": ["source_mean_", "target_mean_"],
    "C3": ["source_mean_", "target_mean_", "noise_std_"],
    "ReAlign": ["source_mean_", "target_mean_", "trace_scale_", "calibration_mean_"],
    "MomentMatch": ["source_mean_", "target_mean_", "mapping_", "source_shrinkage_"],
    "SSP": ["source_mean_", "target_mean_", "shared_basis_"],
    "RandomTargetReplacement": ["target_rows_"],
}


def _stream(aligner, source, target, cuts_source, cuts_target):
    """``partial_fit`` over the blocks between the cuts, source and target blocks interleaved."""
    source_blocks = np.split(source, cuts_source)
    target_blocks = np.split(target, cuts_target)
    width = source.shape[1]
    for i in range(max(len(source_blocks), len(target_blocks))):
        block = source_blocks[i] if i < len(source_blocks) else np.empty((0, width), source.dtype)
        y = target_blocks[i] if i < len(target_blocks) else None
        aligner.partial_fit(block, y=y)
    return aligner


def _random_cuts(n, n_cuts, rng):
    return np.sort(rng.choice(np.arange(1, n), size=n_cuts, replace=False))


@pytest.mark.parametrize("aligner", EXACT, ids=lambda a: type(a).__name__)
def test_any_blocking_fits_what_fit_fits(aligner):
    target, source = load_real("clip")
    source, target = source.astype(np.float64), target[:400].astype(np.float64)
    expected = clone(aligner).fit(source, y=target)
    rng = np.random.default_rng(0)
    for n_cuts in (1, 6):
        streamed = _stream(
            clone(aligner), source, target,
            _random_cuts(len(source), n_cuts, rng), _random_cuts(len(target), n_cuts + 2, rng),
        )
        for name in FITTED[type(aligner).__name__]:
            np.testing.assert_allclose(getattr(streamed, name), getattr(expected, name), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(streamed.transform(source[:50]), expected.transform(source[:50]), atol=1e-10)


def test_anisoalign_stream_fits_what_fit_fits():
    pytest.importorskip("torch")
    from sklearn_modgap import AnisoAlign

    target, source = load_real("clip")
    aligner = AnisoAlign(rank=8, max_epochs=2, random_state=0)
    expected = clone(aligner).fit(source, y=target)
    streamed = _stream(clone(aligner), source, target, [120, 333], [250])
    np.testing.assert_allclose(streamed.frame_, expected.frame_, atol=1e-9)
    np.testing.assert_allclose(streamed.transform(source[:40]), expected.transform(source[:40]), atol=1e-5)


def test_sampled_steps_do_not_depend_on_the_blocking():
    # 500 source rows, a sample of 120: which rows are kept depends on their
    # positions only, so two blockings give one fit.
    target, source = load_real("clip")
    aligner = ReAlign(partial_fit_sample=120)
    one = _stream(clone(aligner), source, target, [100, 250, 251], [200])
    other = _stream(clone(aligner), source, target, [7, 480], [13, 300, 499])
    np.testing.assert_allclose(one.calibration_mean_, other.calibration_mean_, rtol=1e-6, atol=1e-7)
    exact = clone(aligner).fit(source, y=target)
    # The sampled mean of unit rows is near the full one (standard error ~ 0.06 / sqrt(120)).
    assert np.linalg.norm(one.calibration_mean_ - exact.calibration_mean_) < 0.1
    assert not np.allclose(one.calibration_mean_, exact.calibration_mean_, atol=1e-6)
    np.testing.assert_allclose(one.source_mean_, exact.source_mean_, atol=1e-6)


def test_row_sample_keeps_the_smallest_keys_and_merges_exactly():
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(1000, 3))
    keys = position_keys(7, np.arange(1000))
    expected = np.sort(np.argsort(keys)[:50])
    whole = RowSample(3, 50, 7).update(rows)
    np.testing.assert_array_equal(whole.positions, expected)
    np.testing.assert_array_equal(whole.rows, rows[expected])
    left = RowSample(3, 50, 7).update(rows[:333])
    right = RowSample(3, 50, 7).update(rows[333:], start=333)
    merged = left.merge(right)
    np.testing.assert_array_equal(merged.positions, expected)
    assert merged.seen == 1000
    # Keys of distinct positions differ, and another seed keeps other rows.
    assert len(np.unique(keys)) == 1000
    assert not np.array_equal(RowSample(3, 50, 8).update(rows).positions, expected)
    assert RowSample(3, None, 7).update(rows).rows.shape == (1000, 3)


def test_stacked_blocks_with_sample_domain():
    target, source = load_real("clip")
    expected = CentroidShift().fit(source, y=target)
    streamed = CentroidShift()
    for rows in (slice(0, 200), slice(200, 500)):
        stacked = np.vstack([source[rows], target[rows]])
        domain = np.r_[np.ones(len(source[rows])), -np.ones(len(target[rows]))]
        streamed.partial_fit(stacked, sample_domain=domain)
    np.testing.assert_allclose(streamed.source_mean_, expected.source_mean_, atol=1e-6)
    np.testing.assert_allclose(streamed.target_mean_, expected.target_mean_, atol=1e-6)


def test_extreme_rows_in_a_block_are_rescaled_as_in_fit():
    target, source = load_real("clip")
    source, target = source.astype(np.float64), target.astype(np.float64)
    source[:100] *= 1e-300
    expected = ReAlign().fit(source, y=target)
    streamed = _stream(ReAlign(), source, target, [50, 300], [100])
    np.testing.assert_allclose(streamed.calibration_mean_, expected.calibration_mean_, atol=1e-10)


@pytest.mark.parametrize("aligner", [CentroidShift(), MomentMatch(), SSP(eps=0.05)], ids=lambda a: type(a).__name__)
def test_partial_fit_continues_a_fit_that_needs_only_moments(aligner):
    target, source = load_real("clip")
    expected = clone(aligner).fit(source, y=target)
    continued = clone(aligner).fit(source[:200], y=target[:300]).partial_fit(source[200:], y=target[300:])
    np.testing.assert_allclose(continued.source_mean_, expected.source_mean_, atol=1e-6)  # float32 rows
    np.testing.assert_allclose(continued.target_mean_, expected.target_mean_, atol=1e-6)
    np.testing.assert_allclose(continued.transform(source[:20]), expected.transform(source[:20]), atol=1e-6)


def test_stream_errors_are_clear():
    target, source = load_real("clip")
    fitted = ReAlign().fit(source, y=target)
    with pytest.raises(ValueError, match="fitted with fit .* keeps no row sample"):
        fitted.partial_fit(source[:10])
    only_source = ReAlign().partial_fit(source[:10])
    with pytest.raises(ValueError, match="partial_fit has seen 0 target row"):
        only_source.transform(source[:3])
    with pytest.raises(ValueError, match="X has 511 features"):
        ReAlign().partial_fit(source[:10], y=target[:10]).partial_fit(source[:10, :-1])
    with pytest.raises(ValueError, match="either as y or inside X"):
        ReAlign().partial_fit(source[:4], y=target[:4], sample_domain=np.ones(4))
    assert not hasattr(ContrastiveAdapter(), "partial_fit")


def test_fitted_attributes_follow_each_new_block():
    target, source = load_real("clip")
    aligner = CentroidShift().partial_fit(source[:100], y=target[:100])
    first = aligner.source_mean_.copy()
    aligner.partial_fit(source[100:], y=target[100:])
    assert not np.allclose(aligner.source_mean_, first)
    np.testing.assert_allclose(aligner.source_mean_, CentroidShift().fit(source, y=target[:100]).source_mean_, atol=1e-6)


@pytest.mark.parametrize("suffix", [".skops", ".joblib"])
def test_a_saved_stream_fit_is_complete_and_carries_no_stream(tmp_path, suffix):
    target, source = load_real("clip")
    aligner = ReAlign(partial_fit_sample=64).partial_fit(source, y=target)
    path = save(aligner, tmp_path / f"model{suffix}")
    loaded = load(path, allow_pickle=suffix != ".skops")
    assert "_stream" not in vars(loaded)
    np.testing.assert_array_equal(loaded.transform(source[:5]), aligner.transform(source[:5]))
    copy = pickle.loads(pickle.dumps(aligner))
    np.testing.assert_array_equal(copy.calibration_mean_, aligner.calibration_mean_)
