"""Peak memory and time of the scorers: MoE (frozen experts + gate) vs training-dynamics scores.

Usage:
  python bench/scorer_memory.py --dataset yoochoose-100k --epochs 10 --expert-epochs 10

Each curation runs in a fresh subprocess (so its peak RSS is its own) on the full training set at
keep 30%: ``el2n`` and ``aum`` (a GRU4Rec probe trained with the streaming `DynamicsRecorder`),
``moe`` (experts CORE, GRU4Rec, SR-GNN trained on the full data, then the gate) and ``random``
(no model: the floor of loading the data). Also reported: the size of the recorder's state
(O(N) per-sample running sums) and what storing every epoch's five per-sample statistics would
take (what dynamics-based methods that keep per-epoch arrays hold, ``N × epochs × 5 × 4`` bytes).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402

CHILD = r"""
import json, sys, time
args = json.loads(sys.argv[1])
from recsift.utils.runtime import configure_threads, peak_rss_mb
configure_threads()
from recsift.curators import CurationContext, curate
from recsift.data import load_split
from recsift.train import TrainConfig
split = load_split(args["dataset"], data_dir=args["data_dir"])
full = split.training_set("sequence")
base_rss = peak_rss_mb()
ctx = CurationContext(split=split, seed=0, probe_config=TrainConfig(epochs=args["epochs"], patience=None,
                                                                      batch_size=256, seed=0))
params = {"experts": ("core", "gru4rec", "srgnn"), "expert_epochs": args["expert_epochs"]} if args["method"] == "moe" else {}
t0 = time.perf_counter()
kept, report = curate(full, args["method"], 0.3, ctx, **params)
secs = time.perf_counter() - t0
state = 0
for v in ctx._memo.values():
    dyn = getattr(v, "dynamics", None)
    if isinstance(dyn, dict):
        state = max(state, sum(a.nbytes for a in dyn.values()))
print(json.dumps({**args, "n_samples": len(full), "seconds": round(secs, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
                  "rss_after_load_mb": round(base_rss, 1), "recorder_state_mb": round(state / 2**20, 2),
                  "kept": len(kept)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="yoochoose-100k")
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR"))
    ap.add_argument("--methods", default="random,el2n,aum,moe")
    ap.add_argument("--epochs", type=int, default=10, help="probe epochs (dynamics scores)")
    ap.add_argument("--expert-epochs", type=int, default=10)
    a = ap.parse_args()
    rows = []
    for method in a.methods.split(","):
        args = {"dataset": a.dataset, "data_dir": a.data_dir, "method": method, "epochs": a.epochs,
                "expert_epochs": a.expert_epochs}
        r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{method} failed:\n{r.stderr[-3000:]}")
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    n = rows[0]["n_samples"]
    md = ("| method | scorer | seconds | peak RSS MB | RSS after loading MB | recorder state MB |\n"
          "|---|---|---|---|---|---|\n")
    what = {"random": "none", "el2n": f"GRU4Rec probe, {a.epochs} epochs, dynamics recorded",
            "aum": f"GRU4Rec probe, {a.epochs} epochs, dynamics recorded",
            "moe": f"3 experts (CORE, GRU4Rec, SR-GNN) ≤ {a.expert_epochs} epochs + gate"}
    for r in rows:
        md += (f"| {r['method']} | {what.get(r['method'], '')} | {r['seconds']} | {r['peak_rss_mb']} | "
               f"{r['rss_after_load_mb']} | {r['recorder_state_mb'] or '-'} |\n")
    md += (f"\n{n:,} training samples. Storing every epoch's five per-sample statistics instead of running "
           f"sums would take {n * a.epochs * 5 * 4 / 2**20:.1f} MB for {a.epochs} epochs "
           f"({n * 200 * 5 * 4 / 2**20:.0f} MB for 200); the recorder keeps O(N) state whatever the epochs.\n")
    write_result(f"scorer_memory_{a.dataset}", {"rows": rows}, md)
    print(md)


if __name__ == "__main__":
    main()
