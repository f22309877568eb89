"""The offline demo: the whole pipeline on built-in synthetic data, then the HTML report.

Synthetic sessions with planted noisy users (`recsift.data.synthetic`) are written to
``<out>/data/synthetic.csv`` and run through the experiment runner as an ordinary
`ExperimentConfig` (`demo_config`): score -> prune with several curators (random, EL2N top-k,
D2 over EL2N on the item-sharing session graph, MoE with two small experts) at a couple of
budgets -> retrain each model on every curated set and on the full data, over two seeds ->
``results.csv``; ``recsift demo`` then writes ``report.html`` with `recsift.report`. Every step
is cached under ``<out>``, so a second run trains nothing. No network and no staged data are needed.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import Budget
from ..models import get_model_class
from ..utils.io import save_npz, write_atomic, write_json
from ..utils.runtime import peak_rss_mb
from .config import ExperimentConfig

log = logging.getLogger(__name__)

DEMO_METRICS = ["recall@20", "mrr@20", "ndcg@10"]
#: the demo's curators: name -> config entry (small, fast settings)
DEMO_CURATORS: dict[str, dict[str, Any]] = {
    "random": {"name": "random"},
    "el2n": {"name": "el2n"},
    "d2": {"name": "d2", "params": {"score": "el2n"}},
    "moe": {"name": "moe", "params": {"experts": ["sasrec", "narm"], "expert_epochs": 3, "expert_patience": 2,
                                      "gate_epochs": 2}},
}


def demo_config(out_dir: str | Path, *, data_file: str | Path, seeds: tuple[int, ...] = (0, 1),
                budgets: tuple[str, ...] = ("0.3", "0.6"), models: tuple[str, ...] = ("pop", "gru4rec"),
                curators: tuple[str, ...] = tuple(DEMO_CURATORS), epochs: int = 4) -> ExperimentConfig:
    """The demo's experiment: ``curators`` x ``budgets`` (+ full data) x ``models`` x ``seeds`` on ``data_file``."""
    from ..errors import unknown_name

    for c in curators:
        if c not in DEMO_CURATORS:
            raise unknown_name("demo curator", c, DEMO_CURATORS)
    return ExperimentConfig.from_dict({
        "name": "recsift demo (synthetic sessions)",
        "datasets": [{"name": str(data_file), "label": "synthetic"}],
        "curators": [{**DEMO_CURATORS[c], "label": c} for c in curators],
        "budgets": list(budgets), "models": list(models), "seeds": list(seeds), "metrics": DEMO_METRICS,
        "headline": "recall@20",
        "train": {"epochs": epochs, "lr": 3e-3, "batch_size": 512, "patience": 2},
        "probe": {"model": "gru4rec", "train": {"epochs": 3, "lr": 3e-3, "batch_size": 512}},
        "runs_dir": str(out_dir),
    }, source="demo config")


def run_demo(
    out_dir: str | Path = "runs/demo",
    *,
    seed: int = 0,
    n_users: int = 1000,
    n_items: int = 300,
    budgets: tuple[float | int | str, ...] = (0.3, 0.6),
    models: tuple[str, ...] = ("pop", "gru4rec"),
    curators: tuple[str, ...] = tuple(DEMO_CURATORS),
    n_seeds: int = 2,
    epochs: int = 4,
) -> dict[str, Any]:
    """Run the demo pipeline under ``out_dir``; write ``results.csv`` (and ``demo.json``) there.
    ``recsift demo`` then writes the report (`recsift.report.build_report`) of ``out_dir``.

    ``seed`` seeds the synthetic data; the grid runs seeds ``seed .. seed + n_seeds - 1``. Every
    argument is checked before anything is written. Returns the dataset facts, one row per
    curator x budget x model (means over seeds), and the path of the results table.
    """
    from ..data.synthetic import generate
    from .runner import run_experiment

    budgets = tuple(str(Budget.parse(b)) for b in budgets)  # BudgetError before any work
    for m in models:
        get_model_class(m)  # UnknownNameError before any work
    if n_seeds < 1:
        from ..errors import ConfigError

        raise ConfigError(f"--seeds {n_seeds}: run at least one seed (two or more give error bars)")
    out = Path(out_dir)
    data_file = out / "data" / "synthetic.csv"
    cfg = demo_config(out, data_file=data_file, seeds=tuple(range(seed, seed + n_seeds)), budgets=budgets,
                      models=models, curators=curators, epochs=epochs)
    t0 = time.perf_counter()
    syn = generate(n_users, n_items, seed=seed)
    it = syn.interactions
    frame = pd.DataFrame({"session_id": it.user_ids[it.user], "item_id": it.item_ids[it.item], "timestamp": it.time})
    write_atomic(data_file, lambda p: frame.to_csv(p, index=False))
    save_npz(out / "data" / "planted.npz", user_raw=it.user_ids, user_kind=syn.user_kind)
    res = run_experiment(cfg)
    df = res.table
    noisy = _noisy_share(out, df, set(it.user_ids[syn.user_kind == 1].astype(str)))
    facts = {"dataset": "synthetic", "n_users": int(it.n_users), "n_items": int(it.n_items),
             "interactions": len(it.user), "train_samples": int(df["n_samples"].iloc[0]),
             "noisy_users": int((syn.user_kind == 1).sum()), "noisy_share_full": noisy.get("full"),
             "seeds": list(cfg.seeds)}
    g = df.groupby(["curator", "budget", "model"], sort=False)
    rows = [{"curator": c, "budget": b, "model": m, "fraction_kept": _num(x["fraction_kept"].mean()),
             **{k: _num(x[k].mean()) for k in DEMO_METRICS}, "recall@20_std": _num(x["recall@20"].std(ddof=1)),
             "retained": _num(x["retained"].mean()), "noisy_share": noisy.get((c, b)),
             "curation_seconds": _num(x["curation_seconds"].mean())} for (c, b, m), x in g]
    result = {"facts": facts, "rows": rows, "metrics": DEMO_METRICS, "headline": "recall@20",
              "protocol": "leave-one-out by time, full ranking over all items", "results": str(res.table_path),
              "steps": res.n_steps, "ran": res.n_ran, "cached": res.n_cached,
              "peak_rss_mb": round(peak_rss_mb(), 1), "seconds_total": round(time.perf_counter() - t0, 2)}
    write_json(out / "demo.json", result)
    return result


def _num(x: Any) -> float | None:
    """A float for JSON, None where undefined (std of one seed)."""
    return None if pd.isna(x) else float(x)


def _noisy_share(out: Path, df: pd.DataFrame, noisy_raw: set[str]) -> dict[Any, float]:
    """Share of kept training samples that belong to planted noisy users, per curator and budget (first
    seed), from each curation's saved ``samples.npz`` and ``explain.npz``; key ``"full"``: the full set.
    A curation without ``explain.npz`` (made by an older version) has no entry."""
    share: dict[Any, float] = {}
    seed0 = df["seed"].min()
    for _, r in df[(df["seed"] == seed0) & (df["curation_step"] != "")].drop_duplicates("curation_step").iterrows():
        folder = next((out / "steps" / "curation").glob(f"*-{r['curation_step']}"), None)
        if folder is None or not (folder / "explain.npz").is_file():
            continue
        with np.load(folder / "samples.npz") as s, np.load(folder / "explain.npz") as e:
            is_noisy = np.isin(e["user_raw"], list(noisy_raw))[e["user"]]
            kept = s["kept"].astype(bool)
        share[(r["curator"], r["budget"])] = float(is_noisy[kept].mean())
        share.setdefault("full", float(is_noisy.mean()))
    return share
