"""`sample_outputs`: what a trained model says about each of its training samples (eval mode).

The inputs of the final-model scores (loss, entropy, margin — ALGORITHMS.md §2.2) and of the
embedding-based ones (Moderate, Prototype, the kNN data graph): one pass over the training set
with dropout off, no gradients, in the trainer's own layout.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data import TrainingSet
from .config import TrainConfig
from .dynamics import per_sample_stats

OUTPUT_KEYS = ("loss", "p_target", "entropy", "margin", "el2n", "aum_prob", "rank")


def sample_outputs(model: torch.nn.Module, train_set: TrainingSet, config: TrainConfig | None = None, *,
                   embeddings: bool = False) -> dict[str, np.ndarray]:
    """Per-unit ``loss``, ``p_target``, ``entropy``, ``margin``, ``el2n`` and ``rank`` (0 = target
    ranked first, ties pessimistic) of ``model`` on ``train_set``; with ``embeddings`` also the
    ``[n, d]`` float32 representations (sequential models: the encoder output that scores the items)."""
    from .api import trainer_for

    cfg = config or TrainConfig()
    trainer = trainer_for(model, cfg.model_copy(update={"progress": False}))
    trainer._prepare(train_set)
    n = len(train_set)
    out = {k: np.zeros(n, np.float32) for k in OUTPUT_KEYS}
    emb = None
    was_training = trainer.model.training
    trainer.model.eval()
    try:
        with torch.no_grad():
            for idx, logits, targets, h in trainer.forward_samples():
                st = per_sample_stats(logits, targets, pessimistic_rank=True)
                i = idx.cpu().numpy()
                for k in OUTPUT_KEYS:
                    out[k][i] = st[k].float().cpu().numpy()
                if embeddings and h is not None:
                    if emb is None:
                        emb = np.zeros((n, h.shape[-1]), np.float32)
                    emb[i] = h.float().cpu().numpy()
    finally:
        trainer.model.train(was_training)
    if embeddings:
        if emb is None:
            from ..errors import ConfigError

            raise ConfigError(f"{type(model).__name__} has no per-sample representation; embedding scores need a "
                              "sequential model")
        out["embedding"] = emb
    return out
