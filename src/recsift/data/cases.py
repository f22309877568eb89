"""`EvalCases`: the fixed evaluation cases of a split (valid or test).

Each case is one query: a user, the input history the model sees, and one or more target
items. Histories and targets are CSR arrays so one type serves leave-one-out (one target),
session prefixes (one target per prefix) and CF ratio splits (many targets per user).
Optional fixed ``candidates`` (e.g. 1 positive + 99 sampled negatives) turn full ranking
into sampled ranking; they are drawn once, seeded, and saved with the split.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataFormatError

if TYPE_CHECKING:
    from .sequences import SequenceSamples


@dataclass(frozen=True)
class EvalCases:
    """Evaluation queries in CSR form.

    Attributes
    ----------
    user : int64 [n_cases]
    hist_indptr, hist_items : CSR of the input history per case (time-ordered for sequences).
    tgt_indptr, tgt_items : CSR of the target items per case (at least one per case).
    n_items : number of real items (scores have ``n_items + 1`` columns, column 0 = padding).
    candidates : optional int64 [n_cases, C]; column 0 is the case's first target.
    """

    user: np.ndarray
    hist_indptr: np.ndarray
    hist_items: np.ndarray
    tgt_indptr: np.ndarray
    tgt_items: np.ndarray
    n_items: int
    candidates: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.user)
        if len(self.hist_indptr) != n + 1 or len(self.tgt_indptr) != n + 1:
            raise DataFormatError("EvalCases: indptr arrays must have n_cases + 1 entries")
        if n and np.any(np.diff(self.tgt_indptr) < 1):
            raise DataFormatError("EvalCases: every case needs at least one target item")

    @classmethod
    def from_lists(cls, user, histories, targets, n_items: int) -> EvalCases:
        """Build from Python lists (for tests and small data)."""
        hl = np.array([len(h) for h in histories], dtype=np.int64)
        tl = np.array([len(t) for t in targets], dtype=np.int64)
        cat = lambda xs: np.concatenate([np.asarray(x, dtype=np.int64) for x in xs]) if len(xs) else np.zeros(0, np.int64)  # noqa: E731
        return cls(
            user=np.asarray(user, dtype=np.int64),
            hist_indptr=np.concatenate([[0], np.cumsum(hl)]).astype(np.int64),
            hist_items=cat(histories),
            tgt_indptr=np.concatenate([[0], np.cumsum(tl)]).astype(np.int64),
            tgt_items=cat(targets),
            n_items=int(n_items),
        )

    def __len__(self) -> int:
        return len(self.user)

    @property
    def n_targets(self) -> np.ndarray:
        return np.diff(self.tgt_indptr)

    @property
    def hist_lengths(self) -> np.ndarray:
        return np.diff(self.hist_indptr)

    def history(self, i: int) -> np.ndarray:
        return self.hist_items[self.hist_indptr[i] : self.hist_indptr[i + 1]]

    def targets(self, i: int) -> np.ndarray:
        return self.tgt_items[self.tgt_indptr[i] : self.tgt_indptr[i + 1]]

    def take(self, idx: np.ndarray) -> EvalCases:
        """Cases at ``idx`` (used to chunk evaluation)."""
        idx = np.asarray(idx, dtype=np.int64)
        hi, hp = _gather_csr(self.hist_indptr, self.hist_items, idx)
        ti, tp = _gather_csr(self.tgt_indptr, self.tgt_items, idx)
        cand = None if self.candidates is None else self.candidates[idx]
        return replace(self, user=self.user[idx], hist_indptr=hp, hist_items=hi, tgt_indptr=tp, tgt_items=ti,
                       candidates=cand)

    def as_samples(self) -> SequenceSamples:
        """Every (case history -> one of its targets) pair as a prefix sample: a sequence
        ``history + [target]`` per pair in a new store (``user`` = its row there), the sample at its
        last position. Lets held-out cases go through anything that takes samples (e.g. the
        MoE experts' outputs on validation cases, to train the gate on data they never fitted)."""
        from .sequences import SequenceSamples, SequenceStore

        case = np.repeat(np.arange(len(self), dtype=np.int64), self.n_targets)
        hist, hist_ptr = _gather_csr(self.hist_indptr, self.hist_items, case)
        lens = np.diff(hist_ptr) + 1
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        items = np.empty(indptr[-1], dtype=np.int64)
        last = indptr[1:] - 1
        is_hist = np.ones(len(items), bool)
        is_hist[last] = False
        items[is_hist] = hist
        items[last] = self.tgt_items
        store = SequenceStore(indptr, items, self.n_items)
        return SequenceSamples(store, np.arange(len(case), dtype=np.int64), last,
                               np.arange(len(case), dtype=np.int64))

    def padded_histories(self, max_len: int, *, pad_left: bool = True) -> np.ndarray:
        """Last ``max_len`` history items per case, zero padded: [n_cases, max_len]."""
        from .sequences import SequenceStore

        store = SequenceStore(self.hist_indptr, self.hist_items, self.n_items)
        return store.windows(self.hist_indptr[:-1], self.hist_indptr[1:], max_len, pad_left=pad_left)

    def padded_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Targets as a zero-padded [n_cases, T_max] array and its validity mask."""
        return _pad_csr(self.tgt_indptr, self.tgt_items)

    def with_sampled_candidates(self, n_negatives: int, rng: np.random.Generator,
                                exclude_indptr: np.ndarray | None = None,
                                exclude_items: np.ndarray | None = None) -> EvalCases:
        """Fix 1 positive (the first target) + ``n_negatives`` uniform negatives per case.

        Negatives are distinct, never a target of the case, never in the case's exclude list
        (by default its history), and never the padding item.
        """
        if exclude_indptr is None:
            exclude_indptr, exclude_items = self.hist_indptr, self.hist_items
        if n_negatives >= self.n_items:
            raise DataFormatError(f"cannot sample {n_negatives} negatives from {self.n_items} items")
        cand = np.zeros((len(self), n_negatives + 1), dtype=np.int64)
        cand[:, 0] = self.tgt_items[self.tgt_indptr[:-1]]
        cand[:, 1:] = distinct_negatives([(self.tgt_indptr, self.tgt_items), (exclude_indptr, exclude_items)],
                                         n_negatives, self.n_items, rng)
        return replace(self, candidates=cand)


def distinct_negatives(forbidden: list[tuple[np.ndarray, np.ndarray]], n: int, n_items: int,
                       rng: np.random.Generator) -> np.ndarray:
    """``[n_rows, n]`` item ids in ``1..n_items``: per row ``n`` distinct items outside the row's
    forbidden items (the union of the given CSR lists, e.g. targets and history).

    Vectorised rejection sampling: draw a full matrix, then redraw only the entries that hit a
    forbidden item or repeat an earlier entry of their row, until none do.
    """
    n_rows = len(forbidden[0][0]) - 1
    rows = [np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(ptr)) for ptr, _ in forbidden]
    base = np.int64(n_items + 1)
    keys = np.unique(np.concatenate([r * base + np.asarray(it, np.int64) for r, (_, it) in zip(rows, forbidden)]))
    keys = keys[keys % base != 0]  # padding is never drawn anyway
    per_row = np.bincount(keys // base, minlength=n_rows) if n_rows else np.zeros(0, np.int64)
    if n_rows and int(per_row.max()) + n > n_items:
        worst = int(np.argmax(per_row))
        raise DataFormatError(f"case {worst}: only {n_items - int(per_row[worst])} items are left to sample "
                              f"{n} distinct negatives from; lower the number of negatives")
    neg = rng.integers(1, n_items + 1, size=(n_rows, n), dtype=np.int64)
    row_key = np.arange(n_rows, dtype=np.int64)[:, None] * base
    bad = np.ones(neg.shape, bool)
    while bad.any():
        bad = np.isin(row_key + neg, keys)
        order = np.argsort(neg, axis=1, kind="stable")
        srt = np.take_along_axis(neg, order, axis=1)
        dup_sorted = np.zeros(neg.shape, bool)
        dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
        dup = np.zeros(neg.shape, bool)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        bad |= dup
        neg[bad] = rng.integers(1, n_items + 1, size=int(bad.sum()), dtype=np.int64)
    return neg


def _gather_csr(indptr: np.ndarray, data: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lens = indptr[rows + 1] - indptr[rows]
    new_ptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    if new_ptr[-1] == 0:
        return data[:0], new_ptr
    offs = np.arange(new_ptr[-1]) - np.repeat(new_ptr[:-1], lens)
    return data[np.repeat(indptr[rows], lens) + offs], new_ptr


def _pad_csr(indptr: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lens = np.diff(indptr)
    width = int(lens.max()) if len(lens) else 0
    mask = np.arange(width)[None, :] < lens[:, None]
    out = np.zeros((len(lens), width), dtype=np.int64)
    out[mask] = data
    return out, mask
