"""Time and peak memory to load, split and build training samples for each staged dataset.

Usage: python bench/load_speed.py [--data-dir DIR] [--datasets a,b]
Each dataset runs in a fresh subprocess so peak RSS is its own.
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
from recsift.utils.runtime import peak_rss_mb
t0 = time.perf_counter()
from recsift.data import load, load_split
from recsift.data.registry import get_spec, dataset_folder
name, root = sys.argv[1], sys.argv[2]
t_imp = time.perf_counter()
spec = get_spec(name); folder = dataset_folder(name, root)
inter = spec.loader(folder)
t_load = time.perf_counter()
split = spec.split(folder, inter)
t_split = time.perf_counter()
kind = "matrix" if spec.kind == "cf" else "sequence"
ts = split.training_set(kind)
t_samples = time.perf_counter()
print(json.dumps({"dataset": name, "rows": len(inter), "training_units": len(ts), "kind": kind,
  "load_s": t_load - t_imp, "split_s": t_split - t_load, "samples_s": t_samples - t_split,
  "total_s": t_samples - t_imp, "import_s": t_imp - t0, "peak_rss_mb": peak_rss_mb()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR", "../shared/datasets"))
    ap.add_argument("--datasets", default="ml-1m,beauty,toys,video,lastfm,ml-100k,magazine,yoochoose-100k,diginetica-sample")
    args = ap.parse_args()
    if not Path(args.data_dir).is_dir():
        sys.exit(f"no dataset root at {args.data_dir}; pass --data-dir or set RECSIFT_DATA_DIR")
    rows = []
    for name in args.datasets.split(","):
        r = subprocess.run([sys.executable, "-c", CHILD, name, args.data_dir], capture_output=True, text=True, check=True)
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(rows[-1])
    md = "| dataset | rows | training units | load s | split s | samples s | total s | peak RSS MB |\n|---|---|---|---|---|---|---|---|\n"
    for r in rows:
        md += (f"| {r['dataset']} | {r['rows']:,} | {r['training_units']:,} ({r['kind']}) | {r['load_s']:.2f} | "
               f"{r['split_s']:.2f} | {r['samples_s']:.3f} | {r['total_s']:.2f} | {r['peak_rss_mb']:.0f} |\n")
    write_result("load_speed", {"rows": rows}, md)
    print(md)


if __name__ == "__main__":
    main()
