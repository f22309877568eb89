"""DR4SR / DR4SR+ on the DR4SR protocol: original vs regenerated vs weighted training data.

Protocol (ALGORITHMS.md §1.2): leave-one-out, full ranking with the user's history masked,
Recall/NDCG @10/@20 on the test cases; DR4SR's training recipe for every target model: BCE with
one sampled negative, batch 256, Adam lr 1e-3, early stopping on valid NDCG@20 with patience 20,
epochs capped by ``--epochs`` (the table says where the cap binds: a run that used every epoch
without stopping early). The regenerated data is built once per seed (mining, regenerator
pre-training for ``--regen-epochs``, hybrid inference over the *full* training set) and timed.

Variants: original, dr4sr, dr4sr_plus, doubled (the original data twice: the repetition control),
and the ablations no_diversity, patterns (mined patterns as the dataset), original_patterns (the original
data + the mined patterns, no regenerated sequences: what + DR4SR adds besides regeneration), end_to_end
(DR4SR+ without the bi-level step).

Usage::

    RECSIFT_THREADS=1 .venv/bin/python bench/dr4sr.py --dataset beauty --models sasrec \
        --variants original,dr4sr --epochs 20 --regen-epochs 3 --seeds 2023
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _common  # noqa: E402
from _common import checkpoint_path, write_result  # noqa: E402

PAPER = {  # Beauty / Toys R@10, N@10 (DR4SR paper, Table 2): original, +DR4SR, +DR4SR+
    ("beauty", "sasrec"): ((.0553, .0291), (.0595, .0317), (.0619, .0337)),
    ("beauty", "fmlp"): ((.0602, .0311), (.0635, .0332), (.0687, .0357)),
    ("beauty", "gru4rec"): ((.0204, .0107), (.0252, .0128), (.0292, .0149)),
    ("toys", "sasrec"): ((.0682, .0381), (.0762, .0432), (.0773, .0453)),
}
VARIANTS = ("original", "dr4sr", "dr4sr_plus", "doubled", "no_diversity", "patterns", "original_patterns",
            "end_to_end")


def paper_cell(dataset: str, model: str, variant: str) -> str:
    """The paper's "R@10 / N@10" for a table row, or "-" where it reports none."""
    p = PAPER.get((dataset, model))
    idx = {"original": 0, "dr4sr": 1, "dr4sr_plus": 2}.get(variant)
    return f"{p[idx][0]:.4f} / {p[idx][1]:.4f}" if p and idx is not None else "-"
# ablations (issue #8): the regenerator without its diversity promoter; the mined patterns alone as the
# dataset; the DR4SR+ personalizer trained end to end (one-step look-ahead) instead of bi-level


#: the settings a result's runs depend on: --resume refuses an earlier result that differs in one
RUN_SETTINGS = ("epochs", "patience", "regen_epochs", "gamma", "k_memories", "restrictive_steps", "equal_samples",
                "bilevel_epochs", "warmup_epochs", "tau_init", "model_param")
#: defaults of the settings that change the regenerated data (γ, K, forced copy steps) or DR4SR+'s weights (τ);
#: bench/dr4sr_summary.py labels a run that changed one
DATA_DEFAULTS = {"gamma": 0.3, "k_memories": 5, "restrictive_steps": 0, "tau_init": 10.0}


def previous(args) -> tuple[list[dict], list[dict]]:
    """The runs and regeneration rows of the earlier result ``dr4sr_<dataset><tag>`` (``--resume``)."""
    import json

    path = _common.RESULTS / f"dr4sr_{args.dataset}{args.tag}.json"
    if not path.exists():
        return [], []
    old = json.loads(path.read_text())
    clash = {k: (old["args"][k], getattr(args, k)) for k in RUN_SETTINGS
             if k in old["args"] and old["args"][k] != getattr(args, k)}
    if clash:
        raise SystemExit(f"--resume: {path.name} was run with other settings {clash} (old, new); use the same "
                         "settings or another --tag")
    print(f"resuming: {len(old.get('runs', []))} finished runs from {path.name}", flush=True)
    return old.get("runs", []), old.get("regeneration", [])


def equal_sample_epochs(epochs: int, n_reference: int, n_control: int) -> int:
    """Epochs of a control set of ``n_control`` samples that see as many samples as ``epochs`` epochs of a
    reference set of ``n_reference`` (at least 1).

    >>> equal_sample_epochs(200, 227379, 262826)  # + DR4SR's 200 epochs = 173 of the doubled original
    173
    """
    return max(1, round(epochs * n_reference / n_control))


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--models", default="sasrec", help="comma-separated target models")
    ap.add_argument("--variants", default="original,dr4sr", help=f"comma-separated, of {VARIANTS}")
    ap.add_argument("--epochs", type=int, default=200, help="epoch cap of target training")
    ap.add_argument("--patience", type=int, default=20)
    ap.add_argument("--regen-epochs", type=int, default=40, help="regenerator pre-training epochs")
    ap.add_argument("--gamma", type=float, default=DATA_DEFAULTS["gamma"])
    ap.add_argument("--k-memories", type=int, default=DATA_DEFAULTS["k_memories"])
    ap.add_argument("--restrictive-steps", type=int, default=DATA_DEFAULTS["restrictive_steps"],
                    help="decoding steps forced restrictive before the γ mix (the released code: 2, with γ = 1)")
    ap.add_argument("--bilevel-epochs", type=int, default=30)
    ap.add_argument("--warmup-epochs", type=int, default=10)
    ap.add_argument("--tau-init", type=float, default=DATA_DEFAULTS["tau_init"],
                    help="DR4SR+ personalizer temperature (the released code's 10; its floor is 1)")
    ap.add_argument("--equal-samples", action="store_true",
                    help="train the doubled control for the epochs that see as many samples as --epochs of the "
                         "+ DR4SR set (round(epochs x |DR4SR set| / |doubled set|)): the repetition control at equal "
                         "training length")
    ap.add_argument("--model-param", action="append", default=[], metavar="KEY=VALUE",
                    help="hyper-parameter of the target models (repeatable), e.g. --model-param graph_norm=row+col "
                         "--model-param gnn_layers=2; name the run with --tag (not with dr4sr_plus / end_to_end, "
                         "whose personalizer trains its own target)")
    ap.add_argument("--seeds", default="2023")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--tag", default="", help="suffix of the result files (dr4sr_<dataset><tag>.md)")
    ap.add_argument("--cache-dir", default=None,
                    help="save the regenerated set and DR4SR+'s weights here and read them back in later runs (same "
                         "data, seed, settings); target trainings keep per-epoch checkpoints in <dir>/checkpoints, "
                         "so the same command run again after an interruption continues them")
    ap.add_argument("--inference-only", action="store_true", help="only time mining, pre-training and inference")
    ap.add_argument("--resume", action="store_true",
                    help="keep the finished runs of an earlier result with this name (same settings) and run only the "
                         "missing seed x model x variant ones (a finished run's checkpoint is gone, so without this "
                         "the same command trains it again)")
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.data_dir:
        os.environ["RECSIFT_DATA_DIR"] = args.data_dir

    import numpy as np

    from recsift.curators import CurationContext, curate
    from recsift.data import load_split
    from recsift.train import TrainConfig, train_model

    split = load_split(args.dataset)
    full = split.training_set()
    models = args.models.split(",")
    variants = args.variants.split(",")
    from recsift.utils.params import parse_params

    model_params = parse_params(args.model_param)
    if model_params and {"dr4sr_plus", "end_to_end"} & set(variants):
        raise SystemExit("--model-param applies to the target training only: run dr4sr_plus / end_to_end without it")
    bad = set(variants) - set(VARIANTS)
    if bad:
        raise SystemExit(f"unknown variants {sorted(bad)}; use {VARIANTS}")
    rows, regen_rows = previous(args) if args.resume else ([], [])
    done = {(r["seed"], r["model"], r["variant"]) for r in rows}
    regen = dict(epochs=args.regen_epochs, gamma=args.gamma, k_memories=args.k_memories,
                 restrictive_steps=args.restrictive_steps)
    needs_regen = ({"dr4sr", "dr4sr_plus", "end_to_end"} & set(variants)
                   or (args.equal_samples and "doubled" in variants))  # --equal-samples sizes the control by it
    for seed in (int(s) for s in args.seeds.split(",")):
        ctx = CurationContext(split=split, seed=seed, max_len=50,
                              cache_dir=Path(args.cache_dir) if args.cache_dir else None)
        t0 = time.perf_counter()
        la0 = load_avg()
        if not args.inference_only and not needs_regen:
            regen_set = None  # only original / doubled: nothing to regenerate
        else:
            regen_set, rep = curate(full, "dr4sr", None, ctx, **regen)
            info = rep.extra
            regen_rows = [r for r in regen_rows if r["seed"] != seed]  # a resumed result's row of this seed
            regen_rows.append({"seed": seed, "total_seconds": time.perf_counter() - t0, "load_before": la0,
                               "load_after": load_avg(), **{k: info.get(k) for k in (
                                   "n_sequences", "n_patterns", "n_pairs", "mine_seconds", "pretrain_seconds",
                                   "inference_seconds", "n_decoded", "n_regenerated", "sequences_per_segment", "cached")},
                               "input_samples": len(full), "output_samples": len(regen_set)})
            print(regen_rows[-1], flush=True)
            save(args, rows, regen_rows)
        if args.inference_only:
            continue
        cfg = TrainConfig(epochs=args.epochs, batch_size=256, lr=1e-3, loss="bce", n_negatives=1,
                          patience=args.patience, valid_metric="ndcg@20", mask_history=True, seed=seed, max_len=50,
                          metrics=("recall@10", "ndcg@10", "recall@20", "ndcg@20"))
        for model in models:
            for var in variants:
                if (seed, model, var) in done:
                    continue
                extra: dict = {}
                t0 = time.perf_counter()
                if var == "original":
                    ts = full
                elif var == "dr4sr":
                    ts = regen_set
                elif var == "doubled":
                    ts, _ = curate(full, "dr4sr", None, ctx, original_copies=2, include_patterns=False,
                                   include_regenerated=False)
                elif var == "no_diversity":
                    ts, rep = curate(full, "dr4sr", None, ctx, **{**regen, "diversity": False})
                    extra = {k: rep.extra.get(k) for k in ("pretrain_seconds", "inference_seconds", "n_regenerated")}
                elif var == "patterns":
                    ts, _ = curate(full, "dr4sr", None, ctx, original_copies=0, include_regenerated=False, **regen)
                elif var == "original_patterns":
                    ts, _ = curate(full, "dr4sr", None, ctx, include_regenerated=False, **regen)
                else:  # dr4sr_plus, end_to_end
                    ts, prep = curate(full, "dr4sr_plus", None, ctx, target=model, bilevel_epochs=args.bilevel_epochs,
                                      warmup_epochs=args.warmup_epochs, end_to_end=var == "end_to_end",
                                      tau_init=args.tau_init, **regen)
                    extra = {"bilevel_seconds": prep.extra["bilevel_seconds"],
                             **phase_cost(prep.extra["bilevel_history"]),
                             "mean_weight": prep.extra["mean_weight"],
                             "weight_histogram": prep.extra["weight_histogram"]}
                run_cfg = cfg
                if var == "doubled" and args.equal_samples:
                    n_epochs = equal_sample_epochs(args.epochs, len(regen_set), len(ts))
                    run_cfg = cfg.model_copy(update={"epochs": n_epochs})
                    extra["epochs_cap"] = run_cfg.epochs
                la = load_avg()
                ckpt = checkpoint_path(args.cache_dir, f"dr4sr_{args.dataset}{args.tag}", seed, model, var)
                res = train_model(split, model, run_cfg, train_set=ts, checkpoint=ckpt, model_params=model_params)
                epochs_run = len(res.history)
                rows.append({"seed": seed, "model": model, "variant": var, "n_train": len(ts),
                             "test": res.test, "best_epoch": res.best_epoch, "epochs_run": epochs_run,
                             "cap_binds": epochs_run == run_cfg.epochs and not res.extra["stopped_early"],
                             "s_per_epoch": res.train_seconds_per_epoch, "peak_rss_mb": res.peak_rss_mb,
                             "wall_seconds": time.perf_counter() - t0, "load_before": la, "load_after": load_avg(),
                             "valid_ndcg20": [round(h["valid"]["ndcg@20"], 5) for h in res.history if "valid" in h],
                             **extra})
                print(rows[-1], flush=True)
                save(args, rows, regen_rows)  # after every run: an interrupted bench keeps what finished
    print(table(args, rows, regen_rows))


def phase_cost(history: list[dict]) -> dict:
    """Median seconds and largest peak RSS of the plain (warm-up) and the bi-level epochs of DR4SR+."""
    import numpy as np

    out = {}
    for phase, flag in (("plain", False), ("bilevel", True)):
        eps = [e for e in history if e["bilevel"] == flag]
        out[f"{phase}_s_per_epoch"] = float(np.median([e["seconds"] for e in eps])) if eps else None
        peaks = [e["peak_rss_mb"] for e in eps if "peak_rss_mb" in e]
        out[f"{phase}_peak_rss_mb"] = max(peaks) if peaks else None
    return out


def save(args, rows, regen_rows) -> None:
    name = f"dr4sr_{args.dataset}{args.tag}"
    write_result(name, {"args": vars(args), "regeneration": regen_rows, "runs": rows}, table(args, rows, regen_rows))
    plot_weights(name, [r for r in rows if r.get("weight_histogram")])


def plot_weights(name: str, rows: list[dict]) -> None:
    """The learnt DR4SR+ weights of the regenerated samples, one histogram per target model
    (and dataset / variant / seed), to bench/results/<name>_weights.png."""
    if not rows:
        return
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from _common import RESULTS

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in rows:
        h = r["weight_histogram"]
        edges, counts = np.asarray(h["edges"]), np.asarray(h["counts"], float)
        ax.stairs(counts / max(counts.sum(), 1), edges,
                  label=f"{r['dataset'] + ' ' if 'dataset' in r else ''}{r['model']} ({r['variant']}, seed {r['seed']}; "
                        f"median {h['quantiles'].get('0.5', float('nan')):.2f})")
    ax.set_xlabel("learnt sample weight (regenerated samples; mined patterns fixed at 1)")
    ax.set_ylabel("share of samples")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}_weights.png", dpi=120)
    plt.close(fig)


def table(args, rows, regen_rows) -> str:
    out = ["## Regeneration (mining + regenerator pre-training + hybrid inference on the full training set)", "",
           "| seed | sequences | patterns (pairs) | mine s | pre-train s (epochs) | inference s | decodes | "
           "distinct regenerated | training samples in -> out | load avg before / after |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in regen_rows:
        out.append(f"| {r['seed']} | {r['n_sequences']} | {r['n_patterns']} ({r['n_pairs']}) | "
                   f"{r['mine_seconds']:.1f} | {r['pretrain_seconds']:.0f} ({args.regen_epochs}){' cached' if r.get('cached') else ''} | "
                   f"{r['inference_seconds']:.0f} | {r['n_decoded']} | {r['n_regenerated']} | "
                   f"{r['input_samples']} -> {r['output_samples']} | {r['load_before']} / {r['load_after']} |")
    if rows:
        out += ["", f"## Test metrics (history masked, full ranking; epoch cap {args.epochs}, patience "
                f"{args.patience} on valid NDCG@20)", "",
                "| model | variant | seed | R@10 | N@10 | R@20 | N@20 | paper R@10 / N@10 | best epoch | epochs run "
                "| cap binds | s/epoch | train samples | load avg |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            t = r["test"]
            paper = paper_cell(args.dataset, r["model"], r["variant"])
            out.append(f"| {r['model']} | {r['variant']} | {r['seed']} | {t['recall@10']:.4f} | {t['ndcg@10']:.4f} | "
                       f"{t['recall@20']:.4f} | {t['ndcg@20']:.4f} | {paper} | {r['best_epoch']} | {r['epochs_run']} | "
                       f"{'yes' if r['cap_binds'] else 'no'} | {r['s_per_epoch']:.1f} | {r['n_train']} | "
                       f"{r['load_before']} |")
        for r in rows:
            if r["variant"] == "no_diversity" and r.get("n_regenerated") is not None:
                out.append(f"\nRegeneration without the diversity promoter (seed {r['seed']}): {r['n_regenerated']} distinct "
                           f"regenerated sequences; pre-training {r['pretrain_seconds'] or 0:.0f} s, inference "
                           f"{r['inference_seconds'] or 0:.0f} s")
        bl = [r for r in rows if r.get("bilevel_s_per_epoch")]
        for r in bl:
            q = r.get("weight_histogram", {}).get("quantiles", {})
            spread = (f" (10/50/90% quantiles {q['0.1']:.3f} / {q['0.5']:.3f} / {q['0.9']:.3f})" if q else "")
            e2e = r["variant"] == "end_to_end"
            name, phase = (("DR4SR+ end to end", "weighted epochs (end to end, no outer step)") if e2e
                           else ("DR4SR+", "bi-level epochs"))
            out.append(f"\n{name} ({r['model']}): plain epochs {r['plain_s_per_epoch']:.1f} s, {phase} "
                       f"{r['bilevel_s_per_epoch']:.1f} s (+{100 * (r['bilevel_s_per_epoch'] / r['plain_s_per_epoch'] - 1):.0f}%), "
                       f"{rss_change(r)}mean learnt weight {r['mean_weight']:.3f}{spread}")
    return "\n".join(out)


def rss_change(r: dict) -> str:
    """'peak RSS plain a MB, bi-level b MB (+c%), ' when the run recorded per-epoch peaks, else ''."""
    a, b = r.get("plain_peak_rss_mb"), r.get("bilevel_peak_rss_mb")
    if not a or not b:
        return ""
    return f"peak RSS per epoch plain {a:.0f} MB, bi-level {b:.0f} MB ({100 * (b / a - 1):+.0f}%), "


if __name__ == "__main__":
    main()
