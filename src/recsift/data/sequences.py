"""CSR store of user sequences and next-item training samples over it.

A sample is one prefix -> target pair: the prefix is ``items[indptr[u] : pos]`` and the
target is ``items[pos]``. Prefixes are never materialised per sample; subsetting a
`SequenceSamples` copies only its small index arrays and shares the store.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataFormatError


@dataclass(frozen=True)
class SequenceStore:
    """Per-user item sequences in CSR form: ``items[indptr[u]:indptr[u+1]]`` in time order."""

    indptr: np.ndarray  # int64, n_users + 1
    items: np.ndarray  # int64 item ids (>= 1)
    n_items: int

    @classmethod
    def from_lists(cls, seqs: list[list[int]] | list[np.ndarray], n_items: int | None = None) -> SequenceStore:
        lens = np.array([len(s) for s in seqs], dtype=np.int64)
        items = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs]) if len(seqs) else np.zeros(0, np.int64)
        if len(items) and items.min() < 1:
            raise DataFormatError("sequence item ids must be >= 1 (0 is reserved for padding)")
        n = int(items.max()) if n_items is None and len(items) else int(n_items or 0)
        return cls(np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), items, n)

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def sequence(self, u: int) -> np.ndarray:
        return self.items[self.indptr[u] : self.indptr[u + 1]]

    def item_counts(self, n_items: int | None = None) -> np.ndarray:
        """Occurrences of every item id (index 0 = padding, always 0), length ``max(n_items, self.n_items) + 1``."""
        return np.bincount(self.items, minlength=max(n_items or 0, self.n_items) + 1)

    def user_of_position(self) -> np.ndarray:
        """User id of every position in ``items``."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), self.lengths)

    def windows(self, starts: np.ndarray, ends: np.ndarray, max_len: int, *, pad_left: bool = True) -> np.ndarray:
        """The last ``max_len`` items of ``items[starts:ends]`` per row, zero-padded, as [B, max_len].

        ``pad_left`` puts padding first (items right-aligned, the usual layout for causal models).
        """
        starts = np.asarray(starts, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        lo = np.maximum(starts, ends - max_len)
        offs = np.arange(max_len, dtype=np.int64)[None, :]
        if pad_left:
            idx = ends[:, None] - max_len + offs
        else:
            idx = lo[:, None] + offs
        valid = (idx >= lo[:, None]) & (idx < ends[:, None])
        out = np.zeros((len(ends), max_len), dtype=np.int64)
        out[valid] = self.items[idx[valid]]
        return out


@dataclass(frozen=True)
class SequenceSamples:
    """Prefix -> next-item samples over a shared `SequenceStore`.

    Attributes
    ----------
    store : the shared sequences (never copied by `subset`).
    user : int64 user of each sample.
    pos : int64 global index (into ``store.items``) of each sample's target.
    sample_id : int64 id of each sample in the full sample universe (provenance of subsets).
    """

    store: SequenceStore
    user: np.ndarray
    pos: np.ndarray
    sample_id: np.ndarray

    @classmethod
    def all_prefixes(cls, store: SequenceStore, min_prefix: int = 1) -> SequenceSamples:
        """Every (prefix of length >= ``min_prefix``) -> next item pair of every sequence."""
        users = store.user_of_position()
        pos = np.arange(len(store.items), dtype=np.int64)
        keep = pos - store.indptr[users] >= min_prefix
        user, pos = users[keep], pos[keep]
        return cls(store, user, pos, np.arange(len(pos), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.pos)

    @property
    def targets(self) -> np.ndarray:
        return self.store.items[self.pos]

    @property
    def prefix_lengths(self) -> np.ndarray:
        return self.pos - self.store.indptr[self.user]

    def subset(self, idx: np.ndarray) -> SequenceSamples:
        """Samples at positions ``idx`` (ints or boolean mask) of this set; the store is shared."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return SequenceSamples(self.store, self.user[idx], self.pos[idx], self.sample_id[idx])

    def prefixes(self, idx: np.ndarray | slice | None = None, max_len: int = 50, *, pad_left: bool = True) -> np.ndarray:
        """Padded last-``max_len`` prefixes of the chosen samples, shape [B, max_len]."""
        sel = slice(None) if idx is None else idx
        u, p = self.user[sel], self.pos[sel]
        return self.store.windows(self.store.indptr[u], p, max_len, pad_left=pad_left)

    def unit_ids(self, unit: str = "sample") -> np.ndarray:
        """Selection unit of every sample: its own index (``sample``) or its user (``user``)."""
        if unit == "sample":
            return np.arange(len(self), dtype=np.int64)
        if unit == "user":
            return self.user
        raise DataFormatError(f"unknown selection unit {unit!r}; use 'sample' or 'user'")
