"""Cost of the Adam step: torch's default (per-tensor loop) Adam against the fused one that
`recsift.train.optim.adam` builds, alone and inside real training steps.

Usage:
  python bench/adam_step.py --items 1683,12102,50000 --rounds 7 --threads 1
  python bench/adam_step.py --dataset beauty --train-steps 40   # + DR4SR's recipe on Beauty

Part 1 times ``optimizer.step()`` on the parameters of ``--models`` (gradients filled in), per
vocabulary size. Part 2 (with ``--dataset``) times whole training steps of SASRec in DR4SR's recipe
(all-prefix layout, BCE with one sampled negative, batch 256 — the recipe with the most steps per
epoch) on the dataset's full training set, and projects s/epoch from the steps per epoch. The two
optimizers alternate in one process (``--rounds`` pairs, medians), on copies of the same model.
"""
from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402


def _median_ms(fn, calls: int) -> float:
    ts = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def optimizer_rows(models: list[str], items: list[int], rounds: int) -> list[dict]:
    import torch

    from recsift.models import build_model
    from recsift.train.optim import adam

    rows = []
    for name, n_items in itertools.product(models, items):
        model = build_model(name, n_items=n_items, max_len=50)
        for p in model.parameters():
            p.grad = torch.randn_like(p) * 1e-3
        opts = {"default": torch.optim.Adam(model.parameters(), lr=1e-3), "fused": adam(model.parameters(), lr=1e-3)}
        times: dict[str, list[float]] = {k: [] for k in opts}
        for _ in range(rounds):
            for k, o in opts.items():
                o.step()
                times[k].append(_median_ms(o.step, 7))
        n_params = sum(p.numel() for p in model.parameters())
        rows.append({"model": name, "items": n_items, "params": n_params,
                     **{f"{k}_ms": statistics.median(v) for k, v in times.items()}})
        print(rows[-1], flush=True)
    return rows


def training_rows(dataset: str, steps: int, rounds: int) -> list[dict]:
    import torch

    from recsift.data import load_split
    from recsift.models import build_model
    from recsift.train import TrainConfig
    from recsift.train.api import trainer_for
    from recsift.train.losses import get_loss, weighted_mean

    split = load_split(dataset)
    train = split.training_set()
    cfg = TrainConfig(epochs=1, batch_size=256, lr=1e-3, loss="bce", n_negatives=1, seed=0, max_len=50)
    torch.manual_seed(0)
    base = build_model("sasrec", n_items=split.n_items, max_len=50)
    trainers = {}
    for k in ("default", "fused"):
        tr = trainer_for(copy.deepcopy(base), cfg)
        if k == "default":
            tr.optimizer = torch.optim.Adam(tr.model.parameters(), lr=cfg.lr)
        tr._prepare(train)
        tr.model.train()
        trainers[k] = tr
    batches = list(itertools.islice(trainers["fused"].batcher.batches(trainers["fused"].rng), steps))
    per_step = sum(len(b.targets) for b in batches) / len(batches)

    def run(tr) -> None:
        m = tr.model
        for b in batches:
            h = tr._represent(b)
            neg = torch.randint(1, m.n_items + 1, (len(b.targets), 1))
            pos, negs = m.score_items(h, b.targets.view(-1, 1)).squeeze(1), m.score_items(h, neg)
            tr._step(weighted_mean(get_loss("bce")(pos, negs), b.weights))

    times: dict[str, list[float]] = {k: [] for k in trainers}
    for k, tr in trainers.items():
        run(tr)  # warm-up
    for _ in range(rounds):
        for k, tr in trainers.items():
            t = time.perf_counter()
            run(tr)
            times[k].append((time.perf_counter() - t) / len(batches) * 1e3)
    steps_per_epoch = len(train) / per_step
    row = {"dataset": dataset, "model": "sasrec", "samples": len(train), "samples_per_step": per_step,
           "steps_per_epoch": steps_per_epoch, **{f"{k}_ms_per_step": statistics.median(v) for k, v in times.items()}}
    for k in trainers:
        row[f"{k}_s_per_epoch"] = row[f"{k}_ms_per_step"] * steps_per_epoch / 1e3
    print(row, flush=True)
    return [row]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="sasrec,gru4rec")
    ap.add_argument("--items", default="1683,12102,50000")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dataset", default=None, help="also time training steps in DR4SR's recipe on this dataset")
    ap.add_argument("--train-steps", type=int, default=40, help="training steps per timed round")
    ap.add_argument("--name", default="adam_step")
    args = ap.parse_args()
    import os

    os.environ["RECSIFT_THREADS"] = str(args.threads)  # the trainers set their threads from it
    import torch

    torch.set_num_threads(args.threads)
    opt_rows = optimizer_rows(args.models.split(","), [int(x) for x in args.items.split(",")], args.rounds)
    train_rows = training_rows(args.dataset, args.train_steps, max(3, args.rounds // 2)) if args.dataset else []
    md = [f"{args.threads} thread(s); default = `torch.optim.Adam` (per-tensor loop on CPU), fused = "
          "`recsift.train.optim.adam` (`fused=True`); medians over alternating rounds.", "",
          "| model | items | parameters | default ms/step | fused ms/step | speed-up |", "|---|---|---|---|---|---|"]
    for r in opt_rows:
        md.append(f"| {r['model']} | {r['items']:,} | {r['params']:,} | {r['default_ms']:.2f} | {r['fused_ms']:.2f} | "
                  f"{r['default_ms'] / r['fused_ms']:.1f}x |")
    if train_rows:
        md += ["", "Whole training steps, SASRec in DR4SR's recipe (all-prefix, BCE, 1 negative, batch 256):", "",
               "| dataset | samples | steps/epoch | default ms/step | fused ms/step | default s/epoch | fused s/epoch | "
               "speed-up |", "|---|---|---|---|---|---|---|---|"]
        for r in train_rows:
            md.append(f"| {r['dataset']} | {r['samples']:,} | {r['steps_per_epoch']:.0f} | {r['default_ms_per_step']:.1f} | "
                      f"{r['fused_ms_per_step']:.1f} | {r['default_s_per_epoch']:.1f} | {r['fused_s_per_epoch']:.1f} | "
                      f"{r['default_ms_per_step'] / r['fused_ms_per_step']:.2f}x |")
    write_result(args.name, {"threads": args.threads, "optimizer": opt_rows, "training": train_rows}, "\n".join(md))


if __name__ == "__main__":
    main()
