"""The report's explanation views, read from the saved curation artifacts of a runs folder
(``samples.npz``: kept / reason / score per sample; ``explain.npz``: each sample's session and
item, MoE expert agreement, a sample of embeddings): a 2-D embedding map and the item popularity
of kept vs pruned samples, the MoE expert-agreement breakdown, and a per-session lookup of why
its samples were kept or dropped. Views whose artifacts are missing say so and are skipped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from .page import SECTIONS, Cell, Figure, Section, Table, num, pct, slug
from .plots import agreement_bars, embedding_map, popularity_histograms
from .runs import ARTIFACT_ERRORS, Runs

#: most sessions (or samples) the why-kept lookup embeds per dataset
LOOKUP_MAX = 20000


@dataclass
class Curation:
    dataset: str
    curator: str
    method: str
    budget: str
    seed: int
    fraction: float
    key: str
    samples: dict[str, np.ndarray]
    explain: dict[str, np.ndarray] | None

    @property
    def label(self) -> str:
        return f"{self.curator} @ {self.budget}"


def load_curations(runs: Runs) -> tuple[dict[str, list[Curation]], list[str]]:
    """Per dataset, the curations of its first seed (curator order, then budget) with their saved
    arrays; and notes on those whose samples.npz is missing or unreadable."""
    df = runs.table
    out: dict[str, list[Curation]] = {}
    notes = []
    if "curation_step" not in df:
        return out, ["the results table names no curation steps"]
    cur = df[(df["curator"] != "full") & (df["curation_step"] != "")]
    for d, g in cur.groupby("dataset", sort=False):
        seed = g["seed"].min()
        g = g[g["seed"] == seed].drop_duplicates("curation_step")
        order = {c: i for i, c in enumerate(dict.fromkeys(df["curator"]))}
        g = g.assign(_o=g["curator"].map(order)).sort_values(["_o", "fraction_kept"], kind="stable")
        lst = []
        for _, r in g.iterrows():
            try:
                s, e = runs.npz(r["curation_step"], "samples.npz"), runs.npz(r["curation_step"], "explain.npz")
            except ARTIFACT_ERRORS as err:
                notes.append(f"{d} {r['curator']} @ {r['budget']}: curation artifacts unreadable ({err})")
                continue
            if s is None:
                notes.append(f"{d} {r['curator']} @ {r['budget']}: samples.npz not found in its curation step")
                continue
            if "kept" not in s:  # a regenerated training set (new sequences): nothing was kept or pruned
                notes.append(f"{d} {r['curator']} @ {r['budget']}: a regenerated training set, not a subset; it has "
                             "no kept/pruned samples to explain")
                continue
            if e is not None and len(e.get("user", ())) != len(s["kept"]):
                e = None
            lst.append(Curation(str(d), str(r["curator"]), str(r.get("method", r["curator"])), str(r["budget"]),
                                int(seed), float(r["fraction_kept"]), r["curation_step"], s, e))
        if lst:
            out[str(d)] = lst
    return out, notes


def _section(sid: str, intro: str, notes: list[str]) -> Section:
    """An explanation section that starts with the notes on unreadable curations."""
    return Section(sid, SECTIONS[sid], intro, notes=list(notes))


def _smallest_budget(curs: list[Curation]) -> list[Curation]:
    best: dict[str, Curation] = {}
    for c in curs:
        if c.curator not in best or c.fraction < best[c.curator].fraction:
            best[c.curator] = c
    return list(best.values())


def _pca2(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T if vt.shape[0] >= 2 else np.column_stack([x @ vt[:1].T, np.zeros(len(x))])


def section_embedding(curations: dict[str, list[Curation]], notes: list[str]) -> Section:
    intro = ("A 2-D PCA projection of saved sample embeddings (a random subset of at most 5,000 training "
             "samples), coloured by whether each curator (at its smallest budget, first seed) kept the sample. "
             "All panels of a dataset share one projection.")
    sec = _section("embedding", intro, notes)
    for d, curs in curations.items():
        src = next((c for c in curs if c.explain is not None and "embedding" in c.explain), None)
        if src is None:
            if all(c.explain is None for c in curs):
                sec.notes.append(f"{d}: explain.npz not saved with the curations (written by curation steps of this "
                                 "version of `recsift run`; delete the steps/curation folders to recompute them)")
            else:
                sec.notes.append(f"{d}: no curation saved sample embeddings (only moe, and curators that use probe "
                                 "embeddings such as moderate, prototype or d2 with graph=knn, save them)")
            continue
        rows, emb = src.explain["embedding_rows"], src.explain["embedding"]
        xy = _pca2(emb)
        panels = [(c.label, c.samples["kept"][rows].astype(bool)) for c in _smallest_budget(curs)]
        what = "MoE gate-input session embedding" if src.method == "moe" else "probe-model embedding"
        png = embedding_map(xy, panels, f"{d}: PCA of the {what} (from {src.label}, seed {src.seed})")
        sec.figures.append(Figure(f"embedding-{slug(d)}.png", f"embedding map of kept vs pruned samples, {d}", png))
    sec.skipped = not sec.figures
    return sec


def _items(curs: list[Curation]) -> np.ndarray | None:
    return next((c.explain["item"] for c in curs if c.explain is not None and "item" in c.explain), None)


def section_popularity(curations: dict[str, list[Curation]], notes: list[str]) -> Section:
    from ..curators.units import popularity_tail, target_popularity

    sec = _section("popularity", "For each training sample, the popularity of its target item (how many training "
                   "samples have that target), kept vs pruned, per curator at its smallest budget (first seed). A "
                   "curator that keeps only head items loses the long tail.", notes)
    for d, curs in curations.items():
        items = _items(curs)
        if items is None:
            sec.notes.append(f"{d}: explain.npz (sample users and items) not saved with the curations; it is written "
                             "by curation steps run by this version of `recsift run` (delete the steps/curation "
                             "folders to recompute them)")
            continue
        pop = target_popularity(items)
        panels = [(c.label, c.samples["kept"].astype(bool)) for c in _smallest_budget(curs)]
        png = popularity_histograms(pop, panels, f"{d}: popularity of each sample's target item")
        sec.figures.append(Figure(f"popularity-{slug(d)}.png", f"item popularity of kept vs pruned samples, {d}", png))
        rows = []
        tail = popularity_tail(pop)
        for c in curs:
            k = c.samples["kept"].astype(bool)
            rows.append([Cell(c.curator), Cell(c.budget), Cell(num(np.median(pop[k]), 0)),
                         Cell(num(np.median(pop[~k]), 0) if (~k).any() else "–"),
                         Cell(pct(k[tail].mean()) if tail.any() else "–"),
                         Cell(pct(len(np.unique(items[k])) / len(np.unique(items))))])
        sec.tables.append(Table(["curator", "budget", "median popularity kept", "median popularity pruned",
                                 "tail samples kept", "target items still covered"], rows,
                                f"{d} (tail = samples whose target is among the 20% least popular)",
                                f"popularity-{slug(d)}"))
    sec.skipped = not sec.figures
    return sec


def _level_names(n_exp: int) -> list[str]:
    return [f"hard (0 of {n_exp})" if k == 0 else f"easy ({k} of {n_exp})" if k == n_exp else f"medium ({k} of {n_exp})"
            for k in range(n_exp + 1)]


def section_agreement(curations: dict[str, list[Curation]], notes: list[str]) -> Section:
    sec = _section("agreement", "For the moe curator: how many experts have each sample's target in their top-K "
                   "(all = easy, some = medium, none = hard), and the share of each level the curation kept; and "
                   "each expert's share of the gate's routing weight.", notes)
    for d, curs in curations.items():
        moe = [c for c in curs if c.explain is not None and "agreement" in c.explain]
        if not moe:
            if any(c.method == "moe" for c in curs):
                sec.notes.append(f"{d}: the moe curations did not save expert agreement (explain.npz missing)")
            continue
        by_curator: dict[str, list[Curation]] = {}
        for c in moe:
            by_curator.setdefault(c.curator, []).append(c)
        for cur, group in by_curator.items():
            ex = group[0].explain
            n_exp = len(ex.get("expert_names", [])) or int(ex["agreement"].max())
            levels = _level_names(n_exp)
            counts = np.bincount(ex["agreement"], minlength=n_exp + 1)
            shares = {}
            for c in group:
                a, k = c.explain["agreement"], c.samples["kept"].astype(bool)
                shares[f"keep {c.budget}"] = np.array([k[a == lv].mean() if (a == lv).any() else 0.0
                                                       for lv in range(n_exp + 1)])
            png = agreement_bars(levels, counts, shares, f"{d}: {cur} — share kept per agreement level")
            sec.figures.append(Figure(f"agreement-{slug(d, cur)}.png", f"expert agreement, {d}, {cur}", png))
            rows = [[Cell(levels[lv]), Cell(f"{counts[lv]:,}"), Cell(pct(counts[lv] / counts.sum())),
                     *[Cell(pct(s[lv])) for s in shares.values()]] for lv in range(n_exp + 1)]
            sec.tables.append(Table(["agreement", "samples", "share", *[f"kept at {k}" for k in shares]], rows,
                                    f"{d}: {cur} (seed {group[0].seed})", f"agreement-{slug(d, cur)}"))
            if "routing_share" in ex and "expert_names" in ex:
                sec.tables.append(Table(["expert", "routing share"],
                                        [[Cell(str(n)), Cell(pct(s))] for n, s in zip(ex["expert_names"],
                                                                                      ex["routing_share"])],
                                        f"{d}: {cur} gate routing", f"routing-{slug(d, cur)}"))
    if not sec.figures and not sec.notes:
        sec.notes.append("no moe curator in this experiment")
    sec.skipped = not sec.figures
    return sec


def section_lookup(curations: dict[str, list[Curation]], notes: list[str]) -> Section:
    """Per session (user), for every curation of the first seed: samples kept / total, the reason codes."""
    from ..curators.base import REASONS

    sec = _section("lookup", "Type a session (user) id to see, for every curator and budget (first seed), how "
                   "many of its training samples were kept and the reason code of each: " +
                   "; ".join(f"<code>{r}</code>" for r in REASONS) + ".", notes)
    blocks = []
    for d, curs in curations.items():
        ref = next((c for c in curs if c.explain is not None and "user" in c.explain), None)
        if ref is not None:
            unit_of = ref.explain["user"].astype(np.int64)
            raw = ref.explain.get("user_raw")
            names = raw.astype(str) if raw is not None else np.arange(unit_of.max() + 1).astype(str)
            unit_word = "session"
        else:
            sid = curs[0].samples.get("sample_id")
            n = len(curs[0].samples["kept"])
            unit_of = np.arange(n)
            names = (sid if sid is not None else np.arange(n)).astype(str)
            unit_word = "sample"
            sec.notes.append(f"{d}: explain.npz (sample → session) not saved; the lookup is by training sample id")
        n_units = len(names)
        shown = min(n_units, LOOKUP_MAX)
        if shown < n_units:
            sec.notes.append(f"{d}: the lookup holds the first {shown:,} of {n_units:,} {unit_word}s; every sample's "
                             "reason is in steps/curation/*/samples.npz (kept, reason, score)")
        total = np.bincount(unit_of, minlength=n_units)[:shown]
        cols = []
        for c in curs:
            reason = c.samples["reason"].astype(np.int64)
            counts = np.bincount(unit_of * len(REASONS) + reason, minlength=n_units * len(REASONS))
            counts = counts.reshape(n_units, len(REASONS))[:shown]
            score = None
            if "score" in c.samples:
                s = np.bincount(unit_of, weights=c.samples["score"].astype(np.float64), minlength=n_units)[:shown]
                score = [round(float(v), 4) for v in s / np.maximum(total, 1)]
            cols.append({"label": c.label, "counts": counts.tolist(), "score": score})
        data = {"unit": unit_word, "reasons": list(REASONS), "ids": names[:shown].tolist(), "n": total.tolist(),
                "curations": cols}
        blocks.append(_lookup_html(slug("lookup", d), d, data))
    sec.html = "\n".join(blocks)
    sec.skipped = not blocks
    if not blocks and not sec.notes:
        sec.notes.append("no curation artifacts found")
    return sec


def _lookup_html(uid: str, dataset: str, data: dict[str, Any]) -> str:
    """The search box, a table with the first sessions filled in (readable without scripts), and the data."""
    import html

    first = []
    for i in range(min(3, len(data["ids"]))):
        first.extend(_lookup_rows(data, i))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in first)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    word = data["unit"]
    return (f'<div class="lookup" id="{uid}"><h3>{html.escape(dataset)}</h3>'
            f'<label>{word} id <input type="search" class="lookup-q" placeholder="e.g. {html.escape(data["ids"][0])}">'
            f'</label> <span class="lookup-status">showing the first {min(3, len(data["ids"]))} {word}s</span>'
            f'<div class="scroll"><table class="lookup-table"><thead><tr><th>{word}</th><th>curation</th>'
            f'<th>kept / samples</th><th>why</th><th>mean score</th></tr></thead><tbody>{body}</tbody></table></div>'
            f'<script type="application/json" class="lookup-data">{payload}</script></div>')


def _lookup_rows(data: dict[str, Any], i: int) -> list[list[str]]:
    """Rows for unit ``i`` (the same text the inline script builds)."""
    rows = []
    for c in data["curations"]:
        counts = c["counts"][i]
        kept = sum(v for r, v in zip(data["reasons"], counts) if r.startswith("kept"))
        why = "; ".join(f"{r} ×{v}" for r, v in zip(data["reasons"], counts) if v)
        score = "–" if c["score"] is None else f"{c['score'][i]:.4g}"
        rows.append([data["ids"][i], c["label"], f"{kept} / {data['n'][i]}", why, score])
    return rows
