"""A curated training set on disk: ``samples.npz`` + ``curation.json`` in one folder.

``samples.npz`` has one row per sample of the *full* training set: its id (``sample_id`` for
prefix samples; ``user``/``item`` for a matrix), ``kept``, the ``reason`` code (see `REASONS`),
the ``weight`` and, when the method used one, the ``score``. ``curation.json`` holds the report
summary, the dataset, and the fingerprint of the full training set; it is written last, so a
folder without it is incomplete and is never read back. `load_curated` rebuilds the kept
training set from the split and refuses a folder made from different data.

A *regenerated* training set (DR4SR: new sequences; Distill-CF: synthetic users — not a subset of
the input) is saved with its own arrays instead: ``samples.npz`` holds the new CSR store
(``indptr``, ``items``), its samples (``user``, ``pos``, ``sample_id``) and ``weight`` — for a
matrix, its CSR (``indptr``, ``indices``, ``values``, ``n_rows``) and ``weight``; ``curation.json`` says ``"regenerated": true``
and ``format`` 2 (so readers of format 1 refuse it). The fingerprint is still that of the input
training set, so a folder is only read back against the split it was made from.
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
FORMAT_REGENERATED = 2


def _ids(ts: TrainingSet) -> dict[str, np.ndarray]:
    d = ts.data
    if hasattr(d, "sample_id"):
        return {"sample_id": d.sample_id}
    u, i = d.coo_pairs()
    return {"user": u, "item": i}


#: the files of a curation folder; any other file in ``--out`` means it is some other folder
FILES = ("samples.npz", "curation.json")


def _ours(name: str) -> bool:
    """A file a curation writes, or the temporary file a killed write of one left (`atomic_path`)."""
    return name in FILES or any(name.startswith(f".{f}.") and name.endswith(".tmp") for f in FILES)


def _folder(out_dir: str | Path) -> Path:
    """``out_dir`` as a Path; refused when it names a file."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataFormatError(f"--out {out} is a file; give a folder for the curated training set")
    return out


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a folder that ``recsift curate --out`` may write to: new, empty, or an earlier
    curation's folder (overwritten). A file, or a folder holding other files (``--out .``, a runs folder),
    is refused before any work is done. (The experiment runner writes its own step folders and does
    not need this.)"""
    out = _folder(out_dir)
    other = sorted(p.name for p in out.iterdir() if not _ours(p.name)) if out.is_dir() else []
    if other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        raise DataFormatError(f"--out {out} already holds other files ({shown}) and is not a curation folder; "
                              f"give a new or empty folder, e.g. --out {out / 'curated'}")
    return out


def save_curation(out_dir: str | Path, full: TrainingSet, report: CurationReport, *, dataset: str, protocol: str,
                  extra: dict[str, Any] | None = None, curated: TrainingSet | None = None) -> Path:
    """Write the curation of ``full`` described by ``report`` to ``out_dir`` (atomic files).

    A regenerated curation (``report.extra["regenerated"]``) needs the ``curated`` training set
    itself, whose sequences are stored."""
    out = _folder(out_dir)
    regenerated = bool(report.extra.get("regenerated"))
    if regenerated:
        if curated is None:
            raise DataFormatError(f"curator {report.method!r} regenerated the training set: pass curated=<its "
                                  "TrainingSet> to save_curation so that its data are stored")
        d = curated.data
        if hasattr(d, "store"):
            arrays = {"indptr": d.store.indptr, "items": d.store.items, "user": d.user, "pos": d.pos,
                      "sample_id": d.sample_id, "weight": curated.weights}
        else:
            arrays = {"indptr": d.csr.indptr, "indices": d.csr.indices, "values": d.csr.data,
                      "n_rows": np.array([d.n_users]), "weight": curated.weights}
    else:
        arrays = {**_ids(full), "kept": report.kept, "reason": report.reason, "weight": full.weights}
        if report.scores is not None:
            arrays["score"] = report.scores
    (out / "curation.json").unlink(missing_ok=True)  # an old marker must not vouch for new arrays
    save_npz(out / "samples.npz", **arrays)
    summary = report.summary()
    if regenerated:  # the kept mask over the input is all False by construction: say what was made instead
        rows = curated.data.store.n_users if hasattr(curated.data, "store") else curated.data.n_users
        summary = {**summary, "output_samples": len(curated), "n_sequences": int(rows)}
    meta = {"format": FORMAT_REGENERATED if regenerated else FORMAT, "dataset": dataset, "protocol": protocol,
            "kind": full.kind, "fingerprint": fingerprint(full), "reasons": list(REASONS), **summary,
            **(extra or {}), "regenerated": regenerated}
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
    if meta.get("format") not in (FORMAT, FORMAT_REGENERATED):
        raise DataFormatError(f"{meta_path}: unsupported format {meta.get('format')!r} "
                              f"(expected {FORMAT} or {FORMAT_REGENERATED})")
    full = split.training_set(meta["kind"])
    if fingerprint(full) != meta["fingerprint"] or meta.get("dataset") != split.name:
        raise DataFormatError(
            f"{folder} was curated from dataset {meta.get('dataset')!r} ({meta.get('protocol')}) with a different "
            f"training set than {split.name!r} ({split.protocol}) has now; curate again for this dataset and split")
    if meta.get("regenerated"):
        return _load_regenerated(folder, split, full, meta), meta
    with np.load(folder / "samples.npz") as z:
        kept = z["kept"].astype(bool)
        weight = z["weight"]
    if len(kept) != len(full):
        raise DataFormatError(f"{folder}/samples.npz has {len(kept)} rows but the training set has {len(full)}")
    idx = np.flatnonzero(kept)
    curated = TrainingSet(full.data.subset(idx), weight[idx], {**full.provenance, "curation": str(folder),
                                                               "curator": meta.get("method")})
    return curated, meta


def _load_regenerated(folder: Path, split: SplitData, full: TrainingSet, meta: dict[str, Any]) -> TrainingSet:
    from ..data import SequenceSamples, SequenceStore

    prov = {**full.provenance, "curation": str(folder), "curator": meta.get("method"), "regenerated": True}
    if meta["kind"] == "matrix":
        return _load_regenerated_matrix(folder, split, prov)
    with np.load(folder / "samples.npz") as z:
        a = {k: z[k] for k in ("indptr", "items", "user", "pos", "sample_id", "weight")}
    if len(a["items"]) and (a["items"].min() < 1 or a["items"].max() > split.n_items):
        raise DataFormatError(f"{folder}/samples.npz holds item ids outside 1..{split.n_items}")
    store = SequenceStore(a["indptr"].astype(np.int64), a["items"].astype(np.int64), split.n_items)
    samples = SequenceSamples(store, a["user"].astype(np.int64), a["pos"].astype(np.int64),
                              a["sample_id"].astype(np.int64))
    return TrainingSet(samples, a["weight"], prov)


def _load_regenerated_matrix(folder: Path, split: SplitData, prov: dict[str, Any]) -> TrainingSet:
    import scipy.sparse as sp

    from ..data import InteractionMatrix

    with np.load(folder / "samples.npz") as z:
        a = {k: z[k] for k in ("indptr", "indices", "values", "n_rows", "weight")}
    if len(a["indices"]) and (a["indices"].min() < 1 or a["indices"].max() > split.n_items):
        raise DataFormatError(f"{folder}/samples.npz holds item ids outside 1..{split.n_items}")
    csr = sp.csr_matrix((a["values"].astype(np.float32), a["indices"], a["indptr"]),
                        shape=(int(a["n_rows"][0]), split.n_items + 1))
    return TrainingSet(InteractionMatrix(csr), a["weight"], prov)
