"""Anchors and end-to-end disclosure: train on a mask, estimate influences, solve, retrain.

An anchor (ALGORITHMS.md §11.2–§11.3) is a disclosure mask plus the model trained on it from the
same initial weights (``TrainConfig.seed``), each user's validation loss under that model and the
influence of every training interaction on its own user's loss. IFRQE uses one anchor (full
disclosure); IFRQE++ adds ``n_anchors`` masks that disclose each interaction with probability
``anchor_keep`` (0.9, the appendix's Binomial prior).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..train import TrainConfig, train_model
from .influence import InfluenceConfig, compute_influence, influence_problem
from .protocol import DisclosureData, evaluate_disclosure
from .strategy import Anchor, StrategyResult, solve_disclosure, solve_disclosure_mirror

log = logging.getLogger(__name__)


def default_train_config(epochs: int = 20, seed: int = 2020, **kw: Any) -> TrainConfig:
    """IFRQE training defaults: Adam lr 0.01, batch 2048, BCE with 1 sampled negative; no early stopping
    and no full-ranking validation (the final epoch is kept; the game evaluates on its 1 + 99 candidates)."""
    base = dict(epochs=epochs, lr=0.01, batch_size=2048, loss="bce", n_negatives=1, patience=None,
                eval_every=epochs + 1, seed=seed, metrics=("ndcg@10",))
    return TrainConfig.make(**{**base, **kw})


@dataclass(frozen=True)
class GameConfig:
    """Everything the disclosure game needs besides the data and the unwillingness."""

    model: str = "bpr"  # any registered CF model (bpr = MF, neumf)
    model_params: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=default_train_config)
    influence: InfluenceConfig = field(default_factory=InfluenceConfig)
    n_anchors: int = 2  # IFRQE++ anchors besides the full one (appendix: 2/8/4/6)
    anchor_keep: float = 0.9  # disclosure probability of the sampled anchors
    max_exact: int = 20  # exact 2^n strategies up to this many interactions per user
    seed: int = 0  # anchor masks and fixed influence negatives
    # "best_response": the exact best response to the reward (the L -> infinity limit); "mirror": the
    # released code's finite multiplicative-weights run from the Binomial prior (stays near the prior)
    strategy: str = "best_response"
    mirror_iters: int = 1000  # L
    mirror_rate: float = 0.1  # the code's mirror_rate (0.08-0.1)
    prior: float = 0.9  # Binomial prior of the mirror run

    def __post_init__(self) -> None:
        if self.n_anchors < 0 or not 0 < self.anchor_keep <= 1:
            raise ConfigError("need n_anchors >= 0 and 0 < anchor_keep <= 1")
        check_strategy(self.strategy)


def train_disclosed(data: DisclosureData, disclosed: np.ndarray, cfg: GameConfig) -> torch.nn.Module:
    """Train ``cfg.model`` on the disclosed interactions (validation/test cases unchanged); with
    nothing disclosed, the model at its initial weights (same seed as every other run)."""
    disclosed = np.asarray(disclosed, bool)
    if disclosed.shape != data.user.shape:
        raise ConfigError(f"disclosure mask has shape {disclosed.shape}, expected {data.user.shape}")
    if not disclosed.any():  # every user withholds everything: the model stays at its initial weights
        from ..models.registry import build_model
        from ..utils.seeding import seed_everything

        log.warning("nothing is disclosed: evaluating %s at its initial weights", cfg.model)
        seed_everything(cfg.train.seed)
        return build_model(cfg.model, n_users=data.split.n_users, n_items=data.split.n_items, **cfg.model_params)
    ts = data.train_set.subset(np.flatnonzero(disclosed), curator="disclosure")
    res = train_model(data.split, cfg.model, cfg.train, train_set=ts, model_params=dict(cfg.model_params),
                      evaluate_test=False)
    return res.model.cpu()


def fit_anchor(data: DisclosureData, disclosed: np.ndarray, cfg: GameConfig) -> tuple[Anchor, torch.nn.Module, dict]:
    """Train on ``disclosed``, then the validation loss and influence of every training interaction."""
    model = train_disclosed(data, disclosed, cfg)
    prob = influence_problem(data.user, data.item, data.split.n_items, data.valid.user, data.valid.candidates,
                             loss=cfg.train.loss or getattr(model, "default_loss", "bce"),
                             n_negatives=cfg.train.n_negatives, seed=cfg.seed)
    res = compute_influence(model, prob, cfg.influence)
    anchor = Anchor(np.asarray(disclosed, bool), data.valid_loss_vector(res.valid_loss), res.influence)
    return anchor, model, res.seconds


def fit_anchors(data: DisclosureData, cfg: GameConfig) -> tuple[list[Anchor], list[torch.nn.Module]]:
    """The full-disclosure anchor, then ``cfg.n_anchors`` Binomial(anchor_keep) anchors."""
    rng = np.random.default_rng([cfg.seed, 7])
    masks = [np.ones(len(data.user), bool)]
    masks += [rng.random(len(data.user)) < cfg.anchor_keep for _ in range(cfg.n_anchors)]
    out = [fit_anchor(data, m, cfg) for m in masks]
    return [a for a, _, _ in out], [m for _, m, _ in out]


def solve(data: DisclosureData, anchors: list[Anchor], beta: np.ndarray, lam: float, cfg: GameConfig,
          variant: str = "ifrqe") -> StrategyResult:
    """IFRQE (first anchor only) or IFRQE++ (all anchors)."""
    if variant not in ("ifrqe", "ifrqe++"):
        raise ConfigError(f"variant {variant!r}: use 'ifrqe' (one anchor) or 'ifrqe++' (several)")
    use = anchors[:1] if variant == "ifrqe" else anchors
    return STRATEGIES[cfg.strategy](data, use, beta, lam, cfg)


def _best_response(data: DisclosureData, anchors: list[Anchor], beta: np.ndarray, lam: float,
                   cfg: GameConfig) -> StrategyResult:
    return solve_disclosure(data.user, beta, anchors, lam, n_users=data.n_users, max_exact=cfg.max_exact)


def _mirror(data: DisclosureData, anchors: list[Anchor], beta: np.ndarray, lam: float,
            cfg: GameConfig) -> StrategyResult:
    return solve_disclosure_mirror(data.user, beta, anchors, lam, n_users=data.n_users, max_exact=cfg.max_exact,
                                   iters=cfg.mirror_iters, rate=cfg.mirror_rate, prior=cfg.prior)


STRATEGIES = {"best_response": _best_response, "mirror": _mirror}


def check_strategy(name: str) -> str:
    """``name`` if it is a disclosure strategy, else a ConfigError listing them."""
    if name not in STRATEGIES:
        raise ConfigError(f"strategy={name!r}: use one of {', '.join(map(repr, STRATEGIES))}")
    return name


def run_disclosure(data: DisclosureData, disclosed: np.ndarray, beta: np.ndarray, lam: float,
                   cfg: GameConfig) -> dict[str, float]:
    """Retrain on ``disclosed`` and evaluate F1@5, BCE, wv and reward."""
    return evaluate_disclosure(train_disclosed(data, disclosed, cfg), data, disclosed, beta, lam)
