"""The offline demo: synthetic data -> train on full data and on a random subset -> compare.

It runs end to end with no network and no staged data. It is the main job of
``recsift demo`` and grows with the library (score -> prune -> retrain -> report).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Budget, leave_one_out
from ..data.synthetic import generate
from ..models import get_model_class
from ..selection import select_random
from ..train import TrainConfig, train_model
from ..utils.io import write_json
from ..utils.runtime import peak_rss_mb

log = logging.getLogger(__name__)

DEMO_METRICS = ["recall@10", "ndcg@10", "mrr@10", "recall@20"]


def run_demo(
    out_dir: str | Path = "runs/demo",
    *,
    seed: int = 0,
    n_users: int = 4000,
    n_items: int = 800,
    budget: float | int | str = 0.5,
    models: tuple[str, ...] = ("pop", "itemknn", "gru4rec"),
    epochs: int = 10,
) -> dict[str, Any]:
    """Run the demo and write ``results.json`` / ``results.csv`` under ``out_dir``.

    Returns a dict with ``rows`` (one per model x training data) and dataset facts.
    """
    budget = Budget.parse(budget)
    for m in models:  # fail on an unknown model before any work
        get_model_class(m)
    t0 = time.perf_counter()
    syn = generate(n_users, n_items, seed=seed)
    split = leave_one_out(syn.interactions)
    full = split.training_set("sequence")
    rng = np.random.default_rng(seed)
    keep = select_random(len(full), budget, rng=rng)
    subset = full.subset(keep, curator="random", budget=str(budget), seed=seed)
    noisy_users = np.flatnonzero(syn.user_kind == 1)
    facts = {
        "dataset": "synthetic",
        "n_users": split.n_users,
        "n_items": split.n_items,
        "train_samples": len(full),
        "valid_cases": len(split.valid),
        "test_cases": len(split.test),
        "noisy_users": int(len(noisy_users)),
        "kept_samples": len(subset),
        "kept_noisy_share": float(np.isin(subset.data.user, noisy_users).mean()),
        "full_noisy_share": float(np.isin(full.data.user, noisy_users).mean()),
        "seconds_data": round(time.perf_counter() - t0, 3),
    }
    rows = []
    cfg = TrainConfig(epochs=epochs, seed=seed, metrics=tuple(DEMO_METRICS), valid_metric="recall@20", patience=3,
                      lr=3e-3)
    for name in models:
        for label, ts in (("full", full), (f"random {budget}", subset)):
            res = train_model(split, name, cfg, train_set=ts)
            rows.append({
                "model": name, "train_data": label, "train_samples": len(ts), "fraction": len(ts) / len(full),
                "fit_seconds": round(sum(h["train_seconds"] for h in res.history), 3), "epochs": len(res.history),
                **{f"valid_{k}": v for k, v in res.valid.items() if k in DEMO_METRICS},
                **{f"test_{k}": v for k, v in res.test.items()},
            })
    full_by_model = {r["model"]: r for r in rows if r["train_data"] == "full"}
    for r in rows:
        ref = full_by_model[r["model"]]["test_recall@20"]
        r["retained_recall@20"] = r["test_recall@20"] / ref if ref > 0 else float("nan")
    result = {"facts": facts, "rows": rows, "metrics": DEMO_METRICS, "mask_history": split.mask_history,
              "protocol": "leave-one-out by time, full ranking over all items", "peak_rss_mb": round(peak_rss_mb(), 1),
              "seconds_total": round(time.perf_counter() - t0, 2)}
    out = Path(out_dir)
    write_json(out / "results.json", result)
    _write_csv(out / "results.csv", rows)
    return result


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    from ..utils.io import write_atomic

    def w(p: Path) -> None:
        with open(p, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(path, w)
