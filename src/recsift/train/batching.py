"""Turn a `TrainingSet` of prefix samples into training batches, in two layouts.

``prefix`` (RecBole's protocol): one padded prefix per sample, the representation at its
last position predicts the target.

``all-prefix``: each user's training sequence is cut into windows counted back from its
end; one forward pass of a causal model over a window yields the representation of every
prefix inside it, so every selected target in the window trains at once. A target is
*owned* by exactly one window (windows advance by ``stride = max_len - overlap`` targets),
so an epoch visits every selected sample exactly once, as in the prefix layout. Pruned
samples stay in the input context (pruning removes a prefix->target pair, not the items).
Batches group windows until they hold about ``batch_size`` selected targets, so the number
of optimiser steps per epoch matches the prefix layout. With ``bucket=True`` (off by default)
windows are ordered by length (random order among equal lengths) before they are cut into
batches, and the batches are then shuffled: a batch of short sessions is no longer padded to
the one long session it happens to contain (8x fewer encoder positions on Beauty). The cost is
biased batches (e.g. all of ml-100k's short first windows together): SASRec on ml-100k reached
test NDCG@10 .045 after 8 epochs bucketed vs .053 unbucketed (bench/results/recsift_capped.md).

Both layouts yield the same `Batch`: ``seq``/``lengths`` for the encoder and, per selected
target, its (row, col) position in the encoder output, its item, weight and sample index.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..data import SequenceSamples, TrainingSet
from ..errors import ConfigError


@dataclass
class Batch:
    seq: torch.Tensor  # [B, L] item ids
    lengths: torch.Tensor  # [B]
    rows: torch.Tensor  # [M] row of each target in seq
    cols: torch.Tensor  # [M] position whose representation predicts the target
    targets: torch.Tensor  # [M]
    weights: torch.Tensor  # [M] float32
    sample_idx: torch.Tensor  # [M] index into the TrainingSet
    # packed all-prefix batches: several windows share a row; position of each token inside its
    # window, and which window it belongs to (-1 = padding); None when unpacked
    positions: torch.Tensor | None = None  # [B, L]
    segments: torch.Tensor | None = None  # [B, L]

    def to(self, device: torch.device) -> Batch:
        if device.type == "cpu":
            return self
        return Batch(*(None if t is None else t.to(device, non_blocking=True) for t in (
            self.seq, self.lengths, self.rows, self.cols, self.targets, self.weights, self.sample_idx,
            self.positions, self.segments)))


def _samples(train: TrainingSet) -> SequenceSamples:
    if not isinstance(train.data, SequenceSamples):
        raise ConfigError("sequential models train on prefix samples; got an interaction matrix (use a CF model)")
    if len(train) == 0:
        raise ConfigError("the training set is empty; a budget must keep at least one sample")
    return train.data


class PrefixBatcher:
    """One padded prefix per sample (exact RecBole layout)."""

    layout = "prefix"

    def __init__(self, train: TrainingSet, max_len: int, batch_size: int, *, pad_left: bool = False) -> None:
        self.s = _samples(train)
        self.weights = train.weights
        self.max_len, self.batch_size, self.pad_left = max_len, batch_size, pad_left
        self.starts = self.s.store.indptr[self.s.user]

    def __len__(self) -> int:
        return -(-len(self.s) // self.batch_size)

    def batches(self, rng: np.random.Generator, *, shuffle: bool = True) -> Iterator[Batch]:
        order = rng.permutation(len(self.s)) if shuffle else np.arange(len(self.s))
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo: lo + self.batch_size]
            yield self.make(idx)

    def make(self, idx: np.ndarray) -> Batch:
        pos = self.s.pos[idx]
        seq = self.s.store.windows(self.starts[idx], pos, self.max_len, pad_left=self.pad_left)
        lengths = np.minimum(pos - self.starts[idx], self.max_len)
        cols = np.full(len(idx), self.max_len - 1) if self.pad_left else lengths - 1
        if not self.pad_left:
            seq = seq[:, : int(lengths.max())]  # right padding: drop all-padding columns
        t = torch.from_numpy
        return Batch(t(seq), t(lengths), torch.arange(len(idx)), t(cols), t(self.s.store.items[pos]),
                     t(self.weights[idx]), t(np.asarray(idx, dtype=np.int64)))


class AllPrefixBatcher:
    """Windows over user sequences; every selected target of a window trains in one pass."""

    layout = "all-prefix"

    def __init__(self, train: TrainingSet, max_len: int, batch_size: int, *, overlap: int = 0,
                 bucket: bool = False, pack: bool = False) -> None:
        s = _samples(train)
        self.bucket, self.pack = bucket, pack
        if overlap >= max_len:
            raise ConfigError(f"window_overlap ({overlap}) must be smaller than max_len ({max_len})")
        self.store, self.max_len, self.batch_size = s.store, max_len, batch_size
        stride = max_len - overlap
        # sample index of the target at each store position (-1 = not selected)
        self.sel = np.full(len(self.store.items), -1, dtype=np.int64)
        self.sel[s.pos] = np.arange(len(s), dtype=np.int64)
        self.weights = train.weights
        start, end = self.store.indptr[:-1], self.store.indptr[1:]
        n_targets = np.maximum(end - start - 1, 0)
        n_win = -(-n_targets // stride)
        user = np.repeat(np.arange(len(start)), n_win)
        k = np.arange(n_win.sum()) - np.repeat(np.cumsum(n_win) - n_win, n_win)
        t_hi = end[user] - 1 - k * stride  # last owned target position (global)
        own_lo = np.maximum(start[user] + 1, t_hi - stride + 1)
        a = np.maximum(start[user], t_hi - max_len)  # first input position
        # keep windows owning at least one selected target
        csum = np.concatenate([[0], np.cumsum(self.sel >= 0)])
        n_sel = csum[t_hi + 1] - csum[own_lo]
        keep = n_sel > 0
        self.a, self.t_hi, self.own_lo, self.n_sel = a[keep], t_hi[keep], own_lo[keep], n_sel[keep]
        self.n_targets = int(self.n_sel.sum())
        assert self.n_targets == len(s), "every selected sample must be owned by exactly one window"

    def __len__(self) -> int:
        return max(1, round(self.n_targets / self.batch_size))

    def batches(self, rng: np.random.Generator, *, shuffle: bool = True) -> Iterator[Batch]:
        order = rng.permutation(len(self.a)) if shuffle else np.arange(len(self.a))
        if self.bucket:
            order = order[np.argsort(self.t_hi[order] - self.a[order], kind="stable")]
        cum = np.cumsum(self.n_sel[order])
        # cut where the running target count crosses multiples of batch_size
        cuts = np.searchsorted(cum, np.arange(self.batch_size, cum[-1], self.batch_size), side="left") + 1
        groups = [w for w in np.split(order, np.unique(cuts)) if len(w)]
        for g in rng.permutation(len(groups)) if shuffle else range(len(groups)):
            yield self.make(groups[g])

    def make(self, w: np.ndarray) -> Batch:
        a, t_hi, own_lo = self.a[w], self.t_hi[w], self.own_lo[w]
        j = np.arange(self.max_len)[None, :]
        pos_in = a[:, None] + j
        lengths = t_hi - a
        valid_in = j < lengths[:, None]
        seq = np.where(valid_in, self.store.items[np.minimum(pos_in, len(self.store.items) - 1)], 0)
        pos_t = pos_in + 1
        sel = np.where(valid_in & (pos_t >= own_lo[:, None]), self.sel[np.minimum(pos_t, len(self.sel) - 1)], -1)
        rows, cols = np.nonzero(sel >= 0)
        idx = sel[rows, cols]
        seq = seq[:, : int(lengths.max())]  # drop all-padding columns (short sequences)
        targets, weights = self.store.items[pos_t[rows, cols]], self.weights[idx]
        t = torch.from_numpy
        if not self.pack:
            return Batch(t(seq), t(lengths), t(rows), t(cols), t(targets), t(weights), t(idx))
        row_of, offset = pack_rows(lengths, self.max_len)
        width = int((offset + lengths).max())
        j = np.arange(seq.shape[1])[None, :]
        inside = j < lengths[:, None]
        r = np.broadcast_to(row_of[:, None], seq.shape)[inside]
        c = (offset[:, None] + j)[inside]
        n_rows = int(row_of.max()) + 1
        packed = np.zeros((n_rows, width), np.int64)
        positions = np.zeros((n_rows, width), np.int64)
        segments = np.full((n_rows, width), -1, np.int64)
        packed[r, c] = seq[inside]
        positions[r, c] = np.broadcast_to(j, seq.shape)[inside]
        segments[r, c] = np.broadcast_to(np.arange(len(seq))[:, None], seq.shape)[inside]
        return Batch(t(packed), t(np.bincount(row_of, weights=lengths, minlength=n_rows).astype(np.int64)),
                     t(row_of[rows]), t(offset[rows] + cols), t(targets), t(weights), t(idx), t(positions),
                     t(segments))


def pack_rows(lengths: np.ndarray, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """First-fit-decreasing packing of windows of ``lengths`` (each <= ``capacity``) into rows of
    ``capacity`` positions: the row of each window and its first position in that row.

    Example
    -------
    >>> pack_rows(np.array([3, 5, 2, 4]), 6)  # rows: [5], [4, 2], [3]
    (array([2, 0, 1, 1]), array([0, 0, 4, 0]))
    """
    order = np.argsort(-lengths, kind="stable")
    fill: list[int] = []
    row_of = np.empty(len(lengths), np.int64)
    offset = np.empty(len(lengths), np.int64)
    for i in order:
        n = int(lengths[i])
        for r, used in enumerate(fill):
            if used + n <= capacity:
                break
        else:
            r = len(fill)
            fill.append(0)
        row_of[i], offset[i] = r, fill[r]
        fill[r] += n
    return row_of, offset
