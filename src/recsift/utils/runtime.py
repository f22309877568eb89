"""Process-level runtime settings: torch threads, device choice, peak memory."""
from __future__ import annotations

import os
import re
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


class PeakMemory:
    """Peak resident memory of this process during a block, in MiB.

    On Linux the kernel's high-water mark is reset at the start (``/proc/self/clear_refs``), so a
    long-lived worker reports each step's own peak; elsewhere it is the process's peak so far.
    """

    def __enter__(self) -> PeakMemory:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @staticmethod
    def mb() -> float:
        try:
            with open("/proc/self/status") as f:
                status = f.read()
            m = re.search(r"VmHWM:\s+(\d+)\s+kB", status)
            if m:
                return round(int(m.group(1)) / 1024, 1)
        except OSError:
            pass
        return round(peak_rss_mb(), 1)
