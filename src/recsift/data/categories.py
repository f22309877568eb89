"""Item categories (genres, attributes) of the named datasets that ship them, as a sparse matrix.

Used where a method needs item side information, e.g. IFRQE's category-frequency unwillingness
(``recsift.disclose.draw_unwillingness(kind="category")``). Sources, under the dataset's folder:

* ``ml-100k``: ``ml-100k.item`` (RecBole atomic file), column ``class:token_seq`` (19 genres,
  space-separated);
* ``ml-1m``: ``movies.dat`` (``MovieID::Title::Genre|Genre``, Latin-1), 18 genres;
* ``beauty``, ``toys``, ``lastfm``: ``*_item2attributes.json`` (``{"item": [attribute ids]}``,
  S3-Rec's attributes).

Rows are recsift's internal item ids (row 0 = padding, empty); an item the file does not list gets
an empty row, never a guessed category.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataFormatError, DatasetNotFoundError
from .registry import dataset_folder

# dataset -> (file under its folder, reader: path -> {raw item id as str: [category labels]})
READERS: dict[str, tuple[str, Callable[[Path], dict[str, list[str]]]]] = {}


def _register(name: str, fname: str):
    def deco(fn: Callable[[Path], dict[str, list[str]]]):
        READERS[name] = (fname, fn)
        return fn

    return deco


@_register("ml-100k", "ml-100k.item")
def _ml100k(path: Path) -> dict[str, list[str]]:
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    cols = {c.split(":")[0]: c for c in df.columns}
    if "item_id" not in cols or "class" not in cols:
        raise DataFormatError(f"{path}: expected columns item_id:token and class:token_seq, found {list(df.columns)}")
    return {i.strip(): c.split() for i, c in zip(df[cols["item_id"]], df[cols["class"]])}


@_register("ml-1m", "movies.dat")
def _ml1m(path: Path) -> dict[str, list[str]]:
    out = {}
    for n, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != 3:
            raise DataFormatError(f"{path}, line {n}: expected MovieID::Title::Genres, got {line[:80]!r}")
        out[parts[0].strip()] = [g for g in parts[2].strip().split("|") if g]
    return out


def _attributes(path: Path) -> dict[str, list[str]]:
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(raw, dict):
        raise DataFormatError(f"{path}: expected an object {{item id: [attribute ids]}}")
    return {str(k).strip(): [str(a) for a in v] for k, v in raw.items()}


for _name, _file in (("beauty", "Beauty_item2attributes.json"), ("toys", "Toys_and_Games_item2attributes.json"),
                     ("lastfm", "LastFM_item2attributes.json")):
    _register(_name, _file)(_attributes)


def categories_matrix(item_ids: np.ndarray, labels: dict[str, list[str]]) -> tuple[sp.csr_matrix, list[str]]:
    """``[len(item_ids), n_categories]`` 0/1 CSR: row i = the categories of raw item ``item_ids[i]``
    (matched as strings; row 0, the padding placeholder, stays empty), and the category names."""
    names = sorted({c for cs in labels.values() for c in cs})
    col = {c: j for j, c in enumerate(names)}
    rows, cols = [], []
    for i in range(1, len(item_ids)):
        for c in set(labels.get(str(item_ids[i]).strip(), ())):
            rows.append(i)
            cols.append(col[c])
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(item_ids), len(names)))
    return m, names


def item_categories(name: str, item_ids: np.ndarray,
                    data_dir: str | os.PathLike[str] | None = None) -> tuple[sp.csr_matrix, list[str]]:
    """Categories of dataset ``name``'s items in internal-id order (``item_ids`` = the loaded
    ``Interactions.item_ids``); a clear error for a dataset without a category file."""
    if name not in READERS:
        raise DatasetNotFoundError(f"dataset {name!r} has no item categories in recsift; ones that do: "
                                   f"{', '.join(sorted(READERS))} (or build the matrix yourself with "
                                   "recsift.data.categories.categories_matrix)")
    fname, reader = READERS[name]
    path = dataset_folder(name, data_dir) / fname
    if not path.is_file():
        raise DatasetNotFoundError(f"dataset {name!r}: its item categories need {path}; put the file there")
    return categories_matrix(item_ids, reader(path))
