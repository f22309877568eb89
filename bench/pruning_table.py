"""Pruning table: accuracy retained by each curator at each budget, retrained models, several seeds.

Per dataset: the full-data reference and every curator × budget; each curated set is retrained
with each model and seed (early stopping on the dataset's validation cases); test metrics from
the best epoch. Probe models (EL2N, CCS, D2) and MoE experts are trained once per seed on the
full training set and reused across budgets. Prints and writes
bench/results/pruning_table_<dataset><suffix>.{json,md} with mean ± std over seeds and "% of full".

Usage: python bench/pruning_table.py --dataset yoochoose-100k --budgets 0.3,0.5 --seeds 0,1,2 \
           --models gru4rec --curators random,el2n,ccs,d2,moe
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, checkpoint_path, write_markdown, write_result  # noqa: E402

SESSION_UNIT = {"unit": "user", "budget_in": "targets"}
CURATORS = {  # name -> (method, params[, CurationContext overrides])
    "random": ("random", {}),
    "el2n": ("el2n", {}),
    "ccs": ("ccs", {"score": "el2n", "beta": 0.1}),
    "d2": ("d2", {"score": "el2n", "graph": "session"}),
    "moe": ("moe", {}),
    "moe_top": ("moe", {"selector": "top"}),  # ablations of the MoE curator: plain top-k selection,
    "moe_ccs": ("moe", {"selector": "ccs", "beta": 0.1}),  # CCS (β = 0.1, 50 strata) on the mixture score,
    "moe_cut": ("moe", {"beta": 0.1}),  # hard cutoff of the 10% hardest, then D2 (as d2pruning runs it),
    "moe_k1": ("moe", {"k": 1}),  # gate top-k
    "moe_k3": ("moe", {"k": 3}),
    "moe_bal0": ("moe", {"bal_coef": 0.0}),  # no load-balancing loss
    "moe_bal0.1": ("moe", {"bal_coef": 0.1}),
    "moe_mean": ("moe", {"weighting": "mean"}),  # mean ensemble instead of the gate
    "moe_heldout": ("moe", {"gate_data": "valid"}),  # gate trained on the validation cases
    # selection unit = whole session (user) instead of prefix sample; the budget still counts targets
    "random_session": ("random", {}, SESSION_UNIT),
    "moe_session": ("moe", {}, SESSION_UNIT),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="yoochoose-100k")
    ap.add_argument("--budgets", default="0.3,0.5")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--models", default="gru4rec")
    ap.add_argument("--curators", default="random,el2n,ccs,d2,moe")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=256,
                    help="retrain batch; 2048 gives yoochoose-100k only 20 steps/epoch and stops early, under-trained")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--probe-epochs", type=int, default=10)
    ap.add_argument("--experts", default="core,gru4rec,srgnn")
    ap.add_argument("--expert-epochs", type=int, default=50)
    ap.add_argument("--metrics", default="recall@20,mrr@20")
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR"))
    ap.add_argument("--suffix", default="", help="appended to the result name, e.g. _transfer")
    ap.add_argument("--resume", action="store_true",
                    help="keep the rows of an earlier run of the same result name and only run the missing ones "
                         "(retrain settings must match)")
    ap.add_argument("--reuse", default="",
                    help="comma-separated result names (e.g. pruning_table_yoochoose-100k) whose rows are copied "
                         "instead of rerun where the settings that row depends on match (runs are deterministic "
                         "per seed; full rows and the data-only curators' (random, popularity, prefix_length) "
                         "ignore probe and expert settings)")
    ap.add_argument("--no-full", action="store_true",
                    help="skip the full-data reference retrains (a --suffix run whose rows are merged with --reuse "
                         "into a table that has them; without them this run's own table has no '%% of full')")
    ap.add_argument("--render", action="store_true", help="only rewrite the .md of an earlier run from its .json")
    ap.add_argument("--cache-dir", default=None,
                    help="folder for probe outputs and MoE experts (keyed by data, seed and settings): a later run "
                         "reuses them instead of training again (its curation seconds then exclude that training); "
                         "retrains keep per-epoch checkpoints in <dir>/checkpoints, so the same command run again "
                         "after an interruption continues an unfinished retrain")
    a = ap.parse_args()
    if a.render:
        return write(previous_rows(a), tuple(a.metrics.split(",")), a)

    from recsift.curators import CurationContext, curate
    from recsift.data import load_split
    from recsift.train import TrainConfig, train_model
    from recsift.utils.runtime import configure_threads

    configure_threads()
    split = load_split(a.dataset, data_dir=a.data_dir)
    full = split.training_set("sequence")
    metrics = tuple(a.metrics.split(","))
    budgets = [float(b) for b in a.budgets.split(",")]
    rows = previous_rows(a) if a.resume else []
    n_resumed = len(rows)
    rows = reused_rows(a, rows)  # appends to the list it is given
    unwritten = len(rows) > n_resumed  # rows copied by --reuse, written with the first retrained row or at the end
    done = {row_key(r) for r in rows}
    routing = {}  # (seed, curator, budget) -> routing share of the curations this run makes
    models = a.models.split(",")
    for seed in [int(s) for s in a.seeds.split(",")]:
        cfg = TrainConfig(epochs=a.epochs, patience=a.patience, seed=seed, metrics=metrics, valid_metric=metrics[0],
                          batch_size=a.batch_size, lr=a.lr)
        ctx = CurationContext(split=split, seed=seed, cache_dir=Path(a.cache_dir) if a.cache_dir else None,
                              probe_config=TrainConfig(
            epochs=a.probe_epochs, patience=None, seed=seed, batch_size=a.batch_size, lr=a.lr))
        sets = {} if a.no_full else {("full", 1.0): (full, 0.0)}
        for cname in a.curators.split(","):
            method, params, cctx = curator_call(cname, ctx, a)
            for b in budgets:
                if all((seed, m, cname, b) in done for m in models):
                    continue
                t0 = time.perf_counter()
                kept, report = curate(full, method, b, cctx, **params)
                sets[(cname, b)] = (kept, time.perf_counter() - t0)
                routing[(seed, cname, b)] = report.summary().get("routing_share")
                print(f"seed {seed} {cname} {b}: {len(kept)} samples in {sets[(cname, b)][1]:.1f}s", flush=True)
        for model in models:
            for (cname, b), (ts, cur_s) in sets.items():
                if (seed, model, cname, b) in done:
                    continue
                ckpt = checkpoint_path(a.cache_dir, f"pruning_table_{a.dataset}{a.suffix}", seed, model, cname, f"{b:g}")
                res = train_model(split, model, cfg, train_set=ts, checkpoint=ckpt)
                rows.append({"seed": seed, "model": model, "curator": cname, "budget": b, "kept": len(ts),
                             "fraction": len(ts) / len(full), "curation_s": round(cur_s, 1),
                             "epochs": len(res.history), "s_per_epoch": round(res.train_seconds_per_epoch, 2),
                             "routing_share": routing[(seed, cname, b)] if cname != "full" else None,
                             **{m: res.test[m] for m in metrics}})
                print(rows[-1], flush=True)
                write(rows, metrics, a)  # after every row: an interrupted run keeps what it measured
                unwritten = False
    if unwritten:  # nothing retrained: a pure merge of --reuse rows (a run with nothing new leaves the files alone)
        write(rows, metrics, a)


def curator_call(cname: str, ctx, a) -> tuple[str, dict, object]:
    """The ``curate`` method, parameters and context of the table's curator ``cname`` (other names: a
    curator or a score); the MoE family gets the run's experts (``a.experts``, ``a.expert_epochs``)."""
    method, params, *over = CURATORS.get(cname, (cname, {}))
    if method == "moe":
        params = {**params, "experts": tuple(a.experts.split(",")), "expert_epochs": a.expert_epochs}
    return method, params, replace(ctx, **over[0]) if over else ctx  # shares ctx's memo: experts, probes reused


CORE_ARGS = ("dataset", "epochs", "patience", "batch_size", "lr", "metrics")  # every row depends on these
RETRAIN_ARGS = (*CORE_ARGS, "probe_epochs", "experts", "expert_epochs")
DATA_ONLY = ("random", "popularity", "prefix_length")  # curators that train no probe and no expert


def row_settings(curator: str) -> tuple[str, ...]:
    """The settings a row of ``curator`` depends on: the retrain settings, plus the probe settings for
    score-based curators and the expert settings for the MoE family (full data and the data-only
    curators need neither)."""
    method = CURATORS.get(curator, (curator,))[0]
    if curator == "full" or method in DATA_ONLY:
        return CORE_ARGS
    return RETRAIN_ARGS if method == "moe" else (*CORE_ARGS, "probe_epochs")


def row_key(r: dict) -> tuple:
    return r["seed"], r["model"], r["curator"], r["budget"]


def load_result(name: str) -> dict:
    import json

    return json.loads((RESULTS / f"{name}.json").read_text())


def clashes(old: dict, a, keys: tuple[str, ...] = RETRAIN_ARGS) -> dict:
    """The settings among ``keys`` where an earlier result differs from this run: name -> (old, new)."""
    return {k: (old["args"].get(k), getattr(a, k)) for k in keys if old["args"].get(k) != getattr(a, k)}


def check_settings(old: dict, a, what: str) -> None:
    """An earlier result's retrain settings must equal this run's (``what`` names the flag)."""
    clash = clashes(old, a)
    if clash:
        raise SystemExit(f"{what}: {old['benchmark']} was run with other settings {clash} (old, new); "
                         "use another --suffix or the same settings")


def previous_rows(a) -> list[dict]:
    """Rows of an earlier run of this result name (``--resume``, ``--render``)."""
    name = f"pruning_table_{a.dataset}{a.suffix}"
    if not (RESULTS / f"{name}.json").exists():
        if a.render:
            raise SystemExit(f"--render: no {RESULTS / name}.json to render")
        return []
    old = load_result(name)
    if a.render:  # the table is rendered with the run's own settings and header
        a.old_payload = old
        for k, v in old["args"].items():
            if k not in ("render", "resume", "reuse", "suffix", "dataset", "cache_dir"):
                setattr(a, k, v)
    check_settings(old, a, "--render" if a.render else "--resume")
    a.earlier_commands = old.get("commands", [old.get("command")])
    print(f"resuming: {len(old['rows'])} rows from {name}", flush=True)
    return old["rows"]


def reused_rows(a, rows: list[dict]) -> list[dict]:
    """``rows`` plus the rows of the ``--reuse`` results that this run asks for and does not have yet."""
    want = {(s, m, c, b) for s in map(int, a.seeds.split(",")) for m in a.models.split(",")
            for c in ["full", *a.curators.split(",")] for b in ([1.0] if c == "full" else map(float, a.budgets.split(",")))}
    have = {row_key(r) for r in rows}
    for name in filter(None, a.reuse.split(",")):
        old = load_result(name)
        for r in old["rows"]:
            if row_key(r) in want and row_key(r) not in have:
                clash = clashes(old, a, row_settings(r["curator"]))
                if clash:  # e.g. MoE rows of a run with other experts; its random rows are still fine
                    print(f"not reusing {name}: seed {r['seed']} {r['model']} {r['curator']} {r['budget']:g} "
                          f"(other settings {clash}, old, new)", flush=True)
                    continue
                rows.append({**r, "reused_from": name})
                have.add(row_key(r))
                print(f"reusing {name}: seed {r['seed']} {r['model']} {r['curator']} {r['budget']:g}", flush=True)
    return rows


def write(rows: list[dict], metrics: tuple[str, ...], a) -> None:
    table = summarise(rows, metrics)
    commands = [*getattr(a, "earlier_commands", []), *([] if a.render else [" ".join(["python"] + sys.argv)])]
    args = {k: v for k, v in vars(a).items() if k != "earlier_commands"}
    md = to_markdown(table, metrics, a, seeds=",".join(str(x) for x in sorted({r["seed"] for r in rows})))
    reused = [f"{r['reused_from']}: seed {r['seed']} {r['model']} {r['curator']} {r['budget']:g}" for r in rows
              if r.get("reused_from")]
    if reused:
        md += ("\n\nRows copied from earlier results with the same settings (`--reuse`; a seed's run is "
               "deterministic, so rerunning gives the same numbers): " + "; ".join(reused))
    if len(commands) > 1:
        md += "\n\nRows come from these runs, in order (`--resume` keeps earlier rows):\n" + "\n".join(
            f"- `{c}`" for c in commands)
    if a.render:  # only the .md, under the run's own date, machine and command
        note = a.old_payload.get("note")
        write_markdown(a.old_payload, md + (f"\n\n{note}" if note else ""))
        return
    write_result(f"pruning_table_{a.dataset}{a.suffix}", {"dataset": a.dataset, "args": args, "rows": rows,
                                                "commands": commands, "summary": table}, md)


def summarise(rows: list[dict], metrics: tuple[str, ...]) -> list[dict]:
    import pandas as pd

    df = pd.DataFrame(rows)
    full = df[df.curator == "full"].set_index(["model", "seed"])
    out = []
    for (model, cur, b), g in df.groupby(["model", "curator", "budget"], sort=False):
        r = {"model": model, "curator": cur, "budget": b, "n_seeds": len(g), "kept": int(g.kept.mean())}
        for m in metrics:
            # NaN where a seed has no full-data row (a --no-full run): "% of full" then shows "-"
            ret = g[m].to_numpy() / full[m].reindex([(model, s) for s in g.seed]).to_numpy()
            r[m] = float(g[m].mean())
            r[f"{m}_std"] = float(g[m].std(ddof=1)) if len(g) > 1 else 0.0
            r[f"{m}_retained"] = float(ret.mean())
            r[f"{m}_retained_se"] = float(ret.std(ddof=1) / np.sqrt(len(ret))) if len(ret) > 1 else 0.0
        shares = [x for x in g.get("routing_share", []) if isinstance(x, dict)]
        if shares:
            r["routing_share"] = {k: float(np.mean([x[k] for x in shares])) for k in shares[0]}
        out.append(r)
    return out


def versus_random(table: list[dict], metric: str) -> list[dict]:
    """Each curator's retained ``metric`` minus Random's at the same model and budget, with the
    difference over the two standard errors combined (``z``); only rows where both sides have at
    least two seeds (one seed has no spread)."""
    rnd = {(r["model"], r["budget"]): r for r in table if r["curator"] == "random" and r["n_seeds"] > 1}
    out = []
    for r in table:
        base = rnd.get((r["model"], r["budget"]))
        if r["curator"] in ("random", "full") or base is None or r["n_seeds"] < 2:
            continue
        diff = r[f"{metric}_retained"] - base[f"{metric}_retained"]
        if not np.isfinite(diff):  # a side without its full-data reference (--no-full)
            continue
        se = float(np.hypot(r[f"{metric}_retained_se"], base[f"{metric}_retained_se"]))
        out.append({"model": r["model"], "curator": r["curator"], "budget": r["budget"], "diff": diff,
                    "z": diff / se if se > 0 else float("nan"), "n_seeds": min(r["n_seeds"], base["n_seeds"])})
    return out


def to_markdown(table: list[dict], metrics: tuple[str, ...], a, seeds: str) -> str:
    """The result table; ``seeds`` lists the seeds the rows have (a merge's own --seeds may be fewer)."""
    head = "| model | curator | keep | samples | seeds | " + " | ".join(f"{m} (mean ± std) | % of full ± se" for m in metrics) + " |"
    lines = [head, "|" + "---|" * (5 + 2 * len(metrics))]
    for r in table:
        cells = " | ".join(f"{100 * r[m]:.2f} ± {100 * r[m + '_std']:.2f} | " + (
            f"{100 * r[m + '_retained']:.1f} ± {100 * r[m + '_retained_se']:.1f}"
            if np.isfinite(r[m + '_retained']) else "-") for m in metrics)
        lines.append(f"| {r['model']} | {r['curator']} | {r['budget']:g} | {r['kept']:,} | {r['n_seeds']} | {cells} |")
    # the routing belongs to the scorer, not to the retrained model: one entry per curator and budget,
    # unless the models' rows average different seeds (then one per model)
    routed = [(r, ", ".join(f"{k} {v:.2f}" for k, v in r["routing_share"].items()))
              for r in table if r.get("routing_share")]
    variants: dict[tuple, set[str]] = {}
    for r, text in routed:
        variants.setdefault((r["curator"], r["budget"]), set()).add(text)
    shares = {(f"{r['model']} " if len(variants[(r["curator"], r["budget"])]) > 1 else "")
              + f"{r['curator']} {r['budget']:g} {text}": None for r, text in routed}
    if shares:
        lines.append("\nMoE routing (each expert's share of the gate weight, mean over seeds): " + "; ".join(shares))
    versus = versus_random(table, metrics[0])
    if versus:
        lines.append(f"\nAgainst Random, % of full-data {metrics[0]} retained, in points (difference / √(se² + se²), "
                     "rows with ≥ 2 seeds on both sides; ≥ 2 SE is the issue's bar): " + "; ".join(
                         f"{v['model']} {v['curator']} keep {v['budget']:g}: {100 * v['diff']:+.1f} "
                         f"({v['z']:+.1f} SE, {v['n_seeds']} seeds)" for v in versus))
    lines.append(f"\nseeds {seeds} (the seeds column: how many of them each row has so far); retrain: up to {a.epochs} epochs, patience {a.patience}; probes (EL2N/CCS/D2) "
                 f"{a.probe_epochs} epochs; MoE experts {a.experts} (≤ {a.expert_epochs} epochs, early stopping); metrics ×100.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
