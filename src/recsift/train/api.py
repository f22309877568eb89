"""`train_model`: build a registered model, train it on a split, evaluate it on the test cases."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data import SplitData, TrainingSet
from ..errors import ConfigError
from ..models.registry import build_model
from ..utils.runtime import peak_rss_mb
from ..utils.seeding import seed_everything
from .config import TrainConfig
from .dynamics import DynamicsRecorder
from .trainer import FitHistory, SequenceTrainer, Trainer


@dataclass
class TrainResult:
    """What a training run produced: the model (restored to its best epoch) and its numbers."""

    model: torch.nn.Module
    config: TrainConfig
    model_name: str
    model_params: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int
    valid: dict[str, float]
    test: dict[str, float]
    test_per_case: dict[str, np.ndarray]
    test_users: np.ndarray
    train_seconds_per_epoch: float
    peak_rss_mb: float
    layout: str
    n_train: int
    device: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no model, no per-case arrays)."""
        return {
            "model": self.model_name, "model_params": self.model_params, "config": self.config.model_dump(),
            "best_epoch": self.best_epoch, "epochs_run": len(self.history), "valid": self.valid, "test": self.test,
            "train_seconds_per_epoch": self.train_seconds_per_epoch, "peak_rss_mb": self.peak_rss_mb,
            "layout": self.layout, "n_train": self.n_train, "device": self.device, "history": self.history,
            **self.extra,
        }


def trainer_for(model: torch.nn.Module, config: TrainConfig) -> Trainer:
    """The trainer class that fits ``model`` (sequential or CF)."""
    from ..models.base import CFRecommender

    if isinstance(model, CFRecommender):
        from .cf import CFTrainer

        return CFTrainer(model, config)
    return SequenceTrainer(model, config)


def _check_train_set(split: SplitData, train_set: Any) -> None:
    """A training set that is not a `TrainingSet`, or one in another item id space (built from another
    dataset or split), fails here with one message rather than as an index error inside the model."""
    if not isinstance(train_set, TrainingSet):
        raise ConfigError(f"train_set must be a recsift TrainingSet (split.training_set(), curate(...) or "
                          f"load_curated(folder)), not {type(train_set).__name__}")
    train_set.require_samples("train on")
    if train_set.n_items != split.n_items:
        raise ConfigError(f"train_set has item ids 1..{train_set.n_items} but the split has {split.n_items} items: it "
                          "was built from another dataset or split; build or curate it from this split's training set")


def train_model(split: SplitData, model: str, config: TrainConfig | None = None, *,
                train_set: TrainingSet | None = None, model_params: dict[str, Any] | None = None,
                recorder: DynamicsRecorder | None = None, evaluate_test: bool = True,
                checkpoint: str | os.PathLike[str] | None = None) -> TrainResult:
    """Train registered model ``model`` on ``train_set`` (default: the split's full training set).

    Early stopping uses the split's validation cases; test metrics come from the best epoch.
    Valid and test cases are the split's own: a curated ``train_set`` never changes them.
    ``checkpoint``: a file where the run's state is saved after every epoch, so that an interrupted
    run started again with the same arguments continues where it stopped (`Trainer.fit`).

    Example
    -------
    >>> from recsift.data import load_split
    >>> from recsift.train import TrainConfig, train_model
    >>> split = load_split("synthetic")
    >>> res = train_model(split, "gru4rec", TrainConfig(epochs=1, seed=0))
    >>> 0.0 <= res.test["recall@10"] <= 1.0
    True
    """
    config = config or TrainConfig()
    if train_set is not None:
        _check_train_set(split, train_set)
    seed_everything(config.seed)
    from ..models.registry import get_model_class
    from ..models.base import CFRecommender

    cls = get_model_class(model)
    if not issubclass(cls, torch.nn.Module):
        return _fit_baseline(split, model, config, train_set, dict(model_params or {}), evaluate_test)
    is_cf = issubclass(cls, CFRecommender)
    if train_set is None:
        train_set = split.training_set("matrix" if is_cf else "sequence").require_samples("train on")
    params = dict(model_params or {})
    dims = {"n_items": split.n_items, **({"n_users": split.n_users} if is_cf else {"max_len": config.max_len})}
    net = build_model(model, **dims, **params)
    trainer = trainer_for(net, config)
    mask = split.mask_history if config.mask_history is None else config.mask_history
    hist: FitHistory = trainer.fit(train_set, split.valid, mask_history=mask, recorder=recorder, checkpoint=checkpoint)
    best = hist.epochs[hist.best_epoch].get("valid", {}) if hist.epochs else {}
    test, per_case, users = {}, {}, np.zeros(0, np.int64)
    if evaluate_test:
        res = trainer.evaluate(split.test, mask_history=mask)
        test, per_case, users = res.means, res.per_case, res.users
    return TrainResult(
        model=trainer.model, config=config, model_name=model, model_params=params, history=hist.epochs,
        best_epoch=hist.best_epoch, valid=best, test=test, test_per_case=per_case, test_users=users,
        train_seconds_per_epoch=hist.seconds_per_epoch, peak_rss_mb=peak_rss_mb(),
        layout=getattr(trainer, "layout", "pairs"), n_train=len(train_set), device=str(trainer.device),
        extra={"stopped_early": hist.stopped_early, "mask_history": mask,
               "fused_ce": getattr(trainer, "_fused_ce", False)},
    )


def _fit_baseline(split: SplitData, model: str, config: TrainConfig, train_set: TrainingSet | None,
                  params: dict[str, Any], evaluate_test: bool) -> TrainResult:
    """Non-neural baselines (pop, item-kNN, ∞-AE): one ``fit``, then the same evaluation."""
    import inspect
    import time

    from ..evaluate import evaluate

    train_set = train_set or split.training_set("sequence" if split.protocol in ("loo", "sessions", "given") else "matrix")
    est = build_model(model, **params)
    mask = split.mask_history if config.mask_history is None else config.mask_history
    t0 = time.perf_counter()
    # estimators that tune on validation (∞-AE's λ) declare a ``valid`` argument
    tunes = "valid" in inspect.signature(est.fit).parameters
    est.fit(train_set, **({"valid": split.valid, "mask_history": mask} if tunes else {}))
    secs = time.perf_counter() - t0
    metrics = list(dict.fromkeys((*config.metrics, config.valid_metric)))
    valid = evaluate(est.score, split.valid, metrics, mask_history=mask).means
    test, per_case, users = {}, {}, np.zeros(0, np.int64)
    if evaluate_test:
        res = evaluate(est.score, split.test, list(config.metrics), mask_history=mask)
        test, per_case, users = res.means, res.per_case, res.users
    return TrainResult(model=est, config=config, model_name=model, model_params=params,
                       history=[{"epoch": 0, "train_seconds": secs, "valid": valid}], best_epoch=0, valid=valid,
                       test=test, test_per_case=per_case, test_users=users, train_seconds_per_epoch=secs,
                       peak_rss_mb=peak_rss_mb(), layout="fit", n_train=len(train_set), device="cpu",
                       extra={"mask_history": mask})
