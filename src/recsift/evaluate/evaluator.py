"""The one evaluator every model uses: full (or fixed sampled) ranking over ``EvalCases``.

``evaluate`` asks a model for the scores of a chunk of cases at a time, ranks each case's
targets among all items with pessimistic ties (see :mod:`recsift.evaluate.ranking`) and
returns per-case metric values, so results can be averaged, compared per user or fed to
a significance test.

Protocol choices, written into :attr:`EvalResult.protocol`:

* Column 0 (padding) is never ranked: it is treated as ``-inf`` and left out of the item
  count, so ranks run over the ``n_items`` real items.
* ``mask_history=False`` (default, RecBole's protocol for sequential models) ranks all
  items. ``mask_history=True`` (DR4SR, ∞-AE) sets every item of the case's input history
  to ``-inf`` before ranking; a target that is also in the history then ties with the
  other masked items and, ties being pessimistic, ranks after all of them — it counts
  as a miss for any useful K.
* If ``cases.candidates`` is set, ranking is *sampled*: each case's first target
  (candidate column 0) is ranked among its candidate items only (e.g. 1 positive + 99
  negatives), with pessimistic ties too; further targets of the case are ignored.

When not to use: for metrics that need raw scores rather than ranks (AUC, loss), compute
them from the model's scores directly.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.cases import EvalCases
from ..errors import ConfigError, DataFormatError
from .metrics import ParsedMetric, compute_metric, get_metric, parse_metric
from .ranking import target_ranks

__all__ = ["EvalResult", "evaluate", "default_batch_size"]

logger = logging.getLogger(__name__)

ScoreFn = Callable[[EvalCases], "np.ndarray | torch.Tensor"]

#: Default memory budget for one chunk of scores (float32): 256 MB.
SCORE_CHUNK_BYTES = 256 * 2**20


@dataclass
class EvalResult:
    """Per-case and mean metric values of one evaluation.

    Attributes
    ----------
    per_case : dict[str, np.ndarray]
        Metric key (``"ndcg@10"``) -> float64 ``[n_cases]``, in the order of the cases.
    means : dict[str, float]
        Metric key -> plain mean over cases.
    users : np.ndarray
        int64 ``[n_cases]``: the user of each case (for per-user averages and tests).
    n_cases : int
        Number of evaluated cases.
    protocol : dict[str, Any]
        How the numbers were computed (ranking mode, ties, history masking, n_items).
    """

    per_case: dict[str, np.ndarray]
    means: dict[str, float]
    users: np.ndarray
    n_cases: int
    protocol: dict[str, Any] = field(default_factory=dict)

    def mean_over_users(self) -> dict[str, float]:
        """Average each metric per user first, then over users (each user weighs equally).

        Use this for protocols that weigh users equally when a user has several cases
        (e.g. one case per session prefix). With one case per user it equals ``means``.

        Examples
        --------
        >>> r = EvalResult({"hit@1": np.array([1.0, 0.0, 1.0])}, {"hit@1": 2 / 3},
        ...                np.array([7, 7, 9]), 3)
        >>> r.mean_over_users()
        {'hit@1': 0.75}
        """
        _, inv = np.unique(self.users, return_inverse=True)
        counts = np.bincount(inv).astype(np.float64)
        return {k: float((np.bincount(inv, weights=v) / counts).mean()) for k, v in self.per_case.items()}

    def to_dict(self, *, per_case: bool = False) -> dict[str, Any]:
        """JSON-ready summary: means, counts and protocol (per-case lists if asked)."""
        out: dict[str, Any] = {
            "means": dict(self.means),
            "n_cases": int(self.n_cases),
            "n_users": int(len(np.unique(self.users))),
            "protocol": dict(self.protocol),
        }
        if per_case:
            out["per_case"] = {k: v.tolist() for k, v in self.per_case.items()}
            out["users"] = self.users.tolist()
        return out


def default_batch_size(n_items: int, n_cases: int) -> int:
    """Cases per chunk so one float32 score chunk takes about 256 MB (at most ``n_cases``)."""
    return max(1, min(n_cases, SCORE_CHUNK_BYTES // (4 * (n_items + 1))))


def evaluate(score_fn: ScoreFn, cases: EvalCases, metrics: Sequence[str] = ("recall@10", "ndcg@10"), *,
             mask_history: bool = False, batch_size: int | None = None, item_weights: np.ndarray | None = None,
             device: str | torch.device = "cpu") -> EvalResult:
    """Rank every case's targets with ``score_fn`` and compute per-case metrics.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(batch) -> [len(batch), n_items + 1]`` scores (numpy or torch, higher is
        better) for a chunk ``batch = cases.take(idx)``. Column 0 is ignored.
    cases : EvalCases
        The evaluation cases (histories, targets, optional fixed candidates).
    metrics : sequence of str, default ("recall@10", "ndcg@10")
        Metric names with cut-off, see :mod:`recsift.evaluate.metrics`.
    mask_history : bool, default False
        Set the items of each case's history to ``-inf`` before ranking. A target that
        is also in the history then ranks last (pessimistic ties): a miss.
    batch_size : int, optional
        Cases per ``score_fn`` call; default keeps a float32 chunk near 256 MB.
    item_weights : np.ndarray, optional
        Per-item weights of length ``n_items + 1`` (e.g. :func:`propensity_weights`),
        required by ``psp@K`` and ``psp_orig@K``.
    device : str or torch.device, default "cpu"
        Where the ranking runs.

    Returns
    -------
    EvalResult

    Raises
    ------
    DataFormatError
        If ``score_fn`` returns the wrong shape, a non-array or NaN scores, or the cases
        hold item ids outside ``1..n_items``.
    ConfigError, UnknownNameError
        For a malformed or unknown metric, or missing item weights.

    Examples
    --------
    >>> cases = EvalCases.from_lists([0, 1], [[1], [2]], [[3], [1, 2]], n_items=4)
    >>> pop = np.array([0.0, 0.4, 0.3, 0.2, 0.1], dtype=np.float32)
    >>> res = evaluate(lambda b: np.tile(pop, (len(b), 1)), cases, ["recall@2"])
    >>> res.per_case["recall@2"].tolist()
    [0.0, 1.0]
    """
    parsed = list(dict.fromkeys(parse_metric(m) for m in metrics))
    if not parsed:
        raise ConfigError("evaluate: no metrics requested; pass e.g. metrics=['recall@10', 'ndcg@10']")
    n = len(cases)
    if n == 0:
        raise DataFormatError("evaluate: there are no evaluation cases (empty split?)")
    _check_cases(cases)
    weights = _check_weights(item_weights, parsed, cases.n_items)
    if batch_size is None:
        batch_size = default_batch_size(cases.n_items, n)
    elif int(batch_size) < 1:
        raise ConfigError(f"evaluate: batch_size must be a positive integer, got {batch_size}")
    batch_size = int(batch_size)
    device = torch.device(device)

    per_case = {m.key: np.empty(n, dtype=np.float64) for m in parsed}
    with torch.no_grad():
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            batch = cases.take(np.arange(lo, hi))
            scores = _as_scores(score_fn(batch), (hi - lo, cases.n_items + 1), device)
            ranks, n_targets, target_items = _rank_batch(scores, batch, mask_history)
            w = None if weights is None else weights[target_items]
            for m in parsed:
                per_case[m.key][lo:hi] = compute_metric(m, ranks, n_targets, w)
            logger.debug("evaluated cases %d-%d of %d", lo, hi, n)

    sampled = cases.candidates is not None
    protocol = {
        "ranking": f"sampled ({cases.candidates.shape[1]} candidates, positive first)" if sampled else "full",
        "ties": "pessimistic",
        "mask_history": bool(mask_history),
        "n_items": int(cases.n_items),
        "metrics": [m.key for m in parsed],
    }
    means = {k: float(v.mean()) for k, v in per_case.items()}
    return EvalResult(per_case=per_case, means=means, users=np.asarray(cases.user, dtype=np.int64).copy(),
                      n_cases=n, protocol=protocol)


def _rank_batch(scores: torch.Tensor, batch: EvalCases,
                mask_history: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranks ``[b, T]``, real-target counts ``[b]`` and target item ids ``[b, T]`` of a chunk."""
    b, device = scores.shape[0], scores.device
    hist = _history_coords(batch, device) if mask_history else None
    if batch.candidates is not None:
        cand = torch.from_numpy(np.ascontiguousarray(batch.candidates, dtype=np.int64)).to(device)
        drop = cand == 0  # padding is -inf
        if hist is not None:
            in_hist = torch.zeros(scores.shape, dtype=torch.bool, device=device)
            in_hist[hist] = True
            drop |= in_hist.gather(1, cand)
        cs = scores.gather(1, cand).masked_fill(drop, float("-inf"))
        _check_no_nan(cs)
        zero = torch.zeros((b, 1), dtype=torch.long, device=device)
        ranks = target_ranks(cs, zero, torch.ones((b, 1), dtype=torch.bool, device=device))
        return ranks.cpu().numpy(), np.ones(b, dtype=np.int64), batch.candidates[:, :1]
    _check_no_nan(scores[:, 1:])  # column 0 is padding: never ranked
    tgt, valid = batch.padded_targets()
    with _masked(scores, hist) as masked:
        ranks = target_ranks(masked[:, 1:], torch.from_numpy(tgt - 1).to(device), torch.from_numpy(valid).to(device))
    return ranks.cpu().numpy(), batch.n_targets.astype(np.int64), tgt


@contextmanager
def _masked(scores: torch.Tensor, hist: tuple[torch.Tensor, torch.Tensor] | None) -> Iterator[torch.Tensor]:
    """``scores`` with the history cells ``hist`` (row, item id) set to ``-inf`` for the block.

    The model's output is never changed: a contiguous tensor is masked in place and its saved
    values are written back on exit (O(history) instead of copying the whole chunk of scores,
    which cost more than the ranking); any other layout (an expanded row, a view) is copied."""
    if hist is None:
        yield scores
        return
    rows, cols = hist
    if not scores.is_contiguous():
        out = scores.clone()
        out[rows, cols] = float("-inf")
        yield out
        return
    saved = scores[rows, cols]
    scores[rows, cols] = float("-inf")
    try:
        yield scores
    finally:
        scores[rows, cols] = saved  # duplicates in a history restore the same value


def _history_coords(batch: EvalCases, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, item id) index pairs of the chunk's history items, padding ids dropped."""
    keep = batch.hist_items > 0
    rows = np.repeat(np.arange(len(batch)), batch.hist_lengths)[keep]
    return torch.from_numpy(rows).to(device), torch.from_numpy(batch.hist_items[keep]).to(device)


def _as_scores(raw: Any, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Check and convert a ``score_fn`` result to a float tensor on ``device`` (no copy if possible)."""
    if isinstance(raw, np.ndarray):
        if not raw.flags.writeable:  # torch.from_numpy warns on read-only arrays
            raw = raw.copy()
        t = torch.from_numpy(raw)
    elif isinstance(raw, torch.Tensor):
        t = raw.detach()
    else:
        raise DataFormatError(f"score_fn must return a numpy array or torch tensor of shape {shape}, "
                              f"got {type(raw).__name__}")
    if tuple(t.shape) != shape:
        raise DataFormatError(f"score_fn returned scores of shape {tuple(t.shape)}, expected {shape} "
                              "(cases in the batch, n_items + 1 with column 0 = padding)")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    elif t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()  # exact; avoids slow or missing half-precision kernels on CPU
    return t.to(device)


def _check_no_nan(s: torch.Tensor) -> None:
    # a row sum is NaN if the row holds a NaN (or both infinities: then the exact test decides);
    # one read of the scores instead of a boolean copy of them
    if torch.isnan(s.sum(1)).any() and torch.isnan(s).any():
        rows = torch.isnan(s).any(dim=1).nonzero().flatten()[:5].tolist()
        raise DataFormatError(f"score_fn returned NaN scores (first affected rows of the chunk: {rows}); "
                              "NaN cannot be ranked — check the model for overflow or 0/0")


def _check_cases(cases: EvalCases) -> None:
    n_items = cases.n_items
    if cases.tgt_items.size and (cases.tgt_items.min() < 1 or cases.tgt_items.max() > n_items):
        raise DataFormatError(f"EvalCases: target item ids must lie in 1..{n_items} (0 is padding)")
    if cases.hist_items.size and (cases.hist_items.min() < 0 or cases.hist_items.max() > n_items):
        raise DataFormatError(f"EvalCases: history item ids must lie in 0..{n_items}")
    cand = cases.candidates
    if cand is not None:
        if cand.ndim != 2 or cand.shape[0] != len(cases) or cand.shape[1] < 1:
            raise DataFormatError(f"EvalCases: candidates must be [n_cases={len(cases)}, C], got {cand.shape}")
        if cand.min() < 0 or cand.max() > n_items:
            raise DataFormatError(f"EvalCases: candidate item ids must lie in 1..{n_items}")


def _check_weights(item_weights: np.ndarray | None, parsed: list[ParsedMetric], n_items: int) -> np.ndarray | None:
    needs = [m.key for m in parsed if get_metric(m.name).needs_weights]
    if not needs:
        return None
    if item_weights is None:
        raise ConfigError(f"metrics {needs} need item weights; pass item_weights="
                          "propensity_weights(train_item_counts, n_interactions)")
    w = np.asarray(item_weights, dtype=np.float64)
    if w.shape != (n_items + 1,):
        raise DataFormatError(f"item_weights has shape {w.shape}, expected ({n_items + 1},) = n_items + 1 "
                              "(index 0 = padding)")
    return w
