"""What each curator keeps: a profile of the kept samples, next to the accuracy they retain.

For one dataset, seed and budget, every curator of the pruning table curates the full training set
(probe and MoE experts read back from ``--cache-dir`` when a pruning-table run cached them, so this
trains nothing new in that case) and its kept set is described by: the median popularity of the
kept targets, the share of tail samples kept (target among the 20% least popular, as in the
report's popularity view), the share of target items still covered, of users still present, the
mean prefix length, and the Spearman correlation of the
curator's score with target popularity and with prefix length. Where a pruning-table result with
the same settings exists (``--table``), each row also shows the Recall@20 it retained.

For the early-epoch scores, GraNd / EL2N (the mean last-layer representation norm ‖h‖ weighting
EL2N's error norms) is profiled as well: what a large ‖h‖ marks.

Usage: python bench/kept_profile.py --dataset beauty --budget 0.5 --seed 0 \
           --curators random,el2n,grand,ccs,d2,moe --experts core,gru4rec,narm --expert-epochs 10 \
           --cache-dir /work/cache --table pruning_table_beauty --model gru4rec
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, write_markdown, write_result  # noqa: E402
from pruning_table import curator_call  # noqa: E402


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic) if ok.sum() > 2 else float("nan")


def profile(kept: np.ndarray, targets: np.ndarray, users: np.ndarray, plen: np.ndarray, pop: np.ndarray) -> dict:
    """Describe the kept samples (``kept``: bool per sample) against the whole training set."""
    from recsift.curators.units import popularity_tail

    tail = popularity_tail(pop)
    return {"kept": int(kept.sum()),
            "median_pop": float(np.median(pop[kept])),
            "tail_kept": float(kept[tail].mean()),
            "items_covered": len(np.unique(targets[kept])) / len(np.unique(targets)),
            "users_present": len(np.unique(users[kept])) / len(np.unique(users)),
            "mean_prefix": float(plen[kept].mean())}


def retained(table: dict | None, model: str, curator: str, budget: float, seed: int, metric: str) -> float | None:
    """``metric`` of this curated retrain as % of the same seed's full-data retrain, from a pruning table."""
    if table is None:
        return None
    rows = {(r["curator"], r["budget"]): r[metric] for r in table["rows"] if r["model"] == model and r["seed"] == seed}
    full, got = rows.get(("full", 1.0)), rows.get((curator, budget))
    return 100 * got / full if full and got is not None else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--curators", default="random,el2n,grand,ccs,d2,moe")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--probe-epochs", type=int, default=10)
    ap.add_argument("--experts", default="core,gru4rec,narm")
    ap.add_argument("--expert-epochs", type=int, default=10)
    ap.add_argument("--table", default=None, help="pruning-table results (comma-separated) whose retrains give the accuracy column")
    ap.add_argument("--model", default="gru4rec", help="retrained model of the accuracy column")
    ap.add_argument("--metric", default="recall@20")
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR"))
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--name", default=None, help="result name (default kept_profile_<dataset>_<budget>_s<seed>)")
    ap.add_argument("--render", action="store_true", help="only rewrite the .md of an earlier run from its .json")
    a = ap.parse_args()
    name = a.name or f"kept_profile_{a.dataset}_{a.budget:g}_s{a.seed}"
    if a.render:
        if not (RESULTS / f"{name}.json").exists():
            raise SystemExit(f"--render: no {RESULTS / name}.json to render; run without --render first")
        old = json.loads((RESULTS / f"{name}.json").read_text())
        extra = {"hnorm": old["hnorm"]} if "hnorm" in old else {}
        return write_markdown(old, to_markdown(old["rows"], extra, argparse.Namespace(**old["settings"])))

    missing = [t for t in (a.table or "").split(",") if t and not (RESULTS / f"{t}.json").exists()]
    if missing:
        raise SystemExit(f"--table: no result {', '.join(missing)} under {RESULTS} (name pruning-table results "
                         "without .json, e.g. pruning_table_beauty)")

    from recsift.curators import CurationContext, curate
    from recsift.curators.units import target_popularity
    from recsift.data import load_split
    from recsift.train import TrainConfig
    from recsift.utils.runtime import configure_threads

    configure_threads()
    split = load_split(a.dataset, data_dir=a.data_dir)
    full = split.training_set("sequence")
    d = full.data
    targets, users, plen = d.targets, d.user, d.prefix_lengths.astype(np.float64)
    pop = target_popularity(targets).astype(np.float64)
    ctx = CurationContext(split=split, seed=a.seed, cache_dir=Path(a.cache_dir) if a.cache_dir else None,
                          probe_config=TrainConfig(epochs=a.probe_epochs, patience=None, seed=a.seed,
                                                   batch_size=a.batch_size, lr=a.lr))
    table = {"rows": [r for t in a.table.split(",") for r in json.loads((RESULTS / f"{t}.json").read_text())["rows"]]} \
        if a.table else None
    rows, scores = [], {}
    for cname in a.curators.split(","):
        method, params, cctx = curator_call(cname, ctx, a)
        _, rep = curate(full, method, a.budget, cctx, **params)
        if rep.scores is not None:
            scores[cname] = rep.scores
        s = rep.scores if rep.scores is not None else np.full(len(full), np.nan)
        rows.append({"curator": cname, "score": rep.score_name, **profile(rep.kept, targets, users, plen, pop),
                     "rho_pop": spearman(s, pop), "rho_prefix": spearman(s, plen),
                     "retained": retained(table, a.model, cname, a.budget, a.seed, a.metric)})
        print(rows[-1], flush=True)
    extra = {}
    if "el2n" in scores and "grand" in scores:  # GraNd = Σ_early ‖p − e_y‖·‖h‖, EL2N = Σ_early ‖p − e_y‖
        h = scores["grand"] / np.maximum(scores["el2n"], 1e-12)
        m = max(1, int(round(a.budget * len(full))))
        top_h = np.zeros(len(full), bool)
        top_h[np.argsort(-h, kind="stable")[:m]] = True
        extra = {"hnorm": {"rho_pop": spearman(h, pop), "rho_prefix": spearman(h, plen),
                           "rho_el2n": spearman(h, scores["el2n"]), "rho_grand": spearman(h, scores["grand"]),
                           "rho_el2n_grand": spearman(scores["el2n"], scores["grand"]),
                           "cv": float(h.std() / h.mean()), "el2n_cv": float(scores["el2n"].std() / scores["el2n"].mean()),
                           "top_h": profile(top_h, targets, users, plen, pop)}}
    write_result(name, {"settings": vars(a), "rows": rows, **extra}, to_markdown(rows, extra, a))


def to_markdown(rows: list[dict], extra: dict, a) -> str:
    def f(x, nd=1, scale=1.0):
        return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{scale * x:.{nd}f}"

    lines = [f"{a.dataset}, keep {a.budget:g}, seed {a.seed}. Tail: samples whose target is among the 20% least "
             "popular; ρ: Spearman correlation of the curator's score, as the score is defined (high = hard for EL2N, "
             "GraNd, entropy, forgetting; low = hard for margin and the MoE's AUM), with target popularity and with "
             f"prefix length (CCS and D2 use EL2N); retained: {a.model}'s {a.metric} as % of the same seed's full-data retrain"
             + (f" (from {a.table})" if a.table else "") + ".", "",
             "| curator | kept | median target popularity | tail kept % | target items covered % | users present % "
             "| mean prefix length | ρ(score, popularity) | ρ(score, prefix) | retained % |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['curator']} | {r['kept']:,} | {r['median_pop']:.0f} | {f(r['tail_kept'], 1, 100)} | "
                     f"{f(r['items_covered'], 1, 100)} | {f(r['users_present'], 1, 100)} | {r['mean_prefix']:.2f} | "
                     f"{f(r['rho_pop'], 2)} | {f(r['rho_prefix'], 2)} | "
                     f"{f(r['retained'])} |")
    if extra:
        h = extra["hnorm"]
        t = h["top_h"]
        lines += ["", f"‖h‖ (GraNd / EL2N, the mean last-layer norm over the early epochs): coefficient of variation "
                  f"{h['cv']:.2f} (EL2N's {h['el2n_cv']:.2f}); Spearman with target popularity {h['rho_pop']:.2f}, "
                  f"prefix length {h['rho_prefix']:.2f}, EL2N {h['rho_el2n']:.2f}, GraNd {h['rho_grand']:.2f}; "
                  f"EL2N vs GraNd {h['rho_el2n_grand']:.2f}. Top {a.budget:g} by ‖h‖ alone: median target popularity "
                  f"{t['median_pop']:.0f}, tail kept {100 * t['tail_kept']:.1f}%, target items covered "
                  f"{100 * t['items_covered']:.1f}%, mean prefix length {t['mean_prefix']:.2f}."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
