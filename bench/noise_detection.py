"""Do the data-importance scores find planted noise? ROC-AUC per score on a real dataset.

Random sessions (10% of the users by default; lengths copied from the real sessions, items
drawn i.i.d. from the real item frequencies, so only order gives them away) are appended to
the training set of a dataset; a probe model is trained on the noisy set recording its
dynamics; each score is compared with the planted labels (ROC-AUC at the sample level and for
the per-session mean), and keeping the easiest 50% of sessions by each score is checked for
how many noisy sessions survive. Valid/test cases are the dataset's own.

Usage: python bench/noise_detection.py [--dataset beauty] [--model gru4rec] [--epochs 10] [--frac 0.1]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    from scipy.stats import rankdata

    r = rankdata(scores)
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--model", default="gru4rec")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--frac", type=float, default=0.1)
    ap.add_argument("--items", default="popularity", choices=["popularity", "uniform"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR"))
    a = ap.parse_args()

    from recsift.curators import CurationContext
    from recsift.data import load_split
    from recsift.data.noise import inject_noisy_sequences
    from recsift.scoring import SCORES, compute_score, oriented
    from recsift.train import TrainConfig
    from recsift.utils.runtime import configure_threads, peak_rss_mb

    configure_threads()
    split = load_split(a.dataset, data_dir=a.data_dir)
    clean = split.training_set("sequence")
    ts, noisy = inject_noisy_sequences(clean, a.frac, rng=np.random.default_rng(a.seed), items=a.items)
    ctx = CurationContext(split=split, seed=a.seed, probe=a.model,
                          probe_config=TrainConfig(epochs=a.epochs, patience=None, lr=a.lr))
    t0 = time.perf_counter()
    inputs = ctx.score_inputs(ts, embeddings=True)
    probe_s = time.perf_counter() - t0
    user = ts.data.user
    n_users = ts.data.store.n_users
    noisy_user = np.zeros(n_users, bool)
    noisy_user[user[noisy]] = True
    counts = np.bincount(user, minlength=n_users)
    has = counts > 0
    rows = []
    for name, spec in sorted(SCORES.items()):
        kw = {"n_clusters": 100} if name == "prototype" else {}
        hard = oriented(compute_score(name, inputs, **kw), spec.hard)
        per_user = np.bincount(user, weights=hard, minlength=n_users)[has] / counts[has]
        lab = noisy_user[has]
        easiest = np.argsort(per_user, kind="stable")[: len(per_user) // 2]
        rows.append({"score": name, "hard_end": spec.hard, "needs": spec.needs,
                     "auc_sample": round(roc_auc(hard, noisy), 4), "auc_session": round(roc_auc(per_user, lab), 4),
                     "noisy_sessions_kept_easiest_50pct": round(float(lab[easiest].sum() / lab.sum()), 4)})
        print(rows[-1], flush=True)
    payload = {"dataset": a.dataset, "model": a.model, "epochs": a.epochs, "lr": a.lr, "noise_frac": a.frac,
               "noise_items": a.items, "seed": a.seed, "train_samples": len(ts), "noisy_samples": int(noisy.sum()),
               "noisy_sessions": int(noisy_user.sum()), "probe_seconds": round(probe_s, 1),
               "probe_valid": inputs.extra["probe"]["valid"], "peak_rss_mb": round(peak_rss_mb()), "rows": rows}
    md = ["| score | hard end | AUC (sample) | AUC (session mean) | noisy sessions kept, easiest 50% |",
          "|---|---|---|---|---|"]
    md += [f"| {r['score']} | {r['hard_end']} | {r['auc_sample']:.3f} | {r['auc_session']:.3f} | "
           f"{100 * r['noisy_sessions_kept_easiest_50pct']:.1f}% |" for r in rows]
    md.append(f"\n{a.dataset}: {len(ts):,} training samples, {int(noisy.sum()):,} of them in "
              f"{int(noisy_user.sum()):,} injected sessions ({a.items} items); probe {a.model}, {a.epochs} epochs "
              f"({probe_s:.0f} s); a score at AUC 0.5 is blind, below 0.5 it ranks noise as easy.")
    write_result(f"noise_detection_{a.dataset}_{a.model}_{a.items}", payload, "\n".join(md))


if __name__ == "__main__":
    main()
