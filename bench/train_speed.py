"""Seconds per training epoch, peak memory and dynamics overhead of recsift's trainer.

Usage:
  python bench/train_speed.py --dataset ml-100k --models gru4rec,narm,sasrec,srgnn --epochs 3
  python bench/train_speed.py --synthetic 1000000 --n-items 50000 --models gru4rec,sasrec --epochs 1
Each (model, layout, dynamics on/off) runs in a fresh subprocess, so peak RSS is its own; runs
with and without dynamics are interleaved (``--rounds`` pairs). Validation is skipped (timings are training only).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402

CHILD = r"""
import json, sys, time
args = json.loads(sys.argv[1])
import numpy as np, torch
from recsift.data import load_split, leave_one_out
from recsift.data.synthetic import generate
from recsift.models import build_model, get_model_class
from recsift.train import TrainConfig, DynamicsRecorder
from recsift.train.api import trainer_for
from recsift.utils.runtime import peak_rss_mb
t0 = time.perf_counter()
if args["synthetic"]:
    n_users = args["synthetic"]
    syn = generate(n_users, args["n_items"], seed=0, mean_len=12)
    split = leave_one_out(syn.interactions)
else:
    split = load_split(args["dataset"], data_dir=args["data_dir"])
ts = split.training_set("sequence")
t_data = time.perf_counter() - t0
cfg = TrainConfig(epochs=args["epochs"], layout=args["layout"], seed=0, batch_size=2048)
torch.manual_seed(0)
model = build_model(args["model"], n_items=split.n_items, max_len=50)
tr = trainer_for(model, cfg)
fused = {"eager": False, "fused": True}.get(args["dynamics"])  # "on": the library's default (auto)
rec = DynamicsRecorder(len(ts), fused=fused) if args["dynamics"] != "off" else None
hist = tr.fit(ts, None, mask_history=False, recorder=rec)
print(json.dumps({**args, "n_samples": len(ts), "n_items": split.n_items, "data_seconds": t_data,
                  "epoch_seconds": [e["train_seconds"] for e in hist.epochs], "layout_used": tr.layout,
                  "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads(),
                  "fused_stats": None if rec is None else rec.fused}))
"""


def run(cfg: dict) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"run {cfg} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR", "../shared/datasets"))
    ap.add_argument("--synthetic", type=int, default=0, help="use N synthetic users instead of a dataset")
    ap.add_argument("--n-items", type=int, default=50_000)
    ap.add_argument("--models", default="gru4rec,narm,sasrec,srgnn")
    ap.add_argument("--layouts", default="auto,prefix")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--dynamics", action="store_true", help="also time each run with the DynamicsRecorder on")
    ap.add_argument("--stats", default="on",
                    help="with --dynamics, comma-separated recorder variants: on (the default, RECSIFT_FUSED_STATS "
                         "or auto), eager, fused (the compiled statistics kernel)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat each off/on pair this often, interleaved; the overhead is the median of the "
                         "per-round ratios (pairs taken minutes apart drift less than whole runs)")
    ap.add_argument("--name", default=None, help="result file name (default train_speed_<dataset>)")
    args = ap.parse_args()
    rows = []
    for model in args.models.split(","):
        for layout in args.layouts.split(","):
            variants = ["off", *args.stats.split(",")] if args.dynamics else ["off"]
            for rnd, dyn in [(i, d) for i in range(args.rounds) for d in variants]:
                cfg = {"model": model, "layout": layout, "dynamics": dyn, "epochs": args.epochs,
                       "dataset": args.dataset, "data_dir": args.data_dir, "synthetic": args.synthetic,
                       "n_items": args.n_items, "round": rnd}
                try:
                    r = run(cfg)
                except SystemExit as e:
                    if "not causal" in str(e):
                        continue
                    raise
                r["median_epoch_seconds"] = statistics.median(r["epoch_seconds"])
                rows.append(r)
                print(json.dumps({k: r[k] for k in ("model", "layout_used", "dynamics", "median_epoch_seconds",
                                                    "peak_rss_mb", "n_samples")}))
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["layout_used"], r["dynamics"]), []).append(r)
    md = ("| model | layout | dynamics | samples | items | rounds | s/epoch (median) | peak RSS MB |\n"
          "|---|---|---|---|---|---|---|---|\n")
    for (m, lay, dyn), rs in groups.items():
        secs = statistics.median(s for r in rs for s in r["epoch_seconds"])
        md += (f"| {m} | {lay} | {dyn} | {rs[0]['n_samples']:,} | {rs[0]['n_items']:,} | "
               f"{len(rs)} | {secs:.2f} | {max(r['peak_rss_mb'] for r in rs):.0f} |\n")
    if args.dynamics:
        md += ("\nDynamics overhead (s/epoch with recorder / without; median of the per-round ratios, "
               "min-max in brackets):\n\n")
        for (m, lay, dyn), rs in groups.items():
            off = groups.get((m, lay, "off"))
            if dyn != "off" and off:
                ratios = sorted(a["median_epoch_seconds"] / b["median_epoch_seconds"] for a, b in zip(rs, off))
                md += (f"* {m} {lay}, recorder {dyn}: {statistics.median(ratios):.3f}x "
                       f"[{ratios[0]:.3f}-{ratios[-1]:.3f}]\n")
    name = args.name or (f"train_speed_synthetic{args.synthetic}" if args.synthetic else f"train_speed_{args.dataset}")
    write_result(name, {"rows": rows}, md)
    print(md)


if __name__ == "__main__":
    main()
