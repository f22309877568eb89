"""Item-coverage prefix (the seed's ``min_list_cover``, ALGORITHMS §5.4).

Before any selector runs, the seed keeps a set of sessions that together contain every
training item at least once, so no item disappears from the pruned training data; the rest
of the budget is then chosen by the selector from the other units.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

from ..data.budget import Budget
from ..errors import BudgetError, ConfigError
from .graphs import item_sets, segment_positions
from .topk import check_picked, resolve_budget


def item_coverage(
    unit_indptr: np.ndarray,
    unit_items: np.ndarray,
    *,
    n_items: int | None = None,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Sorted indices of a greedy set cover: units that together contain every item.

    Repeatedly takes the unit covering the most still-uncovered items (ties: smaller index)
    until every item occurring in a unit is covered. ``candidates`` restricts the units that
    may be taken (then only items occurring in those units must be covered). Exact lazy
    greedy: gains only fall, so a heap keyed ``(−gain, index)`` whose popped entry is
    re-scored and pushed back when stale gives the same picks as the plain greedy.

    Example
    -------
    >>> # units: {0,1,2}, {2,3}, {3}, {4}
    >>> item_coverage([0, 3, 5, 6, 7], [0, 1, 2, 2, 3, 3, 4]).tolist()
    [0, 1, 3]
    """
    x = item_sets(unit_indptr, unit_items, n_items)
    indptr, items = x.indptr, x.indices
    pool = np.arange(x.shape[0]) if candidates is None else _as_candidates(candidates, x.shape[0])
    gains = np.diff(indptr)[pool]
    covered = np.zeros(x.shape[1], dtype=bool)
    needed = np.zeros(x.shape[1], dtype=bool)
    needed[items[_rows_positions(indptr, pool)]] = True
    left = int(needed.sum())
    heap = [(-int(g), int(u)) for g, u in zip(gains, pool) if g > 0]
    heapq.heapify(heap)
    chosen: list[int] = []
    while left > 0:
        neg, u = heapq.heappop(heap)
        unit_items_u = items[indptr[u] : indptr[u + 1]]
        new = unit_items_u[~covered[unit_items_u]]
        if new.size != -neg:
            if new.size:
                heapq.heappush(heap, (-new.size, u))
            continue
        covered[new] = True
        left -= new.size
        chosen.append(u)
    return np.sort(np.asarray(chosen, dtype=np.int64))


def _rows_positions(indptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return segment_positions(indptr[rows], indptr[rows + 1] - indptr[rows])


def _as_candidates(candidates: np.ndarray, n: int) -> np.ndarray:
    c = np.unique(np.asarray(candidates, dtype=np.int64))
    if c.size and (c[0] < 0 or c[-1] >= n):
        raise ConfigError(f"candidate unit ids must lie in [0, {n})")
    return c


def select_with_prefix(
    prefix_idx: np.ndarray,
    n_units: int,
    m: Budget | float | int,
    select_rest: Callable[[np.ndarray, int], np.ndarray],
) -> np.ndarray:
    """Exactly ``m`` sorted units: the ``prefix_idx`` units (e.g. :func:`item_coverage`), counted
    inside the budget, plus ``select_rest(remaining, m − len(prefix))``, which must return that
    many distinct ids taken from ``remaining`` (the other units, ascending global ids).

    ``m`` is a count or a fraction of ``n_units`` (a :class:`~recsift.data.budget.Budget`).

    Example
    -------
    >>> from recsift.selection.topk import select_top
    >>> scores = np.array([0.9, 0.1, 0.8, 0.7, 0.2])
    >>> rest = lambda idx, b: idx[select_top(scores[idx], b)]
    >>> select_with_prefix(np.array([1]), 5, 3, rest).tolist()
    [0, 1, 2]
    """
    m = resolve_budget(m, n_units)
    prefix = np.unique(np.asarray(prefix_idx, dtype=np.int64))
    if prefix.size and (prefix[0] < 0 or prefix[-1] >= n_units):
        raise ConfigError(f"prefix unit ids must lie in [0, {n_units})")
    if prefix.size > m:
        raise BudgetError(
            f"the prefix alone has {prefix.size} units but the budget keeps only {m}; "
            f"raise the budget to at least {prefix.size} units or drop the prefix"
        )
    rest_b = m - prefix.size
    if rest_b == 0:
        return prefix
    remaining = np.setdiff1d(np.arange(n_units, dtype=np.int64), prefix, assume_unique=True)
    rest = check_picked(select_rest(remaining, rest_b), remaining, rest_b, "select_rest (given to select_with_prefix)")
    return np.sort(np.concatenate([prefix, rest]))
