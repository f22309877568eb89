"""recsift vs RecBole 1.2.1 on ml-100k: accuracy parity and training speed, same run, same protocol.

Usage:
    .venv/bin/python bench/recbole_parity.py [--models gru4rec,narm,sasrec,srgnn] [--seeds 0,1,2]
        [--epochs-cap 12 | gru4rec=12,sasrec=8] [--layouts all-prefix,prefix]
        [--recbole-seeds 0] [--skip-recbole-if-cached] [--recbole-only]
        [--speed-only --speed-epochs 3 --speed-rounds 2] [--wait-idle SECONDS] [--threads 2]

Each run is a subprocess: ``bench/recbole_side.py`` in RecBole's virtualenv ``bench/.venv-recbole``
(created here when missing: RecBole 1.2.1 with numpy<2, torch==2.13.0, setuptools<81; the reasons
are in that script's docstring) and ``bench/recsift_side.py`` in recsift's venv. Both get the same
threads (``--threads``, default 2: ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``RECSIFT_THREADS``,
``torch.set_num_threads``) and the same protocol: leave-one-out by time, full ranking, no history
masking, prefixes up to 50 items, CE, Adam 1e-3, batch 2048, a fixed number of epochs (the cap:
8 for NARM/SASRec/SR-GNN, 12 for GRU4Rec; no early stopping), test on the best-validation epoch.

Accuracy mode (default): per model, RecBole runs for ``--recbole-seeds`` and recsift for every seed
and layout, interleaved (RecBole, recsift, recsift, ...). RecBole with a fixed seed is deterministic,
so its results are cached in ``bench/results/recbole_cache/<model>_e<epochs>_s<seed>.json`` (with the
protocol they used; a cache entry of another protocol is ignored). ``--skip-recbole-if-cached``
reuses a cache entry instead of re-running; its epoch times then come from another time and the
speed ratio of that model is marked ``timing: cached`` — for speed figures use ``--speed-only``.

Speed mode (``--speed-only``): ``--speed-rounds`` rounds of [RecBole, recsift per layout], each run
``--speed-epochs`` epochs, alternating so that drift of the machine's throughput (±30% within
minutes here) hits both sides; reports the median seconds of the training part of an epoch over all
epochs of all rounds and the ratio RecBole / recsift. Nothing is cached.

Other work on the machine slows RecBole far more than recsift (measured here, 2 cores, 2 threads
each: a RecBole GRU4Rec epoch took 68 s on a nearly idle machine and 281-927 s while other processes
ran, the recsift all-prefix epoch 3-6 s throughout), so interleaving alone does not protect the
ratio: take speed figures on a quiet machine, ``--wait-idle`` waits for one before each run, every
run records the 1-min load average while it ran, and the Markdown flags a busy machine.

Output: ``bench/results/recbole_parity.json`` and ``.md`` (``--speed-only``: ``recbole_parity_speed``).
Per model: RecBole test R@10/N@10 (best-valid model after the cap; the last epoch's model too),
recsift mean ± std over seeds, the standard error of RecBole's figure from its per-user metrics
(std/sqrt(n_users)), whether the recsift mean is within 2 such standard errors, the paired standard
error of (recsift - RecBole) per user, median s/epoch and the ratio per layout, peak RSS of both,
and every run's per-epoch train loss / valid metrics (JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from _common import RESULTS, write_result  # noqa: E402
from recbole_side import protocol as recbole_protocol  # noqa: E402  (stdlib-only at import time)

VENV = BENCH / ".venv-recbole"
VENV_PY = VENV / "bin" / "python"
CACHE = RESULTS / "recbole_cache"
RECBOLE_PINS = ["recbole==1.2.1", "numpy<2", "torch==2.13.0", "setuptools<81"]
DEFAULT_CAP = {"gru4rec": 12, "narm": 8, "sasrec": 8, "srgnn": 8}
MODELS = tuple(DEFAULT_CAP)
NAMES = {"gru4rec": "GRU4Rec", "narm": "NARM", "sasrec": "SASRec", "srgnn": "SR-GNN"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- environment

def ensure_recbole_venv() -> None:
    """Create bench/.venv-recbole with RecBole 1.2.1 when it is missing or cannot import recbole."""
    if VENV_PY.exists() and _recbole_imports():
        return
    if not VENV_PY.exists():
        base = getattr(sys, "_base_executable", None) or "python3"
        log(f"creating {VENV} with {base}")
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    log(f"installing {' '.join(RECBOLE_PINS)} into {VENV}")
    subprocess.run([str(VENV_PY), "-m", "pip", "install", "-q", *RECBOLE_PINS], check=True)
    if not _recbole_imports():
        sys.exit(f"RecBole 1.2.1 does not import in {VENV}; see the docstring of bench/recbole_side.py")


def _recbole_imports() -> bool:
    code = "import recbole.quick_start, recbole.trainer; assert recbole.__version__ == '1.2.1'"
    return subprocess.run([str(VENV_PY), "-W", "ignore", "-c", code], capture_output=True).returncode == 0


def recsift_trainer_available() -> str | None:
    code = "from recsift.train import TrainConfig, train_model"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["?"])[-1]


def child_env(threads: int, data_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RECSIFT_THREADS"):
        env[k] = str(threads)
    env["RECSIFT_DATA_DIR"] = data_dir
    env.pop("PYTHONPATH", None)  # each side imports its own packages only
    return env


# --------------------------------------------------------------------------- runs

def wait_idle(limit_s: float, below: float = 1.0) -> float:
    """Wait (at most ``limit_s``) until the 1-min load average drops below ``below``; return seconds waited."""
    t0 = time.perf_counter()
    while limit_s > 0 and time.perf_counter() - t0 < limit_s:
        load = _loadavg()
        if load is None or load < below:
            break
        time.sleep(10)
    waited = time.perf_counter() - t0
    if limit_s > 0 and waited >= limit_s:
        log(f"  machine still busy after {waited:.0f} s (load {_loadavg()}); running anyway")
    return waited


def _run_child(cmd: list[str], out: Path, log_path: Path, env: dict[str, str], idle_s: float = 0) -> dict[str, Any]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    waited = wait_idle(idle_s)
    t0 = time.perf_counter()
    load0 = _loadavg()
    with open(log_path, "w") as lf:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=lf, env=env, cwd=ROOT)
        loads = [load0]
        while p.poll() is None:  # sample the machine's load while the child runs
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                loads.append(_loadavg())
        r = p
    if r.returncode != 0 or not out.exists():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {r.returncode}); log {log_path}:\n{tail}")
    res = json.loads(out.read_text())
    res["wall_seconds"] = time.perf_counter() - t0
    res["waited_for_idle_seconds"] = waited
    loads = [x for x in loads if x is not None]
    # 1-min load average while the run went on; the run itself contributes about `threads`
    res["loadavg_1min"] = {"median": float(statistics.median(loads)), "max": max(loads)} if loads else None
    return res


def _loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cache_path(model: str, epochs: int, seed: int) -> Path:
    return CACHE / f"{model}_e{epochs}_s{seed}.json"


def load_cached(model: str, epochs: int, seed: int) -> dict[str, Any] | None:
    p = cache_path(model, epochs, seed)
    if not p.exists():
        return None
    try:
        res = json.loads(p.read_text())
    except json.JSONDecodeError:
        return None
    ok = (res.get("protocol") == recbole_protocol() and res.get("epochs") == epochs and res.get("seed") == seed
          and len(res.get("history", [])) == epochs)
    return res if ok else None


def run_recbole(model: str, epochs: int, seed: int, args, env, *, cache: bool, tmp: Path) -> dict[str, Any]:
    out = cache_path(model, epochs, seed) if cache else tmp / f"recbole_{model}_e{epochs}_s{seed}.json"
    log_path = out.with_suffix(".log")
    cmd = [str(VENV_PY), str(BENCH / "recbole_side.py"), model, "--epochs", str(epochs), "--seed", str(seed),
           "--data-dir", args.data_dir, "--threads", str(args.threads), "--out", str(out)]
    log(f"RecBole {model} epochs={epochs} seed={seed} (log {log_path})")
    res = _run_child(cmd, out, log_path, env, args.wait_idle)
    res["timing"] = "this run"
    log(f"  RecBole {model}: {res['median_train_seconds']:.1f} s/epoch, test N@10 {res['test_best']['ndcg@10']:.4f}")
    return res


def run_recsift(model: str, epochs: int, seed: int, layout: str, args, env, tmp: Path) -> dict[str, Any]:
    out = tmp / f"recsift_{model}_{layout}_e{epochs}_s{seed}.json"
    cmd = [sys.executable, str(BENCH / "recsift_side.py"), model, "--epochs", str(epochs), "--seed", str(seed),
           "--layout", layout, "--data-dir", args.data_dir, "--out", str(out)]
    log(f"recsift {model} layout={layout} epochs={epochs} seed={seed}")
    res = _run_child(cmd, out, out.with_suffix(".log"), env, args.wait_idle)
    log(f"  recsift {model}/{layout}: {res['median_train_seconds']:.2f} s/epoch, "
        f"test N@10 {res['test_best'].get('ndcg@10', float('nan')):.4f}")
    return res


# --------------------------------------------------------------------------- summaries

def _median_epoch_seconds(runs: list[dict[str, Any]]) -> float | None:
    secs = [h["train_seconds"] for r in runs for h in r["history"]]
    return float(statistics.median(secs)) if secs else None


def _curve(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"epoch": h["epoch"], "train_loss": h.get("train_loss"), "train_seconds": h["train_seconds"],
             "valid": h.get("valid", {})} for h in run["history"]]


def _paired_se(rb: dict[str, Any], rs: dict[str, Any], metric: str) -> float | None:
    """Standard error of mean(recsift - RecBole) over the same test users (None if users differ)."""
    ru, su = rb.get("test_users"), rs.get("test_users")
    a, b = rb.get("per_user_best", {}).get(metric), rs.get("per_user_best", {}).get(metric)
    if not (ru and su and a and b) or sorted(ru) != sorted(su):
        return None
    pos = {u: i for i, u in enumerate(su)}
    d = np.asarray([b[pos[u]] for u in ru]) - np.asarray(a)
    return float(d.std(ddof=1) / np.sqrt(len(d)))


def summarize_model(model: str, epochs: int, rb_runs: list[dict], rs_runs: dict[str, list[dict]],
                    accuracy: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "epochs": epochs}
    rb_sec = _median_epoch_seconds(rb_runs)
    out["recbole"] = {
        "seeds": [r["seed"] for r in rb_runs],
        "median_train_seconds": rb_sec,
        "timing": sorted({r.get("timing", "this run") for r in rb_runs}),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rb_runs),
        "n_train_samples": rb_runs[0]["data"]["n_train_samples"],
        "model_params": rb_runs[0].get("model_params"),
        "curves": {str(r["seed"]): _curve(r) for r in rb_runs},
        "loadavg_1min_median": [(r.get("loadavg_1min") or {}).get("median") for r in rb_runs],
    }
    if accuracy:
        for which in ("test_best", "test_last"):
            out["recbole"][which] = {m: float(np.mean([r[which][m] for r in rb_runs])) for m in rb_runs[0][which]}
        out["recbole"]["se"] = {m: float(np.mean([r["se_best"][m] for r in rb_runs])) for m in rb_runs[0]["se_best"]}
        out["recbole"]["best_epoch"] = [r["best_epoch"] for r in rb_runs]
    out["recsift"] = {}
    for layout, runs in rs_runs.items():
        rs_sec = _median_epoch_seconds(runs)
        s: dict[str, Any] = {
            "seeds": [r["seed"] for r in runs],
            "median_train_seconds": rs_sec,
            "speed_ratio": (rb_sec / rs_sec) if rb_sec and rs_sec else None,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "n_train_samples": runs[0].get("n_train_samples"),
            "curves": {str(r["seed"]): _curve(r) for r in runs},
            "loadavg_1min_median": [(r.get("loadavg_1min") or {}).get("median") for r in runs],
        }
        if accuracy:
            s["best_epoch"] = [r["best_epoch"] for r in runs]
            s["test"] = {}
            for m in ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "mrr@10"):
                vals = [r["test_best"][m] for r in runs if m in r["test_best"]]
                if not vals:
                    continue
                ref = out["recbole"]["test_best"].get(m)
                se_rb = out["recbole"]["se"].get(m)
                se_rs = [r["se_best"][m] for r in runs if m in r.get("se_best", {})]
                paired = [p for p in (_paired_se(rb_runs[0], r, m) for r in runs) if p is not None]
                mean = float(np.mean(vals))
                s["test"][m] = {
                    "mean": mean, "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, "values": vals,
                    "se_recsift_per_user": float(np.mean(se_rs)) if se_rs else None,
                    "se_recbole_per_user": se_rb,
                    "paired_se": float(np.mean(paired)) if paired else None,
                    "diff": (mean - ref) if ref is not None else None,
                    "within_2se": (abs(mean - ref) <= 2 * se_rb) if ref is not None and se_rb else None,
                }
        out["recsift"][layout] = s
    if rb_runs and any(runs for runs in rs_runs.values()):
        first = next(runs for runs in rs_runs.values() if runs)[0]
        n_rb, n_rs = out["recbole"]["n_train_samples"], first.get("n_train_samples")
        out["same_training_samples"] = n_rb == n_rs
        if n_rb != n_rs:
            log(f"WARNING {model}: RecBole trains on {n_rb} prefix samples, recsift on {n_rs}")
    return out


def _f(x: float | None, fmt: str = ".4f") -> str:
    return "—" if x is None else format(x, fmt)


def table(summaries: list[dict[str, Any]], accuracy: bool) -> str:
    if accuracy:
        md = ("| model | epochs | RecBole R@10 | RecBole N@10 | SE (R@10 / N@10) | recsift layout | "
              "recsift R@10 (mean ± std) | recsift N@10 (mean ± std) | within 2 SE (R / N) | "
              "RecBole s/epoch | recsift s/epoch | speed-up | peak RSS MB (RecBole / recsift) |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    else:
        md = ("| model | epochs × rounds | recsift layout | RecBole s/epoch | recsift s/epoch | speed-up | "
              "peak RSS MB (RecBole / recsift) |\n|---|---|---|---|---|---|---|\n")
    for s in summaries:
        rb = s["recbole"]
        timing = " (cached)" if "cached" in rb["timing"] else ""
        for layout, rs in s["recsift"].items():
            common = (f"{_f(rb['median_train_seconds'], '.1f')}{timing} | {_f(rs['median_train_seconds'], '.2f')} | "
                      f"{_f(rs['speed_ratio'], '.1f')}× | {rb['peak_rss_mb']:.0f} / {rs['peak_rss_mb']:.0f} |")
            if accuracy:
                t, ref, se = rs["test"], rb["test_best"], rb["se"]
                r, n = t.get("recall@10", {}), t.get("ndcg@10", {})
                yes = lambda d: "—" if d.get("within_2se") is None else ("yes" if d["within_2se"] else "**no**")  # noqa: E731
                md += (f"| {NAMES[s['model']]} | {s['epochs']} | {ref['recall@10']:.4f} | {ref['ndcg@10']:.4f} | "
                       f"{se['recall@10']:.4f} / {se['ndcg@10']:.4f} | {layout} | "
                       f"{_f(r.get('mean'))} ± {_f(r.get('std'))} | {_f(n.get('mean'))} ± {_f(n.get('std'))} | "
                       f"{yes(r)} / {yes(n)} | {common}\n")
            else:
                md += f"| {NAMES[s['model']]} | {s['epochs']} × {s.get('rounds', 1)} | {layout} | {common}\n"
    return md


# --------------------------------------------------------------------------- main

def model_layouts(model: str, layouts: list[str]) -> list[str]:
    """The requested layouts this model can train in (all-prefix needs a causal model, e.g. not SR-GNN)."""
    from recsift.models import MODELS as RS_MODELS

    return [lay for lay in layouts if lay != "all-prefix" or RS_MODELS[model].causal]


def parse_caps(text: str | None, models: list[str]) -> dict[str, int]:
    caps = {m: DEFAULT_CAP[m] for m in models}
    if text:
        if "=" in text:
            for part in text.split(","):
                k, v = part.split("=")
                caps[k.strip()] = int(v)
        else:
            caps = {m: int(text) for m in models}
    return caps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--seeds", default="0,1,2", help="recsift seeds (accuracy mean ± std over them)")
    ap.add_argument("--recbole-seeds", default="0", help="RecBole seeds (deterministic per seed; cached)")
    ap.add_argument("--epochs-cap", default=None, help="N for all models, or model=N,... "
                    "(default gru4rec=12, narm=8, sasrec=8, srgnn=8)")
    ap.add_argument("--layouts", default="all-prefix,prefix", help="recsift sample layouts")
    ap.add_argument("--speed-only", action="store_true", help="interleaved timing runs only, no accuracy")
    ap.add_argument("--speed-epochs", type=int, default=3)
    ap.add_argument("--speed-rounds", type=int, default=2)
    ap.add_argument("--skip-recbole-if-cached", action="store_true")
    ap.add_argument("--recbole-only", action="store_true", help="only fill the RecBole cache (no recsift, no result)")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                    help="before each run wait up to this long for the 1-min load average to drop below 1 "
                         "(other work on the machine slows RecBole far more than recsift)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR", str(ROOT.parent / "shared" / "datasets")))
    args = ap.parse_args()
    args.data_dir = str(Path(args.data_dir).resolve())
    if not (Path(args.data_dir) / "ml-100k" / "ml-100k.inter").is_file():
        sys.exit(f"no {args.data_dir}/ml-100k/ml-100k.inter; pass --data-dir or set RECSIFT_DATA_DIR")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad:
        sys.exit(f"unknown model(s) {bad}; known: {', '.join(MODELS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    rb_seeds = [int(s) for s in args.recbole_seeds.split(",")]
    layouts = [x.strip() for x in args.layouts.split(",") if x.strip()]
    caps = parse_caps(args.epochs_cap, models)

    ensure_recbole_venv()
    if not args.recbole_only:
        why = recsift_trainer_available()
        if why:
            sys.exit(f"recsift's training API is not available ({why}); run with --recbole-only to fill the "
                     "RecBole cache, or wait for recsift.train")
    env = child_env(args.threads, args.data_dir)
    CACHE.mkdir(parents=True, exist_ok=True)
    summaries = []
    with tempfile.TemporaryDirectory(prefix="recbole_parity_") as tmpdir:
        tmp = Path(tmpdir)
        for model in models:
            m_layouts = model_layouts(model, layouts)
            if args.speed_only:
                epochs, seed = args.speed_epochs, seeds[0]
                rb_runs, rs_runs = [], {lay: [] for lay in m_layouts}
                for _ in range(args.speed_rounds):
                    rb_runs.append(run_recbole(model, epochs, seed, args, env, cache=False, tmp=tmp))
                    for lay in m_layouts:
                        rs_runs[lay].append(run_recsift(model, epochs, seed, lay, args, env, tmp))
                s = summarize_model(model, epochs, rb_runs, rs_runs, accuracy=False)
                s["rounds"] = args.speed_rounds
                summaries.append(s)
                continue
            epochs = caps[model]
            rb_runs, rs_runs = [], {lay: [] for lay in m_layouts}
            # interleave: RecBole seed, then recsift runs, so drift hits both sides
            order = sorted(set(seeds) | set(rb_seeds))
            for seed in order:
                if seed in rb_seeds:
                    cached = load_cached(model, epochs, seed) if args.skip_recbole_if_cached else None
                    if cached is not None:
                        log(f"RecBole {model} epochs={epochs} seed={seed}: cached ({cache_path(model, epochs, seed)})")
                        cached["timing"] = "cached"
                        rb_runs.append(cached)
                    else:
                        rb_runs.append(run_recbole(model, epochs, seed, args, env, cache=True, tmp=tmp))
                if args.recbole_only or seed not in seeds:
                    continue
                for lay in m_layouts:
                    rs_runs[lay].append(run_recsift(model, epochs, seed, lay, args, env, tmp))
            if not args.recbole_only:
                summaries.append(summarize_model(model, epochs, rb_runs, rs_runs, accuracy=True))
    if args.recbole_only:
        log(f"RecBole cache filled under {CACHE}")
        return
    name = "recbole_parity_speed" if args.speed_only else "recbole_parity"
    md = table(summaries, accuracy=not args.speed_only)
    md += ("\nRecBole 1.2.1 and recsift on ml-100k, leave-one-out by time, full ranking without history masking, "
           "CE, Adam 1e-3, batch 2048, max length 50, fixed epochs (no early stopping), test on the best-valid "
           f"epoch; {args.threads} threads each. s/epoch = median seconds of the training part of an epoch; "
           "speed-up = RecBole / recsift. SE = standard error of RecBole's figure over its test users.\n")
    loads = [x for s in summaries for x in s["recbole"]["loadavg_1min_median"] +
             [y for rs in s["recsift"].values() for y in rs["loadavg_1min_median"]] if x is not None]
    cores = os.cpu_count() or 1
    if loads and max(loads) > cores + 0.5:
        md += (f"\n**Busy machine**: the 1-min load average during some runs reached {max(loads):.1f} on {cores} cores "
               "(other work running); timings of those runs are unreliable, compare the interleaved ratio only.\n")
    payload = {"threads": args.threads, "layouts": layouts, "seeds": seeds, "recbole_seeds": rb_seeds,
               "epochs_cap": caps, "speed_only": args.speed_only, "recbole_protocol": recbole_protocol(),
               "models": summaries}
    out = write_result(name, payload, md)
    print(md)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
