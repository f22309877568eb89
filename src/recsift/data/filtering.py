"""Interaction filters (k-core, minimum user length). Pure functions over `Interactions`."""
from __future__ import annotations

import numpy as np

from ..errors import DataFormatError
from .interactions import Interactions


def k_core(inter: Interactions, user_k: int = 5, item_k: int = 5, *, max_iter: int = 100) -> Interactions:
    """Repeatedly drop users with < ``user_k`` and items with < ``item_k`` rows until stable.

    Returns compacted ids. Raises if nothing survives.
    """
    keep = np.ones(len(inter), dtype=bool)
    for _ in range(max_iter):
        u_cnt = np.bincount(inter.user[keep], minlength=inter.n_users)
        i_cnt = np.bincount(inter.item[keep], minlength=inter.n_items + 1)
        new_keep = keep & (u_cnt[inter.user] >= user_k) & (i_cnt[inter.item] >= item_k)
        if new_keep.sum() == keep.sum():
            break
        keep = new_keep
    if not keep.any():
        raise DataFormatError(
            f"{inter.name}: the {user_k}-core (users) / {item_k}-core (items) filter removed every interaction; "
            "lower the thresholds"
        )
    return inter.subset(keep).compact()


def min_user_interactions(inter: Interactions, k: int) -> Interactions:
    """Drop users with fewer than ``k`` rows (no item filter), compacting ids."""
    cnt = np.bincount(inter.user, minlength=inter.n_users)
    keep = cnt[inter.user] >= k
    if not keep.any():
        raise DataFormatError(f"{inter.name}: no user has at least {k} interactions")
    return inter.subset(keep).compact()
