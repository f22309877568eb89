"""Named datasets: where their files live, how to read them, and their default split.

Dataset root, first match wins: an explicit ``data_dir`` > ``$RECSIFT_DATA_DIR`` > the cache
directory (``$RECSIFT_CACHE_DIR/datasets``, default ``~/.cache/recsift/datasets``). A named
dataset ``NAME`` is looked up as ``<root>/NAME/<its files>``. recsift never downloads or
copies data into its repository (MovieLens terms forbid redistribution).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DatasetNotFoundError, DataFormatError, unknown_name
from . import loaders, splits
from .interactions import Interactions
from .sequences import SequenceStore
from .splits import SplitData


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one named dataset."""

    name: str
    files: tuple[str, ...]  # required files, relative to <root>/<name>/
    loader: Callable[[Path], Interactions]
    split: Callable[[Path, Interactions], SplitData]
    kind: str  # "sequential", "session" or "cf"
    description: str


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(name: str, files: tuple[str, ...], split: Callable[[Path, Interactions], SplitData] | str,
                     kind: str, description: str) -> Callable[[Callable[[Path], Interactions]], Callable[[Path], Interactions]]:
    """Register ``loader(folder) -> Interactions`` under ``name`` (a duplicate name is an error)."""

    def deco(loader: Callable[[Path], Interactions]) -> Callable[[Path], Interactions]:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        split_fn = (lambda folder, inter: splits.SPLITS[split](inter)) if isinstance(split, str) else split
        DATASETS[name] = DatasetSpec(name, files, loader, split_fn, kind, description)
        return loader

    return deco


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def candidate_roots(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Dataset roots in priority order."""
    roots = []
    if data_dir:
        roots.append(Path(data_dir))
    if os.environ.get("RECSIFT_DATA_DIR"):
        roots.append(Path(os.environ["RECSIFT_DATA_DIR"]))
    cache = os.environ.get("RECSIFT_CACHE_DIR")
    roots.append(Path(cache) / "datasets" if cache else Path.home() / ".cache" / "recsift" / "datasets")
    return roots


def dataset_folder(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder holding the files of registered dataset ``name``; a clear error when missing."""
    spec = get_spec(name)
    if not spec.files:
        return Path(".")
    roots = candidate_roots(data_dir)
    for root in roots:
        folder = root / name
        if all((folder / f).is_file() for f in spec.files):
            return folder
    need = ", ".join(f"{name}/{f}" for f in spec.files)
    tried = ", ".join(str(r) for r in roots)
    raise DatasetNotFoundError(
        f"dataset {name!r} not found: it needs {need} under a dataset root. Looked in: {tried}. "
        "Put the files there, set RECSIFT_DATA_DIR, or pass --data-dir."
    )


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise unknown_name("dataset", name, DATASETS) from None


# --------------------------------------------------------------------- registered datasets
def _seq_dataset(name: str, fname: str, what: str) -> None:
    register_dataset(name, (fname,), "loo", "sequential", what)(
        lambda folder: loaders.read_seqlines(folder / fname, name=name)
    )


_seq_dataset("beauty", "Beauty.txt", "Amazon Beauty (ICLRec/S3-Rec 5-core), one user per line, order only")
_seq_dataset("toys", "Toys_and_Games.txt", "Amazon Toys and Games (ICLRec/S3-Rec 5-core), order only")
_seq_dataset("lastfm", "LastFM.txt", "HetRec 2011 Last.fm artists (S3-Rec preprocessing), order only")


@register_dataset("video", ("Video.txt",), "loo", "sequential", "Amazon Video Games (SASRec preprocessing), order only")
def _video(folder: Path) -> Interactions:
    return loaders.read_pairs(folder / "Video.txt", name="video")


@register_dataset("ml-100k", ("ml-100k.inter",), "loo", "sequential", "MovieLens 100K (RecBole atomic), timestamps")
def _ml100k(folder: Path) -> Interactions:
    return loaders.read_atomic(folder / "ml-100k.inter", name="ml-100k")


def _index_split(folder: Path, inter: Interactions) -> SplitData:
    with np.load(folder / "index.npz") as z:
        return splits.index_split(inter, z["data"])


@register_dataset("ml-1m", ("total_data.hdf5", "index.npz"), _index_split, "cf",
                  "MovieLens 1M (Distill-CF preprocessing), shipped 80/10/10 index split, no timestamps")
def _ml1m(folder: Path) -> Interactions:
    return loaders.read_hdf5(folder / "total_data.hdf5", name="ml-1m")


@register_dataset("magazine", ("total_data.hdf5", "index.npz"), _index_split, "cf",
                  "Amazon Magazine Subscriptions (Distill-CF preprocessing), shipped index split")
def _magazine(folder: Path) -> Interactions:
    return loaders.read_hdf5(folder / "total_data.hdf5", name="magazine")


_YOO = "yoochoose-clicks-100k_{}.txt"


def _read_yoo(folder: Path, part: str) -> pd.DataFrame:
    path = folder / _YOO.format(part)
    inter = loaders.read_delimited(path, user_col="SessionId", item_col="ItemId", time_col="Time", sep="\t")
    return pd.DataFrame({"s": inter.user_ids[inter.user], "i": inter.item_ids[inter.item], "t": inter.time})


def _yoochoose_split(folder: Path, inter: Interactions) -> SplitData:
    """Given files: train on train_tr, validate on prefixes of train_valid, test on prefixes of test."""

    def in_ids(part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user, item, time) of one file in the ids of ``inter``, sorted by (session, time, row)."""
        df = _read_yoo(folder, part)
        u = np.searchsorted(inter.user_ids, df["s"].to_numpy())
        i = np.searchsorted(inter.item_ids[1:], df["i"].to_numpy()) + 1
        t = df["t"].to_numpy()
        order = np.lexsort((np.arange(len(u)), t, u))
        return u[order], i[order], t[order]

    def prefix_cases(part: str):
        u, i, _ = in_ids(part)
        sessions, counts = np.unique(u, return_counts=True)
        store = SequenceStore(np.concatenate([[0], np.cumsum(counts)]), i, inter.n_items)
        return splits.session_prefix_cases(store, np.arange(len(sessions)), users=sessions), len(sessions)

    u, i, t = in_ids("train_tr")
    train = replace(inter, user=u, item=i, time=t, rating=None, row=None)
    valid, n_valid = prefix_cases("train_valid")
    test, n_test = prefix_cases("test")
    info = {"train_sessions": int(len(np.unique(u))), "valid_sessions": n_valid, "test_sessions": n_test}
    return SplitData(inter.name, "given", train, valid, test, mask_history=False, info=info)


@register_dataset("yoochoose-100k", tuple(_YOO.format(p) for p in ("train_full", "test", "train_tr", "train_valid")),
                  _yoochoose_split, "session", "YOOCHOOSE clicks sample (session-rec), given train/valid/test files")
def _yoochoose(folder: Path) -> Interactions:
    frames = [_read_yoo(folder, p) for p in ("train_full", "test")]
    df = pd.concat(frames, ignore_index=True)
    return Interactions.from_raw(df["s"].to_numpy(), df["i"].to_numpy(), df["t"].to_numpy(), name="yoochoose-100k")


@register_dataset("diginetica-sample", ("sample_train-item-views.csv",), "sessions", "session",
                  "DIGINETICA sample shipped with SR-GNN (smoke tests only); temporal 80/10/10 session split")
def _diginetica(folder: Path) -> Interactions:
    path = folder / "sample_train-item-views.csv"
    df = pd.read_csv(path, sep=";")
    missing = {"session_id", "item_id", "timeframe", "eventdate"} - set(df.columns)
    if missing:
        raise DataFormatError(f"{path}: missing columns {sorted(missing)}")
    day = (pd.to_datetime(df["eventdate"]) - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy()
    time = day + df["timeframe"].to_numpy(np.float64) / 1000.0  # timeframe: ms since the session start
    return Interactions.from_raw(df["session_id"].to_numpy(), df["item_id"].to_numpy(), time, name="diginetica-sample")


@register_dataset("synthetic", (), "loo", "sequential",
                  "built-in seeded synthetic sessions with planted noise, duplicates and a cold-item tail")
def _synthetic(folder: Path) -> Interactions:
    from .synthetic import generate

    return generate(seed=0).interactions
