"""Distill-CF as a curator: ``curate(matrix_set, "distill_cf", budget, ctx)``.

The budget counts synthetic users: an integer is μ, a fraction is μ = floor(r · users with
training interactions). The result replaces the training set (it is not a subset of it), so
the report keeps no input interaction; `InfiniteAE` and other user-free learners train on it.
Validation cases come from ``ctx.split`` (λ and the best step are chosen on them).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..curators.base import CurationContext, Transformed, register_curator
from ..data import Budget, TrainingSet
from ..errors import ConfigError
from .distill_cf import DistillConfig, distill_cf


@register_curator("distill_cf", transform=True, kind="matrix")
def distill_cf_curator(train_set: TrainingSet, ctx: CurationContext, budget: Budget | None, *,
                       steps: int = DistillConfig.steps, draws: int = DistillConfig.draws,
                       tau: float = DistillConfig.tau, size_penalty: float = DistillConfig.size_penalty,
                       lr: float = DistillConfig.lr, patience: int = DistillConfig.patience,
                       select_metric: str = DistillConfig.select_metric, noise: str = DistillConfig.noise,
                       max_seconds: float | None = None) -> Transformed:
    """Distill-CF (Sachdeva et al., NeurIPS 2022): synthesise ``budget`` users whose ∞-AE
    fit predicts the real users best (Gumbel-sampled support, closed-form inner learner).
    Budget = synthetic users (count, or fraction of real users); needs a matrix training set."""
    if train_set.kind != "matrix":
        raise ConfigError("distill_cf distils a user x item matrix: curate split.training_set('matrix') "
                          "(a CF model such as infae, not a sequential one)")
    if budget is None:
        raise ConfigError("distill_cf needs a budget: the number of synthetic users (e.g. 500) or a fraction of users")
    if ctx.split is None:
        raise ConfigError("distill_cf chooses λ and its best step on validation cases: pass CurationContext(split=...)")
    n_real = int((np.diff(train_set.data.csr.indptr) > 0).sum())
    mu = budget.resolve(n_real, "user")
    ts, info = distill_cf(train_set, mu, valid=ctx.split.valid, seed=ctx.seed, steps=steps, draws=draws, tau=tau,
                          size_penalty=size_penalty, lr=lr, patience=patience, select_metric=select_metric,
                          noise=noise, max_seconds=max_seconds)
    extra: dict[str, Any] = {k: info[k] for k in ("n_users", "best_step", "best_valid", "lam", "steps_run",
                                                   "seconds_per_step")}
    extra["real_users"] = n_real
    extra["fraction_kept"] = mu / n_real  # the x-axis of the paper's figure: synthetic users / real users
    return Transformed(ts, kept=None, extra=extra)
