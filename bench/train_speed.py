"""Seconds per training epoch, peak memory and dynamics overhead of recsift's trainer.

Usage:
  python bench/train_speed.py --dataset ml-100k --models gru4rec,narm,sasrec,srgnn --epochs 3
  python bench/train_speed.py --synthetic 1000000 --n-items 50000 --models gru4rec,sasrec --epochs 1
  python bench/train_speed.py --dataset beauty --models sasrec --layouts auto --pack off,on --batch-size 256 --loss bce
  python bench/train_speed.py --dataset ml-100k --models gru4rec,sasrec --layouts auto --ce fused,unfused --dynamics
Each (model, layout, dynamics on/off, packing, cross-entropy) runs in a fresh subprocess, so peak RSS is its own;
runs with and without dynamics (or packing, or the fused cross-entropy) are interleaved (``--rounds`` rounds). Validation is skipped (timings are training only).
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
cfg = TrainConfig(epochs=args["epochs"], layout=args["layout"], seed=0, batch_size=args["batch_size"],
                  loss=args["loss"], pack={"on": True, "off": False}.get(args["pack"]))
torch.manual_seed(0)
model = build_model(args["model"], n_items=split.n_items, max_len=50)
tr = trainer_for(model, cfg)
fused = {"eager": False, "fused": True}.get(args["dynamics"])  # "on": the library's default (auto)
rec = DynamicsRecorder(len(ts), fused=fused) if args["dynamics"] != "off" else None
c0 = time.process_time()
hist = tr.fit(ts, None, mask_history=False, recorder=rec)
cpu = (time.process_time() - c0) / len(hist.epochs)
print(json.dumps({**args, "n_samples": len(ts), "n_items": split.n_items, "data_seconds": t_data, "cpu_seconds_per_epoch": cpu,
                  "epoch_seconds": [e["train_seconds"] for e in hist.epochs], "layout_used": tr.layout,
                  "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads(),
                  "fused_stats": None if rec is None else rec.fused}))
"""


def run(cfg: dict) -> dict:
    env = dict(os.environ)
    if cfg["ce"] != "default":  # the fused cross-entropy (recsift.train.fused_ce) forced on or off
        env["RECSIFT_FUSED_CE"] = {"fused": "1", "unfused": "0"}[cfg["ce"]]
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"run {cfg} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def ratio_lines(groups: dict[tuple, list[dict]], axis: int, ref: str, title: str, label: str,
                ref_over: bool = False) -> str:
    """Per-round ratios of s/epoch between the variants on one ``axis`` of the group key
    (2 = dynamics, 3 = packing, 4 = cross-entropy): every variant over the ``ref`` variant, or ``ref`` over every
    variant with ``ref_over`` (a speed-up); median and min-max of the rounds."""
    out = []
    for key, rs in groups.items():
        base = groups.get(key[:axis] + (ref,) + key[axis + 1:])
        if key[axis] == ref or not base:
            continue
        ratios = sorted(a["median_epoch_seconds"] / b["median_epoch_seconds"]
                        for a, b in (zip(base, rs) if ref_over else zip(rs, base)))
        ctx = "".join(f", {name} {key[i]}" for i, name in ((2, "recorder"), (3, "packing"), (4, "cross-entropy"))
                      if i != axis and i < len(key) and key[i] not in ("off", "default"))
        out.append(f"* {key[0]} {key[1]}{ctx}, {label} {key[axis]}: {statistics.median(ratios):.3f}x "
                   f"[{ratios[0]:.3f}-{ratios[-1]:.3f}]")
    return f"\n{title}; median of the per-round ratios, min-max in brackets):\n\n" + "\n".join(out) + "\n" if out else ""


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
    ap.add_argument("--pack", default="default",
                    help="comma-separated all-prefix packing variants: default (the library's: on for packable "
                         "models), on, off; with several, the speed-up of on over off is reported")
    ap.add_argument("--ce", default="default",
                    help="comma-separated cross-entropy variants: default (the library's: fused on CPU), fused, "
                         "unfused (logits, log-softmax and their gradients as batch-sized tensors); with both, the "
                         "speed-up of fused over unfused is reported")
    ap.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                    help="what the ratios compare: wall-clock s/epoch, or the process's CPU seconds per epoch (with "
                         "RECSIFT_THREADS=1, far less sensitive than wall time to other jobs on the machine)")
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--loss", default=None, help="ce, bpr or bce (default: the model's)")
    ap.add_argument("--name", default=None, help="result file name (default train_speed_<dataset>)")
    args = ap.parse_args()
    rows = []
    for model in args.models.split(","):
        for layout in args.layouts.split(","):
            variants = ["off", *args.stats.split(",")] if args.dynamics else ["off"]
            packs, ces = args.pack.split(","), args.ce.split(",")
            for rnd, dyn, pack, ce in [(i, d, p, c) for i in range(args.rounds) for d in variants for p in packs
                                       for c in ces]:
                cfg = {"model": model, "layout": layout, "dynamics": dyn, "epochs": args.epochs,
                       "dataset": args.dataset, "data_dir": args.data_dir, "synthetic": args.synthetic,
                       "n_items": args.n_items, "round": rnd, "pack": pack, "batch_size": args.batch_size,
                       "loss": args.loss, "ce": ce}
                try:
                    r = run(cfg)
                except SystemExit as e:
                    if "not causal" in str(e):
                        continue
                    raise
                r["median_epoch_seconds"] = (statistics.median(r["epoch_seconds"]) if args.timer == "wall"
                                             else r["cpu_seconds_per_epoch"])
                rows.append(r)
                print(json.dumps({k: r[k] for k in ("model", "layout_used", "dynamics", "pack", "ce",
                                                    "median_epoch_seconds", "peak_rss_mb", "n_samples")}))
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["layout_used"], r["dynamics"], r.get("pack", "default"),
                           r.get("ce", "default")), []).append(r)
    md = (f"Batch {args.batch_size}, loss {args.loss or 'model default'}; ratios compare "
          f"{'wall-clock' if args.timer == 'wall' else 'CPU'} seconds per epoch.\n\n"
          "| model | layout | dynamics | packing | cross-entropy | samples | items | rounds | s/epoch (median) | "
          "CPU s/epoch (median) | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    for (m, lay, dyn, pack, ce), rs in groups.items():
        secs = statistics.median(s for r in rs for s in r["epoch_seconds"])
        cpu = statistics.median(r["cpu_seconds_per_epoch"] for r in rs)
        md += (f"| {m} | {lay} | {dyn} | {pack} | {ce} | {rs[0]['n_samples']:,} | {rs[0]['n_items']:,} | "
               f"{len(rs)} | {secs:.2f} | {cpu:.2f} | {max(r['peak_rss_mb'] for r in rs):.0f} |\n")
    md += ratio_lines(groups, 2, "off", "Dynamics overhead (s/epoch with recorder / without", "recorder")
    md += ratio_lines(groups, 3, "off", "Packing speed-up (s/epoch unpacked / packed", "packing", ref_over=True)
    md += ratio_lines(groups, 4, "unfused", "Fused cross-entropy speed-up (s/epoch unfused / fused", "cross-entropy",
                      ref_over=True)
    name = args.name or (f"train_speed_synthetic{args.synthetic}" if args.synthetic else f"train_speed_{args.dataset}")
    write_result(name, {"rows": rows}, md)
    print(md)


if __name__ == "__main__":
    main()
