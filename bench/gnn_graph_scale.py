"""Scale of DR4SR's GNN item graph on the original and the + DR4SR training sets.

The GNN backbone (``dr4sr_gnn``) sums edge weights over occurrences and divides each row by its
number of neighbours, not by its weight sum, so the graph's scale grows with how often transitions
repeat. + DR4SR adds the mined patterns (frequent windows) and regenerated sequences, which repeat
frequent transitions. This bench measures, for each training set and both normalisations
(``row``: ALGORITHMS.md §3.7, the default; ``row+col``: the released code's): non-zeros, row-sum
quantiles and how much ``A^l`` stretches a fixed random embedding table (``|A^l X| / |X|``, l = 1..L),
i.e. how far the propagated layers the model averages are from the input scale.

Usage::

    RECSIFT_THREADS=1 .venv/bin/python bench/gnn_graph_scale.py --dataset beauty --cache-dir /work/cache
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import write_result  # noqa: E402


def graph_scale(a, x, layers: int) -> dict:
    """Row-sum quantiles (item rows, padding excluded) and ``|A^l x| / |x|`` for l = 1..layers."""
    import numpy as np

    rs = np.asarray(a.sum(1)).ravel()[1:]
    stretch, y = [], x
    for _ in range(layers):
        y = a @ y
        stretch.append(float(np.linalg.norm(y) / np.linalg.norm(x)))
    return {"nnz": int(a.nnz), "row_sum": {q: float(np.percentile(rs, p)) for q, p in
                                           (("p50", 50), ("p99", 99), ("max", 100))}, "stretch": stretch}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--seed", type=int, default=2023, help="the regeneration's seed (its cached set is reused)")
    ap.add_argument("--regen-epochs", type=int, default=40)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--cache-dir", default=None, help="where bench/dr4sr.py cached the regenerated set")
    args = ap.parse_args(argv)

    import numpy as np

    from recsift.curators import CurationContext, curate
    from recsift.data import load_split
    from recsift.models.dr4sr_gnn import GRAPH_NORMS
    from recsift.models.registry import build_model

    split = load_split(args.dataset)
    full = split.training_set()
    ctx = CurationContext(split=split, seed=args.seed, max_len=50,
                          cache_dir=Path(args.cache_dir) if args.cache_dir else None)
    regen, _ = curate(full, "dr4sr", None, ctx, epochs=args.regen_epochs)
    x = np.random.default_rng(0).standard_normal((split.n_items + 1, 64)).astype(np.float32)
    x[0] = 0.0
    rows = []
    for name, ts in (("original", full), ("+ DR4SR", regen)):
        for norm in GRAPH_NORMS:
            model = build_model("dr4sr_gnn", n_items=split.n_items, graph_norm=norm)
            model.prepare_data(ts)
            rows.append({"training set": name, "samples": len(ts), "norm": norm,
                         **graph_scale(model._csr[0], x, args.layers)})
    head = ["training set", "samples", "graph_norm", "non-zeros", "row sum p50 / p99 / max",
            *[f"|A^{l} X| / |X|" for l in range(1, args.layers + 1)]]
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        rs = r["row_sum"]
        md.append(f"| {r['training set']} | {r['samples']:,} | {r['norm']} | {r['nnz']:,} | "
                  f"{rs['p50']:.2f} / {rs['p99']:.1f} / {rs['max']:.1f} | "
                  + " | ".join(f"{v:.2f}" for v in r["stretch"]) + " |")
    md.append(f"\nX: a fixed standard-normal table of {split.n_items + 1} x 64 (padding row 0); the model averages "
              f"X, AX, ..., A^{args.layers}X. Regenerated set: seed {args.seed}, {args.regen_epochs} pre-training "
              "epochs, γ 0.3, K 5 (bench/dr4sr.py's defaults).")
    write_result(f"gnn_graph_scale_{args.dataset}", {"args": vars(args), "rows": rows}, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
