"""The step cache: content-hash keys, one folder per step, a done-marker written last, a lock per step.

A step (one curation, or one retrain) lives in ``<runs_dir>/steps/<kind>/<slug>-<key>/`` where
``key`` hashes everything the step's output depends on: the dataset's content fingerprint,
the step's own settings, its seed, and the key of the step it reads from. So a changed
setting gives new keys to exactly the steps downstream of it, and the rest are cache hits.

Protocol (`claim`): a step is done iff its marker ``step.json`` exists; artifacts are written
atomically (temp file + rename) and the marker last, so an interrupted step leaves no marker
and is run again from an empty folder. Around the work a process holds an exclusive
``fcntl.flock`` on ``.locks/<folder name>.lock`` beside the folder and checks the marker again
once it has the lock, so two processes racing on one step run it once; the other waits and
then reads the result. flock needs a local or lock-aware file system (not every NFS mount is).

Example
-------
>>> step_key({"b": 1, "a": [1, 2]}) == step_key({"a": (1, 2), "b": 1})
True
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.io import write_json

MARKER = "step.json"
KEY_CHARS = 16


def canonical_json(obj: Any) -> str:
    """Key-sorted, whitespace-free JSON (tuples as lists, paths as strings): the hashed form."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def step_key(payload: dict[str, Any]) -> str:
    """Content hash of a step's inputs (hex, `KEY_CHARS` long)."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:KEY_CHARS]


def data_fingerprint(split: Any) -> str:
    """Hash of a split's content: training rows and the fixed valid/test cases, with the protocol.

    Two paths to the same data share cache entries; an edited file gets new ones.
    """
    h = hashlib.sha256(canonical_json([split.name, split.protocol, bool(split.mask_history)]).encode())
    tr = split.train
    arrays = [tr.user, tr.item, tr.time]
    for cases in (split.valid, split.test):
        arrays += [cases.user, cases.hist_indptr, cases.hist_items, cases.tgt_indptr, cases.tgt_items]
        if cases.candidates is not None:
            arrays.append(cases.candidates)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:KEY_CHARS]


def step_folder(runs_dir: str | os.PathLike[str], kind: str, slug: str, key: str) -> Path:
    """``<runs_dir>/steps/<kind>/<slug>-<key>``; the slug only makes the folder readable."""
    safe = re.sub(r"[^A-Za-z0-9._=-]+", "_", slug).strip("_")[:80]
    return Path(runs_dir) / "steps" / kind / f"{safe}-{key}"


def is_done(folder: str | os.PathLike[str]) -> bool:
    """Whether the step in ``folder`` finished (its marker exists)."""
    return (Path(folder) / MARKER).is_file()


def read_marker(folder: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads((Path(folder) / MARKER).read_text())


def write_marker(folder: str | os.PathLike[str], info: dict[str, Any]) -> None:
    """Mark the step done: call only after every artifact of the step is in place."""
    write_json(Path(folder) / MARKER, info)


@contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed); yield whether we had to wait."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            fcntl.flock(fh, fcntl.LOCK_EX)
            waited = True
        try:
            yield waited
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def claim(folder: str | os.PathLike[str]) -> Iterator[tuple[bool, bool]]:
    """Lock the step in ``folder``; yield ``(run, waited)``.

    ``run`` is False when the step was finished (by another process) by the time the lock was
    ours; when True the folder has been emptied of any partial artifact of an interrupted run.
    """
    folder = Path(folder)
    with file_lock(folder.parent / ".locks" / f"{folder.name}.lock") as waited:
        if is_done(folder):
            yield False, waited
            return
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        yield True, waited
