"""Process runtime helpers: per-block peak memory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsift.utils.runtime import PeakMemory, peak_rss_mb


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="resettable peak RSS is Linux-only")
def test_peak_memory_is_each_blocks_own_peak():
    with PeakMemory() as big:
        a = np.ones(256 * 2**20 // 8)  # 256 MiB, written so it is resident
        del a
    big_mb = big.mb()
    with PeakMemory() as small:  # the high-water mark is reset: the 256 MiB block is not counted again
        b = np.ones(2**20 // 8)
        del b
    assert big_mb - small.mb() > 200
    assert 0 < small.mb() <= peak_rss_mb() + 1
