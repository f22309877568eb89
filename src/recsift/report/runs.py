"""Read a runs folder written by `recsift run` (the experiment runner): the results table, the
config, and the saved artifacts of its steps — never a model.

Layout read here (see `recsift.experiment.runner`)::

    RUNS_DIR/results.csv                          one row per dataset x curator x budget x model x seed
    RUNS_DIR/config.json                          the config, the headline metric
    RUNS_DIR/steps/curation/<slug>-<key>/         samples.npz (kept, reason, score), curation.json,
                                                  explain.npz (users, items, agreement, embeddings), step.json
    RUNS_DIR/steps/retrain/<slug>-<key>/          result.json, per_user.npz (test users, per-case metrics)

A row names its steps by key (``curation_step``, ``retrain_step``); any artifact may be missing
(an older run, a deleted folder), and every reader returns None for it rather than failing.
"""
from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import RecsiftError

log = logging.getLogger(__name__)

#: what a broken artifact raises when read; the report skips the view that needs it
ARTIFACT_ERRORS = (OSError, KeyError, ValueError, zipfile.BadZipFile, json.JSONDecodeError)
#: columns of results.csv that are not metrics
NON_METRIC = {"dataset", "curator", "method", "unit", "budget", "model", "seed", "retained", "fraction_kept",
              "kept_samples", "n_samples", "curation_seconds", "retrain_seconds_per_epoch", "epochs", "peak_rss_mb",
              "curation_peak_rss_mb", "curation_step", "retrain_step"}


class RunsDirError(RecsiftError, FileNotFoundError):
    """The folder given to the report holds no experiment results."""


def _no_results(folder: Path, why: str) -> RunsDirError:
    return RunsDirError(f"{folder} {why}, so there is nothing to report; create it with `recsift run exp.yaml` "
                        f"(runs_dir: {folder}, or `--runs-dir {folder}`), or run `recsift demo`, then "
                        f"`recsift report {folder}`")


@dataclass
class Runs:
    """A runs folder: its results table, config, headline metric, and step folders by key."""

    folder: Path
    table: pd.DataFrame
    config: dict[str, Any]
    headline: str
    metrics: list[str]
    steps: dict[str, Path] = field(default_factory=dict)

    # ---------------------------------------------------------- artifacts of one step
    def step(self, key: Any) -> Path | None:
        return self.steps.get(str(key)) if isinstance(key, str) and key else None

    def json(self, key: Any, name: str) -> dict[str, Any] | None:
        folder = self.step(key)
        path = folder / name if folder else None
        if path is None or not path.is_file():
            return None
        return json.loads(path.read_text())

    def npz(self, key: Any, name: str) -> dict[str, np.ndarray] | None:
        folder = self.step(key)
        path = folder / name if folder else None
        if path is None or not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def per_user(self, retrain_key: Any, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(test users, per-user ``metric``) of a retrain step, or None when not saved."""
        z = self.npz(retrain_key, "per_user.npz")
        if z is None or metric not in z or "users" not in z:
            return None
        return z["users"], z[metric]

    # ---------------------------------------------------------- config facts
    @property
    def name(self) -> str:
        return str(self.config.get("config", {}).get("name") or self.folder.name)

    def curation_facts(self, key: Any) -> dict[str, Any] | None:
        """method, params and probe model of a curation step (from its step.json / curation.json)."""
        marker = self.json(key, "step.json")
        if marker is None:
            return None
        inputs = marker.get("inputs", {})
        probe = inputs.get("probe") or {}
        return {"method": inputs.get("method"), "params": inputs.get("params") or {}, "probe": probe.get("model")}


def load_runs(folder: str | Path) -> Runs:
    """Read ``folder``'s results table and config; `RunsDirError` when there are no results."""
    folder = Path(folder)
    if not folder.exists():
        raise _no_results(folder, "does not exist")
    if not folder.is_dir():
        raise _no_results(folder, "is a file, not a runs folder")
    csv = folder / "results.csv"
    if not csv.is_file():
        raise _no_results(folder, "has no results.csv")
    try:
        table = pd.read_csv(csv, dtype={"budget": str, "curation_step": str, "retrain_step": str},
                            keep_default_na=False, na_values=[""])
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
        raise _no_results(folder, f"has an unreadable results.csv ({e})") from None
    missing = {"dataset", "curator", "budget", "model", "seed", "fraction_kept"} - set(table.columns)
    if table.empty or missing:
        raise _no_results(folder, "has an empty results.csv" if table.empty else
                          f"has a results.csv without the columns {sorted(missing)}")
    for col in ("curation_step", "retrain_step"):
        if col in table:
            table[col] = table[col].fillna("")
    config: dict[str, Any] = {}
    if (folder / "config.json").is_file():
        try:
            config = json.loads((folder / "config.json").read_text())
        except json.JSONDecodeError as e:
            log.warning("%s/config.json unreadable (%s); using the table alone", folder, e)
    metrics = [c for c in table.columns if c not in NON_METRIC and "@" in c] or \
              [c for c in table.columns if c not in NON_METRIC]
    headline = config.get("headline") if config.get("headline") in metrics else (metrics[0] if metrics else "")
    if not headline:
        raise _no_results(folder, "has a results.csv without any metric column")
    return Runs(folder, table, config, headline, metrics, _step_index(folder))


def _step_index(folder: Path) -> dict[str, Path]:
    """Step folders by key (the folder name ends with ``-<key>``)."""
    out: dict[str, Path] = {}
    root = folder / "steps"
    if root.is_dir():
        for kind in root.iterdir():
            if kind.is_dir():
                for step in kind.iterdir():
                    if step.is_dir() and "-" in step.name:
                        out[step.name.rsplit("-", 1)[1]] = step
    return out
