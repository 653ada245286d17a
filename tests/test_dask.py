"""Dask arrays in fit and transform, on a 2-worker ``LocalCluster`` of processes.

The tests on the cluster take about 90 s on two shared cores, so they are
marked slow; ``test_fit_on_dask_without_a_cluster`` covers the same path on
dask's local scheduler in the quick suite.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_modgap import (
    C3,
    SSP,
    AnisoAlign,
    CentroidShift,
    ContrastiveAdapter,
    MomentMatch,
    RandomTargetReplacement,
    ReAlign,
)

from conftest import load_real

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

# Every row of the 500-row clip set fits in these aligners' samples, so the
# tree reduction over chunks fits what fit fits on all rows.
STREAMING = [
    CentroidShift(alpha=0.7),
    C3(noise_std="auto", shift="center", random_state=0),
    ReAlign(),
    MomentMatch(),
    SSP(eps=0.0025),
    RandomTargetReplacement(random_state=0),
    AnisoAlign(rank=8, max_epochs=2, random_state=0),
]
# Maps that draw random numbers: their dask transform draws per chunk.
DRAWS = ("C3", "RandomTargetReplacement")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def clip():
    target, source = load_real("clip")
    return source, target


def _chunked(A, rows=100):
    return da.from_array(A, chunks=(rows, -1))


def _fitted_attributes(aligner):
    return {
        name: value
        for name, value in vars(aligner).items()
        if name.endswith("_") and not name.startswith("_") and isinstance(value, (np.ndarray, float, int))
    }


def test_fit_on_dask_without_a_cluster(clip):
    source, target = clip
    expected = ReAlign().fit(source, y=target)
    # Chunks of unequal sizes, one of them empty, and a target cut across its columns.
    uneven = da.from_array(source, chunks=((100, 0, 150, 250), (512,)))
    fitted = ReAlign().fit(uneven, y=da.from_array(target, chunks=(90, 256)))
    for name, value in _fitted_attributes(expected).items():
        np.testing.assert_allclose(getattr(fitted, name), value, atol=1e-6, rtol=0, err_msg=name)
    Z = fitted.transform(_chunked(source))
    assert isinstance(Z, da.Array)
    np.testing.assert_allclose(Z.compute(scheduler="threads"), expected.transform(source), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("aligner", STREAMING, ids=lambda a: type(a).__name__)
def test_fit_on_dask_equals_fit_in_memory(client, clip, aligner):
    source, target = clip
    expected = clone(aligner).fit(source, y=target)
    fitted = clone(aligner).fit(_chunked(source), y=_chunked(target, 90))
    attributes = _fitted_attributes(expected)
    assert attributes.keys() == _fitted_attributes(fitted).keys()
    for name, value in attributes.items():
        np.testing.assert_allclose(getattr(fitted, name), value, atol=1e-6, rtol=0, err_msg=name)
    assert fitted.n_features_in_ == source.shape[1]

    Z = fitted.transform(_chunked(source))
    assert isinstance(Z, da.Array) and Z.dtype == np.float32 and Z.chunks == _chunked(source).chunks
    Z_target = fitted.transform_target(_chunked(target))
    assert isinstance(Z_target, da.Array)
    np.testing.assert_allclose(Z_target.compute(), expected.transform_target(target), atol=1e-6)
    if type(aligner).__name__ not in DRAWS:
        np.testing.assert_allclose(Z.compute(), expected.transform(source), atol=1e-6)


@pytest.mark.slow
def test_numpy_target_with_dask_source(client, clip):
    source, target = clip
    expected = ReAlign().fit(source, y=target)
    fitted = ReAlign().fit(_chunked(source), y=target)
    np.testing.assert_allclose(fitted.calibration_mean_, expected.calibration_mean_, atol=1e-6)


@pytest.mark.slow
def test_sampled_fit_equals_partial_fit_over_the_chunks(client, clip):
    # The sample (150 of 500 source rows) depends only on the rows' global
    # positions: a tree over chunks keeps the rows partial_fit keeps.
    source, target = (A.astype(np.float64) for A in clip)
    aligner = ReAlign(partial_fit_sample=150)
    streamed = clone(aligner)
    for start in range(0, len(source), 100):
        streamed.partial_fit(source[start : start + 100], y=target[start : start + 100])
    fitted = clone(aligner).fit(_chunked(source), y=_chunked(target))
    np.testing.assert_allclose(fitted.calibration_mean_, streamed.calibration_mean_, rtol=0, atol=1e-12)
    in_memory = clone(aligner).fit(source, y=target)
    assert not np.allclose(fitted.calibration_mean_, in_memory.calibration_mean_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fitted.calibration_mean_, in_memory.calibration_mean_, atol=1e-2)


@pytest.mark.slow
@pytest.mark.parametrize(
    "aligner",
    [C3(noise_std=0.1, random_state=0), RandomTargetReplacement(random_state=0)],
    ids=lambda a: type(a).__name__,
)
def test_each_chunk_draws_its_own_numbers_and_a_rerun_repeats_them(client, clip, aligner):
    source, target = clip
    fitted = clone(aligner).fit(source, y=target)
    block = source[:100]
    # Two chunks holding the same rows.
    X = da.concatenate([_chunked(block), _chunked(block)])
    first = fitted.transform(X).compute()
    assert not np.allclose(first[:100], first[100:])
    np.testing.assert_array_equal(fitted.transform(X).compute(), first)
    if isinstance(aligner, RandomTargetReplacement):
        # Every output row is one of the fitted target rows.
        distances = np.abs(first[:, None, :] - fitted.target_rows_[None, :, :]).max(axis=2)
        assert distances.min(axis=1).max() < 1e-6


@pytest.mark.slow
def test_bad_chunk_names_the_global_row(client, clip):
    source, target = clip
    bad = source.copy()
    bad[337, 5] = np.nan
    with pytest.raises(ValueError, match=r"Input X contains NaN or infinity: row 337 \(row 37 of chunk 3"):
        ReAlign().fit(_chunked(bad), y=_chunked(target))
    bad_target = target.copy()
    bad_target[412, 0] = np.inf
    with pytest.raises(ValueError, match=r"Input y contains NaN or infinity: row 412 \(row 12 of chunk 4"):
        MomentMatch().fit(_chunked(source), y=_chunked(bad_target))
    fitted = CentroidShift().fit(source, y=target)
    with pytest.raises(ValueError, match=r"Input X contains NaN or infinity: row 337 \(row 37 of chunk 3"):
        fitted.transform(_chunked(bad)).compute()


def test_row_of_zeros_is_named_by_its_global_row():
    X = np.random.default_rng(0).standard_normal((300, 8))
    X[205] = 0
    expected = r"zero norm.*chunk 2 of X, which holds rows 200 to 299; its first row of zeros is row 205"
    with pytest.raises(ValueError, match=expected):
        ReAlign().fit(da.from_array(X, chunks=(100, 8)), y=X[:50] + 1)


def test_aligner_without_streaming_refuses_dask():
    source = da.zeros((10, 4), chunks=(5, 4))
    with pytest.raises(TypeError, match="ContrastiveAdapter cannot fit on dask arrays"):
        ContrastiveAdapter().fit(source, y=source)


def test_wrong_width_is_refused(clip):
    source, target = clip
    with pytest.raises(ValueError, match="features"):
        CentroidShift().fit(_chunked(source), y=_chunked(target[:, :100]))
    fitted = CentroidShift().fit(source, y=target)
    with pytest.raises(ValueError, match="X has 100 features, but CentroidShift is expecting 512"):
        fitted.transform(_chunked(source[:, :100]))


def test_import_does_not_import_dask():
    code = (
        "import sys, sklearn_modgap, sklearn_modgap.aligners, sklearn_modgap.metrics\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]\n"
        "assert not loaded, loaded\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.mark.parametrize("n_rows, capacity", [(1000, 37), (1000, 1000), (50, 100)])
def test_sampled_positions_are_the_stream_samples(n_rows, capacity):
    from sklearn_modgap._dask import sampled_positions
    from sklearn_modgap._stream import RowSample

    sample = RowSample(1, capacity, seed=12345).update(np.zeros((n_rows, 1)))
    chosen = sampled_positions(12345, n_rows, capacity, block=64)
    if n_rows <= capacity:
        assert chosen is None and len(sample.positions) == n_rows
    else:
        np.testing.assert_array_equal(chosen, sample.positions)
        assert len(chosen) == capacity


def _stacked(clip, seed=0):
    """The clip source and target rows stacked in a shuffled order, with their sample_domain."""
    source, target = clip
    X = np.concatenate([source, target])
    domain = np.r_[np.zeros(len(source), dtype=int), -np.ones(len(target), dtype=int)]
    order = np.random.default_rng(seed).permutation(len(X))
    return X[order], domain[order]


def test_stacked_fit_on_dask_without_a_cluster(clip):
    X, domain = _stacked(clip)
    expected = ReAlign().fit(X, sample_domain=domain)
    # A chunk of source rows only, one of target rows only, an empty one, mixed ones.
    source_first = np.argsort(domain < 0, kind="stable")
    X, domain = X[source_first], domain[source_first]
    chunks = ((100, 400, 0, 150, 250, 100),)
    for given in (domain, da.from_array(domain, chunks=77)):
        fitted = ReAlign().fit(da.from_array(X, chunks=chunks + ((512,),)), sample_domain=given)
        for name, value in _fitted_attributes(expected).items():
            np.testing.assert_allclose(getattr(fitted, name), value, atol=1e-6, rtol=0, err_msg=name)
        Z = fitted.transform(da.from_array(X, chunks=chunks + ((512,),)), sample_domain=given)
        assert isinstance(Z, da.Array) and Z.chunks == chunks + ((512,),)
        Z = Z.compute(scheduler="threads")
        np.testing.assert_allclose(Z, expected.transform(X, sample_domain=domain), atol=1e-6)
        # Source rows are mapped by transform, target rows by transform_target.
        is_target = domain < 0
        np.testing.assert_allclose(Z[~is_target], expected.transform(X[~is_target]), atol=1e-6)
        np.testing.assert_allclose(Z[is_target], expected.transform_target(X[is_target]), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("aligner", STREAMING, ids=lambda a: type(a).__name__)
def test_stacked_fit_on_dask_equals_stacked_fit_in_memory(client, clip, aligner):
    X, domain = _stacked(clip, seed=1)
    expected = clone(aligner).fit(X, sample_domain=domain)
    fitted = clone(aligner).fit(_chunked(X), sample_domain=da.from_array(domain, chunks=130))
    attributes = _fitted_attributes(expected)
    assert attributes.keys() == _fitted_attributes(fitted).keys()
    for name, value in attributes.items():
        np.testing.assert_allclose(getattr(fitted, name), value, atol=1e-6, rtol=0, err_msg=name)
    Z = fitted.transform(_chunked(X), sample_domain=domain)
    assert Z.chunks == _chunked(X).chunks
    if type(aligner).__name__ not in DRAWS:
        np.testing.assert_allclose(Z.compute(), expected.transform(X, sample_domain=domain), atol=1e-6)


@pytest.mark.slow
def test_stacked_sampled_fit_equals_the_split_fit(client, clip):
    # Each side's rows take their positions in that side's stream, in their
    # order in X: the sample is the one a fit on the split rows keeps.
    X, domain = _stacked(clip, seed=2)
    X = X.astype(np.float64)
    aligner = ReAlign(partial_fit_sample=150)
    stacked = clone(aligner).fit(_chunked(X), sample_domain=domain)
    is_target = domain < 0
    split = clone(aligner).fit(_chunked(X[~is_target]), y=_chunked(X[is_target]))
    streamed = clone(aligner)
    for start in range(0, len(X), 100):
        streamed.partial_fit(X[start : start + 100], sample_domain=domain[start : start + 100])
    for other in (split, streamed):
        np.testing.assert_allclose(stacked.calibration_mean_, other.calibration_mean_, rtol=0, atol=1e-12)
    in_memory = clone(aligner).fit(X, sample_domain=domain)
    assert not np.allclose(stacked.calibration_mean_, in_memory.calibration_mean_, rtol=0, atol=1e-12)


def test_stacked_dask_input_errors(clip):
    X, domain = _stacked(clip)
    rows = _chunked(X)
    with pytest.raises(ValueError, match="either as y or inside X with sample_domain, not both"):
        ReAlign().fit(rows, y=X[:10], sample_domain=domain)
    with pytest.raises(ValueError, match="sample_domain has 10 entries but X has 1000 rows"):
        ReAlign().fit(rows, sample_domain=da.from_array(domain[:10]))
    with pytest.raises(ValueError, match="sample_domain has 10 entries but X has 1000 rows"):
        ReAlign().fit(rows, sample_domain=domain[:10])
    with pytest.raises(ValueError, match="sample_domain must be 1-D"):
        ReAlign().fit(rows, sample_domain=da.from_array(np.c_[domain, domain]))
    with pytest.raises(TypeError, match="sample_domain must be numeric"):
        ReAlign().fit(rows, sample_domain=da.from_array(domain.astype(str)))
    unknown = da.from_array(domain, chunks=100)
    unknown = unknown[unknown > -5]
    with pytest.raises(ValueError, match="sample_domain has chunks of unknown size"):
        ReAlign().fit(rows, sample_domain=unknown)
    one_target = np.zeros(len(X), dtype=int)
    one_target[3] = -1
    with pytest.raises(ValueError, match=r"sample_domain marks 1 target \(< 0\) row\(s\)"):
        ReAlign().fit(rows, sample_domain=da.from_array(one_target, chunks=100))
    bad = X.copy()
    bad[537, 2] = np.nan
    with pytest.raises(ValueError, match=r"Input X contains NaN or infinity: row 537 \(row 37 of chunk 5"):
        ReAlign().fit(_chunked(bad), sample_domain=domain)
    fitted = ReAlign().fit(X, sample_domain=domain)
    with pytest.raises(ValueError, match="sample_domain has 10 entries but X has 1000 rows"):
        fitted.transform(rows, sample_domain=domain[:10])
