"""Process-level runtime settings: torch threads, device choice, peak memory."""
from __future__ import annotations

import os
import resource
import sys


def configure_threads() -> int:
    """Apply ``RECSIFT_THREADS`` (default: all cores) to torch; return the thread count."""
    import torch

    n = int(os.environ.get("RECSIFT_THREADS", "0") or 0) or (os.cpu_count() or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
