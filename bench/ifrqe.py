"""IFRQE / IFRQE++ user-controllable disclosure: reward tables and influence speed.

Usage:
  python bench/ifrqe.py table --datasets synthetic,ml-100k [--models mf,neumf] [--draws 10] [--lam 1]
                              [--epochs-mf 20] [--epochs-neumf 10] [--anchors 2]
  python bench/ifrqe.py speed --dataset ml-1m [--models mf,neumf] [--users 1000,3000,6040]
  (--suffix _tag appends to the result file name, e.g. for a λ sweep; --unwillingness category uses the
  reference's category-frequency unwillingness from the items' genres instead of uniform draws)

``table`` (ALGORITHMS.md §1.4, §11): leave-one-out (by time; file order for order-only data; a
seeded per-user random order for ml-1m, which has no timestamps), 1 + 99 candidates, λ = 1. The
anchor models (full data, plus ``--anchors`` Binomial(0.9) masks for IFRQE++) and their
influences are computed once per dataset x model; then for each of ``--draws`` seeded
unwillingness draws (uniform) every method's disclosure is solved, the model retrained on it
from the same initial weights and evaluated: F1@5 on test, wv, reward = −L_val − λ·wv
(L_val = mean BCE over the 100 validation candidates; reward_test uses the test BCE). Means and
standard errors over the draws. Datasets: ``synthetic`` = the seeded generator with 1000 users x
1000 items; ``video`` = the staged Amazon Video Games set (31k users, 287k interactions) filtered to
users with 5–20 interactions, then a seeded sample of 2,790 of them (the paper's Amazon Video user
count; the full filtered set, 27.6k users / 211k interactions, did not fit this session's CPU
budget); ``ml-100k``; ``ml-1m``.

``speed``: a model trained briefly on the dataset, then in a fresh subprocess per (model, users)
all per-user s_test vectors (LiSSA, depth 30, 8 sampled interactions per user and step, auto
scale by power iteration) and the influence of every training interaction of those users: wall
time by phase and the child's peak RSS.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402

MODELS = {"mf": "bpr", "neumf": "neumf"}
METHODS = ("base", "random", "threshold", "proactive", "ifrqe", "ifrqe++", "ifrqe-mirror", "ifrqe++-mirror")


def load_data(name: str, seed: int = 0):
    from recsift.data import load
    from recsift.data.synthetic import generate
    from recsift.disclose import disclosure_split

    if name == "synthetic":
        return disclosure_split(generate(1000, 1000, seed=seed).interactions, seed=seed)
    if name == "video":  # the paper's Amazon Video has 2,790 users: a seeded sample of that size
        import numpy as np

        inter = load("video")
        n = np.bincount(inter.user, minlength=inter.n_users)
        ok = np.flatnonzero((n >= 5) & (n <= 20))
        users = np.random.default_rng(seed).choice(ok, size=min(2790, len(ok)), replace=False)
        return disclosure_split(inter.subset(np.isin(inter.user, users)).compact(), seed=seed)
    if name == "ml-1m":
        return disclosure_split(load("ml-1m"), seed=seed, order="random")
    return disclosure_split(load(name), seed=seed)


def mean_se(xs: list[float]) -> tuple[float, float]:
    n = len(xs)
    m = sum(xs) / n
    se = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1) / n) if n > 1 else float("nan")
    return m, se


def run_table(name: str, models: list[str], draws: int, lam: float, epochs: dict[str, int], n_anchors: int,
              on_model=None, unwillingness: str = "uniform") -> dict:
    """The reward table of one dataset; ``on_model(partial_result)`` after each model (partial writes)."""
    import numpy as np

    from recsift.disclose import (GameConfig, InfluenceConfig, baseline_disclosure, default_train_config,
                                  draw_unwillingness, evaluate_disclosure, fit_anchors, run_disclosure, solve)

    t0 = time.perf_counter()
    data = load_data(name)
    counts = np.bincount(data.user, minlength=data.n_users)
    info = {"users": int(len(data.valid.user)), "items": int(data.split.n_items), "train_interactions": len(data.user),
            "loo_order": data.order, "users_n_le_20": int(((counts > 0) & (counts <= 20)).sum()),
            "max_user_interactions": int(counts.max())}
    out = {"dataset": name, "info": info, "models": {}, "unwillingness": unwillingness}
    cats = None
    if unwillingness == "category":  # deterministic: draws then differ only in the random baseline's seed
        from recsift.data.categories import item_categories

        cats, _ = item_categories(name, data.split.train.item_ids)
    for mname in models:
        cfg = GameConfig(model=MODELS[mname], train=default_train_config(epochs[mname]),
                         influence=InfluenceConfig(solver="lissa"), n_anchors=n_anchors)
        ta = time.perf_counter()
        anchors, anchor_models = fit_anchors(data, cfg)
        anchor_s = time.perf_counter() - ta
        rows: dict[str, list[dict]] = {m: [] for m in METHODS}
        strat: dict[str, list[dict]] = {m: [] for m in METHODS if m.startswith("ifrqe")}
        for d in range(draws):
            beta = draw_unwillingness(len(data.user), seed=1000 + d, kind=unwillingness, user=data.user,
                                      item=data.item, categories=cats)
            rows["base"].append(evaluate_disclosure(anchor_models[0], data, np.ones(len(beta), bool), beta, lam))
            for m in METHODS[1:]:
                if m.startswith("ifrqe"):  # "-mirror": the released code's finite multiplicative-weights run
                    variant, _, how = m.partition("-")
                    res = solve(data, anchors, beta, lam,
                                dataclasses.replace(cfg, strategy="mirror" if how else "best_response"), variant)
                    mask = res.disclosed
                    strat[m].append({"rounds": res.rounds, "converged": res.converged, "exact_users": res.exact_users,
                                     "factorised_users": res.factorised_users,
                                     "estimated_reward": float(np.nanmean(res.estimated_payoff[data.valid.user]))})
                else:
                    mask = baseline_disclosure(m, beta, seed=d)
                rows[m].append(run_disclosure(data, mask, beta, lam, cfg))
            print(f"{name} {mname} draw {d}: " + ", ".join(f"{m} {rows[m][-1]['reward']:.3f}" for m in METHODS),
                  flush=True)
        summary = {m: {k: mean_se([r[k] for r in rows[m]]) for k in rows[m][0]} for m in METHODS}
        out["models"][mname] = {"summary": summary, "runs": rows, "strategy": strat, "epochs": epochs[mname],
                                "anchors": len(anchors), "anchor_seconds": round(anchor_s, 1)}
        out["seconds"] = round(time.perf_counter() - t0, 1)
        if on_model is not None:
            on_model(out)
    return out


def table_md(res: dict, lam: float, draws: int) -> str:
    info = res["info"]
    lines = [f"Dataset **{res['dataset']}**: {info['users']} users, {info['items']} items, "
             f"{info['train_interactions']} training interactions (leave-one-out order: {info['loo_order']}; "
             f"{info['users_n_le_20']} users with ≤ 20 training interactions get exact 2^n strategies, the rest "
             f"the factorised best response; longest history {info['max_user_interactions']}). λ = {lam}, "
             "ifrqe/ifrqe++ = the exact best response to the reward; *-mirror = the released code's solver "
             "(1000 multiplicative-weights steps at rate 0.1 from the Binomial(0.9) prior, argmax play). "
             f"{res.get('unwillingness', 'uniform')} unwillingness, mean ± standard error over {draws} draws. "
             "F1@5 on the test candidates "
             "(1 + 99), reward = −L_val − λ·wv with L_val the validation BCE (the paper's); reward(test) uses the "
             "test BCE. wv share = Σ disclosed β / Σ β (the MindSpore seed's regret / tot_regret); valid CE = "
             "softmax cross-entropy of the validation positive among its candidates; −CE − λ·share is only a "
             "candidate reading of the seed's ml-1m reward (−3.18 IFRQE vs −4.96 NCF), whose code is not public. "
             f"Total {res['seconds']} s.", ""]
    for mname, r in res["models"].items():
        lines += [f"### {mname} ({r['epochs']} epochs, {r['anchors']} anchors for IFRQE++, anchors + influence "
                  f"{r['anchor_seconds']} s)", "",
                  "| method | F1@5 | wv | reward | reward (test) | valid BCE | disclosed | wv share | valid CE "
                  "| −CE − λ·share |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for m in [m for m in METHODS if m in r["summary"]]:
            s = r["summary"][m]
            f = lambda k, p=3: f"{s[k][0]:.{p}f} ± {s[k][1]:.{p}f}"  # noqa: E731
            ms = (f"{s['wv_share'][0]:.3f} | {f('valid_ce')} | {-s['valid_ce'][0] - lam * s['wv_share'][0]:.3f}"
                  if "wv_share" in s else "– | – | –")  # results written before these measures existed
            lines.append(f"| {m} | {f('f1@5', 4)} | {f('wv')} | {f('reward')} | {f('reward_test')} | "
                         f"{f('valid_bce', 4)} | {s['disclosed'][0]:.3f} | {ms} |")
        lines.append("")
        for ours in ("ifrqe++", "ifrqe++-mirror"):
            if ours not in r["summary"]:  # results written before the mirror rows existed
                continue
            pp = r["summary"][ours]["reward"]
            verdict = []
            for b in ("threshold", "proactive"):
                bb = r["summary"][b]["reward"]
                gap = pp[0] - bb[0]
                se = math.sqrt(pp[1] ** 2 + bb[1] ** 2)
                # deterministic rows (category unwillingness) have SE 0 up to float noise: no ratio then
                verdict.append(f"vs {b}: {gap:+.3f} ({gap / se:.1f} SE)" if se > 1e-9 else f"vs {b}: {gap:+.3f}")
            lines += [f"{ours} reward " + "; ".join(verdict) + ".", ""]
    return "\n".join(lines)


SPEED_CHILD = r"""
import json, sys, time
import numpy as np, torch
from recsift.utils.runtime import configure_threads, peak_rss_mb
configure_threads()
sys.path.insert(0, sys.argv[1])
from ifrqe import load_data
from recsift.models.registry import build_model
from recsift.disclose import InfluenceConfig, compute_influence, influence_problem
name, model_name, state, n_users = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
data = load_data(name)
users = np.random.default_rng(0).permutation(data.valid.user)[:n_users]
keep = np.isin(data.user, users)
vk = np.isin(data.valid.user, users)
prob = influence_problem(data.user[keep], data.item[keep], data.split.n_items, data.valid.user[vk],
                         data.valid.candidates[vk])
model = build_model(model_name, n_users=data.split.n_users, n_items=data.split.n_items)
model.load_state_dict(torch.load(state))
rss0 = peak_rss_mb()
res = compute_influence(model, prob, InfluenceConfig(solver="lissa"))
print(json.dumps({"users": int(vk.sum()), "interactions": int(keep.sum()), **{k: round(v, 2) for k, v in res.seconds.items()},
                  "peak_rss_mb": round(peak_rss_mb(), 1), "rss_before_mb": round(rss0, 1),
                  "finite": bool(np.isfinite(res.influence).all())}))
"""


def run_speed(name: str, models: list[str], users: list[int], epochs: int) -> dict:
    import torch

    from recsift.disclose import GameConfig, default_train_config, train_disclosed

    data = load_data(name)
    out = {"dataset": name, "train_epochs": epochs, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for mname in models:
            cfg = GameConfig(model=MODELS[mname], train=default_train_config(epochs))
            t = time.perf_counter()
            import numpy as np

            model = train_disclosed(data, np.ones(len(data.user), bool), cfg)
            train_s = time.perf_counter() - t
            path = os.path.join(tmp, f"{mname}.pt")
            torch.save(model.state_dict(), path)
            for n in users:
                r = subprocess.run([sys.executable, "-W", "ignore", "-c", SPEED_CHILD, str(Path(__file__).parent), name,
                                    MODELS[mname], path, str(n)], capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"speed child failed:\n{r.stderr[-3000:]}")
                row = {"model": mname, "train_seconds": round(train_s, 1), **json.loads(r.stdout.strip().splitlines()[-1])}
                print(row, flush=True)
                out["rows"].append(row)
    return out


def speed_md(res: dict) -> str:
    lines = [f"Dataset **{res['dataset']}**. Per row: a random subset of users (seeded), all their per-user s_test "
             "vectors (LiSSA depth 30, 8 sampled interactions per user per step, scale raised per user by power "
             "iteration) and the influence of each of their training interactions. Time excludes loading and the "
             f"model's training ({res['train_epochs']} epochs, shown for reference); peak RSS is the child "
             "process's (data + model + influence).", "",
             "| model | users | interactions | valid grads s | s_test s | influence s | total s | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['model']} | {r['users']} | {r['interactions']} | {r['valid_grad']} | {r['s_test']} | "
                     f"{r['influence']} | {r['total']} | {r['peak_rss_mb']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["table", "speed"])
    ap.add_argument("--datasets", default="synthetic,ml-100k")
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--models", default="mf,neumf")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--lam", type=float, default=1.0)
    ap.add_argument("--epochs-mf", type=int, default=20)
    ap.add_argument("--epochs-neumf", type=int, default=10)
    ap.add_argument("--anchors", type=int, default=2)
    ap.add_argument("--users", default="1000,3000,6040")
    ap.add_argument("--speed-epochs", type=int, default=3)
    ap.add_argument("--suffix", default="", help="appended to the result name, e.g. _lam0.1")
    ap.add_argument("--unwillingness", choices=["uniform", "category"], default="uniform",
                    help="category: the reference's category-frequency type (ml-100k, ml-1m; deterministic)")
    a = ap.parse_args()
    from recsift.utils.runtime import configure_threads

    configure_threads()
    models = a.models.split(",")
    if a.mode == "table":
        for name in a.datasets.split(","):
            def save(res: dict, name: str = name) -> None:
                res["load_average"] = os.getloadavg()
                write_result(f"ifrqe_{name}{a.suffix}", res, table_md(res, a.lam, a.draws) +
                             f"\n\nLoad average at the end: {', '.join(f'{x:.2f}' for x in res['load_average'])}.")

            run_table(name, models, a.draws, a.lam, {"mf": a.epochs_mf, "neumf": a.epochs_neumf}, a.anchors, save,
                      a.unwillingness)
    else:
        res = run_speed(a.dataset, models, [int(x) for x in a.users.split(",")], a.speed_epochs)
        res["load_average"] = os.getloadavg()
        write_result(f"ifrqe_speed_{a.dataset}{a.suffix}", res, speed_md(res) +
                     f"\n\nLoad average at the end: {', '.join(f'{x:.2f}' for x in res['load_average'])}.")


if __name__ == "__main__":
    main()
