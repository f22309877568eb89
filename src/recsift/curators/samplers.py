"""The data samplers the ∞-AE / Distill-CF paper compares against, as curators.

Sachdeva, Dhaliwal, Wu, McAuley, NeurIPS 2022, Fig. "% users sampled" (ALGORITHMS.md §10):

* **User-RNS** — the built-in ``random`` curator with ``unit="user"``.
* **Interaction-RNS** — the built-in ``random`` curator with ``unit="sample"`` on a matrix
  (one sample = one stored interaction).
* **Head users** — ``head_users`` here: the users with the most interactions.
* **SVP-CF** — ``svp_cf`` here (Sachdeva, Wu, McAuley, "On Sampling Collaborative Filtering
  Datasets", WSDM 2022): selection via a cheap proxy model.
* **Distill-CF** synthesises users instead of selecting them: the transforming curator
  ``distill_cf`` (:mod:`recsift.distill.curator`, over :func:`recsift.distill.distill_cf`).

Importing this module registers ``head_users`` and ``svp_cf`` in the curator registry.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .base import CurationContext, Selection, UnitView, register_curator
from .builtin import unit_scores
from ..data import TrainingSet
from ..errors import ConfigError
from ..scoring import get_score, oriented
from ..selection import select_top

__all__ = ["head_users", "svp_cf"]


@register_curator("head_users")
def head_users(train_set: TrainingSet, pool: np.ndarray, m: int, ctx: CurationContext, view: UnitView) -> Selection:
    """Head users (NeurIPS 2022 baseline sampler): keep the users with the most training
    interactions (weights ignored; ties go to the smaller user id). Needs ``unit="user"``."""
    if ctx.unit != "user":
        raise ConfigError("head_users keeps whole users: use the user unit (CurationContext(unit='user'), "
                          "`recsift curate --unit user`)")
    counts = np.bincount(view.unit_of, minlength=view.n_units).astype(np.float64)
    return Selection(pool[select_top(counts[pool], m, keep="high")], counts, "n_interactions")


@register_curator("svp_cf")
def svp_cf(train_set: TrainingSet, pool: np.ndarray, m: int, ctx: CurationContext, view: UnitView, *,
           proxy: str = "bpr", proxy_epochs: int = 5, score: str = "loss_mean", keep: str = "hard") -> Selection:
    """SVP-CF (Sachdeva, Wu, McAuley, WSDM 2022): selection via a cheap proxy recommender.

    Variant implemented: the proxy (default BPR-MF, ``proxy_epochs`` epochs, the context's
    probe config otherwise) is trained once on the full training set with its training
    dynamics recorded; an interaction's importance is its mean training loss over the proxy's
    epochs (``score="loss_mean"``; any registered dynamics score works); a user's importance is
    the mean over its interactions; the ``m`` hardest units are kept (``keep="easy"``: the
    easiest). The WSDM paper's cheapest proxy is a bias-only MF; BPR-MF is the cheapest CF
    model recsift registers.
    """
    if keep not in ("hard", "easy"):
        raise ConfigError(f"svp_cf: keep={keep!r}; use 'hard' (highest proxy importance) or 'easy'")
    if int(proxy_epochs) < 1:
        raise ConfigError(f"svp_cf: proxy_epochs={proxy_epochs!r} must be a positive integer")
    cfg = ctx.probe_config.model_copy(update={"epochs": int(proxy_epochs), "patience": None})
    proxy_ctx = replace(ctx, probe=proxy, probe_config=cfg, probe_params={})
    s = unit_scores(train_set, proxy_ctx, view, score)
    hard = oriented(s, get_score(score).hard)
    kept = pool[select_top(hard[pool], m, keep="high" if keep == "hard" else "low")]
    return Selection(kept, s, f"svp_cf:{score}")
