"""The experiment runner: expand a config into cached steps, run what is missing, write the table.

Grid (`plan_experiment`), per dataset and seed:

- a **curation** step per curator x budget: curate the full training set, save the curation
  folder (`recsift.curators.save_curation`) and ``explain.npz`` beside it (`save_explain`:
  users, items, MoE expert agreement, a sample of embeddings, for the report);
- a **retrain** step per curation x model, and per model on the full data (the reference
  rows, budget 1.0): train, evaluate on the fixed test cases, write ``result.json`` and
  ``per_user.npz`` (test users + per-case metric arrays, for paired significance tests).

Every step is cached by content hash (`recsift.experiment.cache`); `run_experiment` checks
the config, plans, skips finished steps, hands the rest to an executor (local or Ray), and
writes ``results.csv`` (and ``results.parquet`` when pyarrow is installed): one row per
dataset x curator x budget x model x seed.

Example
-------
>>> from recsift.experiment import ExperimentConfig, run_experiment
>>> cfg = ExperimentConfig.from_dict({"datasets": ["synthetic"], "curators": ["random"], "budgets": [0.5],
...     "models": ["pop"], "runs_dir": "runs/doctest"})
>>> res = run_experiment(cfg)  # doctest: +SKIP
>>> res.table[["curator", "budget", "model", "retained"]]  # doctest: +SKIP
"""
from __future__ import annotations

import functools
import json
import logging
import os
import socket
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import BudgetError, DataFormatError
from ..utils.io import save_npz, write_atomic, write_json
from ..utils.runtime import PeakMemory
from .cache import (claim, data_fingerprint, file_lock, is_done, read_marker, step_folder, step_key,
                    write_marker)
from .config import DataRef, ExperimentConfig, ResolvedExperiment, resolve

log = logging.getLogger(__name__)

FORMAT = 1  # bump when a step's artifacts change meaning: every key changes with it
EXPLAIN = "explain.npz"  # per-sample context for the report, beside a curation's samples.npz
EXPLAIN_MAX_EMBEDDED = 5000  # embeddings kept for the report's 2-D map (a random subset of samples)
EXPLAIN_STREAM = 0x6578706C  # first seed word of that subset's RNG, so it is independent of every curator's
TIMING_COLUMNS = ("curation_seconds", "retrain_seconds_per_epoch", "peak_rss_mb", "curation_peak_rss_mb")


@dataclass(frozen=True)
class Step:
    """One unit of cached work. ``inputs`` is exactly what its ``key`` hashes."""

    kind: str  # "curation" | "retrain"
    key: str
    label: str
    folder: str
    runs_dir: str
    data: DataRef
    data_key: str
    inputs: dict[str, Any]
    needs: tuple[str, ...] = ()
    upstream: str | None = None  # a retrain's curation folder (None: the full training set)


@dataclass(frozen=True)
class Cell:
    """One row of the results table and the steps it reads."""

    dataset: str
    curator: str
    method: str
    unit: str
    budget: str
    model: str
    seed: int
    curation: Step | None
    retrain: Step


@dataclass
class Plan:
    """The expanded grid: steps in dependency order (curations first) and the table's cells."""

    experiment: ResolvedExperiment
    steps: list[Step]
    cells: list[Cell]

    def pending(self) -> list[Step]:
        return [s for s in self.steps if not is_done(s.folder)]


@dataclass
class RunResult:
    """What `run_experiment` did: the table, where it is, and which steps ran or were cached."""

    table: pd.DataFrame
    table_path: Path
    headline: str
    n_steps: int
    ran: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_ran(self) -> int:
        return sum(o["status"] == "ran" for o in self.ran)

    @property
    def n_cached(self) -> int:
        return self.n_steps - self.n_ran


# ---------------------------------------------------------------- planning
def plan_experiment(cfg: ExperimentConfig | ResolvedExperiment) -> Plan:
    """Expand the grid into steps with their keys and folders. Reads the datasets, writes nothing."""
    exp = cfg if isinstance(cfg, ResolvedExperiment) else resolve(cfg)
    steps: dict[str, Step] = {}  # by key: identical steps from different entries run once
    cells: list[Cell] = []
    names = [m for m, _ in exp.models]
    models = [(m, p, m if names.count(m) == 1 else f"{m}({','.join(f'{k}={v}' for k, v in sorted(p.items()))})")
              for m, p in exp.models]
    for ref in exp.datasets:
        split, dkey = _load_split(ref.source, ref.split, ref.data_dir)
        _check_budgets(exp, split)
        data = (exp, ref, split.name, dkey)
        dlabel = ref.label or split.name
        for seed in exp.seeds:
            for model, params, mlabel in models:
                full = _retrain_step(data, None, f"full-s{seed}", model, params, seed)
                cells.append(Cell(dlabel, "full", "full", "sample", "1.0", mlabel, seed, None,
                                  steps.setdefault(full.key, full)))
            for cur in exp.curators:
                for budget in exp.budgets:
                    cstep = _curation_step(data, cur, str(budget), seed)
                    cstep = steps.setdefault(cstep.key, cstep)
                    for model, params, mlabel in models:
                        rstep = _retrain_step(data, cstep, _curation_slug(cur, str(budget), seed), model, params,
                                              seed)
                        cells.append(Cell(dlabel, cur.label, cur.method, cur.unit, str(budget), mlabel, seed, cstep,
                                          steps.setdefault(rstep.key, rstep)))
    ordered = sorted(steps.values(), key=lambda s: s.kind != "curation")  # stable: curations first
    return Plan(exp, ordered, cells)


def _check_budgets(exp: ResolvedExperiment, split: Any) -> None:
    """Every budget must keep at least one and at most all units of every curator's unit kind (`BudgetError`)."""
    from ..curators.units import unit_index

    full = split.training_set(exp.kind)
    for unit, by in dict.fromkeys((c.unit, c.budget_in) for c in exp.curators):
        n_units = len(full) if by == "targets" else unit_index(full, unit)[1]
        for b in exp.budgets:
            try:
                b.resolve(n_units, "target" if by == "targets" else unit)
            except BudgetError as e:
                raise BudgetError(f"dataset {split.name!r}: {e}") from None


def _curation_step(data: tuple, cur: Any, budget: str, seed: int) -> Step:
    """Curate dataset ``data`` with ``cur`` at ``budget``; the probe settings count only for probe users."""
    exp, ref, name, dkey = data
    probe = {"model": exp.probe_model, "params": exp.probe_params,
             "train": exp.probe_train.model_dump(exclude={"progress"}) | {"seed": seed}}
    inputs = {"step": "curation", "format": FORMAT, "data": dkey, "kind": exp.kind, "method": cur.method,
              "params": cur.params, "unit": cur.unit, "coverage": cur.coverage, "budget": budget, "seed": seed,
              "probe": probe if cur.needs_probe else None}
    if cur.budget_in != "units":  # only then, so that the keys of existing runs stay the same
        inputs["budget_in"] = cur.budget_in
    return _step("curation", inputs, f"{ref.label or name} {cur.label} @ {budget} seed {seed}",
                 f"{name}-{_curation_slug(cur, budget, seed)}", data)


def _curation_slug(cur: Any, budget: str, seed: int) -> str:
    """The readable part of a curation's folder name (the key makes it unique)."""
    score = cur.params.get("score") if cur.method == "score" else None
    return f"{cur.method}{'-' + str(score) if score else ''}-{cur.unit}-{budget}-s{seed}"


def _retrain_step(data: tuple, cur: Step | None, slug: str, model: str, params: dict[str, Any], seed: int) -> Step:
    """Train ``model`` on the curation ``cur`` (None: the full training set) of dataset ``data``."""
    exp, ref, name, dkey = data
    inputs = {"step": "retrain", "format": FORMAT, "data": dkey, "kind": exp.kind, "curation": cur.key if cur else None,
              "model": model, "params": params, "train": exp.train.model_dump(exclude={"progress"}) | {"seed": seed}}
    return _step("retrain", inputs, f"{ref.label or name} {model} on {slug}", f"{name}-{model}-{slug}", data,
                 upstream=cur)


def _step(kind: str, inputs: dict[str, Any], label: str, slug: str, data: tuple, upstream: Step | None = None) -> Step:
    exp, ref, _, dkey = data
    key = step_key(inputs)
    return Step(kind, key, label, str(step_folder(exp.runs_dir, kind, slug, key)), str(exp.runs_dir), ref, dkey,
                inputs, (upstream.key,) if upstream else (), upstream.folder if upstream else None)


@functools.lru_cache(maxsize=2)
def _load_split(source: str, split: str | None, data_dir: str | None) -> tuple[Any, str]:
    """A dataset's split and content fingerprint, loaded once per process."""
    from ..data import load_split

    sd = load_split(source, split=split, data_dir=data_dir)
    return sd, data_fingerprint(sd)


def _split_of(step: Step) -> Any:
    """The split a step was planned on; an error if the data changed since."""
    d = step.data
    sd, key = _load_split(d.source, d.split, d.data_dir)
    if key != step.data_key:  # maybe stale in this long-lived process: read the files again
        _load_split.cache_clear()
        sd, key = _load_split(d.source, d.split, d.data_dir)
    if key != step.data_key:
        raise DataFormatError(f"dataset {d.source!r} changed while the experiment ran (fingerprint {key}, planned on "
                              f"{step.data_key}); run the experiment again to plan on the new data")
    return sd


# ---------------------------------------------------------------- steps
def run_step(step: Step) -> dict[str, Any]:
    """Run one step unless it is done; safe to call from several processes at once.

    Returns ``{"key", "kind", "label", "pid", "status": "ran" | "cached", "waited"}``;
    ``waited`` says whether another process held the step's lock when this one arrived.
    """
    base = {"key": step.key, "kind": step.kind, "label": step.label, "pid": os.getpid()}
    if is_done(step.folder):
        return {**base, "status": "cached", "waited": False}
    with claim(step.folder) as (run, waited):
        if not run:
            return {**base, "status": "cached", "waited": waited}
        t0 = time.perf_counter()
        with PeakMemory() as mem:
            info = (_curation if step.kind == "curation" else _retrain)(step, mem)
        seconds = round(time.perf_counter() - t0, 3)
        write_marker(step.folder, {**base, "seconds": seconds, "peak_rss_mb": mem.mb(), "host": socket.gethostname(),
                                   "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": _versions(),
                                   "inputs": step.inputs, **info})
    log.info("%s step %s done in %.1fs (%s)", step.kind, step.label, seconds, step.key)
    return {**base, "status": "ran", "waited": waited, "seconds": seconds}


def _curation(step: Step, mem: PeakMemory) -> dict[str, Any]:
    """Curate the full training set; write the curation folder. Returns the marker's extra fields."""
    from ..curators import CurationContext, curate, save_curation
    from ..curators.base import cached_cost_seconds, probe_cost_key
    from ..train import TrainConfig

    inp = step.inputs
    split = _split_of(step)
    full = split.training_set(inp["kind"])
    probe = inp["probe"]
    ctx = CurationContext(split=split, seed=inp["seed"], unit=inp["unit"], coverage=inp["coverage"],
                          cache_dir=Path(step.runs_dir) / "probes" / step.data_key,
                          budget_in=inp.get("budget_in", "units"))
    if probe:
        ctx.probe, ctx.probe_params = probe["model"], dict(probe["params"])
        ctx.probe_config = TrainConfig(**probe["train"])
    # curators sharing a probe wait for the first to train it, then read it from the probe cache
    pkey = ctx.probe_key(full) if probe else None
    with file_lock(ctx.cache_dir / f"probe-{pkey}.lock") if probe else nullcontext():
        t0 = time.perf_counter()
        kept, report = curate(full, inp["method"], inp["budget"], ctx, **inp["params"])
        seconds = time.perf_counter() - t0
    # pieces read from the cache (a probe, MoE experts) were produced by an earlier step: add their
    # seconds, so that every row shows what its curation costs from scratch
    seconds += cached_cost_seconds(ctx)
    reused = bool(pkey) and ctx._memo.get(probe_cost_key(pkey), {}).get("cached", False)
    save_curation(step.folder, full, report, dataset=split.name, protocol=split.protocol,
                  extra={"step_key": step.key}, curated=kept)
    save_explain(Path(step.folder) / EXPLAIN, split, full, ctx, seed=inp["seed"])
    # a regenerating curator may say what its "fraction kept" is (Distill-CF: synthetic / real users)
    fraction = float(report.extra.get("fraction_kept", len(kept) / len(full)))
    return {"kept_samples": len(kept), "n_samples": len(full), "fraction_kept": fraction,
            "curation_seconds": round(seconds, 3), "probe_reused": reused, "probe_key": pkey}


def save_explain(path: Path, split: Any, full: Any, ctx: Any, *, seed: int = 0,
                 max_embedded: int | None = None) -> Path:
    """What the report's explanation views read beside a curation (``explain.npz``), aligned with
    the rows of ``samples.npz``: each sample's ``user`` and (target) ``item``, the raw user ids
    (``user_raw``); the MoE expert ``agreement`` (experts with the target in their top K) with
    ``expert_names`` and the gate's ``routing_share``, when the curator was moe; and sample
    embeddings (MoE gate input, else the probe's when the curator computed them) for at most
    ``max_embedded`` random samples (``embedding_rows``, float16; default `EXPLAIN_MAX_EMBEDDED`), so
    the file stays small."""
    max_embedded = EXPLAIN_MAX_EMBEDDED if max_embedded is None else max_embedded
    d = full.data
    user, item = (d.user, d.targets) if hasattr(d, "sample_id") else d.coo_pairs()
    arrays: dict[str, Any] = {"user": user, "item": item, "user_raw": split.train.user_ids.astype(str)}
    emb = None
    for v in ctx._memo.values():  # what the curator computed (runner and curators share the context)
        if isinstance(v, dict) and "fit" in v and "outputs" in v:  # moe: {"scores", "fit", "outputs"}
            outs = v["outputs"]
            arrays.update(agreement=np.asarray(v["scores"]["agreement"], np.int16),
                          expert_names=np.asarray(outs.names, str), routing_share=v["fit"].routing_share())
            emb = outs.embedding
        elif emb is None and getattr(v, "embeddings", None) is not None:  # a probe's ScoreInputs
            emb = v.embeddings
    if emb is not None and len(emb) == len(full):
        # a stream of its own: default_rng(seed) equals the random curator's default_rng([seed, 0]), and a
        # sample drawn from it would hold exactly that curator's kept samples
        rows = np.sort(np.random.default_rng([EXPLAIN_STREAM, seed]).permutation(len(full))[:max_embedded])
        arrays.update(embedding_rows=rows, embedding=np.asarray(emb[rows], np.float16))
    return save_npz(path, **arrays)


def _retrain(step: Step, mem: PeakMemory) -> dict[str, Any]:
    """Train the model on the curated (or full) set; write ``result.json`` and ``per_user.npz``."""
    from .. import train as train_api
    from ..curators import load_curated

    inp = step.inputs
    split = _split_of(step)
    if step.upstream is None:
        train_set = split.training_set(inp["kind"])
        n_samples, curation_seconds, fraction = len(train_set), 0.0, 1.0
    else:
        if not is_done(step.upstream):
            raise DataFormatError(f"retrain step {step.label} needs the curation in {step.upstream}, which is not "
                                  "finished; run the experiment again (finished steps are kept)")
        train_set, _ = load_curated(step.upstream, split)
        cur = read_marker(step.upstream)
        n_samples, curation_seconds = cur["n_samples"], cur["curation_seconds"]
        fraction = cur.get("fraction_kept", len(train_set) / n_samples)
    cfg = train_api.TrainConfig(**inp["train"])
    # outside the step folder, which `claim` empties when it takes over an interrupted step
    ckpt = Path(step.runs_dir) / ".checkpoints" / f"{Path(step.folder).name}.pt"
    res = train_api.train_model(split, inp["model"], cfg, train_set=train_set, model_params=dict(inp["params"]),
                                checkpoint=ckpt)
    save_npz(Path(step.folder) / "per_user.npz", users=res.test_users, **res.test_per_case)
    result = {"dataset": split.name, "protocol": split.protocol, "model": inp["model"], "params": inp["params"],
              "metrics": res.test, "valid": res.valid, "kept_samples": len(train_set), "n_samples": n_samples,
              "fraction_kept": fraction, "curation_seconds": curation_seconds,
              "retrain_seconds_per_epoch": res.train_seconds_per_epoch, "epochs_run": len(res.history),
              "best_epoch": res.best_epoch, "peak_rss_mb": mem.mb(), "layout": res.layout, "device": res.device,
              "mask_history": res.extra.get("mask_history"), "pid": os.getpid(), "step_key": step.key}
    write_json(Path(step.folder) / "result.json", result)
    return {"metrics": res.test}


def _versions() -> dict[str, str]:
    import numpy
    import torch

    from .. import __version__

    return {"recsift": __version__, "torch": torch.__version__, "numpy": numpy.__version__}


# ---------------------------------------------------------------- the table
def collect_table(plan: Plan) -> pd.DataFrame:
    """One row per cell, read from the finished steps; ``retained`` = headline / full-data headline
    of the same dataset, model and seed."""
    exp = plan.experiment
    rows = []
    for c in plan.cells:
        r = json.loads((Path(c.retrain.folder) / "result.json").read_text())
        cpeak = read_marker(c.curation.folder)["peak_rss_mb"] if c.curation else None
        rows.append({"dataset": c.dataset, "curator": c.curator, "method": c.method, "unit": c.unit,
                     "budget": c.budget, "model": c.model, "seed": c.seed,
                     **{m: r["metrics"][m] for m in exp.metrics}, "retained": float("nan"),
                     "fraction_kept": r["fraction_kept"], "kept_samples": r["kept_samples"],
                     "n_samples": r["n_samples"], "curation_seconds": r["curation_seconds"],
                     "retrain_seconds_per_epoch": r["retrain_seconds_per_epoch"], "epochs": r["epochs_run"],
                     "peak_rss_mb": r["peak_rss_mb"], "curation_peak_rss_mb": cpeak,
                     "curation_step": c.curation.key if c.curation else "", "retrain_step": c.retrain.key})
    df = pd.DataFrame(rows)
    ref = df[df["curator"] == "full"].set_index(["dataset", "model", "seed"])[exp.headline]
    full = df.set_index(["dataset", "model", "seed"]).index.map(ref.get)
    df["retained"] = [v / f if f and f > 0 else float("nan") for v, f in zip(df[exp.headline], full)]
    return df


def write_table(df: pd.DataFrame, runs_dir: Path) -> Path:
    """``results.csv`` (and ``results.parquet`` with pyarrow installed), atomically; the CSV path."""
    import importlib.util

    path = write_atomic(runs_dir / "results.csv", lambda p: df.to_csv(p, index=False))
    if importlib.util.find_spec("pyarrow") is not None:
        write_atomic(runs_dir / "results.parquet", lambda p: df.to_parquet(p, index=False))
    return path


# ---------------------------------------------------------------- entry point
def run_experiment(cfg: ExperimentConfig, *, executor: Any = None) -> RunResult:
    """Check ``cfg``, run the steps that are not cached, and write the results table.

    ``executor`` overrides the config's (anything with ``run(steps, fn)``). Every name, value and
    dataset is checked before the runs folder is created; an interrupted run resumes where it
    stopped, and a re-run of a finished config trains nothing.
    """
    from .executors import make_executor

    t0 = time.perf_counter()
    exp = resolve(cfg)
    plan = plan_experiment(exp)
    todo = plan.pending()
    exp.runs_dir.mkdir(parents=True, exist_ok=True)
    write_json(exp.runs_dir / "config.json", {"config": cfg.model_dump(mode="json"), "kind": exp.kind,
                                              "headline": exp.headline, "steps": len(plan.steps)})
    log.info("%s: %d steps, %d cached, %d to run", exp.name, len(plan.steps), len(plan.steps) - len(todo), len(todo))
    ex = executor or make_executor(exp.executor, workers=exp.workers, address=exp.ray_address)
    outcomes = ex.run(todo, run_step) if todo else []
    table = collect_table(plan)
    path = write_table(table, exp.runs_dir)
    return RunResult(table, path, exp.headline, len(plan.steps), list(outcomes), round(time.perf_counter() - t0, 2))


def describe_plan(plan: Plan) -> list[dict[str, Any]]:
    """The steps of a plan as rows: kind, what it does, key, cached or not, folder (for ``--dry-run``)."""
    return [{"kind": s.kind, "step": s.label, "key": s.key, "cached": is_done(s.folder), "folder": s.folder}
            for s in plan.steps]
