"""Rank of each target item among all scored columns, with pessimistic ties.

A model that gives many items the same score (a constant model, a popularity model with
count ties, or history items masked to ``-inf``) must not be rewarded for the tie. Every
rank here is therefore *pessimistic*: a target ranks after every non-target item with an
equal score. Targets tied with each other take consecutive positions in target order, so
the ranks of the targets, together with those of the other items, form a permutation.

When not to use: for metrics over a *sampled* set of candidates, first gather the
candidate columns (``scores.gather(1, candidates)``) and rank within them; this module
ranks among whatever columns it is given.
"""
from __future__ import annotations

import torch

__all__ = ["INVALID_RANK", "target_ranks"]

#: Rank given to invalid (padding) target slots: larger than any cut-off K.
INVALID_RANK: int = 2**62

# The sort path needs ~3x the row block in scratch memory (values + int64 indices); sort
# at most this many score entries at once.
_SORT_BLOCK_ELEMENTS = 2**24


def target_ranks(scores: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1-based pessimistic rank of each target column in its row of ``scores``.

    Parameters
    ----------
    scores : torch.Tensor
        Float scores ``[B, N]``; higher is better. Must not contain NaN.
    targets : torch.LongTensor
        Column indices ``[B, T]`` of each row's target items (distinct within a row).
        Entries where ``valid`` is False may hold any value.
    valid : torch.BoolTensor
        ``[B, T]``; which target slots are real.

    Returns
    -------
    torch.LongTensor
        ``[B, T]``: for a valid target ``j`` of row ``b``,
        ``#{c : s[b,c] > s_j} + #{non-target c : s[b,c] == s_j}
        + #{valid targets k <= j : s_k == s_j}``; :data:`INVALID_RANK` elsewhere.

    Notes
    -----
    With one target per row (``T == 1``) the rank is ``#{c : s[b,c] >= s_t}``, one O(N)
    comparison pass. With several targets each row is sorted once and
    ``torch.searchsorted`` counts the columns scoring ``>= s_j``, then the ties among
    later targets are subtracted; no ``[B, T, N]`` tensor is built.

    Examples
    --------
    >>> s = torch.tensor([[0.1, 0.5, 0.5, 0.5, 0.9]])
    >>> target_ranks(s, torch.tensor([[1, 4]]), torch.tensor([[True, True]])).tolist()
    [[4, 1]]
    """
    if scores.dim() != 2 or targets.dim() != 2 or targets.shape[0] != scores.shape[0]:
        raise ValueError(f"target_ranks: expected scores [B, N] and targets [B, T], got "
                         f"{tuple(scores.shape)} and {tuple(targets.shape)}")
    if valid.shape != targets.shape:
        raise ValueError(f"target_ranks: valid {tuple(valid.shape)} must match targets {tuple(targets.shape)}")
    b, t = targets.shape
    if b == 0 or t == 0:
        return torch.full((b, t), INVALID_RANK, dtype=torch.long, device=scores.device)
    safe = torch.where(valid, targets, torch.zeros_like(targets))
    tscores = scores.gather(1, safe)  # [B, T]
    if t == 1:
        counts = (scores >= tscores).sum(dim=1, keepdim=True)
    else:
        counts = torch.empty((b, t), dtype=torch.long, device=scores.device)
        n = scores.shape[1]
        step = max(1, _SORT_BLOCK_ELEMENTS // max(n, 1))
        for lo in range(0, b, step):
            hi = min(b, lo + step)
            srt = torch.sort(scores[lo:hi], dim=1).values
            counts[lo:hi] = n - torch.searchsorted(srt, tscores[lo:hi].contiguous(), side="left")
        counts -= _later_ties(tscores, valid)
    return torch.where(valid, counts, torch.full_like(counts, INVALID_RANK))


def _later_ties(tscores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """For each target ``j``: the number of valid targets ``k > j`` with the same score.

    Sorts the ``T`` target scores of each row (stable, invalid slots as NaN so they never
    tie), then measures the distance from each target to the end of its run of equal
    scores. O(T log T) per row.
    """
    b, t = tscores.shape
    key = torch.where(valid, tscores, torch.full_like(tscores, float("nan")))
    srt, order = torch.sort(key, dim=1, stable=True)
    pos = torch.arange(t, device=tscores.device).expand(b, t)
    is_end = torch.ones((b, t), dtype=torch.bool, device=tscores.device)
    is_end[:, :-1] = srt[:, :-1] != srt[:, 1:]  # NaN != NaN: invalid slots end their own run
    end = torch.where(is_end, pos, torch.full_like(pos, t))
    run_end = torch.flip(torch.cummin(torch.flip(end, dims=[1]), dim=1).values, dims=[1])
    later_sorted = run_end - pos  # in sorted order
    later = torch.empty_like(later_sorted)
    later.scatter_(1, order, later_sorted)
    return torch.where(valid, later, torch.zeros_like(later))
