"""recsift side of the RecBole parity benchmark (runs in recsift's venv).

Usage:
    .venv/bin/python bench/recsift_side.py MODEL --epochs N --seed S --layout {all-prefix,prefix} \
        --data-dir D --out FILE.json

Same data and protocol as ``bench/recbole_side.py``: ml-100k, leave-one-out by time (no history
masking), full ranking, prefixes up to 50 items, CE loss, Adam lr 1e-3, batch 2048, exactly N epochs
(no early stopping), validation every epoch on NDCG@10, test on the best-validation epoch.
Writes one JSON object (same keys as the RecBole side where they exist) to ``--out`` and prints it
as the last line of stdout. All calls into recsift's training API live in ``train_recsift`` so that
an API change touches one function.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit_json  # noqa: E402

MODELS = ("gru4rec", "narm", "sasrec", "srgnn")
METRICS = ["recall@10", "ndcg@10", "mrr@10", "hit@10", "recall@20", "ndcg@20"]


def train_recsift(model: str, epochs: int, seed: int, layout: str, data_dir: str) -> dict[str, Any]:
    """Run recsift's trainer and return plain numbers (the only function that touches recsift's API)."""
    try:
        from recsift.data import load_split
        from recsift.train import TrainConfig, train_model
    except ImportError as e:  # the training API is still being written
        sys.exit(f"recsift's training API is not importable ({e}); recsift_side.py needs "
                 "recsift.train.TrainConfig and recsift.train.train_model")
    from recsift.utils.runtime import configure_threads

    configure_threads()  # RECSIFT_THREADS
    t0 = time.perf_counter()
    split = load_split("ml-100k", data_dir=data_dir)
    t_data = time.perf_counter()
    cfg = TrainConfig(epochs=epochs, batch_size=2048, lr=1e-3, loss="ce", layout=layout, max_len=50, seed=seed,
                      patience=None, valid_metric="ndcg@10", metrics=METRICS)
    res = train_model(split, model, cfg)
    t_fit = time.perf_counter()
    users = getattr(res, "test_users", None)
    raw_users = None
    if users is not None and len(users):
        raw_users = [str(u) for u in np.asarray(split.train.user_ids)[np.asarray(users)]]
    history = []
    for h in res.history:  # recsift counts epochs from 0; this bench reports 1-based, like recbole_side.py
        row = {"epoch": int(h["epoch"]) + 1, "train_loss": float(h["train_loss"]),
               "train_seconds": float(h["train_seconds"])}
        if "valid" in h:
            row["valid"] = {k: float(v) for k, v in h["valid"].items()}
        if "valid_seconds" in h:
            row["valid_seconds"] = float(h["valid_seconds"])
        history.append(row)
    import torch

    return {
        "history": history,
        "best_epoch": int(res.best_epoch) + 1,
        "test_best": {k: float(v) for k, v in res.test.items()},
        "per_user_best": {k: np.asarray(v, dtype=float).tolist() for k, v in res.test_per_case.items()},
        "test_users": raw_users,
        "peak_rss_mb": float(res.peak_rss_mb),
        "n_train_samples": int(getattr(res, "n_train", -1)),
        "data": {"n_users": int(split.n_users), "n_items": int(split.n_items),
                 "n_test_users": len(split.test.user)},
        "model_params": int(sum(p.numel() for p in res.model.parameters())) if hasattr(res, "model") else None,
        "threads": torch.get_num_threads(),
        "data_seconds": t_data - t0,
        "fit_seconds": t_fit - t_data,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=MODELS)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layout", choices=("all-prefix", "prefix"), default="all-prefix")
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR", "../shared/datasets"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    data_dir = str(Path(args.data_dir).resolve())
    if not (Path(data_dir) / "ml-100k").is_dir():
        sys.exit(f"no {data_dir}/ml-100k; pass --data-dir or set RECSIFT_DATA_DIR")
    r = train_recsift(args.model, args.epochs, args.seed, args.layout, data_dir)
    secs = [h["train_seconds"] for h in r["history"]]

    def se(x: list) -> float:
        a = np.asarray(x, dtype=float)
        return float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else float("nan")

    import recsift
    import torch

    out = {"side": "recsift", "model": args.model, "layout": args.layout, "epochs": args.epochs, "seed": args.seed,
           "versions": {"recsift": getattr(recsift, "__version__", "?"), "torch": torch.__version__,
                        "numpy": np.__version__, "python": sys.version.split()[0]},
           **r,
           "median_train_seconds": float(np.median(secs)) if secs else float("nan"),
           "total_train_seconds": float(sum(secs)),
           "se_best": {k: se(v) for k, v in r["per_user_best"].items()}}
    emit_json(out, args.out)


if __name__ == "__main__":
    main()
