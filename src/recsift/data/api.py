"""One entry point for every dataset: a registered name or a path to the user's own file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, unknown_name
from . import loaders, splits
from .interactions import Interactions
from .registry import DATASETS, dataset_folder, get_spec
from .splits import SplitData

PathLike = str | os.PathLike[str]


def _is_named(name_or_path: PathLike) -> bool:
    return isinstance(name_or_path, str) and name_or_path in DATASETS


def load(name_or_path: PathLike, *, data_dir: PathLike | None = None, format: str | None = None,
         **csv_options: Any) -> Interactions:
    """Load raw interactions (no filtering, no split).

    Parameters
    ----------
    name_or_path : a registered dataset name (``recsift datasets list``) or a file path.
    data_dir : dataset root for named datasets (else ``$RECSIFT_DATA_DIR``, else the cache dir).
    format : file format for paths (``seqlines``, ``pairs``, ``atomic``, ``csv``, ``hdf5``);
        auto-detected when None.
    csv_options : ``user_col``, ``item_col``, ``time_col``, ``rating_col``, ``sep`` for ``csv``.

    Example
    -------
    >>> from recsift.data import load
    >>> inter = load("synthetic")
    >>> inter.n_items > 0
    True
    """
    if _is_named(name_or_path):
        if format is not None or any(v is not None for v in csv_options.values()):
            raise DataFormatError(f"{name_or_path!r} is a registered dataset; --format and column options apply to files")
        spec = get_spec(str(name_or_path))
        return spec.loader(dataset_folder(spec.name, data_dir))
    path = Path(name_or_path)
    if not path.exists():
        if isinstance(name_or_path, str) and os.sep not in name_or_path and "." not in name_or_path:
            raise unknown_name("dataset", name_or_path, DATASETS)
        raise DataFormatError(f"{path}: no such file; give a registered dataset name or an existing file path")
    return loaders.read_file(path, format, **csv_options)


def load_split(name_or_path: PathLike, *, split: str | None = None, data_dir: PathLike | None = None,
               format: str | None = None, seed: int = 42, **csv_options: Any) -> SplitData:
    """Load a dataset and cut it with its default protocol (or ``split``).

    Named datasets use their registered protocol (see ``recsift datasets list``); files default
    to leave-one-out. ``split`` may be ``loo``, ``ratio`` (∞-AE, uses ``seed``) or ``sessions``.
    """
    inter = load(name_or_path, data_dir=data_dir, format=format, **csv_options)
    if split is None and _is_named(name_or_path):
        spec = get_spec(str(name_or_path))
        return spec.split(dataset_folder(spec.name, data_dir), inter)
    split = split or "loo"
    if split == "ratio":
        return splits.ratio_split(inter, seed=seed)
    if split not in splits.SPLITS:
        raise unknown_name("split", split, list(splits.SPLITS))
    return splits.SPLITS[split](inter)


def dataset_info(name_or_path: PathLike, *, split: str | None = None, with_split: bool = True,
                 data_dir: PathLike | None = None, format: str | None = None, **csv_options: Any) -> dict[str, Any]:
    """Raw counts (users, items, interactions, avg length, density) and, optionally, counts after the split."""
    inter = load(name_or_path, data_dir=data_dir, format=format, **csv_options)
    c = inter.counts()
    out: dict[str, Any] = {
        "name": inter.name,
        **c,
        "avg_len": round(c["n_interactions"] / c["n_users"], 2),
        "density": round(c["n_interactions"] / (c["n_users"] * c["n_items"]), 6),
        "timestamps": bool(inter.has_time),
    }
    if with_split:
        sd = load_split(name_or_path, split=split, data_dir=data_dir, format=format, **csv_options)
        out["split"] = sd.counts()
    return out
