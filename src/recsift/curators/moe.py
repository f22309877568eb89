"""The ``moe`` curator: MoE data pruning (dataPruning4Rec, ALGORITHMS.md §6–7).

"MoE (ours)" is exactly: the item-coverage set first (inside the budget), then D2 on the
item-sharing session graph over rank-normalised MoE scores. The experts (default CORE,
GRU4Rec, SR-GNN) are trained on the full training set with early stopping and frozen; only the
gate trains. Ablations are parameters: ``selector="top"`` (plain top-k by the MoE score),
``weighting`` = mean / global / single expert, gate ``k`` and ``bal_coef``; the selection unit
comes from the context (prefix sample or whole session).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data import TrainingSet
from ..errors import ConfigError
from ..scoring import oriented, rank_normalise
from ..train import TrainConfig
from .base import COST_PREFIX, CurationContext, Selection, UnitView, fingerprint, register_curator
from .units import unit_mean

#: which end of each MoE score is hard
MOE_SCORES = {"moe_aum": "low", "moe_loss": "high", "moe_entropy": "high", "moe_el2n": "high",
              "gw_el2n": "high", "gw_entropy": "high", "agreement": "low"}


def moe_scores(train_set: TrainingSet, ctx: CurationContext, *, experts: tuple[str, ...], expert_epochs: int,
               expert_patience: int, weighting: str, k: int, bal_coef: float, gate_epochs: int,
               single: str | int = 0, gate_data: str = "train") -> dict[str, Any]:
    """Train (or reuse) the experts, fit the weighting, and score every sample; memoised on ``ctx``."""
    from ..moe import fit_gate, fixed_weights, mixture_scores

    fp = fingerprint(train_set)
    cfg = ctx.probe_config.model_copy(update={"epochs": expert_epochs, "patience": expert_patience,
                                              "seed": ctx.seed, "eval_every": 1})
    ekey = f"experts|{fp}|{experts}|{cfg.identity()}"
    if ekey not in ctx._memo:
        ex, outs, cost = _cached_experts(ctx, train_set, experts, cfg, ekey)
        ctx._memo[ekey] = ex, outs
        # what producing the experts cost, also when read back from the cache (the runner adds the
        # seconds of cached pieces, so a row's curation time is its cost from scratch)
        ctx._memo[f"{COST_PREFIX}{ekey}"] = cost
    ex, outs = ctx._memo[ekey]
    skey = f"{ekey}|{weighting}|{k}|{bal_coef}|{gate_epochs}|{single}|{gate_data}"
    if skey not in ctx._memo:
        if weighting == "gate" and gate_data == "valid":
            fit = fit_gate(_valid_outputs(ex, train_set, ctx), k=k, bal_coef=bal_coef, epochs=gate_epochs,
                           seed=ctx.seed, apply_to=outs)
        elif weighting == "gate":
            fit = fit_gate(outs, k=k, bal_coef=bal_coef, epochs=gate_epochs, seed=ctx.seed,
                           sample_weights=train_set.weights)
        else:
            fit = fixed_weights(outs, weighting, expert=single)
        ctx._memo[skey] = {"scores": mixture_scores(ex, train_set, fit, outs), "fit": fit, "outputs": outs}
    return ctx._memo[skey]


def _valid_outputs(experts: list, train_set: TrainingSet, ctx: CurationContext) -> Any:
    """The frozen experts on the split's validation cases (held out from their training; their
    early stopping did look at them), with popularity statistics from the training data."""
    from ..moe import expert_outputs

    if ctx.split.valid is None or not len(ctx.split.valid):
        raise ConfigError("gate_data='valid' needs validation cases, and this split has none; use gate_data='train'")
    held = TrainingSet(ctx.split.valid.as_samples())
    counts = train_set.data.store.item_counts(ctx.split.n_items)
    return expert_outputs(experts, held, counts=counts)


def _cached_experts(ctx: CurationContext, train_set: TrainingSet, experts: tuple[str, ...], cfg: TrainConfig,
                    key: str) -> tuple[list, Any, dict[str, Any]]:
    """Train the experts and run them once, or read both back from ``ctx.cache_dir`` (the expert
    weights and their per-sample outputs; ``experts.json`` is written last and marks a complete entry)."""
    import hashlib
    import json

    import torch

    from ..models import build_model
    from ..moe import Expert, ExpertOutputs, expert_outputs, train_experts
    from ..utils.io import atomic_path, save_npz, write_json

    folder = None
    if ctx.cache_dir is not None:
        folder = Path(ctx.cache_dir) / f"experts-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        if (folder / "experts.json").is_file():
            meta = json.loads((folder / "experts.json").read_text())
            ex = []
            for name in meta["names"]:
                model = build_model(name, n_items=ctx.split.n_items, max_len=cfg.max_len)
                model.load_state_dict(torch.load(folder / f"{name}.pt", weights_only=True))
                model.eval().requires_grad_(False)
                ex.append(Expert(name, model, cfg))
            with np.load(folder / "outputs.npz") as z:
                outs = ExpertOutputs(tuple(meta["names"]), z["feats"], z["correct"], z["stats"], z["embedding"])
            return ex, outs, {"seconds": float(meta.get("seconds", 0.0)), "cached": True}
    t0 = time.perf_counter()
    ex = train_experts(ctx.split, train_set, list(experts), cfg)
    outs = expert_outputs(ex, train_set)
    secs = round(time.perf_counter() - t0, 2)
    if folder is not None:
        for e in ex:
            with atomic_path(folder / f"{e.name}.pt") as tmp:
                torch.save(e.model.state_dict(), tmp)
        save_npz(folder / "outputs.npz", feats=outs.feats, correct=outs.correct, stats=outs.stats,
                 embedding=outs.embedding)
        write_json(folder / "experts.json", {"names": list(experts), "config": cfg.model_dump(), "key": key,
                                             "seconds": secs})
    return ex, outs, {"seconds": secs, "cached": False}


@register_curator("moe")
def moe_curator(train_set: TrainingSet, pool: np.ndarray, m: int, ctx: CurationContext, view: UnitView, *,
                experts: tuple[str, ...] = ("core", "gru4rec", "srgnn"), score: str = "moe_aum",
                selector: str = "d2", weighting: str = "gate", k: int = 2, bal_coef: float = 1e-2,
                gate_epochs: int = 3, expert_epochs: int = 50, expert_patience: int = 5, single: str | int = 0,
                gamma_r: float = 0.1, graph_k: int = 10, max_candidates_per_item: int = 200,
                gate_data: str = "train", beta: float = 0.0, n_strata: int = 50) -> Selection:
    """MoE data pruning: a noisy top-k gate over frozen experts scores each sample by the mixture;
    item coverage first, then D2 on the item-sharing session graph over rank-normalised scores.
    ``gate_data="valid"`` trains the gate on the experts' outputs for the validation cases
    (held out from the experts' training) instead of the training samples (an ablation).
    Other selectors over the same scores (ablations): ``"top"`` keeps the hardest; ``"ccs"`` is
    CCS on the mixture score (stratified sampling over ``n_strata`` score strata). ``beta`` > 0
    first drops that fraction of the pool, hardest by the mixture score, before any selector (CCS's
    hard cutoff; D2's repository runs it before its graph sampling as the "mis-ratio")."""
    from ..selection import after_cutoff, select_ccs, select_d2, select_top
    from .builtin import build_graph

    if ctx.split is None:
        raise ConfigError("the moe curator trains its experts and needs the split (CurationContext(split=...))")
    if score not in MOE_SCORES:
        raise ConfigError(f"moe score {score!r} unknown; use one of {', '.join(MOE_SCORES)}")
    if selector not in ("d2", "top", "ccs"):
        raise ConfigError(f"selector={selector!r}: use 'd2' (graph message passing), 'top' (plain top-k) "
                          "or 'ccs' (hard cutoff + stratified sampling)")
    if gate_data not in ("train", "valid"):
        raise ConfigError(f"gate_data={gate_data!r}: use 'train' (the training samples) or 'valid' (held-out cases)")
    if gate_data == "valid" and weighting != "gate":
        raise ConfigError(f"gate_data='valid' trains the gate; it has no effect with weighting={weighting!r}")
    res = moe_scores(train_set, ctx, experts=tuple(experts), expert_epochs=expert_epochs,
                     expert_patience=expert_patience, weighting=weighting, k=k, bal_coef=bal_coef,
                     gate_epochs=gate_epochs, single=single, gate_data=gate_data)
    s = unit_mean(res["scores"][score].astype(np.float64), view.unit_of, view.n_units)
    hard = MOE_SCORES[score]
    h = oriented(s[pool], hard)  # higher = harder; the cutoff drops the highest
    left, dropped = after_cutoff(h, m, -h, beta)
    rest = pool[left]
    if selector == "ccs":
        kept = rest[select_ccs(h[left], m, n_strata=n_strata, rng=ctx.rng(1))]
    elif selector == "top":
        kept = rest[select_top(oriented(s[rest], hard), m, keep="high")]
    else:
        g = build_graph(ctx, view, rest, "session", graph_k, max_candidates_per_item)
        kept = rest[select_d2(rank_normalise(s[rest], hard), m, graph=g, gamma_r=gamma_r)]
    cut = pool[dropped] if beta else None
    share = res["fit"].routing_share()
    return Selection(kept, s, score, cut, info={"routing_share": {n: round(float(v), 4) for n, v in
                                                             zip(res["outputs"].names, share)}})


moe_curator.coverage_first = True  # type: ignore[attr-defined]
