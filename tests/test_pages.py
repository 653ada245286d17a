"""Pages of memory-mapped rows leave the resident set once a pass is done with them."""

import mmap
import sys

import numpy as np
import pytest

from sklearn_modgap import ReAlign
from sklearn_modgap._pages import release_pages
from sklearn_modgap.io import transform_blocks

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_DONTNEED"),
    reason="reads the resident set from /proc and needs madvise",
)


def _rss_file_mib():
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssFile line")


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "rows.npy"
    rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(65536, 256))
    rng = np.random.default_rng(0)
    for start in range(0, 65536, 8192):
        rows[start : start + 8192] = rng.standard_normal((8192, 256), dtype=np.float32) + 0.3
    rows.flush()
    del rows
    return path


def test_released_pages_leave_the_resident_set(big_file):
    rows = np.load(big_file, mmap_mode="r")  # 64 MiB
    before = _rss_file_mib()
    float(rows.sum(dtype=np.float64))
    assert _rss_file_mib() - before > 48
    release_pages(rows)
    assert _rss_file_mib() - before < 16
    # The data are the file's: reading again gives the same rows.
    np.testing.assert_array_equal(rows[:3], np.load(big_file)[:3])


def test_a_fit_and_transform_over_a_memory_map_stay_at_a_few_blocks(big_file, tmp_path):
    source = np.load(big_file, mmap_mode="r")
    before = _rss_file_mib()
    aligner = ReAlign().fit(source, y=source[::-1])
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=source.shape)
    transform_blocks(aligner, source, out)
    assert _rss_file_mib() - before < 40  # the two files are 128 MiB
    np.testing.assert_allclose(out[-5:], aligner.transform(np.asarray(source[-5:])), atol=1e-6)


def test_copy_on_write_and_plain_arrays_are_left_alone(big_file):
    private = np.load(big_file, mmap_mode="c")
    private[:10] = 7.0
    release_pages(private)
    assert np.all(private[:10] == 7.0)
    plain = np.ones((10, 3))
    release_pages(plain)
    assert np.all(plain == 1)
    shared = np.load(big_file, mmap_mode="r+")
    shared[0] = 5.0
    release_pages(shared, slice(0, 1))
    assert np.all(shared[0] == 5.0)
