"""One table over several `bench/dr4sr.py` results: mean ± std over seeds per dataset x backbone x
variant x recipe, and the change against the original data on the same seeds.

Usage:
  python bench/dr4sr_summary.py --runs dr4sr_beauty_original_uncapped_packed,dr4sr_beauty_dr4sr_uncapped_packed,\
dr4sr_beauty_original_uncapped_packed_s2024,dr4sr_beauty_dr4sr_uncapped_packed_s2024 --name dr4sr_summary

Runs are grouped by dataset, model, variant and training recipe (epoch cap, patience): a run with
another recipe gets a row of its own. "vs original" is the mean over the seeds both rows have of the
relative change of the metric (each seed is one whole pipeline: regeneration and training share it),
with the number of such paired seeds; with fewer than 2 paired seeds it is one draw, not a gain.
The learnt DR4SR+ weights of every DR4SR+ run among them go into one plot, one histogram per
dataset, target model and seed (<name>_weights.png).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _common  # noqa: E402
from _common import write_result  # noqa: E402

from dr4sr import DATA_DEFAULTS, paper_cell, plot_weights  # noqa: E402  (Table 2 figures; weight histograms)

METRICS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")


def load_runs(names: list[str]) -> list[dict]:
    """Every training run of the named results, with its dataset, recipe and source."""
    out = []
    for name in names:
        path = _common.RESULTS / f"{name}.json"
        if not path.exists():
            raise SystemExit(f"no result {path}: name results under bench/results without .json")
        payload = json.loads(path.read_text())
        a = payload["args"]
        # a run with other model hyper-parameters (--model-param) is another model: its own rows and pairs
        model_tag = f" ({', '.join(a['model_param'])})" if a.get("model_param") else ""
        for r in payload.get("runs", []):
            variant = r["variant"] + label(r["variant"], a)
            out.append({**r, "dataset": a["dataset"], "model": r["model"] + model_tag, "variant": variant,
                        "cap": r.get("epochs_cap", a["epochs"]), "patience": a["patience"], "source": name})
    return out


def label(variant: str, a: dict) -> str:
    """The settings a run changed from bench/dr4sr.py's defaults that change its data: the regeneration's
    γ and K (every variant built from the regenerated set) and DR4SR+'s τ, e.g. `` (gamma 0.5, tau 1)``."""
    shown = {"gamma": "gamma", "k_memories": "K", "restrictive_steps": "restrictive", "tau_init": "tau"}
    # original / doubled / (original_)patterns: data without a regeneration; τ only for the personalizer's variants
    keys = [] if variant in ("original", "doubled", "patterns", "original_patterns") else ["gamma", "k_memories", "restrictive_steps"]
    keys += ["tau_init"] if variant in ("dr4sr_plus", "end_to_end") else []
    changed = [f"{shown[k]} {a[k]:g}" for k in keys if a.get(k) not in (None, DATA_DEFAULTS[k])]
    return f" ({', '.join(changed)})" if changed else ""


def summarise(runs: list[dict]) -> list[dict]:
    """Rows of mean/std per (dataset, model, variant, cap, patience) and paired changes vs original."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["model"], r["variant"], r["cap"], r["patience"]), []).append(r)
    by_seed = {key: {r["seed"]: r for r in rs} for key, rs in groups.items()}  # a seed measured twice: the later wins
    rows = []
    for key, seeds in by_seed.items():
        row = {"dataset": key[0], "model": key[1], "variant": key[2], "cap": key[3], "patience": key[4],
               "seeds": sorted(seeds), "sources": sorted({r["source"] for r in groups[key]})}
        for m in METRICS:
            vals = [r["test"][m] for r in seeds.values()]
            row[m] = statistics.fmean(vals)
            row[f"{m}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        rows.append(row)
        if key[2] == "original":
            continue
        # paired relative change against the original data (same recipe, same seeds)
        ref = by_seed.get((key[0], key[1], "original", key[3], key[4]))
        if not ref:  # a control with its own recipe (say patience halved for a doubled set, or fewer fixed
            # epochs for the same samples seen): the original row with the same patience (a fixed-epoch run is
            # compared with the fixed-epoch original), else the one with the most seeds; the table says which
            others = [(k, v) for k, v in by_seed.items() if k[:3] == (key[0], key[1], "original")]
            if not others:
                continue
            k, ref = max(others, key=lambda kv: (kv[0][4] == key[4], len(kv[1])))
            row["original_recipe"] = f"{k[3]} / {k[4]}"
        paired = sorted(set(ref) & set(seeds))
        row["paired_seeds"] = len(paired)
        for m in METRICS:
            if paired:
                row[f"{m}_vs_original"] = statistics.fmean(seeds[s]["test"][m] / ref[s]["test"][m] - 1 for s in paired)
    return rows


def table(rows: list[dict]) -> str:
    out = ["| dataset | model | variant | cap / patience | seeds | R@10 | N@10 | R@20 | N@20 | vs original R@10 / N@10 "
           "(paired seeds) | paper R@10 / N@10 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {"original": 0, "dr4sr": 1, "dr4sr_plus": 2, "doubled": 3}
    for r in sorted(rows, key=lambda r: (r["dataset"], r["model"], r["cap"], r["patience"],
                                         order.get(r["variant"].split(" ")[0], 9), r["variant"])):
        cells = " | ".join(f"{r[m]:.4f} ± {r[f'{m}_std']:.4f}" if len(r["seeds"]) > 1 else f"{r[m]:.4f}"
                           for m in METRICS)
        vs = (f"{100 * r['recall@10_vs_original']:+.1f}% / {100 * r['ndcg@10_vs_original']:+.1f}% "
              f"({r['paired_seeds']}{'; vs ' + r['original_recipe'] if 'original_recipe' in r else ''})"
              if r.get("paired_seeds") else "-")
        paper = paper_cell(r["dataset"], r["model"], r["variant"])
        out.append(f"| {r['dataset']} | {r['model']} | {r['variant']} | {r['cap']} / {r['patience']} | "
                   f"{len(r['seeds'])} ({', '.join(map(str, r['seeds']))}) | {cells} | {vs} | {paper} |")
    srcs = sorted({s for r in rows for s in r["sources"]})
    return "\n".join(out) + ("\n\nMean ± std over seeds (one seed: the value). Cap / patience in epochs of the row's own "
                             "training set. vs original: mean over the seeds both rows have of the relative change, "
                             "against the original data trained with the same recipe, or (\"vs cap / patience\") with "
                             "that one when the row's recipe has no original run. From: " + ", ".join(srcs) + ".\n")


def weight_correlations(files: dict[str, Path]) -> list[dict]:
    """Per-sample Spearman correlation of the learnt DR4SR+ weights of each pair of runs on the same
    regenerated set (``label -> weights.npz`` as the cache saves them), over the samples any of them
    weights (the mined patterns, fixed at 1 in every run, left out)."""
    import numpy as np
    from scipy.stats import spearmanr

    w = {}
    for label, path in files.items():
        if not Path(path).exists():
            raise SystemExit(f"--weights: no file {path} (the cache's regen-<hash>/plus-<hash>/weights.npz)")
        with np.load(path) as z:
            w[label] = z["weights"]
    if len({len(v) for v in w.values()}) > 1:
        raise SystemExit("--weights: the files weight sets of different sizes "
                         f"({', '.join(f'{k}: {len(v)}' for k, v in w.items())}); compare runs on one regenerated set")
    labels = list(w)
    weighted = np.any([v != 1 for v in w.values()], axis=0)
    return [{"a": a, "b": b, "spearman": float(spearmanr(w[a][weighted], w[b][weighted]).statistic),
             "n": int(weighted.sum())} for i, a in enumerate(labels) for b in labels[i + 1:]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True, help="comma-separated result names under bench/results (dr4sr_*)")
    ap.add_argument("--name", default="dr4sr_summary")
    ap.add_argument("--weights", default="",
                    help="label=path,... DR4SR+ weight files of runs on one regenerated set (the cache's "
                         "regen-<hash>/plus-<hash>/weights.npz): each pair's per-sample Spearman correlation")
    args = ap.parse_args()
    pairs = [kv.split("=", 1) for kv in args.weights.split(",") if kv]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit("--weights: give label=path pairs separated by commas")
    corr = weight_correlations(dict(pairs)) if pairs else []
    runs = load_runs([n.strip() for n in args.runs.split(",") if n.strip()])
    rows = summarise(runs)
    weighted = [r for r in runs if r.get("weight_histogram")]
    md = table(rows) + (f"\nLearnt DR4SR+ sample weights of the {len(weighted)} DR4SR+ runs, one histogram per dataset, "
                        f"target model and seed: `{args.name}_weights.png`.\n" if weighted else "")
    if corr:
        md += ("\nPer-sample Spearman correlation of the learnt DR4SR+ weights on one regenerated set (mined patterns "
               "left out): " + "; ".join(f"{c['a']} vs {c['b']} {c['spearman']:+.2f} ({c['n']:,} samples)"
                                        for c in corr) + ".\n")
    write_result(args.name, {"runs": args.runs.split(","), "rows": rows, "weight_correlations": corr}, md)
    plot_weights(args.name, weighted)
    print(md)


if __name__ == "__main__":
    main()
