"""CCS: coverage-centric coreset selection (Zheng et al., ICLR 2023; ALGORITHMS §4).

Drop the hardest ``⌊β·N⌋`` units (lowest AUM: likely mislabeled), cut the score range into
equal-width strata, give every stratum a share of the budget (small strata whole, their
unused share flowing to the larger ones) and sample inside each stratum — uniformly, or with
any ``sampler`` such as D² (:func:`~recsift.selection.d2.d2_sampler`).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..data.budget import Budget
from ..errors import BudgetError, ConfigError
from .topk import as_scores, check_picked, resolve_budget

Sampler = Callable[[np.ndarray, int], np.ndarray]


def ccs_strata(scores: np.ndarray, n_strata: int) -> np.ndarray:
    """Stratum id in ``[0, n_strata)`` of every score: equal-width bins over ``[min, max]``.

    Bin ``i`` holds ``lo + i·w <= s < lo + (i+1)·w`` with ``w = (max − min)/n_strata``; the
    last bin is closed, so the maximum always lands in it whatever the sign of the scores
    (CCS's ``hi = 1.0001·max`` trick fails for ``max <= 0``). Constant scores: one stratum (0).

    Example
    -------
    >>> ccs_strata([-3.0, -2.0, -1.0, 0.0], 3).tolist()
    [0, 1, 2, 2]
    """
    if int(n_strata) != n_strata or n_strata < 1:
        raise ConfigError(f"n_strata={n_strata} must be a positive integer")
    s = as_scores(scores)
    if s.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = float(s.min()), float(s.max())
    if hi == lo:
        return np.zeros(s.size, dtype=np.int64)
    width = (hi - lo) / n_strata
    return np.clip(np.floor((s - lo) / width), 0, n_strata - 1).astype(np.int64)


def ccs_budgets(stratum_sizes: np.ndarray, m: int) -> np.ndarray:
    """Exact CCS allocation of ``m`` units over strata of the given sizes.

    Strata are visited smallest first (equal sizes: lower stratum id first); with ``M`` units
    and ``R`` strata left, a stratum gets ``min(|B_i|, ⌊M/R⌋)``, so small strata are taken whole
    and their unused share flows to the larger ones. ALGORITHMS §4 warns that the floors can
    leave the total short of ``m``; D² then tops up one unit at a time from the largest strata
    that still have room. We keep that top-up (round-robin over the strata with room, largest
    first, equal sizes: lower id first) as a guard, but in this smallest-first order it never
    fires: a stratum that is not taken whole gets ``⌊M/R⌋`` while every later stratum holds
    more than that, so ``M <= Σ remaining sizes`` holds at each step and the last (largest)
    stratum takes all that is left. The total is exactly ``m``.

    Example
    -------
    >>> ccs_budgets([2, 5, 30], 15).tolist()
    [2, 5, 8]
    >>> ccs_budgets([30, 0, 4, 4], 10).tolist()  # 0, then min(4, 10//3), min(4, 7//2), then 4 left
    [4, 0, 3, 3]
    """
    sizes = np.asarray(stratum_sizes, dtype=np.int64)
    if sizes.ndim != 1 or (sizes.size and sizes.min() < 0):
        raise ConfigError("stratum_sizes must be a 1-D array of non-negative counts")
    if not 0 <= m <= sizes.sum():
        raise BudgetError(f"cannot allocate {m} units over strata holding {int(sizes.sum())} units in all")
    out = np.zeros(sizes.size, dtype=np.int64)
    left, strata_left = int(m), sizes.size
    for i in np.argsort(sizes, kind="stable"):
        out[i] = min(int(sizes[i]), left // strata_left)
        left -= int(out[i])
        strata_left -= 1
    by_size = np.argsort(-sizes, kind="stable")
    while left > 0:
        room = by_size[out[by_size] < sizes[by_size]][:left]
        out[room] += 1
        left -= room.size
    return out


def select_ccs(
    scores: np.ndarray,
    budget: Budget | float | int,
    *,
    cutoff_scores: np.ndarray | None = None,
    beta: float = 0.0,
    n_strata: int = 50,
    rng: np.random.Generator,
    sampler: Sampler | None = None,
) -> np.ndarray:
    """Sorted indices of exactly ``m`` units chosen by CCS.

    1. Hard cutoff: drop the ``⌊β·N⌋`` units with the lowest ``cutoff_scores`` (AUM: low =
       hard/mislabeled; default ``scores``; ties: smaller index dropped first).
    2. Strata (:func:`ccs_strata`) on ``scores`` of the remaining units.
    3. Budgets (:func:`ccs_budgets`).
    4. Inside each stratum: ``b`` uniform draws with ``rng``, or ``sampler(pool, b)`` (pool:
       the stratum's global ids, ascending; must return ``b`` distinct ids of the pool).

    Example
    -------
    >>> s = np.arange(10.0)
    >>> select_ccs(s, 4, beta=0.2, n_strata=4, rng=np.random.default_rng(0)).size
    4
    >>> bool(np.isin([0, 1], select_ccs(s, 8, beta=0.2, n_strata=4, rng=np.random.default_rng(0))).any())
    False
    """
    s = as_scores(scores)
    n = s.size
    m = resolve_budget(budget, n)
    pool, _ = after_cutoff(s, m, cutoff_scores, beta)
    strata = ccs_strata(s[pool], n_strata)
    budgets = ccs_budgets(np.bincount(strata, minlength=n_strata), m)
    order = np.argsort(strata, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(strata, minlength=n_strata))]
    chosen = [
        _sample(pool[order[bounds[i] : bounds[i + 1]]], int(b), rng, sampler)
        for i, b in enumerate(budgets)
        if b > 0
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def hard_cutoff(cutoff_scores: np.ndarray, beta: float) -> np.ndarray:
    """Indices of the ``⌊β·N⌋`` lowest cutoff scores (ties: smaller index first): CCS's hard cutoff."""
    return np.argsort(cutoff_scores, kind="stable")[: math.floor(beta * len(cutoff_scores) + 1e-9)]


def after_cutoff(s: np.ndarray, m: int, cutoff_scores: np.ndarray | None,
                 beta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(left, dropped)``: the units left after dropping the ``⌊β·N⌋`` lowest cutoff scores
    (ascending ids) and the dropped ones (lowest first); a `ConfigError` for β outside [0, 1), a
    `BudgetError` when fewer than ``m`` are left."""
    n = s.size
    if not 0.0 <= beta < 1.0:
        raise ConfigError(f"beta={beta} must be in [0, 1): the fraction of all units dropped as too hard")
    key = s if cutoff_scores is None else as_scores(cutoff_scores, name="cutoff_scores")
    if key.size != n:
        raise ConfigError(f"cutoff_scores has {key.size} values but there are {n} scores; give one per unit")
    cut = math.floor(beta * n + 1e-9)
    if m > n - cut:
        max_beta = (n - m) / n
        raise BudgetError(
            f"budget of {m} units exceeds the {n - cut} units left after the hard cutoff drops "
            f"{cut} of {n} (beta={beta}); use a smaller beta (at most {max_beta:.4g}) or a smaller budget"
        )
    dropped = hard_cutoff(key, beta)
    keep = np.ones(n, dtype=bool)
    keep[dropped] = False
    return np.flatnonzero(keep), dropped


def _sample(pool: np.ndarray, b: int, rng: np.random.Generator, sampler: Sampler | None) -> np.ndarray:
    if sampler is None:
        return rng.choice(pool, size=b, replace=False)
    return check_picked(sampler(pool, b), pool, b, "the CCS sampler")
