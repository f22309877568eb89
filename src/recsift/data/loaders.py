"""Readers for every interaction file format recsift knows. Each returns `Interactions`.

Formats
-------
``seqlines``  one user per line: ``user item1 item2 ...`` (whitespace-separated, in order).
``pairs``     one interaction per line: ``user item`` (whitespace), grouped by user in order.
``atomic``    RecBole atomic ``.inter`` files: tab-separated, typed header ``user_id:token ...``.
``csv``       any delimited text with a header; columns are named by the caller.
``hdf5``      datasets ``user``, ``item`` and optionally ``rating``, ``time``.

`detect_format` guesses the format of a user's own file; `read_file` dispatches.
Every parse problem raises `DataFormatError` naming the file, the line/column and the fix.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataFormatError, UnknownNameError, unknown_name
from .interactions import Interactions

FORMATS: dict[str, Callable[..., Interactions]] = {}

USER_COL_GUESSES = ("user_id", "userid", "user", "session_id", "sessionid", "session", "visitorid", "uid")
ITEM_COL_GUESSES = ("item_id", "itemid", "item", "product_id", "productid", "movie_id", "movieid", "iid")
TIME_COL_GUESSES = ("timestamp", "time", "ts", "datetime", "date", "eventdate")
RATING_COL_GUESSES = ("rating", "score", "value")


def register_format(name: str) -> Callable[[Callable[..., Interactions]], Callable[..., Interactions]]:
    def deco(fn: Callable[..., Interactions]) -> Callable[..., Interactions]:
        if name in FORMATS:
            raise ValueError(f"format {name!r} registered twice")
        FORMATS[name] = fn
        return fn

    return deco


def _check_file(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file; check the path (or the dataset root)")
    if path.is_dir():
        raise DataFormatError(f"{path}: is a directory, expected an interaction file inside it")
    if path.stat().st_size == 0:
        raise DataFormatError(f"{path}: the file is empty (0 bytes); it needs at least one interaction")
    return path


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        import gzip

        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataFormatError(f"{path}: gzip data is truncated or corrupt ({e}); re-download the file") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataFormatError(
            f"{path}: not valid UTF-8 text (byte {e.start}); re-save the file as UTF-8"
        ) from None


def _int_tokens(path: Path, line_no: int, tokens: list[str]) -> list[int]:
    try:
        vals = [int(t) for t in tokens]
    except ValueError:
        bad = next(t for t in tokens if not _is_int(t))
        raise DataFormatError(
            f"{path}, line {line_no}: {bad!r} is not an integer id; this format needs integer ids "
            "(use --format csv with --user-col/--item-col for other files)"
        ) from None
    return vals


def _is_int(t: str) -> bool:
    try:
        int(t)
        return True
    except ValueError:
        return False


@register_format("seqlines")
def read_seqlines(path: str | Path, *, name: str | None = None) -> Interactions:
    """``user item1 item2 ...`` per line; line order inside a user is the sequence order."""
    path = _check_file(Path(path))
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        toks = line.split()
        if not toks:
            continue
        vals = _int_tokens(path, line_no, toks)
        if len(vals) < 2:
            raise DataFormatError(f"{path}, line {line_no}: a user with no items; each line is 'user item1 item2 ...'")
        items.append(np.asarray(vals[1:], dtype=np.int64))
        users.append(np.full(len(vals) - 1, vals[0], dtype=np.int64))
    if not users:
        raise DataFormatError(f"{path}: no interactions found (only blank lines)")
    return Interactions.from_raw(np.concatenate(users), np.concatenate(items), name=name or path.stem)


@register_format("pairs")
def read_pairs(path: str | Path, *, name: str | None = None) -> Interactions:
    """``user item`` per line (whitespace), file order inside a user is the sequence order."""
    path = _check_file(Path(path))
    text = _read_text(path)
    try:
        arr = np.loadtxt(io.StringIO(text), dtype=np.int64, ndmin=2)
    except ValueError as e:
        raise DataFormatError(f"{path}: expected two integer columns 'user item' per line ({e})") from None
    if arr.size == 0:
        raise DataFormatError(f"{path}: no interactions found")
    if arr.shape[1] != 2:
        raise DataFormatError(f"{path}: expected 2 columns 'user item', found {arr.shape[1]}; use --format csv")
    return Interactions.from_raw(arr[:, 0], arr[:, 1], name=name or path.stem)


@register_format("atomic")
def read_atomic(path: str | Path, *, name: str | None = None) -> Interactions:
    """RecBole atomic ``.inter`` file with a typed header (``user_id:token  item_id:token ...``)."""
    path = _check_file(Path(path))
    df = _read_frame(path, sep="\t")
    cols = {c.split(":")[0]: c for c in df.columns}
    for need in ("user_id", "item_id"):
        if need not in cols:
            raise DataFormatError(
                f"{path}: RecBole atomic files need a {need!r} column; header has {list(df.columns)}"
            )
    time = df[cols["timestamp"]].to_numpy(np.float64) if "timestamp" in cols else None
    rating = df[cols["rating"]].to_numpy(np.float32) if "rating" in cols else None
    return Interactions.from_raw(
        df[cols["user_id"]].to_numpy(), df[cols["item_id"]].to_numpy(), time, rating, name=name or path.stem
    )


@register_format("csv")
def read_delimited(
    path: str | Path,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    time_col: str | None = None,
    rating_col: str | None = None,
    sep: str | None = None,
    name: str | None = None,
) -> Interactions:
    """Delimited text with a header row. Missing column names are guessed from common ones.

    ``sep`` defaults to sniffing among comma, tab, semicolon and '|'. Time values may be
    numbers (unix seconds) or date strings.
    """
    path = _check_file(Path(path))
    df = _read_frame(path, sep=sep)
    cols = list(df.columns)
    ucol = _pick_column(path, df, user_col, USER_COL_GUESSES, "user", "--user-col")
    icol = _pick_column(path, df, item_col, ITEM_COL_GUESSES, "item", "--item-col")
    tcol = _pick_column(path, df, time_col, TIME_COL_GUESSES, "time", "--time-col", required=False)
    rcol = _pick_column(path, df, rating_col, RATING_COL_GUESSES, "rating", "--rating-col", required=False)
    for c in (ucol, icol):
        if df[c].isna().any():
            bad = int(np.flatnonzero(df[c].isna().to_numpy())[0])
            raise DataFormatError(f"{path}: column {c!r} is empty at data row {bad + 1}; every row needs a {c}")
    time = None if tcol is None else _to_seconds(path, df[tcol])
    rating = None if rcol is None else _to_float(path, df[rcol], rcol)
    return Interactions.from_raw(_ids(df[ucol]), _ids(df[icol]), time, rating, name=name or path.stem)


@register_format("hdf5")
def read_hdf5(path: str | Path, *, name: str | None = None) -> Interactions:
    """HDF5 file with 1-D datasets ``user``, ``item`` and optionally ``rating``, ``time``."""
    import h5py

    path = _check_file(Path(path))
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("user", "item") if k not in f]
            if missing:
                raise DataFormatError(f"{path}: HDF5 file lacks dataset(s) {missing}; it has {list(f.keys())}")
            user, item = f["user"][:], f["item"][:]
            rating = f["rating"][:] if "rating" in f else None
            time = f["time"][:] if "time" in f else None
    except OSError as e:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({e}); check the file or pass --format") from None
    return Interactions.from_raw(user, item, time, rating, name=name or path.parent.name or path.stem)


# ---------------------------------------------------------------------------------- helpers
def _read_frame(path: Path, sep: str | None) -> pd.DataFrame:
    text = _read_text(path)
    if sep is None:
        try:
            sep = csv.Sniffer().sniff(text[:20000], delimiters=",\t;|").delimiter
        except csv.Error:
            sep = ","
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=True, na_values=["NA", ""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataFormatError(f"{path}: cannot parse as {sep!r}-separated text with a header ({e}); check --sep") from None
    if df.empty:
        raise DataFormatError(f"{path}: has a header but no data rows")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _pick_column(path: Path, df: pd.DataFrame, given: str | None, guesses: tuple[str, ...], what: str, flag: str,
                 *, required: bool = True) -> str | None:
    """The column named by ``flag``, else the first complete column whose name is a common guess."""
    cols = list(df.columns)
    if given is not None:
        if given not in cols:
            raise DataFormatError(f"{path}: no column {given!r} ({flag}); the columns are {cols}")
        return given
    low = {c.lower().split(":")[0]: c for c in cols}
    found = [low[g] for g in guesses if g in low]
    complete = [c for c in found if not df[c].isna().any()]
    if complete or found:
        return (complete or found)[0]
    if required:
        raise DataFormatError(f"{path}: cannot tell which column holds the {what} id; pass {flag} (columns: {cols})")
    return None


def _ids(col: pd.Series) -> np.ndarray:
    """Integer ids where every label is an integer that converts exactly, else the labels as strings.

    Labels are never merged or mangled: ``"007"`` and ``"7"``, ids beyond int64 (``"1e23"``,
    20-digit numbers) and integers beyond float precision all stay distinct strings.
    """
    s = col.str.strip()
    if s.str.fullmatch(r"-?[0-9]{1,18}").all():
        ints = s.astype(np.int64)
        if (ints.astype(str) == s).all():  # no leading zeros or signs that would merge labels
            return ints.to_numpy(np.int64)
        return s.to_numpy(dtype=object).astype(str)
    vals = pd.to_numeric(s, errors="coerce").to_numpy(np.float64)
    if not np.isnan(vals).any() and np.all(np.abs(vals) < 2.0**53) and np.all(np.mod(vals, 1) == 0):
        return vals.astype(np.int64)  # e.g. "3.0" written by a float column
    return s.to_numpy(dtype=object).astype(str)


def _to_float(path: Path, col: pd.Series, name: str) -> np.ndarray:
    vals = pd.to_numeric(col, errors="coerce")
    if vals.isna().any():
        bad = int(np.flatnonzero(vals.isna().to_numpy())[0])
        raise DataFormatError(f"{path}: column {name!r} row {bad + 1} has {col.iloc[bad]!r}, not a number")
    return vals.to_numpy(np.float64)


def _to_seconds(path: Path, col: pd.Series) -> np.ndarray:
    num = pd.to_numeric(col, errors="coerce")
    if not num.isna().any():
        out = num.to_numpy(np.float64)
        if not np.isfinite(out).all():
            bad = int(np.flatnonzero(~np.isfinite(out))[0])
            raise DataFormatError(
                f"{path}: time column {col.name!r} row {bad + 1} has {col.iloc[bad]!r}, not a finite time; "
                "fix the value or pass another --time-col"
            )
        return out  # negative values are accepted: times before 1970, or relative clocks; only order matters
    dt = pd.to_datetime(col, errors="coerce", utc=True)
    if dt.isna().any():
        bad = int(np.flatnonzero(dt.isna().to_numpy())[0])
        raise DataFormatError(
            f"{path}: time column {col.name!r} row {bad + 1} has {col.iloc[bad]!r}: neither a number nor a date; "
            "fix the value or pass another --time-col"
        )
    return (dt - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy(np.float64)


def detect_format(path: str | Path) -> str:
    """Guess the format of ``path`` from its extension and first lines."""
    path = _check_file(Path(path))
    suffix = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() in {".hdf5", ".h5"}:
        return "hdf5"
    if path.suffix.lower() == ".inter":
        return "atomic"
    head = _read_text(path)[:200_000].splitlines()[:2000]
    head = [h for h in head if h.strip()]
    if not head:
        raise DataFormatError(f"{path}: no data lines")
    if ":token" in head[0] or ":float" in head[0]:
        return "atomic"
    split = [h.split() for h in head]
    if all(all(_is_int(t) for t in toks) for toks in split):
        widths = {len(t) for t in split}
        if widths == {2} and not suffix.endswith((".csv", ".tsv")):
            # 'user item' lines; a sequence file whose users all have one item reads the same way
            return "pairs"
        if min(widths) >= 2:
            return "seqlines"
    return "csv"


def read_file(path: str | Path, format: str | None = None, **options) -> Interactions:
    """Read an interaction file in ``format`` (auto-detected when None)."""
    fmt = format or detect_format(path)
    try:
        reader = FORMATS[fmt]
    except KeyError:
        raise unknown_name("format", fmt, FORMATS) from None
    if fmt != "csv":
        extra = {k: v for k, v in options.items() if v is not None and k != "name"}
        if extra:
            raise DataFormatError(f"options {sorted(extra)} only apply to --format csv, not {fmt!r}")
        options = {k: v for k, v in options.items() if k == "name"}
    return reader(path, **options)


__all__ = ["FORMATS", "detect_format", "read_file", "read_seqlines", "read_pairs", "read_atomic", "read_delimited",
           "read_hdf5", "UnknownNameError"]
