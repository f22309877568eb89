"""Milliseconds per batch of the DynamicsRecorder's per-sample statistics: eager passes vs the
compiled kernel (``fused=True``, what ``RECSIFT_FUSED_STATS=1`` selects), per vocabulary size and
thread count.

Usage: python bench/stats_kernel.py [--items 1683,12102,50001] [--threads 1,2] [--rows 2048] [--repeats 9]

Random logits (scale 3) and targets; the compile happens before timing (its cold cost is printed);
each figure is the median of ``--repeats`` calls after one warm-up.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", default="1683,12102,50001")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=9)
    a = ap.parse_args()

    import torch

    from recsift.train.dynamics import per_sample_stats
    from recsift.train.losses import masked_log_softmax

    def ms(f) -> float:
        f()
        ts = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
        return 1e3 * statistics.median(ts)

    t0 = time.perf_counter()
    z = torch.randn(64, 100)
    per_sample_stats(z, torch.randint(1, 100, (64,)), fused=True)
    compile_s = time.perf_counter() - t0
    rows = []
    for threads in (int(t) for t in a.threads.split(",")):
        torch.set_num_threads(threads)
        for n in (int(i) for i in a.items.split(",")):
            g = torch.Generator().manual_seed(0)
            z = torch.randn(a.rows, n, generator=g) * 3
            y = torch.randint(1, n, (a.rows,), generator=g)
            lp = masked_log_softmax(z)
            eager = ms(lambda: per_sample_stats(z, y, lp))
            fused = ms(lambda: per_sample_stats(z, y, lp, fused=True))
            rows.append({"threads": threads, "items": n, "eager_ms": round(eager, 2), "fused_ms": round(fused, 2)})
            print(rows[-1], flush=True)
    md = ["| threads | items | eager ms/batch | fused ms/batch | speed-up |", "|---|---|---|---|---|"]
    md += [f"| {r['threads']} | {r['items']:,} | {r['eager_ms']:.1f} | {r['fused_ms']:.1f} | "
           f"{r['eager_ms'] / r['fused_ms']:.2f}x |" for r in rows]
    md.append(f"\n{a.rows} rows per batch; first compile in this process {compile_s:.1f} s (torch caches it on disk).")
    write_result("stats_kernel", {"rows": rows, "compile_seconds": compile_s, "args": vars(a)}, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
