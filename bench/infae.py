"""∞-AE end to end on the papers' splits: time, peak memory and test metrics.

Usage: python bench/infae.py [--datasets ml-1m,magazine] [--search grid|stepwise]
                             [--select-metric ndcg@10] [--repeats 3] [--scaling 1000,2000,4000]

Each run is a fresh subprocess (its own peak RSS) doing: load + split (shipped index.npz),
kernel, λ search over the union grid on validation, test metrics (nDCG, HR = recall_norm,
PSP normalised and the reference code's PSP, @10 and @100; history masked). Times are medians
over ``--repeats``. ``--scaling`` fits ml-1m on n seeded random users at a fixed λ = 5 (kernel +
one solve) to show how time and memory grow with users.
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

METRICS = ["ndcg@10", "recall_norm@10", "psp@10", "psp_orig@10", "ndcg@100", "recall_norm@100", "psp@100",
           "psp_orig@100"]

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from recsift.utils.runtime import configure_threads, peak_rss_mb
configure_threads()
from recsift.data import load_split
from recsift.distill import InfiniteAE
from recsift.evaluate import evaluate, propensity_weights
name, search, select, max_users, metrics = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split(",")
t_imp = time.perf_counter()
split = load_split(name)
t_load = time.perf_counter()
ts = split.training_set("matrix")
if max_users:
    model = InfiniteAE(lam=5.0, max_users=max_users, seed=0).fit(ts)
else:
    model = InfiniteAE(search=search, select_metric=select).fit(ts, split.valid)
t_fit = time.perf_counter()
test = {}
if not max_users:
    w = propensity_weights(np.bincount(split.train.item, minlength=split.n_items + 1), len(split.train))
    test = evaluate(model.score, split.test, metrics, mask_history=True, item_weights=w).means
t_test = time.perf_counter()
print(json.dumps({"dataset": name, "search": search, "select_metric": select, "users": model.fit_info_["n_train_users"],
  "lam": model.lam_, "valid": {str(k): v for k, v in model.valid_metrics_.items()}, "test": test,
  "import_s": t_imp - t0, "load_s": t_load - t_imp, "kernel_s": model.fit_info_["kernel_seconds"],
  "search_s": model.fit_info_["solve_seconds"], "test_s": t_test - t_fit, "total_s": t_test - t_imp,
  "peak_rss_mb": peak_rss_mb()}))
"""


def run_child(name: str, search: str, select: str, max_users: int = 0) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, name, search, select, str(max_users), ",".join(METRICS)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{name} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def median_run(runs: list[dict]) -> dict:
    out = dict(runs[0])
    for k in ("load_s", "kernel_s", "search_s", "test_s", "total_s", "peak_rss_mb"):
        out[k] = statistics.median(r[k] for r in runs)
        out[f"{k}_all"] = [round(r[k], 2) for r in runs]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="ml-1m,magazine")
    ap.add_argument("--search", default="grid", choices=["grid", "stepwise"])
    ap.add_argument("--select-metric", default="ndcg@10")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--scaling", default="", help="comma-separated user counts for the ml-1m scaling runs")
    ap.add_argument("--name", default="infae")
    args = ap.parse_args()
    if not os.environ.get("RECSIFT_DATA_DIR"):
        sys.exit("set RECSIFT_DATA_DIR to the staged datasets (e.g. ../shared/datasets)")
    rows = []
    for name in args.datasets.split(","):
        runs = [run_child(name, args.search, args.select_metric) for _ in range(args.repeats)]
        rows.append(median_run(runs))
        print(json.dumps(rows[-1]))
    scaling = []
    for n in [int(x) for x in args.scaling.split(",") if x]:
        scaling.append(median_run([run_child("ml-1m", "grid", "", n) for _ in range(args.repeats)]))
        print(json.dumps(scaling[-1]))
    md = ("| dataset | users | λ | search | N@10 | HR@10 | PSP@10 | PSP@10 (orig) | N@100 | HR@100 | PSP@100 | "
          "load s | kernel s | λ search s | test s | total s | peak RSS MB |\n|" + "---|" * 17 + "\n")
    for r in rows:
        t = {k: 100 * v for k, v in r["test"].items()}
        md += (f"| {r['dataset']} | {r['users']:,} | {r['lam']:g} | {r['search']} ({r['select_metric']}) | "
               f"{t['ndcg@10']:.2f} | {t['recall_norm@10']:.2f} | {t['psp@10']:.2f} | {t['psp_orig@10']:.2f} | "
               f"{t['ndcg@100']:.2f} | {t['recall_norm@100']:.2f} | {t['psp@100']:.2f} | {r['load_s']:.2f} | "
               f"{r['kernel_s']:.2f} | {r['search_s']:.2f} | {r['test_s']:.2f} | {r['total_s']:.2f} | "
               f"{r['peak_rss_mb']:.0f} |\n")
    if scaling:
        md += "\nScaling (ml-1m, random users, fixed λ = 5: kernel + one solve)\n\n| users | kernel s | solve s | peak RSS MB |\n|---|---|---|---|\n"
        for r in scaling:
            md += f"| {r['users']:,} | {r['kernel_s']:.2f} | {r['search_s']:.2f} | {r['peak_rss_mb']:.0f} |\n"
    write_result(args.name, {"rows": rows, "scaling": scaling, "repeats": args.repeats}, md)
    print(md)


if __name__ == "__main__":
    main()
