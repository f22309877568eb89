"""`Interactions`: one plain table of (user, item, time[, rating]) plus raw-id maps.

Internal user ids are ``0..n_users-1``; internal item ids are ``1..n_items`` so that id 0 is
free for padding everywhere (sequences, score columns, embeddings). Rows are kept sorted by
(user, time, original row order), so a user's rows form one contiguous, time-ordered block.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import DataFormatError


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays ``user, item, time[, rating]`` with raw-id maps.

    Attributes
    ----------
    user, item : int64 arrays, internal ids (items start at 1).
    time : float64 array; for order-only datasets it is the row's position in its user's
        sequence and ``has_time`` is False.
    rating : float32 array or None.
    user_ids : raw id of each internal user (``user_ids[u]``).
    item_ids : raw id of each internal item; ``item_ids[0]`` is a padding placeholder.
    row : int64 source row of each interaction (so shipped per-row split files still apply).
    """

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray
    rating: np.ndarray | None
    user_ids: np.ndarray
    item_ids: np.ndarray
    has_time: bool = True
    name: str = "interactions"
    meta: dict[str, Any] = field(default_factory=dict)
    row: np.ndarray | None = None  # source row of each interaction in the file/table it came from

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_raw(
        cls,
        user: np.ndarray,
        item: np.ndarray,
        time: np.ndarray | None = None,
        rating: np.ndarray | None = None,
        *,
        name: str = "interactions",
        meta: dict[str, Any] | None = None,
    ) -> Interactions:
        """Map raw ids to internal ids and sort rows by (user, time, row order).

        Without ``time`` the file order inside each user is the sequence order, and ``time``
        becomes the position of the row within its user.
        """
        user = np.asarray(user)
        item = np.asarray(item)
        n = len(user)
        if len(item) != n or (time is not None and len(time) != n) or (rating is not None and len(rating) != n):
            raise DataFormatError(f"{name}: columns have different lengths; every row needs a user and an item")
        if n == 0:
            raise DataFormatError(f"{name}: no interactions (the file or table is empty); give at least one row")
        user_ids, uinv = np.unique(user, return_inverse=True)
        item_ids, iinv = np.unique(item, return_inverse=True)
        uinv = uinv.astype(np.int64).ravel()
        iinv = iinv.astype(np.int64).ravel() + 1
        has_time = time is not None
        if has_time:
            t = np.asarray(time, dtype=np.float64)
            if not np.all(np.isfinite(t)):
                bad = int(np.flatnonzero(~np.isfinite(t))[0])
                raise DataFormatError(f"{name}: time value at row {bad} is not a finite number; fix or drop that row")
            order = np.lexsort((np.arange(n), t, uinv))
        else:
            order = np.argsort(uinv, kind="stable")
        uinv, iinv = uinv[order], iinv[order]
        if has_time:
            t = t[order]
        else:
            t = _positions(uinv, len(user_ids)).astype(np.float64)
        r = None if rating is None else np.asarray(rating, dtype=np.float32)[order]
        pad = np.array([_pad_value(item_ids)], dtype=item_ids.dtype)
        return cls(
            user=uinv,
            item=iinv,
            time=t,
            rating=r,
            user_ids=user_ids,
            item_ids=np.concatenate([pad, item_ids]),
            has_time=has_time,
            name=name,
            meta=dict(meta or {}),
            row=order.astype(np.int64),
        )

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of real items (ids 1..n_items); score arrays have n_items + 1 columns."""
        return len(self.item_ids) - 1

    def __len__(self) -> int:
        return len(self.user)

    def counts(self) -> dict[str, int]:
        """Distinct users/items that occur in the rows, and the row count."""
        return {
            "n_users": int(len(np.unique(self.user))),
            "n_items": int(len(np.unique(self.item))),
            "n_interactions": int(len(self.user)),
        }

    # ------------------------------------------------------------------ views
    def user_indptr(self) -> np.ndarray:
        """CSR row pointer over users (rows are sorted by user)."""
        return np.concatenate([[0], np.cumsum(np.bincount(self.user, minlength=self.n_users))]).astype(np.int64)

    def subset(self, rows: np.ndarray) -> Interactions:
        """Rows selected by a boolean mask or sorted index array; id maps are kept as they are."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return replace(
            self,
            user=self.user[rows],
            item=self.item[rows],
            time=self.time[rows],
            rating=None if self.rating is None else self.rating[rows],
            row=None if self.row is None else self.row[rows],
        )

    def compact(self) -> Interactions:
        """Re-number ids so that only users/items that still occur get ids (after filtering)."""
        users, uinv = np.unique(self.user, return_inverse=True)
        items, iinv = np.unique(self.item, return_inverse=True)
        return replace(
            self,
            user=uinv.astype(np.int64).ravel(),
            item=iinv.astype(np.int64).ravel() + 1,
            user_ids=self.user_ids[users],
            item_ids=np.concatenate([self.item_ids[:1], self.item_ids[items]]),
        )


def _positions(sorted_keys: np.ndarray, n_groups: int) -> np.ndarray:
    """Position of each row inside its group, for rows sorted by group."""
    counts = np.bincount(sorted_keys, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.arange(len(sorted_keys)) - np.repeat(starts, counts)


def _pad_value(ids: np.ndarray) -> Any:
    if ids.dtype.kind in "iu":
        return -1
    if ids.dtype.kind == "f":
        return np.nan
    return "<pad>"
