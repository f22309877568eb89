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

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..utils.io import save_npz

_SUMMED = ("loss", "p_target", "aum_prob", "aum_logit", "margin", "el2n", "grand", "entropy")


@torch.no_grad()
def per_sample_stats(logits: torch.Tensor, targets: torch.Tensor, logp: torch.Tensor | None = None,
                     grad_scale: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-row loss, p_target, AUM margins, target-free margin, EL2N, GraNd and entropy.

    ``logits`` is ``[M, n_items + 1]`` (column 0 = padding, excluded); ``logp`` is its masked
    log-softmax when the caller has it. Also returns the real-item logits ``_z`` and the
    target logit ``_z_y`` (keys starting with ``_``) for callers that need them.
    """
    z = logits.detach()[:, 1:].float()  # real items only: column j is item j + 1
    logp = torch.log_softmax(z, dim=1) if logp is None else logp.detach()[:, 1:].float()
    p = logp.exp()
    y0 = (targets - 1).view(-1, 1)
    logp_y = logp.gather(1, y0).squeeze(1)
    p_y = logp_y.exp()
    z_y = z.gather(1, y0).squeeze(1)
    top_v, top_i = z.topk(2, dim=1)
    top_p = logp.gather(1, top_i[:, :2]).exp()
    is_top1 = top_i[:, 0] == y0.squeeze(1)
    best_other_z = torch.where(is_top1, top_v[:, 1], top_v[:, 0])
    p1, p2 = top_p[:, 0], top_p[:, 1]
    best_other_p = torch.where(is_top1, p2, p1)
    el2n = (torch.einsum("ij,ij->i", p, p) - 2 * p_y + 1).clamp(min=0).sqrt()
    return {
        "loss": -logp_y,
        "p_target": p_y,
        "aum_prob": p_y - best_other_p,
        "aum_logit": z_y - best_other_z,
        "margin": p1 - p2,
        "el2n": el2n,
        "grand": el2n * (grad_scale.detach().float() if grad_scale is not None else torch.ones_like(el2n)),
        "entropy": -torch.einsum("ij,ij->i", p, logp),
        "_z": z,
        "_z_y": z_y,
    }


class DynamicsRecorder:
    """Running per-sample statistics across epochs for ``n_samples`` training samples."""

    def __init__(self, n_samples: int, *, top_k: int = 20, early_epochs: int = 10,
                 snapshot_epochs: Sequence[int] = ()) -> None:
        self.n = int(n_samples)
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
        vals = per_sample_stats(logits, targets, logp, grad_scale)
        z_y, z = vals.pop("_z_y"), vals.pop("_z")
        # target in the top K <=> fewer than K items score strictly higher (one compare pass;
        # cheaper than topk(K) on CPU). Ties count in the target's favour here.
        correct = torch.count_nonzero(z > z_y.unsqueeze(1), dim=1) < self.top_k  # 2.6x faster than .sum(1)
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
