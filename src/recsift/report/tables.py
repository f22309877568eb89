"""The report's tables as DataFrames: main (mean ± std over seeds), significance vs random,
seen/unseen-architecture transfer, and cost. Pure pandas over a `Runs` folder.

Conventions: std is the sample standard deviation over seeds (ddof = 1; NaN with one seed);
``retained`` is a row's headline metric over the full-data headline of the same dataset, model
and seed (the runner's column); a curator is compared with the ``random`` curator of the same
dataset, model, budget and selection unit.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd

from .runs import ARTIFACT_ERRORS, Runs

KEYS = ["dataset", "model", "curator", "budget"]
RANDOM = "random"


def _agg(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    g = df.groupby(KEYS, sort=False)
    out = g[cols].agg(["mean", "std"])
    out.columns = [f"{c}_{s}" for c, s in out.columns]
    out["fraction_kept"] = g["fraction_kept"].mean()
    out["seeds"] = g["seed"].nunique()
    out["unit"] = g["unit"].first() if "unit" in df else "sample"
    out["method"] = g["method"].first() if "method" in df else out.index.get_level_values("curator")
    return out.reset_index()


def main_table(runs: Runs) -> pd.DataFrame:
    """One row per dataset x model x curator x budget: mean and std over seeds of every metric and of
    ``retained``, the mean fraction kept and the number of seeds; full data first, then by budget."""
    df = runs.table
    cols = [*runs.metrics, "retained"] if "retained" in df else list(runs.metrics)
    out = _agg(df, cols)
    out["_full"] = out["curator"] != "full"
    out["_b"] = out.groupby(["dataset", "budget"], sort=False)["fraction_kept"].transform("mean")
    out["_c"] = out["curator"].map({c: i for i, c in enumerate(dict.fromkeys(df["curator"]))})
    out["_d"] = out["dataset"].map({c: i for i, c in enumerate(dict.fromkeys(df["dataset"]))})
    out["_m"] = out["model"].map({c: i for i, c in enumerate(dict.fromkeys(df["model"]))})
    out = out.sort_values(["_d", "_m", "_full", "_b", "_c"], kind="stable")
    return out.drop(columns=["_full", "_b", "_c", "_d", "_m"]).reset_index(drop=True)


def best_in_budget(table: pd.DataFrame, column: str) -> pd.Series:
    """True where a row has the highest mean ``column`` among the curators of its dataset, model and
    budget (full data excluded; only where at least two curators compete)."""
    t = table[table["curator"] != "full"]
    g = t.groupby(["dataset", "model", "budget"], sort=False)[column]
    best = (t[column] == g.transform("max")) & (g.transform("count") > 1) & t[column].notna()
    return best.reindex(table.index, fill_value=False)


def _seed_mean_per_user(runs: Runs, rows: pd.DataFrame, metric: str) -> pd.Series | None:
    """Per-user ``metric`` averaged over the seeds of ``rows`` (users every seed evaluated)."""
    per_seed = []
    for key in rows["retrain_step"]:
        got = runs.per_user(key, metric)
        if got is None:
            return None
        users, vals = got
        per_seed.append(pd.Series(vals, index=users).groupby(level=0).mean())
    if not per_seed:
        return None
    both = pd.concat(per_seed, axis=1, join="inner")
    return both.mean(axis=1)


def significance(runs: Runs) -> pd.DataFrame:
    """Paired Wilcoxon signed-rank test of each curator against random, per dataset, model and
    budget, over per-user headline metrics averaged over seeds (the test users are fixed by the
    split). Columns: ``diff`` (mean per-user difference), ``p`` (two-sided), ``n_users``,
    ``note`` (why a test could not run)."""
    from scipy.stats import wilcoxon

    df, metric = runs.table, runs.headline
    rows = []
    if "retrain_step" not in df:
        return pd.DataFrame(columns=[*KEYS, "diff", "p", "n_users", "note"])
    for (d, m, c, b), g in df.groupby(KEYS, sort=False):
        if c in ("full", RANDOM):
            continue
        unit = g["unit"].iloc[0] if "unit" in g else "sample"
        ref = df[(df["dataset"] == d) & (df["model"] == m) & (df["budget"] == b) & (df["curator"] == RANDOM)]
        if "unit" in df and (ref["unit"] == unit).any():
            ref = ref[ref["unit"] == unit]
        row = {"dataset": d, "model": m, "curator": c, "budget": b, "diff": np.nan, "p": np.nan, "n_users": 0,
               "note": ""}
        if ref.empty:
            row["note"] = "no random curator at this budget"
        else:
            try:
                a, r = _seed_mean_per_user(runs, g, metric), _seed_mean_per_user(runs, ref, metric)
            except ARTIFACT_ERRORS as e:
                a, r, row["note"] = None, None, f"per-user metrics unreadable ({e})"
            if a is None or r is None:
                row["note"] = row["note"] or "per-user metrics not saved"
            else:
                pair = pd.concat([a, r], axis=1, join="inner").to_numpy()
                diff = pair[:, 0] - pair[:, 1]
                row["n_users"], row["diff"] = len(diff), float(diff.mean()) if len(diff) else np.nan
                if not np.any(diff != 0):
                    row["note"], row["p"] = "identical per-user results", 1.0
                else:
                    row["p"] = float(wilcoxon(diff).pvalue)
        rows.append(row)
    return pd.DataFrame(rows, columns=[*KEYS, "diff", "p", "n_users", "note"])


def vs_random(runs: Runs) -> pd.DataFrame:
    """``retained`` of each curator minus the random curator's, paired by seed (same dataset, model,
    budget and unit): mean over seeds, its standard error (std / sqrt(seeds); NaN with one seed)
    and the ratio ``z`` = mean / SE. The issue's bar for a method is ``z >= 2`` at keep 30%."""
    df = runs.table
    cols = [*KEYS, "diff", "se", "z", "seeds"]
    if "retained" not in df:
        return pd.DataFrame(columns=cols)
    rows = []
    for (d, m, c, b), g in df.groupby(KEYS, sort=False):
        if c in ("full", RANDOM):
            continue
        ref = df[(df["dataset"] == d) & (df["model"] == m) & (df["budget"] == b) & (df["curator"] == RANDOM)]
        if "unit" in df and (ref["unit"] == g["unit"].iloc[0]).any():
            ref = ref[ref["unit"] == g["unit"].iloc[0]]
        pair = g.merge(ref, on="seed", suffixes=("", "_r"))
        if pair.empty:
            continue
        diff = (pair["retained"] - pair["retained_r"]).to_numpy(np.float64)
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
        mean = float(diff.mean())
        rows.append({"dataset": d, "model": m, "curator": c, "budget": b, "diff": mean, "se": se,
                     "z": mean / se if se and np.isfinite(se) and se > 0 else np.nan, "seeds": len(diff)})
    out = pd.DataFrame(rows, columns=cols)
    order = {k: {v: i for i, v in enumerate(dict.fromkeys(df[k]))} for k in ("dataset", "model", "curator")}
    frac = df.groupby(["dataset", "budget"])["fraction_kept"].mean()
    key = pd.DataFrame({k: out[k].map(order[k]) for k in order})
    key["b"] = [frac.get((d, b), np.nan) for d, b in zip(out["dataset"], out["budget"])]
    return out.loc[key.sort_values(["dataset", "model", "b", "curator"], kind="stable").index].reset_index(drop=True)


def _base(model: str) -> str:
    return model.split("(", 1)[0]


def _trained(model: str) -> bool:
    """Whether a retrained model is a trained architecture (not a popularity / item-kNN baseline)."""
    import torch

    from ..errors import UnknownNameError
    from ..models import get_model_class

    try:
        return issubclass(get_model_class(_base(model)), torch.nn.Module)
    except UnknownNameError:  # a model of a plugin that is not installed here: count it
        return True


def scorer_architectures(runs: Runs, curation_key: str) -> set[str] | None:
    """Model architectures a curation's scorer was built from: the moe curator's experts, or the
    probe model of a probe-scored curator; None for curators that train no model (random)."""
    facts = runs.curation_facts(curation_key)
    if facts is None or not facts["probe"]:
        return None
    if facts["method"] == "moe":
        experts = facts["params"].get("experts")
        if experts is None:
            from ..curators import CURATORS

            experts = inspect.signature(CURATORS["moe"]).parameters["experts"].default
        return set(experts)
    return {facts["probe"]}


def transfer_table(runs: Runs) -> pd.DataFrame | None:
    """``retained`` per scored curator, budget and retrained model, marked ``seen`` when the model's
    architecture is one the scorer was built from; with the same model's random-curator retained
    for reference. Non-neural baselines (pop, itemknn) are left out. None when every retrained
    model was seen by every scorer (nothing transfers)."""
    df = runs.table
    if "retained" not in df or "curation_step" not in df:
        return None
    rows = []
    for (d, m, c, b), g in df.groupby(KEYS, sort=False):
        if c in ("full", RANDOM):
            continue
        try:
            seen = scorer_architectures(runs, g["curation_step"].iloc[0])
        except ARTIFACT_ERRORS:
            seen = None
        if seen is None or not _trained(m):
            continue
        ref = df[(df["dataset"] == d) & (df["model"] == m) & (df["budget"] == b) & (df["curator"] == RANDOM)]
        rows.append({"dataset": d, "curator": c, "budget": b, "model": m, "scorer": ", ".join(sorted(seen)),
                     "seen": _base(m) in seen, "retained_mean": g["retained"].mean(),
                     "retained_std": g["retained"].std(), "random_retained": ref["retained"].mean()
                     if len(ref) else np.nan, "seeds": g["seed"].nunique()})
    t = pd.DataFrame(rows)
    if t.empty or t["seen"].all():
        return None
    return t


def cost_table(runs: Runs) -> pd.DataFrame:
    """Curation and retraining cost per dataset x curator x budget x model: mean seconds (curation
    from scratch, retraining per epoch), epochs, and the peak resident memory of each step."""
    df = runs.table
    want = {"curation_seconds": "mean", "curation_peak_rss_mb": "max", "retrain_seconds_per_epoch": "mean",
            "epochs": "mean", "peak_rss_mb": "max"}
    cols = {k: v for k, v in want.items() if k in df}
    g = df.groupby(["dataset", "curator", "budget", "model"], sort=False)
    out = g.agg({**cols, "fraction_kept": "mean"})
    if "curation_seconds" in df:
        out["curation_seconds_std"] = g["curation_seconds"].std()
    return out.reset_index()


def fmt_mean_std(mean: Any, std: Any, digits: int = 4, scale: float = 1.0) -> str:
    """``mean ± std`` (std omitted when undefined, e.g. one seed)."""
    if mean is None or pd.isna(mean):
        return "–"
    s = f"{mean * scale:.{digits}f}"
    return s if std is None or pd.isna(std) else f"{s} ± {std * scale:.{digits}f}"
