"""A curated training set on disk: ``samples.npz`` + ``curation.json`` in one folder.

``samples.npz`` has one row per sample of the *full* training set: its id (``sample_id`` for
prefix samples; ``user``/``item`` for a matrix), ``kept``, the ``reason`` code (see `REASONS`),
the ``weight`` and, when the method used one, the ``score``. ``curation.json`` holds the report
summary, the dataset, and the fingerprint of the full training set; it is written last, so a
folder without it is incomplete and is never read back. `load_curated` rebuilds the kept
training set from the split and refuses a folder made from different data.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..data import SplitData, TrainingSet
from ..errors import DataFormatError
from ..utils.io import save_npz, write_json
from .base import REASONS, CurationReport, fingerprint

FORMAT = 1


def _ids(ts: TrainingSet) -> dict[str, np.ndarray]:
    d = ts.data
    if hasattr(d, "sample_id"):
        return {"sample_id": d.sample_id}
    u, i = d.coo_pairs()
    return {"user": u, "item": i}


def save_curation(out_dir: str | Path, full: TrainingSet, report: CurationReport, *, dataset: str, protocol: str,
                  extra: dict[str, Any] | None = None) -> Path:
    """Write the curation of ``full`` described by ``report`` to ``out_dir`` (atomic files)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataFormatError(f"--out {out} is a file; give a folder for the curated training set")
    arrays = {**_ids(full), "kept": report.kept, "reason": report.reason, "weight": full.weights}
    if report.scores is not None:
        arrays["score"] = report.scores
    (out / "curation.json").unlink(missing_ok=True)  # an old marker must not vouch for new arrays
    save_npz(out / "samples.npz", **arrays)
    meta = {"format": FORMAT, "dataset": dataset, "protocol": protocol, "kind": full.kind,
            "fingerprint": fingerprint(full), "reasons": list(REASONS), **report.summary(), **(extra or {})}
    write_json(out / "curation.json", meta)
    return out


def load_curated(folder: str | Path, split: SplitData) -> tuple[TrainingSet, dict[str, Any]]:
    """The kept training set of a curation folder, rebuilt from ``split``; and its metadata."""
    folder = Path(folder)
    meta_path = folder / "curation.json"
    if not meta_path.is_file():
        raise DataFormatError(f"{folder} is not a complete curation folder (no curation.json); "
                              "write one with `recsift curate ... --out DIR`")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise DataFormatError(f"{meta_path}: unsupported format {meta.get('format')!r} (expected {FORMAT})")
    full = split.training_set(meta["kind"])
    if fingerprint(full) != meta["fingerprint"] or meta.get("dataset") != split.name:
        raise DataFormatError(
            f"{folder} was curated from dataset {meta.get('dataset')!r} ({meta.get('protocol')}) with a different "
            f"training set than {split.name!r} ({split.protocol}) has now; curate again for this dataset and split")
    with np.load(folder / "samples.npz") as z:
        kept = z["kept"].astype(bool)
        weight = z["weight"]
    if len(kept) != len(full):
        raise DataFormatError(f"{folder}/samples.npz has {len(kept)} rows but the training set has {len(full)}")
    idx = np.flatnonzero(kept)
    curated = TrainingSet(full.data.subset(idx), weight[idx], {**full.provenance, "curation": str(folder),
                                                               "curator": meta.get("method")})
    return curated, meta
