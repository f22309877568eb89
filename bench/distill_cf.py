"""Distill-CF vs User-RNS at the same number of users, and Distill-CF's seconds per step.

Usage: python bench/distill_cf.py [--datasets magazine,ml-1m] [--users 500] [--steps 500]
                                  [--max-minutes 15] [--seeds 0,1,2] [--rns-seeds 0,1,2]

Per dataset: Distill-CF (defaults of ALGORITHMS.md §10, early stopping; validation metric
``--select-metric``, default nDCG@10, the reference's HR@100 is ``recall_norm@100``),
then ∞-AE trained on the distilled support (λ of its best validation step) and scored on the
test cases; User-RNS: ∞-AE on ``--users`` uniformly random real users (λ chosen on validation
from the same grid, by the same metric), one run per seed; full-data ∞-AE for reference
(λ from the union grid by validation nDCG@10). Also the time to fit ∞-AE on the distilled
data vs on the full data. ``--max-minutes`` caps each Distill-CF run's wall time (say so when
it cut a run short: ``steps_run`` < ``--steps`` and ``stopped`` in the JSON).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402
from _distill import Protocol, mean_std  # noqa: E402

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="magazine,ml-1m")
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--max-minutes", type=float, default=15.0)
    ap.add_argument("--seeds", default="42", help="Distill-CF seeds")
    ap.add_argument("--rns-seeds", default="0,1,2")
    ap.add_argument("--select-metric", default="ndcg@10", help="validation metric (λ, best step) for both methods")
    ap.add_argument("--noise", default="shifted", choices=["shifted", "independent"],
                    help="Gumbel noise: shared pool with per-user shifts, or fully independent draws")
    ap.add_argument("--learners", default="",
                    help="other user-free learners (e.g. ease,itemknn) also trained on full, User-RNS and distilled data")
    ap.add_argument("--name", default="distill_cf")
    args = ap.parse_args()
    if not os.environ.get("RECSIFT_DATA_DIR"):
        sys.exit("set RECSIFT_DATA_DIR to the staged datasets (e.g. ../shared/datasets)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("recsift.distill.infae").setLevel(logging.WARNING)
    import numpy as np

    from recsift.curators import CurationContext, curate
    from recsift.data import load_split
    from recsift.distill import DISTILL_LAMBDAS, InfiniteAE, distill_cf
    from recsift.utils.runtime import configure_threads, peak_rss_mb

    configure_threads()
    rows = []
    for name in args.datasets.split(","):
        split = load_split(name)
        full = split.training_set("matrix")
        proto = Protocol(split)
        t0 = time.perf_counter()
        full_model = InfiniteAE().fit(full, split.valid)
        full_fit_s = time.perf_counter() - t0
        row = {"dataset": name, "users": args.users, "full": {"lam": full_model.lam_, "fit_s": full_fit_s,
                                                              "test": proto.test(full_model)}}
        rns, rns_sets, dist_sets = [], [], []
        for seed in [int(s) for s in args.rns_seeds.split(",") if s]:
            sub, _ = curate(full, "random", args.users, CurationContext(split=split, seed=seed, unit="user"))
            rns_sets.append(sub)
            m = InfiniteAE(lambdas=DISTILL_LAMBDAS, select_metric=args.select_metric).fit(sub, split.valid)
            rns.append({"seed": seed, "lam": m.lam_, "test": proto.test(m)})
        row["user_rns"] = {"runs": rns, **mean_std([r["test"] for r in rns])}
        dist = []
        for seed in [int(s) for s in args.seeds.split(",") if s]:
            ts, info = distill_cf(full, args.users, valid=split.valid, steps=args.steps, seed=seed,
                                  select_metric=args.select_metric, max_seconds=60 * args.max_minutes,
                                  noise=args.noise)
            dist_sets.append(ts)
            t1 = time.perf_counter()
            m = InfiniteAE(lam=info["lam"]).fit(ts)
            fit_s = time.perf_counter() - t1
            dist.append({"seed": seed, "test": proto.test(m), "fit_on_distilled_s": fit_s,
                         "stopped": "max_seconds" if info["steps_run"] < args.steps and
                         info["steps_run"] - info["best_step"] < info["config"]["patience"] else "steps/patience",
                         **{k: info[k] for k in ("best_step", "best_valid", "lam", "steps_run", "seconds_per_step",
                                                 "seconds", "history")}})
            print(json.dumps({k: v for k, v in dist[-1].items() if k != "history"}))
        row["distill_cf"] = {"runs": dist, **mean_std([d["test"] for d in dist])}
        row["learners"] = other_learners(args, split, proto, full, rns_sets, dist_sets)
        row["peak_rss_mb"] = peak_rss_mb()
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("distill_cf", "user_rns")}))
    md = ("| dataset | users | full ∞-AE N@10 | Distill-CF N@10 | User-RNS N@10 (mean ± std) | Distill-CF HR@10 | "
          "User-RNS HR@10 | steps run (best) | s/step | ∞-AE fit s: distilled / full |\n|" + "---|" * 10 + "\n")
    for r in rows:
        d, u = r["distill_cf"], r["user_rns"]
        runs = d["runs"]
        md += (f"| {r['dataset']} | {r['users']} | {r['full']['test']['ndcg@10']:.2f} | {d['mean']['ndcg@10']:.2f} | "
               f"{u['mean']['ndcg@10']:.2f} ± {u['std']['ndcg@10']:.2f} | {d['mean']['recall_norm@10']:.2f} | "
               f"{u['mean']['recall_norm@10']:.2f} | "
               f"{', '.join('%d (%d)' % (x['steps_run'], x['best_step']) for x in runs)} | "
               f"{statistics.median(x['seconds_per_step'] for x in runs):.2f} | "
               f"{statistics.median(x['fit_on_distilled_s'] for x in runs):.2f} / {r['full']['fit_s']:.2f} |\n")
    if args.learners:
        md += ("\nOther learners trained on the same data (test nDCG@10, mean ± std over the runs; ∞-AE as above):\n\n"
               "| dataset | learner | full data | User-RNS | Distill-CF |\n|---|---|---|---|---|\n")
        for r in rows:
            for name, v in r["learners"].items():
                md += (f"| {r['dataset']} | {name} | {v['full']['ndcg@10']:.2f} | "
                       + " | ".join(f"{v[k]['mean']['ndcg@10']:.2f} ± {v[k]['std']['ndcg@10']:.2f}"
                                    for k in ("user_rns", "distill_cf")) + " |\n")
    write_result(args.name, {"rows": rows, "args": vars(args)}, md)
    print(md)


def other_learners(args, split, proto, full, rns_sets, dist_sets) -> dict:
    """Each extra learner (a registered user-free CF model, λ/k on validation where it has one)
    on the full data, on every User-RNS sample and on every distilled support."""
    import inspect

    from recsift.models import build_model

    out = {}
    for name in [x for x in args.learners.split(",") if x]:
        def fit_test(ts):
            m = build_model(name)
            tunes = "valid" in inspect.signature(m.fit).parameters
            m.fit(ts, **({"valid": split.valid} if tunes else {}))
            return proto.test(m)

        out[name] = {"full": fit_test(full), "user_rns": mean_std([fit_test(t) for t in rns_sets]),
                     "distill_cf": mean_std([fit_test(t) for t in dist_sets])}
        print(json.dumps({"learner": name, "full": out[name]["full"]["ndcg@10"],
                          "distill_cf": out[name]["distill_cf"]["mean"]["ndcg@10"]}), flush=True)
    return out


if __name__ == "__main__":
    main()
