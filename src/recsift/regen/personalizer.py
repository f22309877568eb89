"""DR4SR+: a model-aware personalizer that weights the regenerated data for one target model.

Paper: Yin et al., KDD 2024, §3.4; reference ``USTC-StarTeam/DR4SR`` (``configs/metamodel.yaml``,
the meta trainer and AuxiLearn's hyper-gradient code; ALGORITHMS.md §8.4).

* Personalizer ``g_phi``: MLP ``d -> d -> 2`` on the target model's representation of each
  prefix; weight ``w = GumbelSoftmax(g_phi(h), tau)[0]`` with ``tau = max(tau_param, tau_min)``
  (``tau_param`` starts at 10 and, as in the reference, gets no hyper-gradient). Samples marked
  ``fixed`` (the mined patterns) have weight 1.
* Inner problem: target-model steps on ``mean_t w_t l_t(theta)`` (BCE, one sampled negative).
* Outer problem: the unweighted loss on the *original* training data, ``L_ori(theta*(phi))``.
  Every ``interval`` inner steps after ``warmup_epochs`` plain epochs, one outer step:
  ``v = dL_ori/dtheta``; ``p = sum_{j=0..J} (I - alpha H)^j v`` with ``H = d2 L_rec / dtheta2``
  (Hessian-vector products by double backward, J = 3); hyper-gradient
  ``-(d2 L_rec / dphi dtheta)^T p``; its norm clipped at 10; SGD step on phi.
  ``p`` is AuxiLearn's (and the reference's) unscaled series: ``alpha * p`` is the Neumann
  approximation of ``H^-1 v`` (Lorraine et al. 2020), so the step is ``1 / alpha`` times the
  implicit-function gradient (a learning-rate convention, kept for parity).

Deviations from the reference:

* The personalizer reads ``h.detach()``: the weight depends on phi only, so the inner loss's
  theta-gradient has no term through the weights (the reference lets it flow).
* The outer batch comes from the original data, as the paper says (the reference draws it
  from the regenerated loader).
* The curator hands the learned weights to any later training as `TrainingSet.weights`
  (deterministic ``softmax(g_phi(h) / tau)[0]`` of the final target model), instead of
  reporting the jointly trained target model itself.
* ``end_to_end=True`` is the paper's ablation: phi is trained with theta on the weighted
  training loss itself (weights then collapse towards 0).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..data import TrainingSet
from ..errors import ConfigError
from ..train import TrainConfig
from ..train.losses import get_loss
from ..train.trainer import SequenceTrainer
from ..utils.runtime import PeakMemory

log = logging.getLogger(__name__)
Tensors = Sequence[torch.Tensor]


@dataclass(frozen=True)
class BilevelConfig:
    """Schedule and step sizes of DR4SR+ (defaults: ``configs/metamodel.yaml``)."""

    epochs: int = 30  # target-model epochs in all (warm-up included)
    warmup_epochs: int = 10  # plain (unweighted) epochs before the bi-level phase
    interval: int = 30  # inner steps between two outer steps
    neumann_terms: int = 3  # J
    alpha: float = 1e-3  # Neumann step (hpo_learning_rate)
    meta_lr: float = 1e-3  # SGD lr of the personalizer
    meta_momentum: float = 0.9
    meta_weight_decay: float = 1e-3
    clip: float = 10.0  # hyper-gradient norm clip
    tau_init: float = 10.0  # initial Gumbel temperature parameter
    tau_min: float = 1.0  # temperature floor
    end_to_end: bool = False  # ablation: train phi on the weighted training loss directly
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=256, lr=1e-3, loss="bce",
                                                                   n_negatives=1, patience=None))

    def __post_init__(self) -> None:
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs ({self.warmup_epochs}) must be smaller than epochs ({self.epochs})")
        if self.interval < 1 or self.neumann_terms < 0 or self.alpha <= 0:
            raise ConfigError("interval >= 1, neumann_terms >= 0 and alpha > 0 are required")


class Personalizer(nn.Module):
    """MLP ``d -> d -> 2``; ``weights(h)`` is the first component of a (Gumbel-)softmax."""

    def __init__(self, dim: int, tau_init: float = 10.0, tau_min: float = 1.0) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 2))
        self.tau = nn.Parameter(torch.tensor(float(tau_init)), requires_grad=False)
        self.tau_min = float(tau_min)

    def weights(self, h: torch.Tensor, *, sample: bool = True) -> torch.Tensor:
        tau = float(self.tau.clamp(min=self.tau_min))
        logits = self.mlp(h)
        if sample:
            return nn.functional.gumbel_softmax(logits, tau=tau)[..., 0]
        return torch.softmax(logits / tau, -1)[..., 0]


def neumann_inverse_hvp(hvp: Callable[[Tensors], Tensors], v: Tensors, *, alpha: float,
                        terms: int) -> list[torch.Tensor]:
    """``sum_{j=0}^{terms} (I - alpha H)^j v`` for a Hessian-vector product ``hvp``.

    ``alpha`` times the result approximates ``H^-1 v`` when ``||I - alpha H|| < 1``.

    Example
    -------
    >>> import torch
    >>> H = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    >>> p = neumann_inverse_hvp(lambda x: [H @ x[0]], [torch.ones(2)], alpha=0.5, terms=60)
    >>> [round(float(x), 4) for x in 0.5 * p[0]]
    [0.5, 1.0]
    """
    cur = [t.clone() for t in v]
    acc = [t.clone() for t in v]
    for _ in range(terms):
        hv = hvp(cur)
        cur = [c - alpha * h for c, h in zip(cur, hv)]
        acc = [a + c for a, c in zip(acc, cur)]
    return acc


def _grads(out: torch.Tensor | Tensors, wrt: Tensors, grad_outputs: Tensors | None = None, **kw) -> list[torch.Tensor]:
    g = torch.autograd.grad(out, list(wrt), grad_outputs=grad_outputs, allow_unused=True, **kw)
    return [torch.zeros_like(p) if x is None else x for x, p in zip(g, wrt)]


def hypergradient(inner_loss: torch.Tensor, outer_loss: torch.Tensor, params: Tensors, hparams: Tensors, *,
                  alpha: float, terms: int) -> list[torch.Tensor]:
    """Implicit hyper-gradient ``-(d2 L_in / dphi dtheta)^T sum_j (I - alpha H)^j dL_out/dtheta``.

    ``inner_loss`` depends on ``params`` (theta) and ``hparams`` (phi); ``outer_loss`` on theta only.
    """
    v = _grads(outer_loss, params)
    g = _grads(inner_loss, params, create_graph=True)
    p = neumann_inverse_hvp(lambda x: _grads(g, params, x, retain_graph=True), v, alpha=alpha, terms=terms)
    mixed = _grads(g, hparams, [t.detach() for t in p])
    return [-m for m in mixed]


@dataclass
class BilevelResult:
    personalizer: Personalizer
    model: torch.nn.Module
    history: list[dict[str, float]]


def _cycle(trainer: SequenceTrainer, rng: np.random.Generator) -> Iterator:
    while True:
        yield from trainer.batcher.batches(rng)


def train_bilevel(model: torch.nn.Module, regen: TrainingSet, original: TrainingSet, fixed: np.ndarray,
                  cfg: BilevelConfig = BilevelConfig()) -> BilevelResult:
    """Train ``model`` on ``regen`` with personalizer weights learnt by bi-level optimisation.

    ``fixed`` (bool per sample of ``regen``) marks samples whose weight is 1 (mined patterns).
    """
    tc = cfg.train.model_copy(update={"epochs": cfg.epochs})
    torch.manual_seed(tc.seed)
    outer_src = SequenceTrainer(model, tc)
    outer_src._prepare(original)
    inner = SequenceTrainer(model, tc)
    inner._prepare(regen)  # last: a model that precomputes from its data (GNN graph) sees the regenerated set
    dev = inner.device
    pers = Personalizer(model.embedding_size, cfg.tau_init, cfg.tau_min).to(dev)
    phi = list(pers.mlp.parameters())
    meta_opt = torch.optim.SGD(phi, lr=cfg.meta_lr, momentum=cfg.meta_momentum, weight_decay=cfg.meta_weight_decay)
    if cfg.end_to_end:
        inner.optimizer.add_param_group({"params": phi})
    fixed_t = torch.from_numpy(np.asarray(fixed, bool)).to(dev)
    theta = [p for p in model.parameters() if p.requires_grad]
    rng = np.random.default_rng([tc.seed, 7])
    fresh, ori = _cycle(inner, rng), _cycle(outer_src, rng)
    bce = get_loss("bce")
    gen = torch.Generator().manual_seed(tc.seed)

    def per_sample(b) -> tuple[torch.Tensor, torch.Tensor]:
        b = b.to(dev)
        h = inner._represent(b)
        neg = torch.randint(1, model.n_items + 1, (len(b.targets), 1), generator=gen).to(dev)
        return bce(model.score_items(h, b.targets.view(-1, 1)).squeeze(1), model.score_items(h, neg)), h

    def weighted(b, per: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        w = pers.weights(h.detach())
        w = torch.where(fixed_t[b.sample_idx.to(dev)], torch.ones_like(w), w)
        return (w * per).mean()

    hist: list[dict[str, float]] = []
    step = 0
    for epoch in range(cfg.epochs):
        model.train()
        with PeakMemory() as mem:  # this epoch's own peak (Linux; elsewhere the process's so far)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            t0, tot, n, outer_steps, hg_norm = time.perf_counter(), 0.0, 0, 0, 0.0
            bilevel = epoch >= cfg.warmup_epochs
            for b in inner.batcher.batches(inner.rng):
                per, h = per_sample(b)
                loss = weighted(b, per, h) if bilevel else per.mean()
                tot += inner._step(loss) * len(per)
                n += len(per)
                step += bilevel
                if bilevel and not cfg.end_to_end and step % cfg.interval == 0:
                    bf = next(fresh)
                    per_f, h_f = per_sample(bf)
                    per_o, _ = per_sample(next(ori))
                    hg = hypergradient(weighted(bf, per_f, h_f), per_o.mean(), theta, phi, alpha=cfg.alpha,
                                       terms=cfg.neumann_terms)
                    meta_opt.zero_grad(set_to_none=True)
                    for p_, g_ in zip(phi, hg):
                        p_.grad = g_
                    hg_norm = float(torch.nn.utils.clip_grad_norm_(phi, cfg.clip))
                    meta_opt.step()
                    outer_steps += 1
        hist.append({"epoch": epoch, "loss": tot / max(n, 1), "bilevel": bilevel, "outer_steps": outer_steps,
                     "hypergrad_norm": hg_norm, "seconds": time.perf_counter() - t0, "peak_rss_mb": mem.mb()})
        if dev.type == "cuda":
            hist[-1]["peak_gpu_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
        log.info("dr4sr+ epoch %d loss %.4f outer %d (%.1fs, peak RSS %.0f MB)", epoch, hist[-1]["loss"],
                 outer_steps, hist[-1]["seconds"], hist[-1]["peak_rss_mb"])
    model.eval()
    return BilevelResult(pers, model, hist)


@torch.no_grad()
def sample_weights(res: BilevelResult, regen: TrainingSet, fixed: np.ndarray,
                   cfg: BilevelConfig = BilevelConfig()) -> np.ndarray:
    """Deterministic personalizer weight of every sample of ``regen`` (fixed samples: 1)."""
    tc = cfg.train.model_copy(update={"progress": False})
    tr = SequenceTrainer(res.model, tc)
    tr._prepare(regen)
    res.model.eval()
    out = np.ones(len(regen), np.float32)
    for idx, _, _, h in tr.forward_samples():
        out[idx.cpu().numpy()] = res.personalizer.weights(h.to(tr.device), sample=False).float().cpu().numpy()
    out[np.asarray(fixed, bool)] = 1.0
    return out


__all__ = ["BilevelConfig", "BilevelResult", "Personalizer", "hypergradient", "neumann_inverse_hvp",
           "sample_weights", "train_bilevel"]
