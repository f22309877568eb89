"""Accuracy of ∞-AE vs the share of data kept, one curve per sampler (the Distill-CF paper's
"% users sampled" figure), and Distill-CF's noise robustness.

Usage:
  python bench/distill_curves.py curves --dataset magazine [--fractions 0.01,0.05,0.1,0.25,0.5]
         [--samplers user_rns,interaction_rns,head_users,svp_cf,distill_cf] [--seeds 0,1,2]
         [--distill-seeds 0] [--steps 200] [--max-minutes 4]
  python bench/distill_curves.py noise --dataset magazine [--noise 0,0.01,0.05,0.1,0.25]
         [--users 100,500,2000] [--seeds 0,1,2] [--distill-seeds 0] [--steps 200] [--max-minutes 4]

The learner is always ∞-AE with λ chosen on validation nDCG@10 from the Distill-CF grid
(ALGORITHMS.md §9–§10); test metrics follow the ∞-AE protocol (§1.3) with AUC over 50 fixed
negatives. ``curves``: the x-axis is the kept fraction of *users* for the user samplers and
Distill-CF (synthetic users / real users) and of *interactions* for Interaction-RNS.
``noise``: x% random user-item pairs are added to train only (valid/test stay clean), then
full-data ∞-AE, ∞-AE on a Distill-CF support of μ users and ∞-AE on μ random real users
(User-RNS) are compared. Writes bench/results/<name>.{json,md,png}.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, write_result  # noqa: E402
from _distill import Protocol, mean_std  # noqa: E402

#: sampler -> (curator, selection unit)
SAMPLERS = {"user_rns": ("random", "user"), "interaction_rns": ("random", "sample"),
            "head_users": ("head_users", "user"), "svp_cf": ("svp_cf", "user"), "distill_cf": ("distill_cf", "user")}
LABELS = {"user_rns": "User-RNS", "interaction_rns": "Interaction-RNS", "head_users": "Head users",
          "svp_cf": "SVP-CF (BPR proxy)", "distill_cf": "Distill-CF", "full": "full data"}


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def fit_and_test(train_set, split, proto: Protocol) -> dict:
    from recsift.distill import DISTILL_LAMBDAS, InfiniteAE

    t0 = time.perf_counter()
    m = InfiniteAE(lambdas=DISTILL_LAMBDAS, select_metric="ndcg@10").fit(train_set, split.valid)
    return {"lam": m.lam_, "fit_s": round(time.perf_counter() - t0, 3), "test": proto.test(m)}


def run_sampler(full, split, proto, sampler: str, budget, seed: int, args) -> dict:
    from recsift.curators import CurationContext, curate
    from recsift.train import TrainConfig

    method, unit = SAMPLERS[sampler]
    # the probe cache lets SVP-CF train its proxy once per seed and dataset, not once per budget
    ctx = CurationContext(split=split, seed=seed, unit=unit, cache_dir=Path(args.cache_dir),
                          probe_config=TrainConfig(epochs=5, patience=None, batch_size=1024, lr=1e-3))
    params = {"steps": args.steps, "max_seconds": 60 * args.max_minutes} if method == "distill_cf" else {}
    t0 = time.perf_counter()
    sub, report = curate(full, method, budget, ctx, **params)
    cur_s = time.perf_counter() - t0
    res = fit_and_test(sub, split, proto)
    extra = {k: report.extra[k] for k in ("best_step", "steps_run", "seconds_per_step") if k in report.extra}
    return {"sampler": sampler, "budget": budget, "seed": seed, "curate_s": round(cur_s, 2),
            "train_interactions": len(sub), **extra, **res}


def seeds_for(sampler: str, args) -> list[int]:
    if sampler == "distill_cf":
        return ints(args.distill_seeds)
    if sampler == "head_users":
        return [0]  # deterministic
    if sampler == "svp_cf" and args.svp_seeds:
        return ints(args.svp_seeds)
    return ints(args.seeds)


def summarise(runs: list[dict], key: tuple) -> dict:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault(tuple(r[k] for k in key), []).append(r["test"])
    return {g: {"n": len(t), **mean_std(t)} for g, t in groups.items()}


def curves(args, split, full, proto, full_res) -> tuple[dict, str]:
    runs = []
    for frac in floats(args.fractions):
        for sampler in args.samplers.split(","):
            for seed in seeds_for(sampler, args):
                runs.append(run_sampler(full, split, proto, sampler, frac, seed, args))
                print(json.dumps({k: v for k, v in runs[-1].items() if k != "test"} | {
                    "ndcg@10": round(runs[-1]["test"]["ndcg@10"], 2)}), flush=True)
    summ = summarise(runs, ("sampler", "budget"))
    samplers = args.samplers.split(",")
    ref = full_res["test"]["ndcg@10"]
    md = (f"Full data: nDCG@10 {ref:.2f}, AUC {full_res['test']['auc']:.2f}. Cells: test nDCG@10 mean ± std over "
          "seeds (% of full data). Fraction = users kept (Interaction-RNS: interactions kept).\n\n"
          "| kept | " + " | ".join(LABELS[s] for s in samplers) + " |\n|" + "---|" * (len(samplers) + 1) + "\n")
    for frac in floats(args.fractions):
        cells = []
        for s in samplers:
            g = summ[(s, frac)]
            cells.append(f"{g['mean']['ndcg@10']:.2f} ± {g['std']['ndcg@10']:.2f} "
                         f"({100 * g['mean']['ndcg@10'] / ref:.0f}%)")
        md += f"| {100 * frac:g}% | " + " | ".join(cells) + " |\n"
    plot_curves(args.name, samplers, floats(args.fractions), summ, ref, args.dataset)
    md += f"\n![accuracy vs kept]({args.name}.png)\n"
    return {"runs": runs, "summary": {f"{k[0]}@{k[1]}": v for k, v in summ.items()}}, md


def plot_curves(name: str, samplers: list[str], fractions: list[float], summ: dict, ref: float, dataset: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    x = [100 * f for f in fractions]
    for s in samplers:
        ax.errorbar(x, [summ[(s, f)]["mean"]["ndcg@10"] for f in fractions],
                    yerr=[summ[(s, f)]["std"]["ndcg@10"] for f in fractions], marker="o", capsize=3, label=LABELS[s])
    ax.axhline(ref, color="k", ls="--", lw=1, label=LABELS["full"])
    ax.set_xscale("log")
    ax.set_xlabel("% of users kept (Interaction-RNS: % of interactions)")
    ax.set_ylabel("test nDCG@10 (∞-AE)")
    ax.set_title(f"{dataset}: accuracy vs data kept")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=120)
    plt.close(fig)


def noise(args, split, full, proto, full_res) -> tuple[dict, str]:
    import numpy as np

    from recsift.data.noise import inject_random_interactions

    runs = []
    for level in floats(args.noise):
        noisy, _ = inject_random_interactions(full, level, rng=np.random.default_rng(1000 + int(1e4 * level)))
        res = fit_and_test(noisy, split, proto)
        runs.append({"noise": level, "method": "full", "users": 0, "seed": 0, **res})
        for mu in ints(args.users):
            for sampler in ("distill_cf", "user_rns"):
                for seed in seeds_for(sampler, args):
                    r = run_sampler(noisy, split, proto, sampler, mu, seed, args)
                    runs.append({"noise": level, "method": sampler, "users": mu, **r})
                    print(json.dumps({k: v for k, v in runs[-1].items() if k != "test"} | {
                        "ndcg@10": round(r["test"]["ndcg@10"], 2)}), flush=True)
    summ = summarise(runs, ("noise", "method", "users"))
    levels, mus = floats(args.noise), ints(args.users)
    md = ("Cells: test nDCG@10 of ∞-AE (mean ± std over seeds); train has x% extra random interactions.\n\n"
          "| noise | full data | " + " | ".join(f"Distill-CF {m} | User-RNS {m}" for m in mus) + " |\n|"
          + "---|" * (2 + 2 * len(mus)) + "\n")
    for lv in levels:
        cells = [f"{summ[(lv, 'full', 0)]['mean']['ndcg@10']:.2f}"]
        for m in mus:
            for meth in ("distill_cf", "user_rns"):
                g = summ[(lv, meth, m)]
                cells.append(f"{g['mean']['ndcg@10']:.2f} ± {g['std']['ndcg@10']:.2f}")
        md += f"| {100 * lv:g}% | " + " | ".join(cells) + " |\n"
    return {"runs": runs, "summary": {f"{k[0]}/{k[1]}/{k[2]}": v for k, v in summ.items()}}, md


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["curves", "noise"])
    ap.add_argument("--dataset", default="magazine")
    ap.add_argument("--fractions", default="0.01,0.05,0.1,0.25,0.5")
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--noise", default="0,0.01,0.05,0.1,0.25")
    ap.add_argument("--users", default="100,500,2000")
    ap.add_argument("--seeds", default="0,1,2", help="seeds of the random samplers")
    ap.add_argument("--distill-seeds", default="0")
    ap.add_argument("--svp-seeds", default="", help="SVP-CF seeds (default: --seeds); its proxy trains once per seed")
    ap.add_argument("--cache-dir", default="runs/bench-probe-cache", help="probe cache (SVP-CF's proxy)")
    ap.add_argument("--steps", type=int, default=200, help="Distill-CF steps (reference: 500, patience 150)")
    ap.add_argument("--max-minutes", type=float, default=4.0, help="cap on one Distill-CF run")
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    args.name = args.name or f"distill_{args.mode}_{args.dataset}"
    if not os.environ.get("RECSIFT_DATA_DIR"):
        sys.exit("set RECSIFT_DATA_DIR to the staged datasets (e.g. ../shared/datasets)")
    logging.basicConfig(level=logging.WARNING)
    from recsift.data import load_split
    from recsift.utils.runtime import configure_threads, peak_rss_mb

    configure_threads()
    t0 = time.perf_counter()
    split = load_split(args.dataset)
    full = split.training_set("matrix")
    proto = Protocol(split)
    full_res = fit_and_test(full, split, proto)
    payload, md = (curves if args.mode == "curves" else noise)(args, split, full, proto, full_res)
    payload.update({"full": full_res, "args": vars(args), "seconds": round(time.perf_counter() - t0, 1),
                    "peak_rss_mb": peak_rss_mb(), "load_avg": os.getloadavg()})
    md += f"\nTotal {payload['seconds']:.0f} s; load average at the end {os.getloadavg()[0]:.1f}.\n"
    write_result(args.name, payload, md)
    print(md)


if __name__ == "__main__":
    main()
