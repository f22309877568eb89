"""Monotonic top/bottom-k selection (the seed's "coreset" mode, ALGORITHMS §2.3 / §5.3).

Also holds the small input checks every selector shares (scores, budgets, index sets), so
that each selector fails with the same clear message on the same bad input.
"""
from __future__ import annotations

import numpy as np

from ..data.budget import Budget
from ..errors import ConfigError, DataFormatError, RecsiftError


def as_scores(scores: np.ndarray, *, name: str = "scores", nonnegative: bool = False) -> np.ndarray:
    """``scores`` as a 1-D float64 array; NaN/inf (or, with ``nonnegative``, negative values) raise."""
    s = np.asarray(scores)
    if s.ndim != 1:
        raise DataFormatError(f"{name} must be a 1-D array with one value per unit, got shape {s.shape}")
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == bool):
        raise DataFormatError(f"{name} must be numeric, got dtype {s.dtype}")
    s = s.astype(np.float64, copy=False)
    bad = ~np.isfinite(s)
    if bad.any():
        raise DataFormatError(
            f"{name} contain {int(bad.sum())} NaN/inf value(s) (first at index {int(np.argmax(bad))}); "
            "fix the scorer or replace them (e.g. with np.nan_to_num) before selecting"
        )
    if nonnegative and s.size and s.min() < 0:
        raise DataFormatError(
            f"{name} must be >= 0 with higher = more important, but the minimum is {s.min():g} "
            f"(at index {int(np.argmin(s))}); rank-normalise them or shift them (s - s.min()) first"
        )
    return s


def resolve_budget(budget: Budget | float | int, n_units: int) -> int:
    """Keep count ``m`` for ``n_units`` units (raises :class:`~recsift.errors.BudgetError`)."""
    return Budget.parse(budget).resolve(n_units)


def check_picked(got: np.ndarray, pool: np.ndarray, b: int, who: str) -> np.ndarray:
    """``got`` as int64 if it is ``b`` distinct ids of ``pool``; else a clear error about ``who``."""
    got = np.asarray(got, dtype=np.int64)
    n_unique, n_outside = np.unique(got).size, int((~np.isin(got, pool)).sum())
    if got.size != b or n_unique != b or n_outside:
        raise RecsiftError(
            f"{who} must return {b} distinct ids from the {pool.size} it was given, but returned "
            f"{got.size} ids ({n_unique} distinct, {n_outside} not among those given); fix {who}"
        )
    return got


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """Raise a :class:`ConfigError` listing ``allowed`` when ``value`` is not one of them."""
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not supported; use one of {', '.join(map(repr, allowed))}")
    return value


def select_top(scores: np.ndarray, budget: Budget | float | int, *, keep: str = "high") -> np.ndarray:
    """Sorted indices of the ``m`` highest (``keep="high"``) or lowest (``"low"``) scores.

    Ties are broken by the smaller index, so the result is deterministic. Directions used by
    the seed and CCS: high for entropy, forgetting, EL2N, variance; low for AUM and confidence.

    Example
    -------
    >>> select_top([0.1, 0.9, 0.5, 0.9], 2).tolist()
    [1, 3]
    >>> select_top([0.1, 0.9, 0.5, 0.9], 0.5, keep="low").tolist()
    [0, 2]
    """
    check_choice("keep", keep, ("high", "low"))
    s = as_scores(scores)
    m = resolve_budget(budget, s.size)
    order = np.argsort(-s if keep == "high" else s, kind="stable")
    return np.sort(order[:m]).astype(np.int64)
