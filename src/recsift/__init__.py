"""recsift: data-centric recommendation.

Score, prune, distill, regenerate and disclose recommendation training data, retrain
models on the result and report how much accuracy each fraction of the data keeps.
"""
from __future__ import annotations

import os as _os

# libgomp's spin-wait costs ~8 ms per parallel region with 2 threads; it must be set before
# torch is first imported (see ALGORITHMS.md §13). Users can still override it.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["__version__"]
