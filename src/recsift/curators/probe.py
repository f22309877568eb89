"""The probe model of the scored curators: trained once per training set, dynamics recorded.

Dynamics come from the training steps (train mode); the final-model outputs and embeddings
from one eval-mode pass afterwards (`recsift.train.sample_outputs`). With a cache folder the
arrays are written atomically under ``probe-<key>/`` and read back on the next run;
``extra["probe"]`` holds the probe's metadata, its training ``seconds`` and whether it was
``cached`` (read back rather than trained here).
"""
from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from ..data import TrainingSet
from ..errors import ConfigError
from ..scoring import ScoreInputs
from ..utils.io import save_npz, write_json

if TYPE_CHECKING:
    from .base import CurationContext

log = logging.getLogger(__name__)


def probe_outputs(ctx: CurationContext, train_set: TrainingSet, key: str, *, embeddings: bool) -> ScoreInputs:
    folder = ctx.cache_dir / f"probe-{key}" if ctx.cache_dir is not None else None
    if folder is not None and (folder / "probe.json").exists():
        meta = json.loads((folder / "probe.json").read_text())
        if embeddings <= meta["embeddings"]:
            return _read(folder, meta)
    if ctx.split is None:
        raise ConfigError("scored curators train a probe model and need the split (CurationContext(split=...))")
    from ..train import DynamicsRecorder, sample_outputs, train_model

    cfg = ctx.probe_config.model_copy(update={"seed": ctx.seed, "eval_every": ctx.probe_config.epochs})
    rec = DynamicsRecorder(len(train_set))
    t0 = time.perf_counter()
    res = train_model(ctx.split, ctx.probe, cfg, train_set=train_set, model_params=ctx.probe_params, recorder=rec,
                      evaluate_test=False)
    outs = sample_outputs(res.model, train_set, cfg, embeddings=embeddings)
    secs = time.perf_counter() - t0
    log.info("probe %s trained on %d samples in %.1fs", ctx.probe, len(train_set), secs)
    emb = outs.pop("embedding", None)
    meta = {"probe": ctx.probe, "params": ctx.probe_params, "config": cfg.model_dump(), "epochs": rec.epochs_seen,
            "embeddings": emb is not None, "seconds": round(secs, 3), "valid": res.valid, "n_samples": len(train_set)}
    if folder is not None:
        rec.save(folder / "dynamics.npz")
        save_npz(folder / "outputs.npz", **outs, **({"embedding": emb} if emb is not None else {}))
        write_json(folder / "probe.json", meta)  # written last: its presence marks a complete entry
    return ScoreInputs(dynamics=rec.state, outputs=outs, embeddings=emb, epochs=rec.epochs_seen,
                       extra={"probe": {**meta, "cached": False}})


def _read(folder, meta) -> ScoreInputs:
    from ..train import DynamicsRecorder

    rec = DynamicsRecorder.load(folder / "dynamics.npz")
    with np.load(folder / "outputs.npz") as z:
        outs = {k: z[k] for k in z.files}
    emb = outs.pop("embedding", None)
    return ScoreInputs(dynamics=rec.state, outputs=outs, embeddings=emb, epochs=rec.epochs_seen,
                       extra={"probe": {**meta, "cached": True}})
