"""The Python API, shaped like the CLI: load -> curate -> train -> report.

>>> import recsift
>>> ds = recsift.load("synthetic")
>>> kept, report = recsift.curate(ds, "random", budget=0.5)
>>> len(kept) == len(ds.training_set()) // 2
True
>>> result = recsift.train(ds, "pop", train_set=kept)
>>> 0.0 <= result.test["recall@10"] <= 1.0
True

Everything here is a thin layer over the subpackages (`recsift.data`, `recsift.curators`,
`recsift.train`, `recsift.report`); use those for finer control.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .curators import CurationContext, CurationReport
from .data import SplitData, TrainingSet
from .train import TrainConfig, TrainResult

PathLike = str | os.PathLike[str]

__all__ = ["load", "load_csv", "curate", "train", "report"]


def load(name_or_path: PathLike, *, split: str | None = None, data_dir: PathLike | None = None,
         seed: int = 42, **file_options: Any) -> SplitData:
    """A dataset, split by its protocol: a registered name (``recsift datasets list``) or a file.

    ``split`` overrides the protocol: ``loo`` (leave-one-out), ``ratio`` (∞-AE per-user
    80/10/10, seeded by ``seed``) or ``sessions``. ``file_options`` go to the file loader
    (``format``, and for CSV ``user_col``, ``item_col``, ``time_col``, ``rating_col``, ``sep``).
    """
    from .data import load_split

    return load_split(name_or_path, split=split, data_dir=data_dir, seed=seed, **file_options)


def load_csv(path: PathLike, *, user: str | None = None, item: str | None = None, time: str | None = None,
             rating: str | None = None, sep: str | None = None, split: str | None = None,
             seed: int = 42) -> SplitData:
    """Your own delimited file of interactions (a header row; gzip is fine), split by ``split``
    (default leave-one-out by time). Unnamed columns are guessed from common names
    (``user_id``, ``item_id``, ``timestamp``, ...); the error lists the columns when it cannot."""
    return load(path, split=split, seed=seed, format="csv", user_col=user, item_col=item, time_col=time,
                rating_col=rating, sep=sep)


def curate(ds: SplitData | TrainingSet, method: str, budget: float | int | str | None = None, *,
           kind: str | None = None, unit: str = "sample", budget_in: str = "units", seed: int = 0,
           coverage: bool | None = None,
           probe: str = "gru4rec", probe_config: TrainConfig | None = None, cache_dir: PathLike | None = None,
           split: SplitData | None = None, **params: Any) -> tuple[TrainingSet, CurationReport]:
    """Curate a dataset's training data with ``method`` (``recsift methods`` lists them; a score
    name means top-k by that score) keeping ``budget`` (fraction in (0, 1] or a count of units).

    ``ds`` is a split (its training set of ``kind`` is curated: ``"sequence"`` by default,
    ``"matrix"`` for CF methods such as ``distill_cf``) or a training set (then pass ``split``
    for methods that train a probe or need validation cases). ``unit`` is what is kept whole
    (``"sample"`` or ``"user"``); ``budget_in="targets"`` counts the budget in training targets
    (prefix samples / interactions) even when whole users are kept. ``params`` are the curator's own.
    """
    from .curators import curate as run_curate
    from .curators import get_curator
    from .curators.base import resolve_method

    if isinstance(ds, SplitData):
        split = ds
        name, _ = resolve_method(method, dict(params))
        kind = kind or getattr(get_curator(name), "kind", None) or "sequence"
        train_set = ds.training_set(kind)
    else:
        train_set = ds
    ctx = CurationContext(split=split, seed=seed, unit=unit, budget_in=budget_in, coverage=coverage, probe=probe,
                          cache_dir=Path(cache_dir) if cache_dir is not None else None,
                          **({"probe_config": probe_config} if probe_config is not None else {}))
    return run_curate(train_set, method, budget, ctx, **params)


def train(ds: SplitData, model: str, *, train_set: TrainingSet | None = None, model_params: dict[str, Any] | None = None,
          checkpoint: str | os.PathLike[str] | None = None, **config: Any) -> TrainResult:
    """Train registered ``model`` (``recsift models``) on ``train_set`` (default: all of ``ds``'s
    training data), early-stopped on ``ds``'s validation cases, tested on its test cases.
    ``config`` sets `TrainConfig` fields (``epochs``, ``lr``, ``batch_size``, ``seed``, ...).
    ``checkpoint``: a file that makes the run resumable — saved after every epoch, continued by
    the same call after an interruption, removed at the end."""
    from .train import train_model

    return train_model(ds, model, TrainConfig.make(**config), train_set=train_set, model_params=model_params,
                       checkpoint=checkpoint)


def report(runs_dir: PathLike, out: PathLike | None = None) -> Path:
    """Write the HTML report of an experiment's runs folder (``recsift run``); return its path."""
    from .report import build_report

    return build_report(runs_dir, out)
