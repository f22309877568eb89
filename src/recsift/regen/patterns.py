"""Rule-based pattern mining: the pre-training targets of the DR4SR regenerator.

Paper: M. Yin, H. Wang, W. Guo, Y. Liu, S. Zhang, S. Zhao, D. Lian, E. Chen, "Dataset
Regeneration for Sequential Recommendation", KDD 2024 (DR4SR). Reference:
``USTC-StarTeam/DR4SR``, ``1.Build_pretraining_dataset.py`` (ALGORITHMS.md §8.1), which calls
``seq2pat`` with ``max_span=α`` and ``min_frequency=β``.

A *pattern* is an ordered, not necessarily contiguous subsequence of length >= 2 whose items lie
inside one window of ``window`` consecutive positions of a sequence (last position - first
position < ``window``). Its support is the number of *distinct* sequences holding it; patterns of
support >= ``min_support`` are frequent. Each sequence is paired with at most ``max_per_seq``
of the frequent patterns it holds, drawn at random (the reference shuffles the pattern list and
keeps the first 10 that are subsequences).

Vectorised: for every one of the ``2**(window-1) - 1`` offset sets ``{0 < o_1 < ... }`` inside a
window, all occurrences over all sequences are built at once from the CSR store (one numpy pass
per offset set, never a Python loop over sequences or windows); distinct patterns come from one
``np.unique`` over the padded pattern rows.

Deviations from the reference:

* Containment for the (sequence, pattern) pairs uses the same window as mining: a pattern is
  paired with a sequence only where it occurs within ``window`` positions. The reference tests
  in-order containment anywhere in the sequence, which also admits occurrences whose items are
  farther apart than the span the pattern was mined with.
* ``seq2pat`` counts its span in attribute index units; we read ``max_span=α`` as "inside a
  window of α positions" (the issue's "sliding windows of 5").

Not for long sequences with large windows: the number of candidates grows as
``len(items) * 2**(window-1)`` (Beauty, window 5: 2.3M candidates, a few seconds).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class MinedPatterns:
    """Frequent patterns (CSR ``indptr``/``items``), their support, and the pre-training pairs.

    ``pair_seq[j]`` is the row (in the mined store) of pair j's source sequence and
    ``pair_pattern[j]`` the index of its target pattern. Pairs are grouped by sequence.
    """

    indptr: np.ndarray
    items: np.ndarray
    support: np.ndarray
    pair_seq: np.ndarray
    pair_pattern: np.ndarray

    def __len__(self) -> int:
        return len(self.support)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def pattern(self, j: int) -> np.ndarray:
        return self.items[self.indptr[j]: self.indptr[j + 1]]

    def as_dict(self) -> dict[tuple[int, ...], int]:
        """``{pattern: support}`` (for tests and small data)."""
        return {tuple(int(x) for x in self.pattern(j)): int(self.support[j]) for j in range(len(self))}


def _occurrences(indptr: np.ndarray, items: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (sequence, padded pattern row) occurrence with all items inside ``window`` positions."""
    seq_of = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    end_of = indptr[1:][seq_of]
    start = np.arange(len(items), dtype=np.int64)
    seqs, rows = [], []
    for mask in range(1, 2 ** (window - 1)):
        offs = [o for o in range(1, window) if mask >> (o - 1) & 1]
        ok = start + offs[-1] < end_of  # the farthest item is still in the same sequence
        s = start[ok]
        row = np.zeros((len(s), window), dtype=np.int64)
        row[:, 0] = items[s]
        for c, o in enumerate(offs, 1):
            row[:, c] = items[s + o]
        seqs.append(seq_of[ok])
        rows.append(row)
    return np.concatenate(seqs), np.concatenate(rows)


def mine_patterns(indptr: np.ndarray, items: np.ndarray, *, window: int = 5, min_support: int = 2,
                  max_per_seq: int = 10, seed: int = 0) -> MinedPatterns:
    """Frequent in-window patterns of the CSR sequences ``(indptr, items)`` and <= ``max_per_seq``
    (sequence, pattern) pairs per sequence.

    Parameters
    ----------
    indptr, items : CSR sequences, item ids >= 1 in time order.
    window : all items of a pattern lie within this many consecutive positions (α, default 5).
    min_support : minimum number of distinct sequences holding a pattern (β, default 2).
    max_per_seq : pre-training pairs kept per sequence, drawn uniformly at random (default 10).
    seed : seed of that draw.

    Example
    -------
    >>> import numpy as np
    >>> m = mine_patterns(np.array([0, 3, 6, 8]), np.array([1, 2, 3, 1, 2, 4, 2, 3]), window=3)
    >>> sorted(m.as_dict().items())
    [((1, 2), 2), ((2, 3), 2)]
    """
    if window < 2:
        raise ConfigError(f"pattern window must be >= 2 (a pattern has at least two items), got {window}")
    if window > 12:
        raise ConfigError(f"pattern window {window} enumerates 2**{window - 1} offset sets per position; use <= 12")
    if min_support < 1 or max_per_seq < 1:
        raise ConfigError("min_support and max_per_seq must be >= 1")
    indptr = np.asarray(indptr, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    occ_seq, occ_rows = _occurrences(indptr, items, window)
    empty = np.zeros(0, np.int64)
    if len(occ_seq) == 0:
        return MinedPatterns(np.zeros(1, np.int64), empty, empty, empty, empty)
    patterns, pat_of = np.unique(occ_rows, axis=0, return_inverse=True)
    pat_of = pat_of.reshape(-1)
    # distinct (sequence, pattern) pairs -> support = number of sequences per pattern
    key = np.unique(occ_seq * len(patterns) + pat_of)
    pair_seq, pair_pat = key // len(patterns), key % len(patterns)
    support = np.bincount(pair_pat, minlength=len(patterns))
    frequent = support >= min_support
    new_id = np.cumsum(frequent) - 1
    keep = frequent[pair_pat]
    pair_seq, pair_pat = pair_seq[keep], new_id[pair_pat[keep]]
    # at most max_per_seq pairs per sequence, chosen at random
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(pair_seq)), pair_seq))
    pair_seq, pair_pat = pair_seq[order], pair_pat[order]
    first = np.searchsorted(pair_seq, pair_seq, side="left")
    keep = np.arange(len(pair_seq)) - first < max_per_seq
    pair_seq, pair_pat = pair_seq[keep], pair_pat[keep]
    rows = patterns[frequent]
    lengths = (rows > 0).sum(1)
    return MinedPatterns(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), rows[rows > 0],
                         support[frequent].astype(np.int64), pair_seq, pair_pat)


__all__ = ["MinedPatterns", "mine_patterns"]
