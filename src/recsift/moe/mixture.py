"""Train the gate on frozen expert outputs, and score samples by the mixture.

The mixture of expert *probabilities* ``P(x) = Σ_e G_e(x) p_e(x)`` is trained with its own
negative log-likelihood ``-log(P_y + 1e-12)`` plus ``bal_coef · (CV²(importance) + CV²(load))``.
(The seed fed ``P`` to a cross-entropy that applies a second softmax — ALGORITHMS.md §6.2, §15.3 —
which flattens the gradient over 40k+ items; we do not.) Since the loss needs only ``p_e[y]``,
the gate trains on precomputed expert outputs and never runs an expert: the experts cannot
change. Ablation weightings share the same scoring: ``single`` (one expert), ``mean`` (uniform
ensemble), ``global`` (one learned softmax weight vector for all samples).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..train.optim import adam
from .experts import Expert, ExpertOutputs, aligned_logits
from .gate import MoEGate

log = logging.getLogger(__name__)

WEIGHTINGS = ("gate", "mean", "global", "single")


@dataclass
class GateFit:
    """Per-sample mixture weights ``[N, E]`` and how the gate was trained."""

    weights: np.ndarray
    kind: str
    history: list[dict[str, float]] = field(default_factory=list)
    gate: MoEGate | None = None

    def routing_share(self) -> np.ndarray:
        """Share of the total gate weight each expert receives."""
        return self.weights.sum(0) / self.weights.sum()


def _nll(weights: torch.Tensor, p_target: torch.Tensor, sample_w: torch.Tensor | None = None) -> torch.Tensor:
    per = -torch.log((weights * p_target).sum(1) + 1e-12)
    return per.mean() if sample_w is None else (per * sample_w).sum() / sample_w.sum()


def fit_gate(outputs: ExpertOutputs, *, k: int = 2, epochs: int = 3, lr: float = 1e-3, batch_size: int = 1024,
             bal_coef: float = 1e-2, hidden: int = 64, noisy: bool = True, seed: int = 0,
             sample_weights: np.ndarray | None = None, train_idx: np.ndarray | None = None,
             apply_to: ExpertOutputs | None = None) -> GateFit:
    """Train the noisy top-k gate (only the gate) and return its eval-mode weights for every sample.

    ``train_idx`` restricts gate training to some samples of ``outputs``. With ``apply_to`` the
    gate trains on ``outputs`` (e.g. the experts on held-out validation cases, the Link-MoE
    ablation) and the returned weights are for the samples of ``apply_to`` (whose features are
    standardised with the moments of ``outputs``); otherwise they are for all of ``outputs``.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    moments = outputs.feature_moments()  # the gate-training samples' standardisation, also for apply_to
    feats = torch.from_numpy(outputs.gate_features(moments))
    emb = torch.from_numpy(_embedding(outputs))
    p_t = torch.from_numpy(outputs.p_target.astype(np.float32))
    sw = torch.from_numpy(np.asarray(sample_weights, np.float32)) if sample_weights is not None else None
    gate = MoEGate(emb.shape[1], feats.shape[1], len(outputs.names), k=k, hidden=hidden, noisy=noisy)
    opt = adam(gate.parameters(), lr=lr)
    pool = np.arange(len(feats)) if train_idx is None else np.asarray(train_idx)
    history = []
    for epoch in range(epochs):
        gate.train()
        tot, tot_bal, nb = 0.0, 0.0, 0
        order = rng.permutation(pool)
        for lo in range(0, len(order), batch_size):
            b = torch.from_numpy(order[lo: lo + batch_size])
            g, bal = gate(emb[b], feats[b])
            nll = _nll(g, p_t[b], sw[b] if sw is not None else None)
            loss = nll + bal_coef * bal
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot, tot_bal, nb = tot + float(nll.detach()), tot_bal + float(bal.detach()), nb + 1
        history.append({"epoch": epoch, "nll": tot / nb, "balance": tot_bal / nb})
        log.info("gate epoch %d nll %.4f balance %.4f", epoch, tot / nb, tot_bal / nb)
    gate.eval()
    if apply_to is not None:
        feats = torch.from_numpy(apply_to.gate_features(moments))
        emb = torch.from_numpy(_embedding(apply_to))
    with torch.no_grad():
        w = torch.cat([gate(emb[lo: lo + 65536], feats[lo: lo + 65536])[0] for lo in range(0, len(feats), 65536)])
    return GateFit(w.numpy(), "gate" if apply_to is None else "gate:heldout", history, gate)


def _embedding(outputs: ExpertOutputs) -> np.ndarray:
    return np.ascontiguousarray(outputs.embedding, dtype=np.float32)


def fixed_weights(outputs: ExpertOutputs, kind: str, *, expert: int | str = 0, epochs: int = 200,
                  lr: float = 0.05) -> GateFit:
    """Ablation weightings: ``single`` expert, ``mean`` ensemble, or ``global`` learned weights."""
    n, n_exp = outputs.p_target.shape
    if kind == "single":
        e = outputs.names.index(expert) if isinstance(expert, str) else int(expert)
        w = np.zeros((n, n_exp), np.float32)
        w[:, e] = 1.0
        return GateFit(w, f"single:{outputs.names[e]}")
    if kind == "mean":
        return GateFit(np.full((n, n_exp), 1.0 / n_exp, np.float32), "mean")
    if kind == "global":
        logits = torch.zeros(n_exp, requires_grad=True)
        p_t = torch.from_numpy(outputs.p_target.astype(np.float32))
        opt = adam([logits], lr=lr)
        for _ in range(epochs):  # full batch: E parameters
            loss = _nll(torch.softmax(logits, 0).expand(n, -1), p_t)
            opt.zero_grad()
            loss.backward()
            opt.step()
        w = torch.softmax(logits.detach(), 0).numpy()
        return GateFit(np.tile(w, (n, 1)).astype(np.float32), "global", [{"nll": float(loss.detach())}])
    raise ConfigError(f"unknown expert weighting {kind!r}; use one of {', '.join(WEIGHTINGS)}")


def mixture_scores(experts: Sequence[Expert], train_set: Any, fit: GateFit, outputs: ExpertOutputs, *,
                   top_k: int = 20, batch_size: int = 1024) -> dict[str, np.ndarray]:
    """Per-sample scores of the mixture ``P = Σ_e w_e p_e`` (one more pass over the experts):
    ``moe_loss`` (-log P_y), ``moe_aum`` (P_y - max_{j!=y} P_j; low = hard), ``moe_entropy``,
    ``moe_el2n``, ``moe_correct`` (y in the mixture's top K); plus gate-weighted expert
    values (``gw_el2n``, ``gw_entropy``) and ``agreement`` = number of experts with y in their top K
    (all = easy, some = medium, none = hard)."""
    from ..train import per_sample_stats

    n = len(train_set)
    out = {k: np.zeros(n, np.float32) for k in ("moe_loss", "moe_aum", "moe_entropy", "moe_el2n")}
    out["moe_correct"] = np.zeros(n, bool)
    w_all = torch.from_numpy(fit.weights)
    for idx, logits, targets in aligned_logits(experts, train_set, batch_size=batch_size):
        p = torch.softmax(logits[:, :, 1:].float(), dim=2)  # [E, B, I]
        mix = torch.einsum("be,ebi->bi", w_all[idx], p)
        logmix = torch.log(mix.clamp_min(1e-30))
        padded = torch.nn.functional.pad(logmix, (1, 0), value=float("-inf"))  # column 0 = padding, p = 0
        st = per_sample_stats(padded, targets, logp=padded)
        out["moe_loss"][idx] = st["loss"].numpy()
        out["moe_aum"][idx] = st["aum_prob"].numpy()
        out["moe_entropy"][idx] = st["entropy"].numpy()
        out["moe_el2n"][idx] = st["el2n"].numpy()
        out["moe_correct"][idx] = (st["n_above"] < top_k).numpy()
    w = fit.weights
    from .experts import FEATURES

    out["gw_el2n"] = (w * outputs.feats[:, :, FEATURES.index("el2n")]).sum(1)
    out["gw_entropy"] = (w * outputs.feats[:, :, FEATURES.index("entropy")]).sum(1)
    out["agreement"] = outputs.correct.sum(1).astype(np.int32)
    return out
