"""One training step of DR4SR's GNN backbone (``dr4sr_gnn``) on a real item graph: the CPU graph
product through scipy CSR (the default) against ``torch.sparse.mm`` on the COO tensor.

The item graph is built from the dataset's full training set as in training; a step is DR4SR's recipe
(batch 256 of 1–20 items, BCE with one sampled negative, backward, Adam). Both paths run in one process,
alternating per round (this machine's throughput drifts), each the median of ``--calls`` steps; the
table gives the median over rounds and the implied seconds per epoch of the training set.

Usage::

    RECSIFT_THREADS=1 .venv/bin/python bench/gnn_step.py --dataset beauty --rounds 5
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import write_result  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=7)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("RECSIFT_THREADS", "1")))
    args = ap.parse_args(argv)

    import torch

    from recsift.data import load_split
    from recsift.models.registry import build_model
    from recsift.train.losses import bce_loss

    torch.set_num_threads(args.threads)
    split = load_split(args.dataset)
    full = split.training_set()
    model = build_model("dr4sr_gnn", n_items=split.n_items, max_len=50).train()
    model.prepare_data(full)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 21, (256,), generator=g)
    seq = torch.zeros(256, 50, dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        seq[b, :n] = torch.randint(1, split.n_items + 1, (n,), generator=g)
    pos = torch.randint(1, split.n_items + 1, (256, 1), generator=g)
    neg = torch.randint(1, split.n_items + 1, (256, 1), generator=g)

    def step() -> None:
        h = model(seq, lengths)
        loss = bce_loss(model.score_items(h, pos).squeeze(1), model.score_items(h, neg)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def propagation() -> None:  # the graph part alone: 3 layers forward and backward
        model._table = None
        model.propagated().sum().backward()

    csr = model._csr
    paths = {"torch.sparse.mm (COO)": None, "scipy CSR (default)": csr}
    cases = {"propagation (forward + backward)": propagation, "whole step": step}
    ms: dict[str, list[float]] = {f"{c} | {p}": [] for c in cases for p in paths}
    for _ in range(args.rounds):
        for c, fn in cases.items():
            for name, pair in paths.items():
                model._csr = pair
                fn()  # warm-up
                ts = []
                for _ in range(args.calls):
                    t0 = time.perf_counter()
                    fn()
                    ts.append(time.perf_counter() - t0)
                ms[f"{c} | {name}"].append(statistics.median(ts) * 1e3)
    model._csr = csr
    batches = math.ceil(len(full) / 256)
    med = {k: statistics.median(v) for k, v in ms.items()}
    rows = ["| what | graph product | ms (median of rounds) | per-round medians | s / epoch implied | speed-up |",
            "|---|---|---|---|---|---|"]
    for k, m in med.items():
        base = med[k.split(" | ")[0] + " | torch.sparse.mm (COO)"]
        rows.append(f"| {k} | {m:.1f} | {', '.join(f'{x:.0f}' for x in ms[k])} | {m * batches / 1e3:.0f} | "
                    f"{base / m:.2f}x |")
    md = (f"`dr4sr_gnn` on {args.dataset}: item graph of {model.graph._nnz():,} edges over {split.n_items:,} items "
          f"(built from {len(full):,} training samples = {batches} batches of 256 per epoch); the graph propagation "
          f"alone, and one DR4SR-recipe step (a padded batch of 256 sequences of 1–20 items, BCE with one negative, "
          f"Adam; the trainer packs sequences, so its steps spend less on the encoder), {args.threads} thread(s), "
          f"{args.rounds} alternating rounds of {args.calls} calls; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"at the end.\n\n" + "\n".join(rows))
    write_result(f"gnn_step_{args.dataset}", {"args": vars(args), "ms": ms, "batches": batches}, md)
    print(md)


if __name__ == "__main__":
    main()
