"""Build the HTML report of a runs folder: `build_report(runs_dir, out)`.

One self-contained page (figures are PNGs embedded as base64 data URIs, styles and the small
search script inline; nothing is fetched from the network), plus the PNGs themselves in a
``<stem>-figures/`` folder beside it. Sections: accuracy vs fraction kept, the main table with
paired significance vs random, seen/unseen-architecture transfer, cost, and the explanation
views read from the curation artifacts (2-D embedding map, item popularity of kept vs pruned,
MoE expert agreement, and a per-session "why kept or dropped" lookup). A section whose inputs
are missing from the runs folder is shown with a note saying what is missing and how to get it.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from .explain import (load_curations, section_agreement, section_embedding, section_lookup,
                      section_popularity)
from .page import SECTIONS, Cell, Figure, Section, Table, num, pct, skip, slug
from .runs import ARTIFACT_ERRORS, Runs, load_runs
from .tables import (RANDOM, best_in_budget, cost_table, fmt_mean_std, main_table, significance, transfer_table,
                     vs_random)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- accuracy
def section_curves(runs: Runs, main: pd.DataFrame) -> Section:
    from .plots import accuracy_curves

    sec = Section("curves", SECTIONS["curves"],
                  f"Test {runs.headline} (mean over seeds, error bars ± std) against the fraction of training "
                  "samples kept, one line per curator; the dashed line is the model trained on the full data "
                  "(shaded: ± std).")
    for (d, m), rows in main.groupby(["dataset", "model"], sort=False):
        if (rows["curator"] != "full").sum() == 0:
            continue
        png = accuracy_curves(rows, runs.headline, f"{d} — retrained {m}")
        sec.figures.append(Figure(f"curves-{slug(d, m)}.png", f"{runs.headline} vs fraction kept, {d}, {m}", png))
    if not sec.figures:
        return skip(sec.id, sec.title, "the results table has only full-data rows: no curated training set to plot")
    return sec


def section_main(runs: Runs, main: pd.DataFrame, sig: pd.DataFrame) -> Section:
    metrics = runs.metrics
    has_ret = "retained_mean" in main
    sec = Section("main", SECTIONS["main"],
                  "Mean ± std over seeds (std: sample standard deviation; blank with one seed). "
                  f"“% retained” = {runs.headline} / full-data {runs.headline} of the same model and seed. "
                  "<strong>Bold ★</strong> marks the best curator per column within a budget. “vs random”: mean "
                  f"per-user difference in {runs.headline} from the random curator at the same budget, and the "
                  "two-sided Wilcoxon signed-rank p-value over test users (per-user metrics averaged over seeds); "
                  "green / red: p < 0.05 above / below random.")
    sig_ix = sig.set_index(["dataset", "model", "curator", "budget"]) if len(sig) else None
    best = {c: best_in_budget(main, f"{c}_mean") for c in [*metrics, *(["retained"] if has_ret else [])]}
    for (d, m), rows in main.groupby(["dataset", "model"], sort=False):
        cols = ["curator", "budget", "kept", *metrics, *(["% retained"] if has_ret else []), "vs random", "seeds"]
        out = []
        for i, r in rows.iterrows():
            cells = [Cell(str(r["curator"])), Cell(str(r["budget"])), Cell(pct(r["fraction_kept"]))]
            cells += [_stat_cell(r, c, bool(best[c][i])) for c in metrics]
            if has_ret:
                cells.append(_stat_cell(r, "retained", bool(best["retained"][i]), 1, 100))
            cells.append(_sig_cell(sig_ix, (d, m, r["curator"], r["budget"])))
            cells.append(Cell(str(int(r["seeds"]))))
            out.append(cells)
        sec.tables.append(Table(cols, out, f"{d} — retrained {m}", f"main-{slug(d, m)}"))
    _against_random(runs, sec)
    skipped = sig[sig["diff"].isna() & (sig["note"] != "")] if len(sig) else sig
    for note, g in skipped.groupby("note", sort=False):
        where = "per_user.npz in the retrain step folders" if note.startswith("per-user") else "the grid"
        sec.notes.append(f"paired significance skipped for {len(g)} row(s): {note} ({where})")
    if not (runs.table["curator"] == RANDOM).any():
        sec.notes.append("paired significance skipped: the experiment has no `random` curator to compare with")
    return sec


def _stat_cell(r: pd.Series, col: str, best: bool, digits: int = 4, scale: float = 1.0) -> Cell:
    """``mean ± std`` of ``col`` with the exact values as data attributes."""
    mean, std = float(r[f"{col}_mean"]), float(r[f"{col}_std"])
    return Cell(fmt_mean_std(mean, std, digits, scale), best, {"metric": col, "mean": repr(mean), "std": repr(std)})


def _against_random(runs: Runs, sec: Section) -> None:
    """The % retained difference from random, paired by seed, with its standard error; and one plain
    sentence per moe curator and model at its smallest budget (the issue's bar: ≥ 2 standard errors)."""
    vr = vs_random(runs)
    if vr.empty:
        return
    rows = []
    for _, r in vr.iterrows():
        z = r["z"]
        verdict = ("no % retained (full-data row missing)" if pd.isna(r["diff"]) else
                   "one seed: no standard error" if pd.isna(r["se"]) else "identical to random" if r["se"] == 0
                   and r["diff"] == 0 else "≥ 2 SE above random" if z >= 2 else "≥ 2 SE below random" if z <= -2
                   else "within 2 SE of random")
        rows.append([Cell(str(r["dataset"])), Cell(str(r["model"])), Cell(str(r["budget"])), Cell(str(r["curator"])),
                     Cell(f"{100 * r['diff']:+.1f}", data={"diff": repr(float(r["diff"]))}),
                     Cell(num(100 * r["se"], 1)), Cell(num(z, 1)), Cell(verdict, cls="text"), Cell(str(r["seeds"]))])
    sec.tables.append(Table(["dataset", "model", "budget", "curator", "Δ % retained", "SE", "Δ / SE", "verdict",
                             "seeds"], rows, "% retained minus random's, paired by seed (SE = std / √seeds)",
                            "vs-random"))
    methods = runs.table.drop_duplicates("curator").set_index("curator")["method"] if "method" in runs.table else {}
    for (d, m, c), g in vr.groupby(["dataset", "model", "curator"], sort=False):
        if methods.get(c) != "moe":
            continue
        frac = runs.table[(runs.table["dataset"] == d) & (runs.table["budget"].isin(g["budget"]))] \
            .groupby("budget")["fraction_kept"].mean()
        r = g.set_index("budget").loc[frac.idxmin()]
        cell = runs.table[(runs.table["dataset"] == d) & (runs.table["model"] == m) & (runs.table["budget"] == r.name)]
        ret = cell.groupby("curator")["retained"].mean()
        if pd.isna(r["se"]):
            how = "with one seed there is no standard error to judge the difference by"
        elif r["z"] >= 2:
            how = f"that is at least 2 standard errors above random (Δ / SE = {r['z']:.1f})"
        else:
            how = f"that is NOT 2 standard errors above random (Δ / SE = {r['z']:.1f})"
        sec.lines.append(f"{d}, retrained {m}: {c} at keep {r.name} retains {pct(ret.get(c))} of full-data "
                         f"{runs.headline}, random {pct(ret.get(RANDOM))} (Δ {100 * r['diff']:+.1f} points, SE "
                         f"{num(100 * r['se'], 1)} over {r['seeds']} seeds, paired by seed); {how}.")


def _sig_cell(sig_ix: pd.DataFrame | None, key: tuple) -> Cell:
    if sig_ix is None or key not in sig_ix.index:
        return Cell("–")
    s = sig_ix.loc[key]
    if pd.isna(s["diff"]):
        return Cell("–", data={"note": str(s["note"])})
    p = s["p"]
    text = f"{s['diff']:+.4f} (p={p:.2g})" if pd.notna(p) else f"{s['diff']:+.4f}"
    return Cell(text, data={"p": repr(float(p)), "diff": repr(float(s["diff"])), "users": str(int(s["n_users"]))},
                cls=("sig-up" if s["diff"] > 0 else "sig-down") if pd.notna(p) and p < 0.05 else "")


def section_transfer(runs: Runs) -> Section:
    title = SECTIONS["transfer"]
    intro = ("Does a scorer built from some architectures (the MoE experts, or the probe model of a score) "
             "pick data that also serves architectures it never saw? “seen”: the retrained model's architecture "
             "is one the scorer was built from. % retained: mean ± std over seeds; random: the random curator's "
             "% retained for the same model and budget.")
    try:
        t = transfer_table(runs)
    except ARTIFACT_ERRORS as e:
        return skip("transfer", title, f"curation step records unreadable ({e})", intro)
    if t is None:
        return skip("transfer", title, "every retrained model is an architecture the scorers were built from (or "
                     "no scored curator's step record is saved): add a retrain model that is neither a MoE expert "
                     "nor the probe model to see transfer", intro)
    rows = []
    for _, r in t.iterrows():
        rows.append([Cell(str(r["dataset"])), Cell(str(r["curator"])), Cell(str(r["budget"])), Cell(str(r["model"])),
                     Cell("seen" if r["seen"] else "unseen", cls="seen" if r["seen"] else "unseen"),
                     Cell(str(r["scorer"])), Cell(fmt_mean_std(r["retained_mean"], r["retained_std"], 1, 100)),
                     Cell(pct(r["random_retained"]))])
    summary = t.groupby(["dataset", "curator", "budget", "seen"], sort=False)["retained_mean"].mean().unstack("seen")
    srows = [[Cell(str(d)), Cell(str(c)), Cell(str(b)), Cell(pct(r.get(True))), Cell(pct(r.get(False)))]
             for (d, c, b), r in summary.iterrows()]
    return Section("transfer", title, intro, tables=[
        Table(["dataset", "curator", "budget", "seen models", "unseen models"], srows,
              "mean % retained over seen vs unseen architectures", "transfer-summary"),
        Table(["dataset", "curator", "budget", "model", "architecture", "scorer built from", "% retained",
               "random"], rows, "per retrained model", "transfer")])


def section_cost(runs: Runs) -> Section:
    t = cost_table(runs)
    intro = ("Mean over seeds. Curation seconds include training the probe model or experts from scratch "
             "(a probe reused from the cache counts its training time); peak memory is the peak resident set "
             "size of the process that ran the step (MB), so it includes the Python/torch runtime.")
    cur = t[t["curator"] != "full"].drop_duplicates(["dataset", "curator", "budget"])
    crows = [[Cell(str(r["dataset"])), Cell(str(r["curator"])), Cell(str(r["budget"])),
              Cell(fmt_mean_std(r.get("curation_seconds"), r.get("curation_seconds_std"), 2)),
              Cell(num(r.get("curation_peak_rss_mb"), 0))] for _, r in cur.iterrows()]
    rrows = [[Cell(str(r["dataset"])), Cell(str(r["curator"])), Cell(str(r["budget"])), Cell(str(r["model"])),
              Cell(num(r.get("retrain_seconds_per_epoch"), 3)), Cell(num(r.get("epochs"), 1)),
              Cell(num(r.get("peak_rss_mb"), 0))] for _, r in t.iterrows()]
    tables = [Table(["dataset", "curator", "budget", "curation s", "curation peak MB"], crows, "curation",
                    "cost-curation")] if crows else []
    tables.append(Table(["dataset", "curator", "budget", "model", "retrain s/epoch", "epochs", "retrain peak MB"],
                        rrows, "retraining", "cost-retrain"))
    return Section("cost", SECTIONS["cost"], intro, tables=tables)


# ---------------------------------------------------------------- page
def overview(runs: Runs) -> dict[str, Any]:
    t = runs.table
    return {"name": runs.name, "folder": str(runs.folder), "headline": runs.headline, "metrics": runs.metrics,
            "rows": len(t), "datasets": list(dict.fromkeys(t["dataset"].astype(str))),
            "curators": [c for c in dict.fromkeys(t["curator"].astype(str)) if c != "full"],
            "budgets": list(dict.fromkeys(t.loc[t["curator"] != "full", "budget"].astype(str))),
            "models": list(dict.fromkeys(t["model"].astype(str))),
            "seeds": sorted(int(s) for s in t["seed"].unique()),
            "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "version": __version__}


def build_sections(runs: Runs) -> list[Section]:
    """Every section of the page; one whose saved artifacts are broken (a truncated npz, a missing
    array) becomes a skipped section naming the error, and the others are still built."""
    main = main_table(runs)
    sig = significance(runs)
    curations, notes = load_curations(runs)
    makers = {"curves": lambda: section_curves(runs, main), "main": lambda: section_main(runs, main, sig),
              "transfer": lambda: section_transfer(runs), "cost": lambda: section_cost(runs),
              "embedding": lambda: section_embedding(curations, notes),
              "popularity": lambda: section_popularity(curations, notes),
              "agreement": lambda: section_agreement(curations, notes),
              "lookup": lambda: section_lookup(curations, notes)}
    out = []
    for sid, title in SECTIONS.items():
        try:
            out.append(makers[sid]())
        except ARTIFACT_ERRORS as e:
            log.warning("report section %s skipped: %r", sid, e)
            out.append(skip(sid, title, f"a saved artifact this section reads is broken ({type(e).__name__}: {e})"))
    return out


def render(runs: Runs, sections: list[Section]) -> str:
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(loader=jinja2.PackageLoader("recsift.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["safe_intro"] = Markup
    return env.get_template("report.html.j2").render(o=overview(runs), sections=sections)


def build_report(runs_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of ``runs_dir`` to ``out`` (default ``<runs_dir>/report.html``) and its
    figures as PNGs to ``<out stem>-figures/``; return the HTML path.

    Raises `RunsDirError` when ``runs_dir`` is missing or holds no results table.

    Example
    -------
    >>> build_report("runs/demo")  # doctest: +SKIP
    PosixPath('runs/demo/report.html')
    """
    from ..utils.io import write_atomic

    runs = load_runs(runs_dir)
    out = Path(out) if out is not None else runs.folder / "report.html"
    if out.is_dir():
        out = out / "report.html"
    sections = build_sections(runs)
    fig_dir = out.parent / f"{out.stem}-figures"
    used: set[str] = set()
    for sec in sections:
        for f in sec.figures:
            stem, n = f.name.removesuffix(".png"), 1
            while f.name in used:  # two labels with the same slug
                n += 1
                f.name = f"{stem}-{n}.png"
            used.add(f.name)
            os.chmod(write_atomic(fig_dir / f.name, lambda p, b=f.png: p.write_bytes(b)), 0o644)
    page = render(runs, sections)
    os.chmod(write_atomic(out, lambda p: p.write_text(page, encoding="utf-8")), 0o644)  # temp files are 0600
    log.info("report of %s written to %s", runs.folder, out)
    return out
