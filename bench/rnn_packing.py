"""GRU4Rec / NARM training steps with the GRU run as a packed sequence (what the models do, via
``layers.run_rnn``) against the GRU run over the padding (RecBole's way), on a dataset's real
all-prefix batches.

Both variants train the same model on the same batches (loss: BCE with one sampled negative, as
in the DR4SR recipe); the two are interleaved batch group by batch group so that the
shared machine's drift hits both alike. Reports median milliseconds per step and the ratio.

Usage: python bench/rnn_packing.py --dataset beauty --models gru4rec,narm --batch-size 256 --steps 60 --rounds 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR"))
    ap.add_argument("--models", default="gru4rec,narm")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=60, help="steps per variant and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--name", default=None)
    a = ap.parse_args()

    import numpy as np
    import torch
    import torch.nn.functional as F

    from recsift.data import load_split
    from recsift.models import build_model, layers
    from recsift.train.batching import AllPrefixBatcher
    from recsift.train.optim import adam

    split = load_split(a.dataset, data_dir=a.data_dir)
    ts = split.training_set()
    batcher = AllPrefixBatcher(ts, 50, a.batch_size)
    padded = lambda rnn, x, lengths: rnn(x)[0]  # noqa: E731 - the pre-packing code path
    packed = layers.run_rnn
    rows, md = [], ["| model | batch | steps x rounds | padded ms/step | packed ms/step | speed-up (median of rounds) |",
                    "|---|---|---|---|---|---|"]
    for name in a.models.split(","):
        torch.manual_seed(0)
        model = build_model(name, n_items=split.n_items, max_len=50).train()
        opt = adam(model.parameters(), lr=1e-3)
        mod = sys.modules[type(model).__module__]
        batches = iter(())
        rng = np.random.default_rng(0)
        times: dict[str, list[float]] = {"padded": [], "packed": []}
        for _ in range(a.rounds):
            for variant, fn in (("padded", padded), ("packed", packed)):
                mod.run_rnn = fn
                t = 0.0
                for _ in range(a.steps):
                    b = next(batches, None)
                    if b is None:
                        batches = batcher.batches(rng)
                        b = next(batches)
                    t0 = time.perf_counter()
                    h = model.forward_all(b.seq, b.lengths)[b.rows, b.cols]
                    neg = torch.randint(1, split.n_items + 1, (len(b.targets), 1))
                    pos_s = model.score_items(h, b.targets.view(-1, 1))
                    neg_s = model.score_items(h, neg)
                    loss = (F.softplus(-pos_s) + F.softplus(neg_s)).mean()  # BCE, one negative
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    t += time.perf_counter() - t0
                times[variant].append(1000 * t / a.steps)
        mod.run_rnn = packed
        ratios = [p / q for p, q in zip(times["padded"], times["packed"])]
        row = {"model": name, "batch_size": a.batch_size, "steps": a.steps, "rounds": a.rounds, **times,
               "speedup_median": statistics.median(ratios)}
        rows.append(row)
        md.append(f"| {name} | {a.batch_size} | {a.steps} x {a.rounds} | {statistics.median(times['padded']):.1f} | "
                  f"{statistics.median(times['packed']):.1f} | {statistics.median(ratios):.2f}x "
                  f"[{min(ratios):.2f}-{max(ratios):.2f}] |")
        print(md[-1], flush=True)
    name = a.name or f"rnn_packing_{a.dataset}"
    table = "\n".join(md)
    write_result(name, {"dataset": a.dataset, "args": vars(a), "rows": rows}, table)
    print(table)


if __name__ == "__main__":
    main()
