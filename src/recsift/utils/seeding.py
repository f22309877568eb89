"""Explicit, reproducible randomness: every random step takes a seed or a Generator."""
from __future__ import annotations

import random

import numpy as np

SeedLike = int | np.random.Generator | None


def make_rng(seed: SeedLike) -> np.random.Generator:
    """Return a numpy Generator from an int seed (or pass a Generator through).

    ``None`` is refused on purpose: recsift never draws randomness nobody can replay.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise ValueError("a seed is required (pass an int or a numpy Generator)")
    return np.random.default_rng(int(seed))


def seed_everything(seed: int) -> None:
    """Seed python, numpy's legacy global RNG and torch (if imported) for one run."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return
    torch.manual_seed(seed)
