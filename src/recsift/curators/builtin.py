"""The built-in curators: random, popularity, prefix_length, score (top-k by any registered score), CCS, D2, Moderate, Prototype.

Each is ``select(train_set, pool, m, ctx, view, **params) -> Selection``: choose ``m`` of the
selection units in ``pool`` (all units, or those left after the item-coverage set). Scores are
computed for every unit (the report shows them all) and selection happens inside the pool.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..data import TrainingSet
from ..errors import ConfigError
from ..scoring import compute_score, get_score, oriented, rank_normalise
from .base import CurationContext, Selection, UnitView, fingerprint, register_curator
from .units import sample_targets, target_popularity, unit_mean, unit_mean_rows


def unit_scores(train_set: TrainingSet, ctx: CurationContext, view: UnitView, name: str,
                score_params: dict[str, Any] | None = None) -> np.ndarray:
    """Score ``name`` of every unit (mean over a unit's samples; embedding scores on unit embeddings)."""
    spec = get_score(name)
    inputs = ctx.score_inputs(train_set, embeddings=spec.needs == "embeddings")
    if spec.needs == "embeddings":
        from dataclasses import replace

        inputs = replace(inputs, embeddings=unit_mean_rows(inputs.embeddings, view.unit_of, view.n_units))
        return compute_score(name, inputs, **(score_params or {}))
    return unit_mean(compute_score(name, inputs, **(score_params or {})), view.unit_of, view.n_units)


def _pool_top(pool: np.ndarray, hardness: np.ndarray, m: int, keep: str) -> np.ndarray:
    from ..selection import select_top

    if keep not in ("hard", "easy"):
        raise ConfigError(f"keep={keep!r}: use 'hard' (keep the most important samples) or 'easy' (drop the hardest, "
                          "e.g. to remove noise)")
    return pool[select_top(hardness[pool], m, keep="high" if keep == "hard" else "low")]


@register_curator("random")
def random_curator(train_set: TrainingSet, pool: np.ndarray, m: int, ctx: CurationContext,
                   view: UnitView) -> Selection:
    """Uniform random units: the baseline every curator must beat."""
    from ..selection import select_random

    return Selection(pool[select_random(len(pool), m, rng=ctx.rng())])


def _top_ties_random(pool: np.ndarray, s: np.ndarray, m: int, high: bool, ctx: CurationContext) -> np.ndarray:
    """The ``m`` units of ``pool`` with the highest (lowest) ``s``; ties, common in data statistics,
    broken at random (seeded) instead of by index."""
    perm = ctx.rng(3).permutation(len(pool))
    return pool[_pool_top(perm, s[pool], m, "hard" if high else "easy")]


@register_curator("popularity")
def popularity_curator(train_set: TrainingSet, pool: np.ndarray, m: int, ctx: CurationContext, view: UnitView, *,
                       keep: str = "head") -> Selection:
    """Data-only baseline, no probe: keep the units whose targets are most popular in ``train_set``
    (``keep='head'``; mean over a unit's samples of its target's training count), or least (``'tail'``)."""
    if keep not in ("head", "tail"):
        raise ConfigError(f"keep={keep!r}: use 'head' (the most popular targets) or 'tail' (the least popular)")
    s = unit_mean(target_popularity(sample_targets(train_set)).astype(np.float64), view.unit_of, view.n_units)
    return Selection(_top_ties_random(pool, s, m, keep == "head", ctx), s, "target_popularity")


@register_curator("prefix_length", kind="sequence")
def prefix_length_curator(train_set: TrainingSet, pool: np.ndarray, m: int, ctx: CurationContext, view: UnitView, *,
                          keep: str = "long") -> Selection:
    """Data-only baseline for sequence data, no probe: keep the units with the longest histories before
    their targets (``keep='long'``; a unit's mean prefix length), or the shortest (``'short'``)."""
    if keep not in ("long", "short"):
        raise ConfigError(f"keep={keep!r}: use 'long' (the longest prefixes) or 'short' (the shortest)")
    if train_set.kind != "sequence":
        raise ConfigError("curator 'prefix_length' needs sequence data (prefix samples); this training set is an "
                          "interaction matrix: use split.training_set('sequence') or another curator")
    s = unit_mean(train_set.data.prefix_lengths.astype(np.float64), view.unit_of, view.n_units)
    return Selection(_top_ties_random(pool, s, m, keep == "long", ctx), s, "prefix_length")


@register_curator("score")
def score_curator(train_set: TrainingSet, pool: np.ndarray, m: int, ctx: CurationContext, view: UnitView, *,
                  score: str = "el2n", keep: str = "hard", score_params: dict[str, Any] | None = None) -> Selection:
    """Monotonic selection by a score (ALGORITHMS §2.3): keep the ``m`` hardest units (or easiest)."""
    s = unit_scores(train_set, ctx, view, score, score_params)
    return Selection(_pool_top(pool, oriented(s, get_score(score).hard), m, keep), s, score)


@register_curator("ccs")
def ccs_curator(train_set: TrainingSet, pool: np.ndarray, m: int, ctx: CurationContext, view: UnitView, *,
                score: str = "aum", beta: float = 0.0, n_strata: int = 50, cutoff: str = "aum",
                score_params: dict[str, Any] | None = None) -> Selection:
    """Coverage-centric coreset selection (Zheng et al. 2023, ALGORITHMS §4): drop the ``beta`` hardest
    by ``cutoff`` (AUM), stratify by ``score``, allocate the budget smallest stratum first, sample."""
    from ..selection import after_cutoff, select_ccs

    s = unit_scores(train_set, ctx, view, score, score_params)
    cut_s = oriented(unit_scores(train_set, ctx, view, cutoff), "low" if get_score(cutoff).hard == "high" else "high")
    s_pool = oriented(s[pool], get_score(score).hard)
    left, dropped = after_cutoff(s_pool, m, cut_s[pool], beta)
    idx = left[select_ccs(s_pool[left], m, n_strata=n_strata, rng=ctx.rng(1))]
    return Selection(pool[idx], s, score, pool[dropped])


def build_graph(ctx: CurationContext, view: UnitView, pool: np.ndarray, graph: str, k: int,
                max_candidates_per_item: int) -> Any:
    """The data graph over the pool's units: item-sharing sessions or kNN of probe embeddings
    (memoised on ``ctx``: a target-counted budget asks the curator for several unit counts)."""
    import hashlib

    key = "graph|" + hashlib.sha256(b"|".join([
        fingerprint(view.train_set).encode(), ctx.unit.encode(), f"{graph}|{k}|{max_candidates_per_item}".encode(),
        np.ascontiguousarray(pool).tobytes()])).hexdigest()
    if key not in ctx._memo:
        ctx._memo[key] = _build_graph(ctx, view, pool, graph, k, max_candidates_per_item)
    return ctx._memo[key]


def _build_graph(ctx: CurationContext, view: UnitView, pool: np.ndarray, graph: str, k: int,
                 max_candidates_per_item: int) -> Any:
    from ..selection import knn_graph, session_graph
    from ..selection.graphs import segment_positions

    if graph == "session":
        indptr, items = view.items()
        lens = np.diff(indptr)[pool]
        sub_ptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        return session_graph(sub_ptr, items[segment_positions(indptr[pool], lens)], k=k,
                             max_candidates_per_item=max_candidates_per_item, rng=ctx.rng(2))
    if graph == "knn":
        emb = unit_mean_rows(ctx.score_inputs(view.train_set, embeddings=True).embeddings, view.unit_of, view.n_units)
        return knn_graph(emb[pool], k=k)
    raise ConfigError(f"graph={graph!r}: use 'session' (units sharing items) or 'knn' (probe embeddings)")


@register_curator("d2")
def d2_curator(train_set: TrainingSet, pool: np.ndarray, m: int, ctx: CurationContext, view: UnitView, *,
               score: str = "el2n", graph: str = "session", k: int = 10, gamma_f: float = 1.0, gamma_r: float = 0.1,
               max_candidates_per_item: int = 200, score_params: dict[str, Any] | None = None) -> Selection:
    """D2 pruning (Maharana et al. 2024, ALGORITHMS §5): forward message passing of rank-normalised
    scores on a data graph, then greedy selection with reverse message passing."""
    from ..selection import select_d2

    s = unit_scores(train_set, ctx, view, score, score_params)
    g = build_graph(ctx, view, pool, graph, k, max_candidates_per_item)
    idx = select_d2(rank_normalise(s[pool], get_score(score).hard), m, graph=g, gamma_f=gamma_f, gamma_r=gamma_r)
    return Selection(pool[idx], s, score)


@register_curator("moderate")
def moderate_curator(train_set: TrainingSet, pool: np.ndarray, m: int, ctx: CurationContext,
                     view: UnitView) -> Selection:
    """Moderate coreset (Xia et al. 2023): the units whose distance to the median embedding is closest
    to the median distance."""
    s = unit_scores(train_set, ctx, view, "moderate")
    return Selection(_pool_top(pool, s, m, "easy"), s, "moderate")


@register_curator("prototype")
def prototype_curator(train_set: TrainingSet, pool: np.ndarray, m: int, ctx: CurationContext, view: UnitView, *,
                      n_clusters: int = 100, keep: str = "hard") -> Selection:
    """Prototypicality (Sorscher et al. 2022): k-means on probe embeddings, keep the units farthest from
    their centroid (``keep='easy'``: nearest, better when data is scarce)."""
    s = unit_scores(train_set, ctx, view, "prototype", {"n_clusters": n_clusters, "seed": ctx.seed})
    return Selection(_pool_top(pool, s, m, keep), s, "prototype")
