"""AUC over sampled negatives: the ∞-AE / Distill-CF protocol's ``AUC`` (ALGORITHMS.md §1.3).

For every case, ``n_negatives`` items that are neither in its history nor among its targets
are drawn once (seeded, without replacement) and kept fixed; the case's AUC is the share of
(target, negative) pairs the model orders correctly, a tie counting one half::

    AUC_c = mean_{t in targets_c, j in negatives_c} ( 1[s_t > s_j] + ½ · 1[s_t = s_j] )

Ranks are not enough for it (it compares raw scores), so it lives beside the ranking
evaluator rather than in the metric registry. History items never enter the comparison, so
``mask_history`` makes no difference here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.cases import EvalCases, distinct_negatives
from ..errors import ConfigError, DataFormatError
from .evaluator import ScoreFn, _as_scores, _check_no_nan, default_batch_size

__all__ = ["sample_negatives", "sampled_auc", "AUCResult"]


def sample_negatives(cases: EvalCases, n: int = 50, *, seed: int = 0) -> np.ndarray:
    """``[n_cases, n]`` item ids: per case ``n`` distinct items outside its history and targets."""
    if n < 1:
        raise ConfigError(f"sampled AUC: n_negatives={n} must be >= 1 (the reference protocol uses 50)")
    return distinct_negatives([(cases.hist_indptr, cases.hist_items), (cases.tgt_indptr, cases.tgt_items)], n,
                              cases.n_items, np.random.default_rng(seed))


@dataclass
class AUCResult:
    per_case: np.ndarray  # float64 [n_cases]
    negatives: np.ndarray  # int64 [n_cases, n_negatives]

    @property
    def mean(self) -> float:
        return float(self.per_case.mean())


def sampled_auc(score_fn: ScoreFn, cases: EvalCases, n_negatives: int = 50, *, seed: int = 0,
                negatives: np.ndarray | None = None, batch_size: int | None = None) -> AUCResult:
    """Per-case AUC of every target against fixed sampled negatives (``sample_negatives``).

    ``score_fn`` is the evaluator's (``batch -> [len(batch), n_items + 1]``). Pass
    ``negatives`` to reuse one draw across models (the reference draws them once).

    Examples
    --------
    >>> cases = EvalCases.from_lists([0], [[1]], [[2]], n_items=4)
    >>> s = np.array([[0.0, 9.0, 0.5, 0.7, 0.1]], dtype=np.float32)
    >>> sampled_auc(lambda b: s, cases, negatives=np.array([[3, 4]])).mean
    0.5
    """
    if len(cases) == 0:
        raise DataFormatError("sampled AUC: there are no evaluation cases (empty split?)")
    neg = sample_negatives(cases, n_negatives, seed=seed) if negatives is None else np.asarray(negatives, np.int64)
    if neg.shape[0] != len(cases) or neg.ndim != 2:
        raise ConfigError(f"sampled AUC: negatives have shape {neg.shape}, expected ({len(cases)}, n_negatives)")
    bs = batch_size or default_batch_size(cases.n_items, len(cases))
    out = np.empty(len(cases), np.float64)
    for lo in range(0, len(cases), bs):
        idx = np.arange(lo, min(lo + bs, len(cases)))
        batch = cases.take(idx)
        s = _as_scores(score_fn(batch), (len(idx), cases.n_items + 1), torch.device("cpu"))
        tgt, valid = batch.padded_targets()
        ts = s.gather(1, torch.from_numpy(tgt))  # [b, T]
        ns = s.gather(1, torch.from_numpy(neg[idx]))  # [b, N]
        _check_no_nan(ts)
        _check_no_nan(ns)
        cmp = (ts[:, :, None] > ns[:, None, :]).double() + 0.5 * (ts[:, :, None] == ns[:, None, :]).double()
        per_target = cmp.mean(dim=2)  # [b, T]
        v = torch.from_numpy(valid)
        out[idx] = ((per_target * v).sum(1) / v.sum(1)).numpy()
    return AUCResult(out, neg)
