"""A/B of full-ranking evaluation: this checkout against another git revision.

Each side evaluates the same seeded, untrained model on the dataset's validation cases (full
ranking, history masked as in DR4SR's protocol unless ``--no-mask-history``) through
`SequenceTrainer.evaluate`, in its own fresh process: one warm-up evaluation, then ``--repeats``
timed ones (median kept). Sides alternate for ``--rounds`` pairs, since this machine's throughput
drifts by up to ±30% within minutes; the speed-up is the median of the per-round ratios. The
per-case metrics of the two sides are compared too (float rounding in a differently batched
encoder can at most swap near-tied items). The other revision is checked out into a temporary
git worktree and put first on PYTHONPATH.

Usage: python bench/eval_speed.py --ref f366900 --dataset beauty --models sasrec,gru4rec,narm,core --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# argv: dataset, data_dir, model, mask_history (0/1), metrics, repeats, per-case output (.npz)
CHILD = """
import json, sys, time
import numpy as np, torch
from recsift.data import load_split
from recsift.models import build_model
from recsift.train.config import TrainConfig
from recsift.train.trainer import SequenceTrainer
dataset, data_dir, name, mask, metrics, repeats, out = sys.argv[1:8]
split = load_split(dataset, data_dir=data_dir)
torch.manual_seed(0)
model = build_model(name, n_items=split.n_items, max_len=50)
trainer = SequenceTrainer(model, TrainConfig(seed=0, max_len=50))
run = lambda: trainer.evaluate(split.valid, mask_history=mask == "1", metrics=tuple(metrics.split(",")))
res = run()
ts = []
for _ in range(int(repeats)):
    t = time.perf_counter(); res = run(); ts.append(time.perf_counter() - t)
np.savez(out, **res.per_case)
print(json.dumps({"seconds": sorted(ts)[len(ts) // 2], "means": res.means, "threads": torch.get_num_threads()}))
"""


def side(src: Path, a: argparse.Namespace, model: str, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-c", CHILD, a.dataset, a.data_dir or "", model, "1" if a.mask_history else "0",
           a.metrics, str(a.repeats), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="git revision to compare against (e.g. the commit before a change)")
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR"))
    ap.add_argument("--models", default="sasrec,gru4rec,narm,core")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1, help="timed evaluations per process (median kept)")
    ap.add_argument("--mask-history", action=argparse.BooleanOptionalAction, default=True,
                    help="mask each case's history before ranking (DR4SR's protocol; default on)")
    ap.add_argument("--metrics", default="recall@20,ndcg@20")
    ap.add_argument("--name", default=None)
    a = ap.parse_args()

    import numpy as np

    rev = subprocess.run(["git", "rev-parse", "--short", a.ref], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    rows = []
    md = [f"| model | {rev} s/eval | this s/eval | speed-up (median of rounds) | max per-case metric diff |",
          "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "ref"
        subprocess.run(["git", "worktree", "add", "--detach", str(wt), a.ref], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for model in a.models.split(","):
                times: dict[str, list[float]] = {"ref": [], "this": []}
                info = {}
                for _ in range(a.rounds):
                    for label, src in (("ref", wt / "src"), ("this", ROOT / "src")):
                        info[label] = side(src, a, model, Path(tmp) / f"{label}.npz")
                        times[label].append(info[label]["seconds"])
                with np.load(Path(tmp) / "ref.npz") as r, np.load(Path(tmp) / "this.npz") as t:
                    diff = max(float(np.abs(r[k] - t[k]).max()) for k in r.files)
                ratios = [r / t for r, t in zip(times["ref"], times["this"])]
                row = {"model": model, "ref_s": statistics.median(times["ref"]),
                       "this_s": statistics.median(times["this"]), "speedup": statistics.median(ratios),
                       "speedup_min": min(ratios), "speedup_max": max(ratios), "max_metric_diff": diff,
                       "times": times, "means": {k: v["means"] for k, v in info.items()},
                       "threads": info["this"]["threads"]}
                rows.append(row)
                md.append(f"| {model} | {row['ref_s']:.2f} | {row['this_s']:.2f} | {row['speedup']:.2f}x "
                          f"[{row['speedup_min']:.2f}-{row['speedup_max']:.2f}] | {diff:.2g} |")
                print(md[-1], flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=ROOT, check=False)
    threads = rows[0]["threads"] if rows else "?"
    md.append(f"\nValidation cases of {a.dataset}, {'history masked' if a.mask_history else 'no history mask'}, "
              f"untrained models (seed 0); {a.repeats} timed evaluation(s) per process after a warm-up, "
              f"torch threads {threads}, sides alternating in fresh processes.")
    write_result(a.name or f"eval_speed_{a.dataset}", {"ref": rev, "rows": rows, "args": vars(a)}, "\n".join(md))


if __name__ == "__main__":
    main()
