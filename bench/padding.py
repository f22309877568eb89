"""How much of an all-prefix batch is padding, unpacked and packed (no training: batches only).

Per dataset, one epoch of the trainer's all-prefix batches: windows, items and encoder positions
per batch, and positions per item, with and without packing (``TrainConfig.pack``).

Usage: python bench/padding.py --datasets beauty,ml-100k --batch-sizes 256,2048
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="beauty,ml-100k")
    ap.add_argument("--batch-sizes", default="256,2048")
    ap.add_argument("--data-dir", default=os.environ.get("RECSIFT_DATA_DIR"))
    ap.add_argument("--name", default="padding")
    a = ap.parse_args()

    import numpy as np

    from recsift.data import load_split
    from recsift.train.batching import AllPrefixBatcher

    rows, md = [], ["| dataset | batch | packed | batches | windows / batch | items / batch | positions / batch | "
                    "positions per item |", "|---|---|---|---|---|---|---|---|"]
    for ds in a.datasets.split(","):
        ts = load_split(ds, data_dir=a.data_dir).training_set()
        for bs in map(int, a.batch_sizes.split(",")):
            for pack in (False, True):
                n = windows = items = positions = 0
                for b in AllPrefixBatcher(ts, 50, bs, pack=pack).batches(np.random.default_rng(0)):
                    n += 1
                    windows += len(np.unique(b.segments.numpy()[b.segments.numpy() >= 0])) if pack else len(b.seq)
                    items += int((b.seq > 0).sum())
                    positions += b.seq.numel()
                row = {"dataset": ds, "batch_size": bs, "pack": pack, "batches": n, "windows": windows,
                       "items": items, "positions": positions}
                rows.append(row)
                md.append(f"| {ds} | {bs} | {'yes' if pack else 'no'} | {n:,} | {windows / n:.1f} | {items / n:.0f} | "
                          f"{positions / n:.0f} | {positions / items:.2f} |")
                print(md[-1], flush=True)
    write_result(a.name, {"args": vars(a), "rows": rows}, "\n".join(md))


if __name__ == "__main__":
    main()
