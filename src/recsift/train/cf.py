"""`CFTrainer`: user x item models (BPR-MF, NeuMF) trained on the stored interactions.

One unit = one stored (user, item) interaction of the `InteractionMatrix`, with its weight.
Negatives are drawn uniformly among items the user has no training interaction with
(rejection sampling against the sorted positive keys, vectorised). The epoch loop, early
stopping and evaluation are the shared ones of `Trainer`.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data import EvalCases, InteractionMatrix, TrainingSet
from ..errors import ConfigError
from .dynamics import DynamicsRecorder
from .losses import get_loss, masked_log_softmax, weighted_mean
from .trainer import Trainer


def sample_negatives(users: np.ndarray, k: int, n_items: int, pos_keys: np.ndarray, rng: np.random.Generator,
                     max_rounds: int = 100) -> np.ndarray:
    """``[len(users), k]`` items in 1..n_items that the user has no positive for (``pos_keys`` sorted)."""
    neg = rng.integers(1, n_items + 1, size=(len(users), k))
    stride = n_items + 1
    for _ in range(max_rounds):
        keys = users[:, None] * stride + neg
        hit = np.searchsorted(pos_keys, keys)
        bad = (hit < len(pos_keys)) & (pos_keys[np.minimum(hit, len(pos_keys) - 1)] == keys)
        if not bad.any():
            return neg
        neg[bad] = rng.integers(1, n_items + 1, size=int(bad.sum()))
    raise ConfigError("could not sample negatives: some user has interacted with (almost) every item")


class CFTrainer(Trainer):
    """Pairwise/pointwise training over stored interactions, or full-softmax CE over items."""

    def _prepare(self, train: TrainingSet) -> None:
        if not isinstance(train.data, InteractionMatrix):
            raise ConfigError("CF models train on an interaction matrix; got prefix samples (use a sequential model)")
        if len(train) == 0:
            raise ConfigError("the training set is empty; a budget must keep at least one interaction")
        self.users, self.items = train.data.coo_pairs()
        self.weights = train.weights
        self.pos_keys = np.sort(self.users * (train.data.n_items + 1) + self.items)
        self.layout = "pairs"
        self.n_train = len(train)

    def _train_epoch(self, epoch: int, recorder: DynamicsRecorder | None) -> float:
        cfg, model, dev = self.config, self.model, self.device
        order = self.rng.permutation(len(self.users))
        total, count = 0.0, 0
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo: lo + cfg.batch_size]
            u_np = self.users[idx]
            u = torch.from_numpy(u_np).to(dev)
            i = torch.from_numpy(self.items[idx]).to(dev)
            w = torch.from_numpy(self.weights[idx]).to(dev)
            logits = logp = None
            if self.loss_name == "ce":
                logits = model.score_users(u)
                logp = masked_log_softmax(logits)
                per = get_loss("ce")(logp, i)
            else:
                neg = sample_negatives(u_np, cfg.n_negatives, model.n_items, self.pos_keys, self.rng)
                scores = model(u, torch.cat([i.view(-1, 1), torch.from_numpy(neg).to(dev)], dim=1))
                per = get_loss(self.loss_name)(scores[:, 0], scores[:, 1:])
            value = self._step(weighted_mean(per, w))
            if recorder is not None:
                with torch.no_grad():
                    if logits is None:
                        logits = model.score_users(u)
                    recorder.update(epoch, torch.from_numpy(idx), logits, i, logp=logp)
            total += value * len(idx)
            count += len(idx)
        return total / max(count, 1)

    def forward_samples(self):
        for lo in range(0, len(self.users), self.config.batch_size):
            idx = np.arange(lo, min(lo + self.config.batch_size, len(self.users)))
            u = torch.from_numpy(self.users[idx]).to(self.device)
            yield torch.from_numpy(idx), self.model.score_users(u), torch.from_numpy(self.items[idx]).to(self.device), None

    def score(self, cases: EvalCases) -> torch.Tensor:
        return self.model.score_users(torch.from_numpy(cases.user).to(self.device))
