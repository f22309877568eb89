"""`DynamicsRecorder`: streaming per-sample training statistics, O(N) memory.

Called on every training step with the logits the step already computed (train mode,
before the optimizer step — what CCS and the dataPruning4Rec seed log), it folds each
sample's values into running state: sums and sums of squares (means / std across epochs),
last values, top-K correctness transitions (forgetting events), AUM margin sums
(probability and logit versions), EL2N sums and optional per-epoch snapshots, last-layer
GraNd and entropy. It never stores an N x epochs matrix nor a one-hot target; state is
O(N) (plus O(N) per requested EL2N snapshot epoch). Definitions: ALGORITHMS.md §2.2.

Per sample x with target y, logits z over items (padding excluded), p = softmax(z):
``p_y``; ``loss = -log p_y``; ``correct = y in top-K(z)`` (K = 20 by default);
``aum_prob = p_y - max_{j!=y} p_j``; ``aum_logit = z_y - max_{j!=y} z_j``;
``margin = p_(1) - p_(2)`` (target-free); ``el2n = ||p - e_y||_2 = sqrt(sum p^2 - 2 p_y + 1)``;
``grand = el2n * ||dz/dE||`` (``||h||`` for dot-product logits, last layer only);
``entropy = -sum_j p_j log p_j``.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..utils.io import save_npz
from .losses import masked_log_softmax

log = logging.getLogger(__name__)

_SUMMED = ("loss", "p_target", "aum_prob", "aum_logit", "margin", "el2n", "grand", "entropy")


CHUNK_ELEMENTS = 1 << 20  # rows per pass on CPU: a [rows, |I|] float32 block of ~4 MB stays in cache


@torch.no_grad()
def per_sample_stats(logits: torch.Tensor, targets: torch.Tensor, logp: torch.Tensor | None = None,
                     grad_scale: torch.Tensor | None = None, *, pessimistic_rank: bool = False,
                     fused: bool = False, p: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-row loss, p_target, AUM margins, target-free margin, EL2N, GraNd and entropy.

    ``logits`` is ``[M, n_items + 1]`` (column 0 = padding, excluded); ``logp`` is its masked
    log-softmax (column 0 = -inf, as :func:`~recsift.train.losses.masked_log_softmax` gives)
    when the caller has it. Also returns ``n_above``, the number of items scoring
    strictly above the target (target in the top K <=> ``n_above < K``, ties in its favour),
    and with ``pessimistic_rank`` the 0-based ``rank`` counting ties against the target.

    On CPU the rows are processed in cache-sized blocks (about 2x faster than whole batches
    of all-prefix logits, which are read six times). ``fused`` computes the passes over the
    items with one compiled kernel (see `fused_stats_enabled`); same values to float rounding.
    ``p = exp(logp)``, when the caller has it (the fused cross-entropy does), saves the eager
    path one pass.
    """
    rows = max(16, CHUNK_ELEMENTS // max(1, logits.shape[1]))
    if logits.device.type == "cpu" and logits.shape[0] > rows:
        def part(t: torch.Tensor | None, s: int) -> torch.Tensor | None:
            return None if t is None else t[s: s + rows]

        return cat_stats([_stats(logits[s: s + rows], targets[s: s + rows], part(logp, s), part(grad_scale, s),
                                 pessimistic_rank, fused, part(p, s)) for s in range(0, logits.shape[0], rows)])
    return _stats(logits, targets, logp, grad_scale, pessimistic_rank, fused, p)


def cat_stats(parts: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The `per_sample_stats` of consecutive row blocks, as those of all their rows."""
    return {k: torch.cat([q[k] for q in parts]) for k in parts[0]}


def top2_values(x: torch.Tensor, block: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """The largest and second-largest value of each row (equal when the maximum is tied).

    Same values as ``x.topk(2, dim=1).values`` in a third to a half of the time on CPU:
    index-tracking reductions (topk, max, argmax) over long rows are not vectorised there,
    ``amax`` is. So take the maxima of ``block``-wide column blocks, the two best blocks, and the
    top 2 inside the best block (a short row of ``block`` values)."""
    m, n = x.shape
    nb = n // block
    if nb < 2:
        v = x.topk(2, dim=1).values
        return v[:, 0], v[:, 1]
    bmax = x[:, : nb * block].reshape(m, nb, block).amax(2)
    if n > nb * block:
        bmax = torch.cat([bmax, x[:, nb * block:].amax(1, keepdim=True)], 1)
    bv, bi = bmax.topk(2, dim=1)
    # a short last block is read as the last `block` columns: the extra ones are no larger than bv[:, 1]
    start = (bi[:, 0] * block).clamp(max=n - block)
    inner = x.gather(1, start.unsqueeze(1) + torch.arange(block, device=x.device)).topk(2, dim=1).values
    return bv[:, 0], torch.maximum(bv[:, 1], inner[:, 1])


def _top2_masked(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same two values as two row maxima, the second with the first's column masked: a form
    the compiler fuses with the other row passes."""
    v1, i1 = x.max(1)
    cols = torch.arange(x.shape[1], device=x.device)
    return v1, torch.where(cols[None, :] == i1[:, None], float("-inf"), x).amax(1)


def _row_stats(logp: torch.Tensor, targets: torch.Tensor, top2=top2_values,
               p: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """The passes over ``[M, |I|]``: exp, the top 2 log-probabilities, the p·p and p·log p row
    sums and the count of items above the target (on log-probabilities, so the target never
    counts itself). The count sums in int32, about 1.5x faster on CPU than the default int64 sum
    (``vecdot`` for the row sums measured the same as a product then ``sum``)."""
    p = logp.exp() if p is None else p
    logp_y = logp.gather(1, targets.view(-1, 1)).squeeze(1)
    v1, v2 = top2(logp)  # the padding's -inf is never in the top 2 of a row with two items
    return (logp_y, v1, v2, torch.linalg.vecdot(p, p), -torch.linalg.vecdot(p[:, 1:], logp[:, 1:]),
            (logp > logp_y.unsqueeze(1)).sum(1, dtype=torch.int32))


_FUSED: dict[str, Any] = {}
#: samples x items per epoch from which ``RECSIFT_FUSED_STATS=auto`` compiles the recorder's
#: passes: the kernel is 1.3-2x faster than the eager passes on 12k-50k items
#: (bench/results/stats_kernel.md), which pays for the ~20 s cold compile only on large data
FUSED_MIN_ELEMENTS = 10**10


def fused_stats_enabled(n_samples: int, n_items: int, device: torch.device | str = "cpu") -> bool:
    """Whether the recorder uses the compiled kernel: ``RECSIFT_FUSED_STATS`` = ``1`` (always on
    CPU), ``0`` (never) or ``auto`` (default: on CPU when ``n_samples * n_items`` reaches
    `FUSED_MIN_ELEMENTS`). Never on GPU, and never after a compile failed in this process."""
    from ..errors import ConfigError

    mode = os.environ.get("RECSIFT_FUSED_STATS", "auto").strip().lower()
    if mode not in ("auto", "1", "0"):
        raise ConfigError(f"RECSIFT_FUSED_STATS={mode!r}: use 1, 0 or auto")
    if torch.device(device).type != "cpu" or mode == "0" or _FUSED.get("failed"):
        return False
    return mode == "1" or n_samples * n_items >= FUSED_MIN_ELEMENTS


def _fused_row_stats():
    """`_row_stats` compiled into one fused CPU kernel (compiled once per process; the compiler
    caches its output on disk, so later processes load it in seconds)."""
    if "fn" not in _FUSED:
        _FUSED["fn"] = torch.compile(partial(_row_stats, top2=_top2_masked), dynamic=True)
    return _FUSED["fn"]


def _row_passes(logp: torch.Tensor, targets: torch.Tensor, fused: bool,
                p: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    if fused and not _FUSED.get("failed"):
        try:
            return _fused_row_stats()(logp, targets)
        except Exception as exc:  # no compiler, unsupported platform: the eager passes give the same values
            _FUSED["failed"] = True
            log.warning("compiling the dynamics statistics failed (%s); using the eager version", exc)
    return _row_stats(logp, targets, p=p)


def _stats(logits: torch.Tensor, targets: torch.Tensor, logp: torch.Tensor | None,
           grad_scale: torch.Tensor | None, pessimistic_rank: bool, fused: bool = False,
           p: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    # Full-width, contiguous arrays (column 0 = padding, log-probability -inf): exp, the top 2,
    # the p·p and p·log p row sums and the rank count are the only passes over [M, |I|]. Logit
    # differences within a row equal log-probability differences, so the AUM logit margin
    # needs no pass over the logits.
    z = logits.detach().float()
    logp = masked_log_softmax(z) if logp is None else logp.detach().float()
    logp_y, v1, v2, pp, entropy, n_above = _row_passes(logp, targets, fused, p)
    p_y = logp_y.exp()
    best_other = torch.where(n_above == 0, v2, v1)  # the target holds the maximum (ties in its favour)
    p1, p2 = v1.exp(), v2.exp()
    el2n = (pp - 2 * p_y + 1).clamp(min=0).sqrt()
    out = {
        "loss": -logp_y,
        "p_target": p_y,
        "aum_prob": p_y - best_other.exp(),
        "aum_logit": logp_y - best_other,
        "margin": p1 - p2,
        "el2n": el2n,
        "grand": el2n * (grad_scale.detach().float() if grad_scale is not None else torch.ones_like(el2n)),
        "entropy": entropy,
        # items with a strictly higher log-probability (ties count in the target's favour; the
        # padding's -inf never does); a count beats topk(K) on CPU, and summing the boolean mask
        # beats count_nonzero
        "n_above": n_above.long(),
    }
    if pessimistic_rank:  # ties count against the target
        out["rank"] = (logp[:, 1:] >= logp_y.unsqueeze(1)).sum(1) - 1
    return out


class DynamicsRecorder:
    """Running per-sample statistics across epochs for ``n_samples`` training samples."""

    def __init__(self, n_samples: int, *, top_k: int = 20, early_epochs: int = 10,
                 snapshot_epochs: Sequence[int] = (), fused: bool | None = None) -> None:
        self.n = int(n_samples)
        self.fused = fused  # None: decided at the first batch by `fused_stats_enabled`
        self.top_k = int(top_k)
        self.early_epochs = int(early_epochs)
        self.snapshot_epochs = tuple(int(e) for e in snapshot_epochs)
        n = self.n
        self.state: dict[str, np.ndarray] = {
            "n_seen": np.zeros(n, np.int32),
            "correct_last": np.full(n, -1, np.int8),  # -1 = never seen
            "n_correct": np.zeros(n, np.int32),
            "forgetting": np.zeros(n, np.int32),
            "first_learned": np.full(n, -1, np.int32),  # first epoch the sample was correct
            "el2n_early_sum": np.zeros(n, np.float64),
            "grand_early_sum": np.zeros(n, np.float64),
            "p_target_sqsum": np.zeros(n, np.float64),
            "loss_sqsum": np.zeros(n, np.float64),
        }
        for k in _SUMMED:
            self.state[f"{k}_sum"] = np.zeros(n, np.float64)
            self.state[f"{k}_last"] = np.zeros(n, np.float32)
        for e in self.snapshot_epochs:
            self.state[f"el2n_epoch{e}"] = np.full(n, np.nan, np.float32)
        self.epochs_seen = 0

    @torch.no_grad()
    def update(self, epoch: int, sample_idx: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
               grad_scale: torch.Tensor | None = None, logp: torch.Tensor | None = None) -> None:
        """Fold one batch into the state.

        ``logits`` is ``[M, n_items + 1]`` (column 0 = padding); ``logp``, the log-softmax over
        items with padding excluded, is passed by the trainer when its loss computed it already.
        """
        self.fold(epoch, sample_idx, self.stats(logits, targets, grad_scale, logp))

    @torch.no_grad()
    def stats(self, logits: torch.Tensor, targets: torch.Tensor, grad_scale: torch.Tensor | None = None,
              logp: torch.Tensor | None = None, p: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The per-sample values of a batch or chunk, to `fold` in later (``p = exp(logp)`` optional)."""
        if self.fused is None:
            self.fused = fused_stats_enabled(self.n, logits.shape[1] - 1, logits.device)
        return per_sample_stats(logits, targets, logp, grad_scale, fused=self.fused, p=p)

    def fold(self, epoch: int, sample_idx: torch.Tensor, vals: dict[str, torch.Tensor]) -> None:
        """Fold one batch's `stats` (rows in ``sample_idx`` order) into the running state."""
        vals = dict(vals)
        correct = vals.pop("n_above") < self.top_k  # target in the top K; ties in its favour
        idx = sample_idx.cpu().numpy()
        st = self.state
        for key, v in vals.items():
            a = v.cpu().numpy()
            st[f"{key}_sum"][idx] += a
            st[f"{key}_last"][idx] = a
        st["p_target_sqsum"][idx] += st["p_target_last"][idx].astype(np.float64) ** 2
        st["loss_sqsum"][idx] += st["loss_last"][idx].astype(np.float64) ** 2
        c = correct.cpu().numpy().astype(np.int8)
        prev = st["correct_last"][idx]
        st["forgetting"][idx] += ((prev == 1) & (c == 0)).astype(np.int32)
        learned_now = (c == 1) & (st["first_learned"][idx] < 0)
        st["first_learned"][idx[learned_now]] = epoch
        st["correct_last"][idx] = c
        st["n_correct"][idx] += c
        st["n_seen"][idx] += 1
        if epoch < self.early_epochs:
            st["el2n_early_sum"][idx] += st["el2n_last"][idx]
            st["grand_early_sum"][idx] += st["grand_last"][idx]
        if epoch in self.snapshot_epochs:
            st[f"el2n_epoch{epoch}"][idx] = st["el2n_last"][idx]

    def end_epoch(self) -> None:
        self.epochs_seen += 1

    def mean(self, key: str) -> np.ndarray:
        """Mean over the epochs each sample was seen (``key`` one of the summed values)."""
        return self.state[f"{key}_sum"] / np.maximum(self.state["n_seen"], 1)

    def std(self, key: str) -> np.ndarray:
        """Standard deviation across epochs of ``loss`` or ``p_target``."""
        n = np.maximum(self.state["n_seen"], 1)
        m = self.state[f"{key}_sum"] / n
        return np.sqrt(np.maximum(self.state[f"{key}_sqsum"] / n - m * m, 0.0))

    def save(self, path: str | Path) -> Path:
        """Write the state (and its settings) to one ``.npz``, atomically."""
        meta = np.array([self.top_k, self.early_epochs, self.epochs_seen], dtype=np.int64)
        return save_npz(path, _meta=meta, _snapshots=np.array(self.snapshot_epochs, dtype=np.int64), **self.state)

    @classmethod
    def load(cls, path: str | Path) -> DynamicsRecorder:
        with np.load(path) as z:
            top_k, early, seen = (int(x) for x in z["_meta"])
            rec = cls(len(z["n_seen"]), top_k=top_k, early_epochs=early, snapshot_epochs=z["_snapshots"].tolist())
            rec.state = {k: z[k].copy() for k in z.files if not k.startswith("_")}
        rec.epochs_seen = seen
        return rec
