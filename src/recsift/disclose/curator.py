"""The ``ifrqe`` curator (user-controllable disclosure) and the per-user explanation of its mask.

``curate(split.training_set("matrix"), "ifrqe", None, CurationContext(split=split), lam=1.0)``
draws each interaction's unwillingness (seeded), trains the anchor model(s), estimates every
interaction's influence on its user's validation loss and keeps the interactions each user
chooses to disclose (IFRQE / IFRQE++, `recsift.disclose.strategy`). The result is the masked
`InteractionMatrix`; any CF model then trains on it. There is no budget: how much is kept
follows from λ and the users' unwillingness. Scores = the estimated influence under the
full-disclosure model (larger = disclosing helps the user's own validation loss).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..curators.base import WITHHELD, CurationContext, Transformed, register_curator
from ..data import Budget, TrainingSet
from ..data.categories import item_categories as dataset_categories
from ..errors import ConfigError, RecsiftError
from .game import GameConfig, check_strategy, default_train_config, fit_anchors, solve
from .influence import InfluenceConfig
from .protocol import prepare
from .willingness import check_lambda, draw_unwillingness, willingness_violation


@register_curator("ifrqe", transform=True, kind="matrix")
def ifrqe_curator(train_set: TrainingSet, ctx: CurationContext, budget: Budget | None, *, variant: str = "ifrqe",
                  lam: float = 1.0, unwillingness: str = "uniform", unwillingness_seed: int | None = None,
                  model: str | None = None, epochs: int | None = None, lr: float | None = None, anchors: int = 2,
                  solver: str = "lissa", strategy: str = "best_response", mirror_iters: int = 1000,
                  mirror_rate: float = 0.1, max_exact: int = 20, n_negatives: int = 99,
                  item_categories: Any = None) -> Transformed:
    """IFRQE / IFRQE++ (Lin et al., AAAI 2024): keep what each user chooses to disclose.

    ``variant`` ifrqe (one anchor) or ifrqe++ (``anchors`` extra anchors); ``lam`` ≥ 0 weighs
    unwillingness against accuracy (paper: 1; also 0.1, 0.5, 2); ``unwillingness`` uniform |
    constant | category (the reference's category-frequency type, from ``item_categories``, a sparse
    ``[n_items + 1, n_categories]`` matrix, or else the split's dataset's own categories:
    ml-100k, ml-1m, beauty, toys, lastfm); ``model`` the anchor model (bpr = MF, neumf; default: the context's probe when it is a CF
    model, with its epochs and lr, else bpr for 20 epochs at lr 0.01); ``solver`` lissa | cg | exact;
    ``strategy`` best_response (the exact best response to the reward) | mirror (the released code's
    ``mirror_iters`` multiplicative-weights steps at ``mirror_rate`` from the Binomial(0.9) prior, which
    stays near full disclosure); ``n_negatives`` sampled validation/test negatives per user (paper: 99).
    """
    if budget is not None:
        raise ConfigError("ifrqe takes no budget: what is kept follows from λ (lam) and the users' unwillingness; "
                          "drop the budget argument")
    if ctx.split is None:
        raise ConfigError("ifrqe needs the split's validation cases: pass CurationContext(split=...)")
    if train_set.kind != "matrix":
        raise ConfigError("ifrqe masks a user x item matrix: curate split.training_set('matrix') (on the command "
                          "line: recsift curate --method ifrqe --model bpr, or --model neumf)")
    lam = check_lambda(lam)
    probe_cf = _is_cf(ctx.probe)
    model = model or (ctx.probe if probe_cf else "bpr")
    epochs = epochs or (ctx.probe_config.epochs if probe_cf else 20)
    lr = lr or (ctx.probe_config.lr if probe_cf else 0.01)
    if variant not in ("ifrqe", "ifrqe++"):
        raise ConfigError(f"variant {variant!r}: use 'ifrqe' or 'ifrqe++'")
    check_strategy(strategy)  # before the data are prepared
    data = prepare(ctx.split, train_set=train_set, seed=ctx.seed, n_negatives=n_negatives)
    if unwillingness == "category" and item_categories is None:
        item_categories, _ = dataset_categories(ctx.split.name, ctx.split.train.item_ids)
    beta = draw_unwillingness(len(train_set), kind=unwillingness,
                              seed=ctx.seed if unwillingness_seed is None else unwillingness_seed,
                              user=data.user, item=data.item, categories=item_categories)
    cfg = GameConfig(model=model, train=default_train_config(epochs, seed=ctx.seed, lr=lr),
                     influence=InfluenceConfig(solver=solver, seed=ctx.seed),  # type: ignore[arg-type]
                     n_anchors=anchors if variant == "ifrqe++" else 0, max_exact=max_exact, seed=ctx.seed,
                     strategy=strategy, mirror_iters=mirror_iters, mirror_rate=mirror_rate)
    anchor_list, _ = fit_anchors(data, cfg)
    res = solve(data, anchor_list, beta, lam, cfg, variant)
    kept = res.disclosed
    extra: dict[str, Any] = {
        "variant": variant, "strategy": strategy, "lam": lam, "disclosed_fraction": float(kept.mean()),
        "wv": willingness_violation(kept, beta, data.user, data.valid.user),
        "wv_all_disclosed": willingness_violation(np.ones_like(kept), beta, data.user, data.valid.user),
        "exact_users": res.exact_users, "factorised_users": res.factorised_users, "rounds": res.rounds,
        "converged": res.converged, "anchors": len(anchor_list),
    }
    return Transformed(train_set.subset(np.flatnonzero(kept), disclosure=variant), kept=kept,
                       scores=anchor_list[0].influence, score_name="influence", extra=extra, dropped_reason=WITHHELD)


def _is_cf(name: str) -> bool:
    from ..models.base import CFRecommender
    from ..models.registry import get_model_class

    try:
        cls = get_model_class(name)
    except RecsiftError:
        return False
    return isinstance(cls, type) and issubclass(cls, CFRecommender)


def explain_disclosure(train_set: TrainingSet, kept: np.ndarray, influence: np.ndarray,
                       beta: np.ndarray | None = None, *, lam: float = 1.0, users: np.ndarray | None = None,
                       withheld_only: bool = True) -> pd.DataFrame:
    """Per user: the withheld interactions, their estimated influence (and unwillingness, net payoff).

    ``kept`` and ``influence`` are per interaction of ``train_set`` (a curation report's ``kept``
    and ``scores``). ``net = influence − λ·β``: the estimated gain in the user's payoff from
    disclosing it (negative for what the strategy withholds, when one anchor is used).

    Example
    -------
    >>> from recsift.data import InteractionMatrix, TrainingSet
    >>> ts = TrainingSet(InteractionMatrix.from_pairs(np.array([0, 0]), np.array([1, 2]), 1, 2))
    >>> explain_disclosure(ts, np.array([True, False]), np.array([.3, .01]))[["user", "item"]].values.tolist()
    [[0, 2]]
    """
    if train_set.kind != "matrix":
        raise ConfigError("explain_disclosure explains a user x item matrix training set")
    u, i = train_set.data.coo_pairs()
    kept = np.asarray(kept, bool)
    influence = np.asarray(influence, np.float64)
    if kept.shape != u.shape or influence.shape != u.shape:
        raise ConfigError(f"kept and influence need one value per interaction ({len(u)})")
    df = pd.DataFrame({"user": u, "item": i, "disclosed": kept, "influence": influence})
    if beta is not None:
        df["unwillingness"] = np.asarray(beta, np.float64)
        df["net"] = df["influence"] - check_lambda(lam) * df["unwillingness"]
    if users is not None:
        df = df[df["user"].isin(np.asarray(users))]
    if withheld_only:
        df = df[~df["disclosed"]]
    return df.sort_values(["user", "influence"], ascending=[True, False]).reset_index(drop=True)
