"""The curator protocol: ``curate(train_set, budget, ctx) -> (TrainingSet, CurationReport)``.

A curator chooses which selection units (prefix samples, or whole sessions/users) of a
training set to keep within a budget. Curators register by name; the scored ones share a
probe model trained once per training set (`CurationContext.score_inputs`), and every curator
can put an item-coverage set first (ALGORITHMS.md §5.4): the units that together cover every
training item are kept before the method selects the rest, counted inside the budget.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Budget, SplitData, TrainingSet
from ..errors import ConfigError, unknown_name
from ..scoring import ScoreInputs
from ..train import TrainConfig
from ..utils.plugins import load_plugins, lookup
from .units import unit_index, unit_items

log = logging.getLogger(__name__)

#: why a sample was kept or dropped (``CurationReport.reason`` holds indices into this tuple)
REASONS = ("dropped: over budget", "kept: selected", "kept: item coverage", "dropped: hard cutoff",
           "replaced: regenerated data", "dropped: withheld by the user")
DROPPED, SELECTED, COVERAGE, CUTOFF, REPLACED, WITHHELD = range(6)

#: ``ctx._memo`` keys starting with this hold ``{"seconds", "cached"}``: what an expensive reusable
#: piece of a curation (e.g. the MoE experts) cost to produce, also when it was read from the cache
COST_PREFIX = "cost|"


def probe_cost_key(probe_key: str) -> str:
    """The ``ctx._memo`` cost entry of the probe with key ``probe_key``."""
    return f"{COST_PREFIX}probe|{probe_key}"


def cached_cost_seconds(ctx: CurationContext) -> float:
    """Seconds of the reusable pieces ``ctx`` read from the cache instead of producing them."""
    return float(sum(v["seconds"] for k, v in ctx._memo.items() if k.startswith(COST_PREFIX) and v["cached"]))


@dataclass
class CurationContext:
    """What curators may use beyond the training set: the split (for the probe model's
    validation cases), the probe model and its training config, the seed, the selection unit,
    whether an item-coverage set comes first, a cache folder for probe outputs, and what a budget
    counts (``budget_in``: selection units, or training targets kept — with the user unit a
    fraction then keeps that fraction of prefix samples, in whole users)."""

    def __post_init__(self) -> None:
        if self.unit not in ("sample", "user"):
            raise ConfigError(f"selection unit {self.unit!r}: use 'sample' (a prefix sample / interaction) or 'user' "
                              "(a user's whole history; on session data, where each session is a user, a whole session)")
        if self.budget_in not in ("units", "targets"):
            raise ConfigError(f"budget_in={self.budget_in!r}: use 'units' or 'targets'")

    split: SplitData | None = None
    seed: int = 0
    unit: str = "sample"
    coverage: bool | None = None  # None = the curator's default (only moe puts coverage first)
    probe: str = "gru4rec"
    probe_config: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, patience=None, lr=1e-3))
    probe_params: dict[str, Any] = field(default_factory=dict)
    cache_dir: Path | None = None
    max_len: int = 50
    budget_in: str = "units"  # "targets": a budget counts kept training targets whatever the unit
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def rng(self, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])

    def score_inputs(self, train_set: TrainingSet, *, embeddings: bool = False) -> ScoreInputs:
        """Train the probe model once on ``train_set`` recording its dynamics; return them with the
        final model's eval-mode outputs (and embeddings). Memoised, and cached on disk under
        ``cache_dir`` keyed by the training set, probe model, config and seed."""
        from .probe import probe_outputs

        key = self.probe_key(train_set)
        hit = self._memo.get(key)
        if hit is None or (embeddings and hit.embeddings is None):
            hit = probe_outputs(self, train_set, key, embeddings=embeddings)
            self._memo[key] = hit
            meta = hit.extra["probe"]
            self._memo[probe_cost_key(key)] = {"seconds": float(meta["seconds"]), "cached": bool(meta["cached"])}
        return hit

    def probe_key(self, train_set: TrainingSet) -> str:
        h = hashlib.sha256()
        h.update(fingerprint(train_set).encode())
        h.update(f"{self.probe}|{sorted(self.probe_params.items())}|{self.probe_config.identity()}".encode())
        return h.hexdigest()[:16]


def fingerprint(train_set: TrainingSet) -> str:
    """Hash of which units a training set holds (sample ids / user-item pairs) and its weights."""
    h = hashlib.sha256()
    d = train_set.data
    arrays = (d.sample_id, d.user, d.pos) if hasattr(d, "sample_id") else d.coo_pairs()
    for a in (*arrays, train_set.weights):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


@dataclass
class CurationReport:
    """Per-sample record of a curation: kept mask, reason code (see `REASONS`), the score used."""

    method: str
    params: dict[str, Any]
    budget: str
    unit: str
    n_units: int
    kept: np.ndarray  # bool [n_samples]
    reason: np.ndarray  # int8 [n_samples]
    scores: np.ndarray | None = None  # float64 [n_samples], the method's score (native direction)
    score_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        counts = np.bincount(self.reason, minlength=len(REASONS))
        return {"method": self.method, "params": self.params, "budget": self.budget, "unit": self.unit,
                "n_units": self.n_units, "n_samples": int(len(self.kept)), "kept_samples": int(self.kept.sum()),
                "score": self.score_name, "reasons": {r: int(c) for r, c in zip(REASONS, counts) if c},
                **self.extra}


@dataclass(frozen=True)
class Selection:
    """What a curator's ``select`` returns: kept unit indices (+ units cut before selection)."""

    kept: np.ndarray
    unit_scores: np.ndarray | None = None
    score_name: str | None = None
    cut: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)  # goes into the report's summary (e.g. MoE routing)


#: select(train_set, pool, m, ctx, view, **params) -> Selection over units in ``pool``
SelectFn = Callable[..., Selection]
CURATORS: dict[str, SelectFn] = {}


def register_curator(name: str, *, transform: bool = False, kind: str | None = None) -> Callable[[SelectFn], SelectFn]:
    """Register a curator under ``name``.

    A selecting curator (the default) is ``select(train_set, pool, m, ctx, view, **params) ->
    Selection`` and `curate` handles budget, units and coverage around it. A *transforming*
    curator (``transform=True``: regeneration, disclosure masks) is ``fn(train_set, ctx, budget,
    **params) -> Transformed`` and returns a training set of its own making; ``budget`` may be
    None when the method has none. ``kind`` is the training-set kind the curator needs
    (``"sequence"`` or ``"matrix"``; None = either), used to pick a split's training set.
    """
    def deco(fn: SelectFn) -> SelectFn:
        if name in CURATORS:
            raise ValueError(f"curator {name!r} registered twice")
        fn.transform = transform  # type: ignore[attr-defined]
        fn.kind = kind  # type: ignore[attr-defined]
        CURATORS[name] = fn
        return fn

    return deco


#: modules outside ``recsift.curators`` that register curators (imported on first need, so
#: that ``recsift.curators`` does not import the method families that build on it)
PLUGINS: tuple[str, ...] = ("recsift.distill", "recsift.disclose", "recsift.regen")


def list_curators() -> list[str]:
    load_plugins(PLUGINS)
    return sorted(CURATORS)


def get_curator(name: str) -> SelectFn:
    return lookup(CURATORS, name, "curator", PLUGINS)


@dataclass(frozen=True)
class Transformed:
    """What a transforming curator returns: the new training set; ``kept`` (bool per input
    unit) when it is a subset of the input, else None (regenerated data); per-input scores."""

    train_set: TrainingSet
    kept: np.ndarray | None = None
    scores: np.ndarray | None = None
    score_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    dropped_reason: int = DROPPED  # index into REASONS for the units not kept (e.g. WITHHELD)


def resolve_method(method: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A score name used as a method means the ``score`` curator with that score."""
    from ..scoring import SCORES

    if method not in CURATORS:
        load_plugins(PLUGINS)
    if method in CURATORS:
        return method, params
    if method in SCORES:
        return "score", {"score": method, **params}
    raise unknown_name("curation method", method, list(dict.fromkeys([*CURATORS, *SCORES])))


@dataclass
class UnitView:
    """The units of one training set: the unit of every sample, and lazily their item sets."""

    train_set: TrainingSet
    unit_of: np.ndarray
    n_units: int
    max_len: int
    _items: tuple[np.ndarray, np.ndarray] | None = None

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        if self._items is None:
            self._items = unit_items(self.train_set, self.unit_of, self.n_units, max_len=self.max_len)
        return self._items


def curate(train_set: TrainingSet, method: str, budget: Budget | float | int | str | None,
           ctx: CurationContext | None = None, **params: Any) -> tuple[TrainingSet, CurationReport]:
    """Keep ``budget`` units of ``train_set`` chosen by curator ``method``.

    The budget counts selection units (``ctx.unit``: prefix samples, or users/sessions), or with
    ``ctx.budget_in="targets"`` training targets (prefix samples / interactions) kept in whole
    units (`units_within_targets`). With ``ctx.coverage`` the item-coverage set is kept first,
    inside the budget.

    Example
    -------
    >>> from recsift.data import load_split
    >>> split = load_split("synthetic")
    >>> ts = split.training_set()
    >>> kept, report = curate(ts, "random", 0.5, CurationContext(split=split))
    >>> len(kept) == len(ts) // 2
    True
    """
    from ..selection import item_coverage, select_with_prefix

    ctx = ctx or CurationContext()
    train_set.require_samples("curate")
    name, params = resolve_method(method, dict(params))
    fn = CURATORS[name]
    params = check_params(name, fn, params)
    if getattr(fn, "transform", False):
        return _curate_transform(train_set, name, fn, budget, ctx, params)
    if budget is None:
        raise ConfigError(f"curator {name!r} needs a budget (a kept fraction in (0, 1] or a count)")
    budget = Budget.parse(budget)
    unit_of, n_units = unit_index(train_set, ctx.unit)
    view = UnitView(train_set, unit_of, n_units, ctx.max_len)
    by_targets = ctx.budget_in == "targets" and ctx.unit != "sample"
    m = budget.resolve(len(train_set) if by_targets else n_units, "target" if by_targets else ctx.unit)
    t0 = time.perf_counter()
    prefix = np.zeros(0, np.int64)
    sizes = np.bincount(unit_of, minlength=n_units)
    if ctx.coverage if ctx.coverage is not None else getattr(fn, "coverage_first", False):
        indptr, items = view.items()
        prefix = item_coverage(indptr, items)
        need = int(sizes[prefix].sum()) if by_targets else len(prefix)
        if need > m:
            from ..errors import BudgetError

            what = "training targets" if by_targets else f"{ctx.unit}s"
            raise BudgetError(f"the item-coverage set needs {need} {what} to cover every training item, but "
                              f"the budget keeps only {m}; raise the budget to at least {need} or turn coverage off")
    result: dict[str, Selection] = {}

    def select_units(k: int) -> np.ndarray:
        def rest(pool: np.ndarray, m_rest: int) -> np.ndarray:
            sel = fn(train_set, pool, m_rest, ctx, view, **params)
            result["sel"] = sel
            return sel.kept

        if len(prefix):
            return select_with_prefix(prefix, n_units, k, rest)
        return rest(np.arange(n_units, dtype=np.int64), k)

    if by_targets:
        kept_units = units_within_targets(select_units, sizes, m, min_units=max(1, len(prefix)))
        m_units = len(kept_units)
    else:
        kept_units = select_units(m)
        m_units = m
    sel = result.get("sel", Selection(kept_units))
    if len(kept_units) != m_units or len(np.unique(kept_units)) != m_units:
        raise AssertionError(f"curator {name!r} returned {len(kept_units)} units for a budget of {m_units}")
    unit_reason = np.full(n_units, DROPPED, np.int8)
    if sel.cut is not None:
        unit_reason[sel.cut] = CUTOFF
    unit_reason[kept_units] = SELECTED
    unit_reason[prefix] = COVERAGE
    reason = unit_reason[unit_of]
    kept = reason == SELECTED
    kept |= reason == COVERAGE
    scores = sel.unit_scores[unit_of] if sel.unit_scores is not None else None
    report = CurationReport(method=name, params=params, budget=str(budget), unit=ctx.unit, n_units=n_units, kept=kept,
                            reason=reason, scores=scores, score_name=sel.score_name,
                            extra={"coverage_units": int(len(prefix)), "kept_units": int(m_units),
                                   "budget_in": "targets" if by_targets else "units",
                                   "kept_targets": int(sizes[kept_units].sum()),
                                   "select_seconds": round(time.perf_counter() - t0, 3), "seed": ctx.seed,
                                   **sel.info})
    out = train_set.subset(np.flatnonzero(kept), curator=name, budget=str(budget), unit=ctx.unit, seed=ctx.seed,
                           **{f"param_{k}": v for k, v in params.items()})
    return out, report


def units_within_targets(select_units: Callable[[int], np.ndarray], sizes: np.ndarray, max_targets: int, *,
                         min_units: int = 1, max_calls: int = 16) -> np.ndarray:
    """Whole units whose targets add up to at most ``max_targets``, as many as fit.

    A curator selects a number of *units*; when the budget counts training targets and units
    hold several (sessions), this searches the unit count ``k`` — a secant guess from the mean
    unit size, then bisection — for the largest ``k`` whose selection still fits, calling
    ``select_units(k)`` at most ``max_calls`` times. The result may fall short of the budget by
    less than the size of one unit (whole units only), and by more only if the curator's
    choice is far from monotone in ``k``.
    """
    n_units = len(sizes)
    lo, hi = min_units, n_units  # the answer lies in [lo, hi]
    best: np.ndarray | None = None
    best_t = -1
    k = int(np.clip(round(max_targets / max(sizes.mean(), 1e-12)), lo, hi))
    for _ in range(max_calls):
        kept = select_units(k)
        t = int(sizes[kept].sum())
        if t <= max_targets:
            if best is None or t > best_t:
                best, best_t = kept, t
            lo = k + 1
        else:
            hi = k - 1
        if lo > hi:
            break
        guess = round(k * max_targets / max(t, 1))
        k = int(np.clip(guess, lo, hi)) if lo <= guess <= hi else (lo + hi) // 2
    if best is None:
        from ..errors import BudgetError

        raise BudgetError(f"no selection of at least {min_units} whole units fits a budget of {max_targets} training "
                          "targets; raise the budget or count it in units (budget_in='units')")
    return np.sort(best)


def _curate_transform(train_set: TrainingSet, name: str, fn: SelectFn, budget: Any, ctx: CurationContext,
                      params: dict[str, Any]) -> tuple[TrainingSet, CurationReport]:
    budget = None if budget is None else Budget.parse(budget)
    t0 = time.perf_counter()
    res: Transformed = fn(train_set, ctx, budget, **params)
    n = len(train_set)
    kept = np.zeros(n, bool) if res.kept is None else np.asarray(res.kept, bool)
    if kept.shape != (n,):
        raise AssertionError(f"curator {name!r} returned a kept mask of shape {kept.shape}, expected ({n},)")
    reason = np.where(kept, SELECTED, res.dropped_reason if res.kept is not None else REPLACED).astype(np.int8)
    report = CurationReport(method=name, params=params, budget=str(budget), unit="sample", n_units=n, kept=kept,
                            reason=reason, scores=res.scores, score_name=res.score_name,
                            extra={"regenerated": res.kept is None, "output_samples": len(res.train_set),
                                   "select_seconds": round(time.perf_counter() - t0, 3), "seed": ctx.seed,
                                   **res.extra})
    prov = {"curator": name, "budget": str(budget), "seed": ctx.seed, **{f"param_{k}": v for k, v in params.items()}}
    out = TrainingSet(res.train_set.data, res.train_set.weights, {**res.train_set.provenance, **prov})
    return out, report


def check_params(name: str, fn: SelectFn, params: dict[str, Any]) -> dict[str, Any]:
    """Unknown curator parameters, or values of the wrong type, are an error listing the accepted ones
    (before any work); returns the parameters validated against the curator's annotations."""
    import inspect

    allowed = [p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY]
    extra = sorted(set(params) - set(allowed))
    if extra:
        raise ConfigError(f"curator {name!r} got unknown parameter(s) {extra}; it accepts {sorted(allowed) or 'none'}")
    from ..utils.params import validate_kwargs

    return validate_kwargs(f"curator {name!r}", fn, params)
