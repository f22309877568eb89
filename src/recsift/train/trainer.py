"""The training loop: one loop for every model (epochs, early stopping, best-state restore).

`Trainer` owns what every model shares: seeding, threads, device, Adam, the epoch loop,
validation on the fixed valid cases, patience, restoring the best epoch, timings and the
optional `DynamicsRecorder`. Subclasses only say how one epoch's batches turn into a loss
(`SequenceTrainer` for next-item models, `CFTrainer` in ``cf.py`` for user x item models)
and how to score evaluation cases.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data import EvalCases, TrainingSet
from ..evaluate import EvalResult, evaluate
from ..models.base import SequentialRecommender
from ..utils.runtime import configure_threads, peak_rss_mb
from .batching import AllPrefixBatcher, PrefixBatcher
from .checkpoint import RunCheckpoint
from .config import TrainConfig
from .dynamics import DynamicsRecorder, cat_stats
from .fused_ce import fused_ce_enabled, softmax_ce_loss
from .losses import get_loss, masked_log_softmax, weighted_mean
from .optim import adam

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    from ..errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use --device auto or cpu")
    return torch.device(name)


@dataclass
class FitHistory:
    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_valid: float = float("-inf")
    stopped_early: bool = False

    @property
    def seconds_per_epoch(self) -> float:
        """Median training seconds per epoch (validation excluded)."""
        secs = [e["train_seconds"] for e in self.epochs]
        return float(statistics.median(secs)) if secs else float("nan")


class Trainer:
    """Shared epoch loop. Subclasses implement `_train_epoch` and `score`."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig) -> None:
        configure_threads()
        self.config = config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.optimizer = adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.rng = np.random.default_rng(config.seed)
        self.loss_name = config.loss or getattr(model, "default_loss", "ce")
        self._torch_gen = torch.Generator().manual_seed(config.seed)

    # -- subclass hooks -------------------------------------------------------------------
    def _prepare(self, train: TrainingSet) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _train_epoch(self, epoch: int, recorder: DynamicsRecorder | None) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, cases: EvalCases) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_samples(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """Every prepared training unit once, in order: ``(unit_idx, logits, targets, representation)``.

        Runs in the model's current mode; `recsift.train.sample_outputs` calls it under eval/no-grad.
        """
        raise NotImplementedError  # pragma: no cover - abstract

    # -- shared -------------------------------------------------------------------------
    def _step(self, loss: torch.Tensor) -> float:
        """One optimizer step on ``loss``; returns its value."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def evaluate(self, cases: EvalCases, *, mask_history: bool, metrics: tuple[str, ...] | None = None) -> EvalResult:
        self.model.eval()
        with torch.no_grad():
            return evaluate(self.score, cases, list(metrics or self.config.metrics), mask_history=mask_history,
                            batch_size=self.config.eval_batch_size, device=str(self.device))

    def fit(self, train: TrainingSet, valid: EvalCases | None, *, mask_history: bool,
            recorder: DynamicsRecorder | None = None, checkpoint: str | os.PathLike[str] | None = None) -> FitHistory:
        """Train up to ``epochs``; with ``valid`` keep the best epoch by ``valid_metric`` and stop on patience.

        With ``checkpoint`` (a file path) the run's whole state is saved there at the end of every
        epoch, and a run started with a checkpoint of the same run (same config, model shapes,
        training data and weights) continues after its last finished epoch with the same result as
        an uninterrupted run; the file is removed when ``fit`` returns (see `recsift.train.checkpoint`).
        """
        cfg = self.config
        self._prepare(train)
        hist = FitHistory()
        best_state = None
        since_best = 0
        ckpt = RunCheckpoint(checkpoint, self, train) if checkpoint is not None else None
        if ckpt is not None and ckpt.exists():
            saved, best_state, since_best = ckpt.restore(recorder)
            hist = FitHistory(**saved)
        metrics = tuple(dict.fromkeys((*cfg.metrics, cfg.valid_metric)))
        for epoch in range(len(hist.epochs), cfg.epochs):
            if hist.stopped_early:
                break
            self.model.train()
            t0 = time.perf_counter()
            loss = self._train_epoch(epoch, recorder)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            row: dict[str, Any] = {"epoch": epoch, "train_loss": loss, "train_seconds": time.perf_counter() - t0}
            if recorder is not None:
                recorder.end_epoch()
            if valid is not None and (epoch + 1) % cfg.eval_every == 0:
                t1 = time.perf_counter()
                res = self.evaluate(valid, mask_history=mask_history, metrics=metrics)
                row["valid"] = res.means
                row["valid_seconds"] = time.perf_counter() - t1
                score = res.means[cfg.valid_metric]
                if score > hist.best_valid:
                    hist.best_valid, hist.best_epoch, since_best = score, epoch, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                else:
                    since_best += 1
            hist.epochs.append(row)
            log.info("epoch %d loss %.4f %s", epoch, loss, row.get("valid", ""))
            if cfg.patience is not None and since_best >= cfg.patience:
                hist.stopped_early = True
            if ckpt is not None:
                ckpt.save(dataclasses.asdict(hist), best_state, since_best, recorder)
        if best_state is not None:
            self.model.load_state_dict(best_state)
        else:
            hist.best_epoch = len(hist.epochs) - 1
        if ckpt is not None:
            ckpt.remove()
        return hist


class SequenceTrainer(Trainer):
    """Next-item training in the ``prefix`` or ``all-prefix`` layout with CE, BPR or BCE."""

    def _prepare(self, train: TrainingSet) -> None:
        from ..errors import ConfigError

        cfg, m = self.config, self.model
        layout = cfg.layout
        if layout == "auto":
            layout = "all-prefix" if m.causal else "prefix"
        if layout == "all-prefix" and not m.causal:
            raise ConfigError(f"model {m.name!r} is not causal: it cannot train in the all-prefix layout; use layout='prefix'")
        if cfg.pack and (not m.packable or layout != "all-prefix"):
            raise ConfigError(f"pack=True needs the all-prefix layout and a model that can pack windows (SASRec, CORE, dr4sr_gnn); "
                              f"got model {m.name!r} in the {layout} layout: leave pack unset or False")
        if layout == "all-prefix":
            self.batcher = AllPrefixBatcher(train, cfg.max_len, cfg.batch_size, overlap=cfg.window_overlap,
                                            bucket=cfg.bucket, pack=m.packable if cfg.pack is None else cfg.pack)
        else:
            self.batcher = PrefixBatcher(train, cfg.max_len, cfg.batch_size, pad_left=m.pad_left)
        self.layout = layout
        self.n_train = len(train)
        # CE fused with the output layer in cache-sized chunks (see `fused_ce`): for models whose
        # logits are the base class's h @ output_matrix().T
        self._fused_ce = (fused_ce_enabled(self.device) and self.loss_name == "ce"
                          and getattr(type(m), "logits", None) is SequentialRecommender.logits)
        if hasattr(m, "prepare_data"):  # models that precompute from their training data (DR4SR's item graph)
            m.prepare_data(train)

    def _represent(self, b) -> torch.Tensor:
        if b.segments is not None:
            return self.model.forward_packed(b.seq, b.positions, b.segments)[b.rows, b.cols]
        if self.layout == "all-prefix":
            out = self.model.forward_all(b.seq, b.lengths)
            return out[b.rows, b.cols]
        return self.model(b.seq, b.lengths)

    def _train_epoch(self, epoch: int, recorder: DynamicsRecorder | None) -> float:
        total, count = 0.0, 0
        extra = getattr(self.model, "extra_loss", None)
        for b in self.batcher.batches(self.rng):
            b = b.to(self.device)
            loss, record = self._batch_loss(b, self._represent(b), recorder)
            if extra is not None:
                loss = loss + extra()
            value = self._step(loss)
            if recorder is not None:
                record(epoch)
            total += value * len(b.targets)
            count += len(b.targets)
        return total / max(count, 1)

    def _batch_loss(self, b, h: torch.Tensor, recorder: DynamicsRecorder | None):
        """The batch's weighted loss, and ``record(epoch)``, which folds the batch's training
        dynamics (from this forward pass, before the optimizer step) into ``recorder``."""
        model = self.model
        if self._fused_ce:
            chunks: list[dict[str, torch.Tensor]] = []
            hook = None
            if recorder is not None:  # each chunk's statistics while its probabilities are in cache
                scale = model.grand_scale(h.detach())

                def hook(s: int, e: int, logp: torch.Tensor, p: torch.Tensor) -> None:
                    chunks.append(recorder.stats(logp, b.targets[s:e], scale[s:e], logp=logp, p=p))

            loss = softmax_ce_loss(h, model.output_matrix(), b.targets, b.weights, on_chunk=hook)
            return loss, lambda epoch: recorder.fold(epoch, b.sample_idx, cat_stats(chunks))
        logits = logp = None
        if self.loss_name == "ce":
            logits = model.logits(h)
            logp = masked_log_softmax(logits)
            per = get_loss("ce")(logp, b.targets)
        else:
            neg = torch.randint(1, model.n_items + 1, (len(b.targets), self.config.n_negatives),
                                generator=self._torch_gen).to(self.device)
            pos_s = model.score_items(h, b.targets.view(-1, 1)).squeeze(1)
            per = get_loss(self.loss_name)(pos_s, model.score_items(h, neg))

        def record(epoch: int) -> None:
            with torch.no_grad():
                z = model.logits(h) if logits is None else logits
            recorder.update(epoch, b.sample_idx, z, b.targets, model.grand_scale(h.detach()), logp=logp)

        return weighted_mean(per, b.weights), record

    def forward_samples(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        for b in self.batcher.batches(self.rng, shuffle=False):
            b = b.to(self.device)
            h = self._represent(b)
            yield b.sample_idx, self.model.logits(h), b.targets, h

    #: cases per encoder call when scoring; right-padded histories are sorted by length first so
    #: each call pads only to its own longest history (see `encode_histories`)
    eval_rows: int = 512

    def score(self, cases: EvalCases) -> torch.Tensor:
        m = self.model
        seq = cases.padded_histories(self.config.max_len, pad_left=m.pad_left)
        lengths = np.clip(cases.hist_lengths, 1, self.config.max_len)
        return m.logits(self.encode_histories(seq, lengths))

    def encode_histories(self, seq: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
        """Sequence representations of padded histories ``[B, max_len]``, in their order.

        A right-padded model sees the histories sorted by length, `eval_rows` at a time, each
        call trimmed to its longest history: on short-session data most of a chunk's
        ``max_len`` columns are padding, which the encoder would otherwise process (trailing
        padding never changes a right-padded model's output at the last real position).
        Left-padded models (FMLP-Rec's filter spans the whole window) get the full window.
        """
        m, t = self.model, (lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device))
        if m.pad_left:
            return m(t(seq), t(lengths))
        order = np.argsort(lengths, kind="stable")
        parts = [m(t(seq[idx, : int(lengths[idx].max())]), t(lengths[idx]))
                 for idx in np.array_split(order, max(1, -(-len(order) // self.eval_rows)))]
        h = torch.cat(parts)
        out = torch.empty_like(h)
        out[t(order)] = h
        return out
