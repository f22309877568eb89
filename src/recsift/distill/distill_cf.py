"""Distill-CF: learn a few synthetic users whose ∞-AE fits the real users (data distillation).

Sachdeva, Dhaliwal, Wu, McAuley, "Infinite Recommendation Networks: A Data-Centric Approach",
NeurIPS 2022; reference code ``noveens/distill_cf`` (``distill.py``, ``model.py``,
``hyper_params.py``; ALGORITHMS.md §10). Learnable logits ``X̃ ∈ R^{μ x |I|}`` start as the
binary rows of μ random real users. Each step:

1. **Multi-draw Gumbel sampling**: ``X_s = hardtanh(Σ_{s=1..S} softmax((X̃ + g_s) / τ))`` with
   stop-gradient Gumbel noise ``g_s``; gradients flow through the softmaxes.
2. **Inner learner in closed form**: ∞-AE fitted on ``X_s`` (kernel ridge regression,
   :mod:`recsift.distill.infae`), differentiable; predictions for the real users ``X_b``:
   ``Ŷ = NTK(X_b, X_s) (K(X_s) + λ tr/μ I)⁻¹ X_s``.
3. **Loss**: multinomial log-likelihood ``−mean_u Σ_i X_b[u,i] log softmax(Ŷ_u)_i`` plus the size
   penalty ``c · mean_u Σ_i X_s[u,i] / (N_inter / N_users)``; one Adam step on ``X̃``; then
   fresh noise (the reference advances its key only after an update).

Validation at steps {25, 50, …, 200} and every ``log_freq``: ∞-AE on the sampled support with
λ re-chosen from {1e-5, 1e-3, 0.1, 1, 5, 50} (the new λ is used by the following steps); the
best-validation sampled support is returned, with early stopping after ``patience`` steps.
Deviation: the validation metric defaults to ``ndcg@10`` (the metric reported), as for
:class:`~recsift.distill.infae.InfiniteAE`; the reference used HR@100 (``recall_norm@100``).
On ml-1m (500 users, seed 42) HR@100 selection kept step 25 (test nDCG@10 31.85), nDCG@10
selection step 40 (32.07) — one seed each, within seed noise.

Deviation (speed; ``noise="shifted"``, the default): the reference draws ``S x μ x |I|``
Gumbel variables per step (370M on ml-1m; ~4 s of a naive step on 2 cores). Here one pool of
``S x |I|`` draws is shared by all synthetic users, each reading it circularly shifted by its
own distinct offset. Every user's noise is still exactly i.i.d. Gumbel, and two users' noise
on the same item comes from different pool entries (independent); only the noise of user
``u`` on item ``i`` and user ``v`` on item ``i + shift_u − shift_v`` coincide, a correlation
between unrelated item labels. The sums over draws become two small matrix products.
``noise="independent"`` is the reference's exact scheme (slow; for checking).

The returned support is soft (entries in (0, 1]): the ∞-AE trains on the values. Models that
ignore interaction values (BPR, NeuMF) should be given a thresholded copy.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from ..data import EvalCases, InteractionMatrix, TrainingSet
from ..errors import BudgetError, ConfigError
from ..train.optim import adam
from .infae import DISTILL_LAMBDAS, InfiniteAE, training_rows
from .ntk import ntk_dense

__all__ = ["DistillConfig", "GumbelNoise", "distill_cf", "distill_loss", "multi_gumbel"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillConfig:
    """Distill-CF hyper-parameters; defaults from ``noveens/distill_cf`` ``hyper_params.py``."""

    draws: int = 200  # S = num_per_user: Gumbel draws summed per synthetic user
    tau: float = 10.0  # gumbel_tau: softmax temperature of each draw
    size_penalty: float = 1e-3  # cardinality_reg: weight of the support-size penalty
    lr: float = 0.04  # Adam learning rate on the logits
    steps: int = 500  # train_steps
    patience: int = 150  # stop when the validation metric has not improved for this many steps
    batch_users: int | None = None  # real users per step; None = all (batch_size -1)
    log_freq: int = 40  # validate every log_freq steps, besides steps 25, 50, ..., 200
    lambdas: tuple[float, ...] = DISTILL_LAMBDAS  # λ grid of the validations
    select_metric: str = "ndcg@10"  # validation metric for λ and the best step (reference: recall_norm@100)
    noise: str = "shifted"  # "shifted" (shared pool, per-user item shift) or "independent"
    seed: int = 42  # seed of the initial users, batches and Gumbel noise
    max_seconds: float | None = None  # stop after this much wall time (benchmarks)

    def __post_init__(self) -> None:
        checks = {
            "draws": self.draws >= 1, "tau": self.tau > 0, "size_penalty": self.size_penalty >= 0,
            "lr": self.lr > 0, "steps": self.steps >= 0, "patience": self.patience >= 1,
            "batch_users": self.batch_users is None or self.batch_users >= 1, "log_freq": self.log_freq >= 1,
            "lambdas": len(self.lambdas) > 0 and all(x >= 0 for x in self.lambdas),
            "noise": self.noise in ("shifted", "independent"),
            "max_seconds": self.max_seconds is None or self.max_seconds > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"DistillConfig: invalid {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}; "
                              "draws/log_freq/patience >= 1, tau/lr > 0, size_penalty >= 0, steps >= 0, "
                              "lambdas non-empty and >= 0, noise 'shifted' or 'independent'")

    def validates_at(self, step: int) -> bool:
        return step in range(25, 201, 25) or step % self.log_freq == 0


class GumbelNoise:
    """Stop-gradient Gumbel noise for :func:`multi_gumbel`, as ``Z = exp(g / τ)``.

    ``shifted``: a pool ``[n_pools, S, n_items]`` and, per user, a pool index and a distinct
    circular item shift. ``independent``: ``[n_users, S, n_items]`` fresh draws.
    """

    def __init__(self, n_users: int, n_items: int, draws: int, tau: float, mode: str, seed: int) -> None:
        self.n_users, self.n_items, self.draws, self.tau, self.mode = n_users, n_items, draws, tau, mode
        self.gen = torch.Generator().manual_seed(int(seed))

    def _gumbel(self, *shape: int) -> torch.Tensor:
        u = torch.rand(*shape, generator=self.gen).clamp_(min=1e-30)
        return u.log_().neg_().log_().neg_()  # g = −log(−log U)

    def draw(self) -> dict[str, torch.Tensor]:
        """Fresh noise (one call per optimisation step)."""
        if self.mode == "independent":
            return {"z": torch.exp(self._gumbel(self.n_users, self.draws, self.n_items) / self.tau)}
        n_pools = -(-self.n_users // self.n_items)
        pool = torch.exp(self._gumbel(n_pools, self.draws, self.n_items) / self.tau)
        order = torch.randperm(n_pools * self.n_items, generator=self.gen)[: self.n_users]
        pool_of, shift = order // self.n_items, order % self.n_items
        idx = (torch.arange(self.n_items)[None, :] + shift[:, None]) % self.n_items  # item i reads pool[(i + shift)]
        return {"pool": pool, "pool_of": pool_of, "idx": idx, "inv": torch.argsort(idx, dim=1)}


def multi_gumbel(logits: torch.Tensor, noise: dict[str, torch.Tensor], tau: float) -> torch.Tensor:
    """``hardtanh(Σ_s softmax((logits + g_s) / τ))`` with the given (stop-gradient) noise.

    With ``w = exp(logits / τ)`` and ``Z = exp(g / τ)``, draw ``s`` is ``w ⊙ Z_s / (w · Z_s)``,
    so the sum over draws is ``w ⊙ Σ_s Z_s / D_s`` with ``D_s = w · Z_s``.

    Examples
    --------
    >>> noise = GumbelNoise(2, 5, draws=3, tau=1.0, mode="shifted", seed=0).draw()
    >>> x = multi_gumbel(torch.zeros(2, 5), noise, 1.0)
    >>> bool(torch.allclose(x.sum(1), torch.full((2,), 3.0)))
    True
    """
    w = torch.exp((logits - logits.max(dim=1, keepdim=True).values.detach()) / tau)
    if "z" in noise:
        z = noise["z"]
        denom = torch.einsum("usn,un->us", z, w)
        total = torch.einsum("us,usn->un", 1.0 / denom, z)
    else:
        rolled = torch.gather(w, 1, noise["inv"])  # rolled[u, j] = w[u, j − shift_u]
        total_rolled = torch.zeros_like(w)
        for p in range(noise["pool"].shape[0]):
            users = torch.nonzero(noise["pool_of"] == p).flatten()
            pool = noise["pool"][p]
            denom = rolled[users] @ pool.T  # [u, S]: Σ_i w[u, i] Z[s, i + shift_u]
            total_rolled = total_rolled.index_copy(0, users, (1.0 / denom) @ pool)
        total = torch.gather(total_rolled, 1, noise["idx"])
    return torch.clamp(w * total, max=1.0)


def distill_loss(support: torch.Tensor, targets: torch.Tensor, lam: float, *, size_penalty: float,
                 avg_degree: float) -> torch.Tensor:
    """Distill-CF outer loss of a sampled support ``[μ, |I|]`` on real users ``targets [b, |I|]``.

    Multinomial log-likelihood of the targets under the ∞-AE fitted on ``support`` (λ relative
    to the mean kernel diagonal, as :func:`recsift.distill.infae.factorise`) plus
    ``size_penalty · mean row sum / avg_degree``.
    """
    k_ss = ntk_dense(support)
    eye = torch.eye(k_ss.shape[0], dtype=k_ss.dtype)
    k_reg = k_ss + (lam * torch.diagonal(k_ss).sum() / k_ss.shape[0]) * eye
    chol, info = torch.linalg.cholesky_ex(k_reg)
    if int(info) > 0:
        raise ConfigError(f"Distill-CF: the support's kernel is singular at λ={lam:g}; use larger lambdas")
    alpha = torch.cholesky_solve(support, chol)
    pred = ntk_dense(targets, support) @ alpha
    nll = -(torch.log_softmax(pred, dim=1) * targets).sum(1).mean()
    return nll + size_penalty * support.sum(1).mean() / avg_degree


def distill_cf(train_set: TrainingSet, n_users: int = 500, *, valid: EvalCases | None = None,
               mask_history: bool = True, lam: float | None = None, config: DistillConfig | None = None,
               **overrides: Any) -> tuple[TrainingSet, dict[str, Any]]:
    """Distil ``train_set`` (an interaction matrix) into ``n_users`` synthetic users.

    Parameters
    ----------
    train_set : TrainingSet
        Real users' training interactions (``split.training_set("matrix")``).
    n_users : int, default 500
        μ, the number of synthetic users; at most the number of users with interactions.
    valid : EvalCases, optional
        Validation cases (``split.valid``): choose λ and the best step. Without them, ``lam``
        must be given and the last step's support is returned.
    mask_history : bool, default True
        Mask input items at validation (the ∞-AE protocol).
    lam : float, optional
        Fixed inner λ (no validation).
    config : DistillConfig, optional
        Hyper-parameters; ``overrides`` replace single fields (``steps=100``).

    Returns
    -------
    (TrainingSet, dict)
        The best support as an ``n_users x (n_items + 1)`` `InteractionMatrix` with soft values,
        and an info dict (history, best step, λ, seconds per step).

    Raises
    ------
    BudgetError
        ``n_users`` < 1 or larger than the number of users with interactions.
    ConfigError
        Bad hyper-parameters, or neither ``valid`` nor ``lam``.

    Examples
    --------
    >>> from recsift.data import load_split
    >>> split = load_split("synthetic", split="ratio")
    >>> ts, info = distill_cf(split.training_set("matrix"), 20, valid=split.valid, steps=2)
    >>> ts.data.n_users
    20
    """
    cfg = replace(config or DistillConfig(), **overrides)
    if valid is None and lam is None:
        raise ConfigError("distill_cf needs validation cases (valid=split.valid) to choose λ and the best step, "
                          "or a fixed lam=5.0")
    x, _ = training_rows(train_set)
    n_real, n_items = x.shape[0], x.shape[1] - 1
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or not 1 <= n_users <= n_real:
        raise BudgetError(f"distill_cf: n_users={n_users!r} synthetic users is out of range: give an integer in "
                          f"1..{n_real} (the users with training interactions)")
    t0 = time.perf_counter()
    targets = torch.from_numpy(x[:, 1:].toarray())  # column 0 is padding
    avg_degree = float(x.nnz) / n_real
    rng = np.random.default_rng(cfg.seed)
    init_rows = np.sort(rng.choice(n_real, int(n_users), replace=False))
    logits = targets[init_rows].clone().requires_grad_(True)
    opt = adam([logits], lr=cfg.lr)
    sampler = GumbelNoise(int(n_users), n_items, cfg.draws, cfg.tau, cfg.noise, cfg.seed)
    noise = sampler.draw()
    history: list[dict[str, Any]] = []

    def validate(step: int) -> tuple[float, float, torch.Tensor]:
        with torch.no_grad():
            support = multi_gumbel(logits, noise, cfg.tau)
        if valid is None:
            return math.nan, float(lam), support  # type: ignore[arg-type]  (lam is set without valid)
        model = InfiniteAE(lambdas=cfg.lambdas if lam is None else (lam,), select_metric=cfg.select_metric)
        model.fit(_as_training_set(support, n_items), valid, mask_history=mask_history)
        value = model.valid_metrics_.get(model.lam_, math.nan)
        history.append({"step": step, "valid": value, "lam": model.lam_, "seconds": round(time.perf_counter() - t0, 2)})
        log.info("Distill-CF step %d: valid %s = %.4f (λ=%g)", step, cfg.select_metric, value, model.lam_)
        return value, model.lam_, support

    best_value, cur_lam, best_support = validate(0)
    best_step, step_seconds, losses = 0, [], []
    for step in range(1, cfg.steps + 1):
        t_step = time.perf_counter()
        batch = targets if cfg.batch_users is None or cfg.batch_users >= n_real else \
            targets[torch.from_numpy(rng.choice(n_real, cfg.batch_users, replace=False))]
        loss = distill_loss(multi_gumbel(logits, noise, cfg.tau), batch, cur_lam, size_penalty=cfg.size_penalty,
                            avg_degree=avg_degree)
        opt.zero_grad()
        loss.backward()
        opt.step()
        noise = sampler.draw()
        step_seconds.append(time.perf_counter() - t_step)
        losses.append(float(loss.detach()))
        out_of_time = cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds
        if cfg.validates_at(step) or step == cfg.steps or out_of_time:
            value, cur_lam, support = validate(step)
            if history:
                history[-1]["loss"] = losses[-1]
            if valid is None or value > best_value:
                best_value, best_step, best_support = value, step, support
            elif step - best_step >= cfg.patience:
                log.info("Distill-CF: no improvement for %d steps, stopping at step %d", cfg.patience, step)
                break
        if out_of_time:
            log.info("Distill-CF: max_seconds=%g reached at step %d", cfg.max_seconds, step)
            break
    out = TrainingSet(_support_matrix(best_support, n_items), provenance={
        **train_set.provenance, "curator": "distill_cf", "n_users": int(n_users), "best_step": best_step,
        "lam": cur_lam if valid is None else _lam_at(history, best_step), "seed": cfg.seed,
        "values": "soft interactions in (0, 1] (Gumbel-sampled support)"})
    info = {"config": asdict(cfg), "n_users": int(n_users), "best_step": best_step, "best_valid": best_value,
            "lam": out.provenance["lam"], "history": history, "losses": losses, "steps_run": len(losses),
            "seconds_per_step": float(np.median(step_seconds)) if step_seconds else math.nan,
            "seconds": round(time.perf_counter() - t0, 2), "init_users": init_rows.tolist()}
    return out, info


def _lam_at(history: list[dict[str, Any]], step: int) -> float:
    return next(h["lam"] for h in history if h["step"] == step)


def _support_matrix(support: torch.Tensor, n_items: int) -> InteractionMatrix:
    """``[μ, n_items]`` dense support -> `InteractionMatrix` (column 0 = padding, zeros dropped)."""
    dense = np.zeros((support.shape[0], n_items + 1), np.float32)
    dense[:, 1:] = support.detach().numpy()
    m = sp.csr_matrix(dense)
    m.sort_indices()
    return InteractionMatrix(m)


def _as_training_set(support: torch.Tensor, n_items: int) -> TrainingSet:
    return TrainingSet(_support_matrix(support, n_items))
