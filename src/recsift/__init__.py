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

#: the Python API (`recsift.api`), imported on first use so that ``import recsift`` stays light
_API = ("load", "load_csv", "curate", "train", "report")

__all__ = ["__version__", *_API]


def __getattr__(name: str):  # PEP 562: lazy access to the API functions
    if name in _API:
        import importlib

        if name in ("train", "report"):  # subpackages that are callable as the API function
            return importlib.import_module(f"{__name__}.{name}")
        return getattr(importlib.import_module(f"{__name__}.api"), name)
    raise AttributeError(f"module 'recsift' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
