"""Resumable training: what `Trainer.fit` needs to continue an interrupted run exactly.

A checkpoint is one file written atomically at the end of every epoch: the model and optimizer
states, the best epoch's weights, the early-stopping counters and history, every random state the
epoch loop draws from (numpy's shuffling generator, the negative-sampling generator, torch's global
generator that dropout uses, CUDA's when on a GPU) and the `DynamicsRecorder`'s arrays. A resumed
run therefore produces the same weights, history and dynamics as an uninterrupted one, bit for bit
on the same machine and thread count.

The file carries a fingerprint of the run (training config, model class and parameter shapes, the
training data's contents and weights); a checkpoint of another run is refused with an error that
names the file, never silently resumed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import TrainingSet
from ..errors import ConfigError
from ..utils.io import write_atomic

log = logging.getLogger(__name__)


class RunCheckpoint:
    """The checkpoint file of one `Trainer.fit` run: ``save`` after each epoch, ``restore`` on start."""

    def __init__(self, path: str | os.PathLike[str], trainer: Any, train: TrainingSet) -> None:
        self.path, self.trainer = Path(path), trainer
        self.key = fingerprint(trainer.config, trainer.model, train)

    def exists(self) -> bool:
        return self.path.exists()

    def save(self, history: dict[str, Any], best_state: dict | None, since_best: int, recorder: Any) -> None:
        """``history``: the `FitHistory` as a dict; ``recorder``: the `DynamicsRecorder` or None."""
        t = self.trainer
        rec = None if recorder is None else {"state": recorder.state, "epochs_seen": recorder.epochs_seen,
                                             "fused": recorder.fused}
        save_checkpoint(self.path, plain({
            "fingerprint": self.key, "model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(),
            "best_state": best_state, "since_best": since_best, "history": history,
            "rng": rng_states(t.rng, t._torch_gen), "recorder": rec}))

    def restore(self, recorder: Any) -> tuple[dict[str, Any], dict | None, int]:
        """Load the run's state into the trainer (and ``recorder``); returns ``(history, best_state, since_best)``."""
        t = self.trainer
        st = load_checkpoint(self.path, self.key)
        if (st["recorder"] is None) != (recorder is None):
            raise ConfigError(f"checkpoint {self.path} was written {'without' if recorder is not None else 'with'} "
                              "a dynamics recorder; resume it the same way, or delete it to start again")
        t.model.load_state_dict(st["model"])
        t.optimizer.load_state_dict(st["optimizer"])
        set_rng_states(st["rng"], t.rng, t._torch_gen)
        if recorder is not None:
            recorder.state = {k: v.numpy().copy() for k, v in st["recorder"]["state"].items()}
            recorder.epochs_seen, recorder.fused = st["recorder"]["epochs_seen"], st["recorder"]["fused"]
        log.info("resumed from %s after epoch %d", self.path, len(st["history"]["epochs"]) - 1)
        return st["history"], st["best_state"], st["since_best"]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _arrays(train: TrainingSet) -> list[np.ndarray]:
    d = train.data
    if train.kind == "sequence":
        return [d.store.indptr, d.store.items, d.user, d.pos]
    return [d.csr.indptr, d.csr.indices, d.csr.data, np.asarray(d.csr.shape)]


def fingerprint(config: Any, model: torch.nn.Module, train: TrainingSet) -> str:
    """Digest of what makes two ``fit`` calls the same run (config, model shapes, data, weights)."""
    h = hashlib.sha256()
    # a run may resume with other values of the neutral fields (progress bars)
    cfg = {k: v for k, v in config.model_dump().items() if k not in type(config).NEUTRAL}
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    h.update(json.dumps([cfg, type(model).__qualname__, shapes], sort_keys=True, default=str).encode())
    for a in [*_arrays(train), train.weights]:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:20]


def rng_states(np_rng: np.random.Generator, torch_gen: torch.Generator | None = None) -> dict[str, Any]:
    """Every random state an epoch draws from (``torch_gen``: a loop's own generator, if it has one)."""
    out = {"numpy": np_rng.bit_generator.state, "torch_global": torch.get_rng_state()}
    if torch_gen is not None:
        out["torch_gen"] = torch_gen.get_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(states: dict[str, Any], np_rng: np.random.Generator,
                   torch_gen: torch.Generator | None = None) -> None:
    np_rng.bit_generator.state = states["numpy"]
    if torch_gen is not None:
        torch_gen.set_state(states["torch_gen"])
    torch.set_rng_state(states["torch_global"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def plain(obj: Any) -> Any:
    """``obj`` with numpy scalars and arrays turned into Python values / tensors (loadable with
    ``torch.load(weights_only=True)``, which runs no pickled code)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (a crash mid-write leaves the previous checkpoint)."""
    return write_atomic(path, lambda p: torch.save(state, p))


def load_checkpoint(path: str | os.PathLike[str], expected: str) -> dict[str, Any]:
    """Read a checkpoint and check it belongs to the run with fingerprint ``expected``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ConfigError(f"checkpoint {path} cannot be read ({type(e).__name__}: {e}); delete it to start "
                          "the run from scratch") from None
    if not isinstance(state, dict) or state.get("fingerprint") != expected:
        raise ConfigError(f"checkpoint {path} belongs to another run (different config, model or training data); "
                          "delete it, or give this run another checkpoint path")
    return state
