"""Selection at scale: session graph + D², item coverage, kNN graphs (faiss vs exact), k-means.

Usage:
  OMP_NUM_THREADS=2 RECSIFT_THREADS=2 python bench/selection_scale.py [--units 1000000] [--items 50000]
      [--parts session,coverage,knn,ann_choice,kmeans]
``--parts`` re-measures only those parts; the others keep their last results at the same size.

Each part runs in a fresh subprocess; inside it, every step's peak RSS is its own (the kernel's
high-water mark is reset before each step through /proc/self/clear_refs). Targets (2 cores):
(a) session graph + D² at budget 0.5, k=10 on 1M sessions over 50k items < 60 s and < 4 GB;
(b) item coverage on the same; (c) kNN graph (k=10) on 1M × 64 float32 with faiss, exact on a
50k subsample, recall@10 of the 1M faiss graph on 20k sampled nodes (vs exact search over all
1M); IVF vs HNSW at 200k; (d) prototype k-means (100 clusters) on 1M × 64: each < 60 s.

Synthetic data: sessions have geometric lengths (mean 7) over Zipf(1)-popular items; embeddings
are 1,000 Gaussian clusters in 64-d with a 16-d within-cluster latent structure and isotropic
noise (ANN recall depends on the data: on isotropic noise every method's recall collapses).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402

PARTS = ("session", "coverage", "knn", "ann_choice", "kmeans")
TARGET_S = 60.0
TARGET_SESSION_GB = 4.0


# ---------------------------------------------------------------- measurement helpers (child side)


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(steps: dict, name: str, fn, *args, **kwargs):
    """Run ``fn``, recording wall seconds and the step's peak RSS (MiB) in ``steps[name]``."""
    _reset_peak()
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    steps[name] = {"wall_s": round(time.perf_counter() - t0, 2), "peak_rss_mb": round(_rss_mb("VmHWM"), 0)}
    print(f"  {name}: {steps[name]}", file=sys.stderr, flush=True)
    return out


def sessions(n_units: int, n_items: int, seed: int = 0):
    """CSR sessions: geometric lengths (mean 7), Zipf(1)-popular items (random item ids)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lens = rng.geometric(1 / 7, size=n_units)
    indptr = np.zeros(n_units + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    cdf = np.cumsum(1.0 / np.arange(1, n_items + 1))
    ranks = np.searchsorted(cdf, rng.random(indptr[-1]) * cdf[-1]).clip(max=n_items - 1)
    return indptr, rng.permutation(n_items)[ranks]


def embeddings(n: int, d: int = 64, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(1000, d)).astype(np.float32)
    w = rng.normal(size=(16, d)).astype(np.float32) / 4
    x = centers[rng.integers(1000, size=n)]
    x += rng.normal(size=(n, 16)).astype(np.float32) @ w
    x += 0.3 * rng.normal(size=(n, d)).astype(np.float32)
    return x


def _recall(exact_idx, approx_rows) -> float:
    import numpy as np

    hits = sum(np.intersect1d(e, a).size for e, a in zip(exact_idx, approx_rows))
    return hits / exact_idx.size


def _exact_rows(base, queries_idx, k: int):
    """Exact k nearest (self excluded) of ``base[queries_idx]`` over all of ``base`` (faiss flat)."""
    import faiss
    import numpy as np

    flat = faiss.IndexFlatL2(base.shape[1])
    flat.add(base)
    _, found = flat.search(base[queries_idx], k + 1)
    return np.array([[j for j in row if j != q][:k] for row, q in zip(found, queries_idx)])


# ---------------------------------------------------------------- parts


def part_session(a) -> dict:
    import numpy as np

    from recsift.selection import select_d2, session_graph

    steps: dict = {}
    indptr, items = timed(steps, "generate sessions", sessions, a.units, a.items)
    g = timed(steps, "session_graph (k=10)", session_graph, indptr, items, k=10)
    scores = np.random.default_rng(1).random(a.units)
    sel = timed(steps, "select_d2 (budget 0.5)", select_d2, scores, 0.5, graph=g)
    deg = g.degrees()
    return {
        "steps": steps,
        "interactions": int(indptr[-1]),
        "graph_edges": g.n_edges,
        "mean_degree": round(float(deg.mean()), 2),
        "isolated_units": int((deg == 0).sum()),
        "selected": int(sel.size),
        "total_s": round(steps["session_graph (k=10)"]["wall_s"] + steps["select_d2 (budget 0.5)"]["wall_s"], 2),
    }


def part_coverage(a) -> dict:
    import numpy as np

    from recsift.selection import item_coverage

    steps: dict = {}
    indptr, items = timed(steps, "generate sessions", sessions, a.units, a.items)
    cov = timed(steps, "item_coverage", item_coverage, indptr, items)
    covered = np.unique(np.concatenate([items[indptr[u] : indptr[u + 1]] for u in cov]))
    return {"steps": steps, "cover_units": int(cov.size), "items_present": int(np.unique(items).size),
            "items_covered": int(covered.size)}


def part_knn(a) -> dict:
    import numpy as np

    from recsift.selection import knn_graph
    from recsift.selection.graphs import default_nprobe

    steps: dict = {}
    x = timed(steps, "generate embeddings", embeddings, a.units)
    g = timed(steps, f"knn_graph faiss IVF-Flat ({a.units:,})", knn_graph, x, 10, method="faiss")
    sub = x[np.sort(np.random.default_rng(2).choice(a.units, size=min(a.units, 50_000), replace=False))]
    timed(steps, f"knn_graph exact ({sub.shape[0]:,} subsample)", knn_graph, sub, 10, method="exact")
    q = np.random.default_rng(3).choice(a.units, size=min(a.units, 20_000), replace=False)
    exact = timed(steps, f"exact search of {q.size:,} nodes over all (recall reference)", _exact_rows, x, q, 10)
    rows = [g.indices[g.indptr[i] : g.indptr[i + 1]] for i in q]
    return {"steps": steps, "nprobe": default_nprobe(a.units), "recall_at_10_on_sample": round(_recall(exact, rows), 4),
            "recall_sample": int(q.size)}


def part_ann_choice(a) -> dict:
    """IVF-Flat (as knn_graph uses it) vs HNSW, both building a full kNN graph of 200k nodes."""
    import faiss
    import numpy as np

    from recsift.selection import knn_graph
    from recsift.selection.graphs import default_nprobe

    n = min(a.units, 200_000)
    x = embeddings(n, seed=4)
    q = np.random.default_rng(5).choice(n, size=2_000, replace=False)
    exact = _exact_rows(x, q, 10)
    steps: dict = {}
    out: dict = {"n": n, "ivf_nprobe": default_nprobe(n)}
    g = timed(steps, "IVF-Flat graph (knn_graph faiss)", knn_graph, x, 10, method="faiss")
    out["ivf_recall"] = round(_recall(exact, [g.indices[g.indptr[i] : g.indptr[i + 1]] for i in q]), 4)
    for m_links, ef in ((16, 32), (32, 64)):
        def hnsw_graph():
            index = faiss.IndexHNSWFlat(x.shape[1], m_links)
            index.hnsw.efConstruction = 40
            index.add(x)
            index.hnsw.efSearch = ef
            return index.search(x, 11)[1]

        found = timed(steps, f"HNSW M={m_links} efSearch={ef} graph", hnsw_graph)
        rows = [[j for j in found[i] if j != i][:10] for i in q]
        out[f"hnsw_M{m_links}_ef{ef}_recall"] = round(_recall(exact, rows), 4)
    out["steps"] = steps
    return out


def part_kmeans(a) -> dict:
    import numpy as np

    from recsift.scoring.embedding import kmeans, prototype_scores

    steps: dict = {}
    x = timed(steps, "generate embeddings", embeddings, a.units)
    timed(steps, "kmeans (100 clusters, 20 iterations max)", kmeans, x, 100, rng=np.random.default_rng(0))
    timed(steps, "prototype_scores (100 clusters)", prototype_scores, x, 100, rng=np.random.default_rng(0))
    return {"steps": steps}


# ---------------------------------------------------------------- driver


def run_child(part: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", part, "--units", str(args.units), "--items", str(args.items)]
    load = os.getloadavg()[0]
    print(f"[{part}] load average before: {load:.2f}", file=sys.stderr, flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        raise SystemExit(f"part {part} failed (exit {r.returncode})")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["load_avg_1min_before"] = round(load, 2)
    res["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return res


def previous_results(args) -> dict:
    """Results of earlier runs at the same size, so ``--parts`` can re-measure some parts only."""
    path = Path(__file__).parent / "results" / "selection_scale.json"
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    same = old.get("units") == args.units and old.get("items") == args.items
    return old.get("results", {}) if same else {}


def table(results: dict) -> str:
    md = "| part | step | wall s | peak RSS MB |\n|---|---|---|---|\n"
    for part, res in results.items():
        for step, v in res["steps"].items():
            md += f"| {part} | {step} | {v['wall_s']:.1f} | {v['peak_rss_mb']:.0f} |\n"
    s = results.get("session")
    if s:
        peak = max(v["peak_rss_mb"] for v in s["steps"].values())
        md += (f"\nSession graph + D²: {s['total_s']:.1f} s (target < {TARGET_S:.0f} s), peak {peak / 1024:.2f} GB "
               f"(target < {TARGET_SESSION_GB:.0f} GB); {s['graph_edges']:,} edges, mean degree {s['mean_degree']}, "
               f"{s['selected']:,} selected.\n")
    c = results.get("coverage")
    if c:
        md += f"Item coverage: {c['cover_units']:,} units cover all {c['items_covered']:,} items present.\n"
    k = results.get("knn")
    if k:
        md += (f"faiss IVF-Flat (nprobe {k['nprobe']}) recall@10 on {k['recall_sample']:,} sampled nodes: "
               f"{k['recall_at_10_on_sample']:.3f}.\n")
    h = results.get("ann_choice")
    if h:
        recalls = ", ".join(f"{key.replace('_recall', '')} {val:.3f}" for key, val in h.items() if key.endswith("recall"))
        md += f"ANN choice at {h['n']:,} nodes (IVF nprobe {h['ivf_nprobe']}), recall@10: {recalls}.\n"
    md += "\nLoad average (1 min) before each part: " + ", ".join(
        f"{p} {r['load_avg_1min_before']} ({r.get('measured', '?')})" for p, r in results.items()
    ) + " (2 cores; > 1 means other work shared them).\n"
    return md


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--child", choices=PARTS)
    args = ap.parse_args()
    if args.child:
        from recsift.utils.runtime import configure_threads

        configure_threads()
        print(json.dumps(globals()[f"part_{args.child}"](args)))
        return
    results = previous_results(args)
    results.update({p: run_child(p, args) for p in args.parts.split(",")})
    results = {p: results[p] for p in PARTS if p in results}
    md = table(results)
    write_result("selection_scale", {"units": args.units, "items": args.items,
                                     "threads": os.environ.get("RECSIFT_THREADS"), "results": results}, md)
    print(md)


if __name__ == "__main__":
    main()
