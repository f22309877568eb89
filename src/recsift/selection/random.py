"""Uniform random selection: the baseline every curator must beat."""
from __future__ import annotations

import numpy as np

from ..data.budget import Budget


def select_random(n_units: int, budget: Budget | float | int, *, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``m = budget.resolve(n_units)`` units drawn uniformly without replacement.

    The first ``m`` of one seeded permutation: for a given ``rng`` state, a larger budget keeps a
    superset (so a target-counted budget can grow the unit count monotonically).

    Example
    -------
    >>> import numpy as np
    >>> select_random(10, 0.5, rng=np.random.default_rng(0)).size
    5
    """
    m = Budget.parse(budget).resolve(n_units)
    return np.sort(rng.permutation(n_units)[:m])
