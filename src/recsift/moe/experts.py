"""What the frozen experts say about every training sample, computed once.

Per expert ``e`` and sample ``x`` (target ``y``, expert probabilities ``p_e = softmax(z_e)``) the
gate features of the seed (ALGORITHMS.md §6.2): entropy of ``p_e``, ``p_e[y]``, the AUM margin
``p_e[y] - max_{j!=y} p_e[j]`` and EL2N ``||p_e - e_y||``; plus whether ``y`` is in the expert's
top ``K`` (expert agreement) and the first expert's representation (the gate's session
embedding, L2-normalised). Three data statistics join the features: log prefix length, mean log
popularity of the prefix items, log popularity of the target (the seed's ``get_seq_feat`` is
missing from its repository; these are our choice). All experts run in the ``prefix`` layout so
their batches align sample by sample; their weights are never touched.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data import SequenceSamples, TrainingSet
from ..train import TrainConfig, sample_outputs, trainer_for

FEATURES = ("entropy", "p_target", "aum_prob", "el2n")


@dataclass(frozen=True)
class Expert:
    name: str
    model: torch.nn.Module
    config: TrainConfig


@dataclass(frozen=True)
class ExpertOutputs:
    """Per-sample expert values: ``feats [N, E, 4]`` (see `FEATURES`), ``correct [N, E]``,
    ``stats [N, 3]`` data statistics, ``embedding [N, d]`` of the first expert."""

    names: tuple[str, ...]
    feats: np.ndarray
    correct: np.ndarray
    stats: np.ndarray
    embedding: np.ndarray

    @property
    def p_target(self) -> np.ndarray:
        return self.feats[:, :, FEATURES.index("p_target")]

    def _raw_features(self) -> np.ndarray:
        return np.concatenate([self.stats, self.feats.reshape(len(self.feats), -1)], axis=1).astype(np.float64)

    def feature_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Column mean and standard deviation of the raw gate features."""
        f = self._raw_features()
        return f.mean(0), np.maximum(f.std(0), 1e-8)

    def gate_features(self, moments: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """``[N, 3 + 4E]`` = data statistics + per-expert features, standardised column-wise
        (by ``moments`` when given, e.g. those of the samples the gate was trained on)."""
        mean, std = self.feature_moments() if moments is None else moments
        return ((self._raw_features() - mean) / std).astype(np.float32)


def _prefix_config(config: TrainConfig, batch_size: int) -> TrainConfig:
    return config.model_copy(update={"layout": "prefix", "batch_size": batch_size, "progress": False})


def data_statistics(train_set: TrainingSet, max_len: int = 50, counts: np.ndarray | None = None) -> np.ndarray:
    """``[N, 3]``: log(1 + prefix length), mean log(1 + count) of the prefix items, log(1 + count) of the target.

    ``counts`` (item -> count) defaults to the counts in ``train_set``'s own store; pass the
    training data's counts when ``train_set`` holds held-out cases."""
    s: SequenceSamples = train_set.data
    if counts is None:
        counts = s.store.item_counts()
    counts = np.asarray(counts, dtype=np.float64)
    logc = np.log1p(counts)
    logc[0] = 0.0
    out = np.zeros((len(s), 3), np.float32)
    for lo in range(0, len(s), 100_000):
        idx = np.arange(lo, min(lo + 100_000, len(s)))
        w = s.prefixes(idx, max_len=max_len)
        n = np.maximum((w > 0).sum(1), 1)
        out[idx, 0] = np.log1p(s.prefix_lengths[idx])
        out[idx, 1] = logc[w].sum(1) / n
        out[idx, 2] = logc[s.targets[idx]]
    return out


def expert_outputs(experts: Sequence[Expert], train_set: TrainingSet, *, top_k: int = 20,
                   batch_size: int = 1024, counts: np.ndarray | None = None) -> ExpertOutputs:
    """Run every frozen expert once over ``train_set`` (eval mode, prefix layout); ``counts`` as
    in `data_statistics`."""
    n, n_exp = len(train_set), len(experts)
    feats = np.zeros((n, n_exp, len(FEATURES)), np.float32)
    correct = np.zeros((n, n_exp), bool)
    emb = None
    for e, ex in enumerate(experts):
        out = sample_outputs(ex.model, train_set, _prefix_config(ex.config, batch_size), embeddings=e == 0)
        for j, key in enumerate(FEATURES):
            feats[:, e, j] = out[key]
        correct[:, e] = out["rank"] < top_k
        if e == 0:
            emb = out["embedding"]
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return ExpertOutputs(tuple(ex.name for ex in experts), feats, correct,
                         data_statistics(train_set, counts=counts), emb)


def aligned_logits(experts: Sequence[Expert], train_set: TrainingSet, *,
                   batch_size: int = 1024) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """Batches ``(sample_idx, logits [E, B, n_items + 1], targets)`` of all experts on the same samples."""
    gens = []
    for ex in experts:
        tr = trainer_for(ex.model, _prefix_config(ex.config, batch_size))
        tr._prepare(train_set)
        tr.model.eval()
        gens.append(tr.forward_samples())
    with torch.no_grad():
        for parts in zip(*gens):
            idx = parts[0][0]
            yield idx.cpu().numpy(), torch.stack([p[1] for p in parts]), parts[0][2]


def train_experts(split, train_set: TrainingSet, names: Sequence[str], config: TrainConfig,
                  params: dict[str, dict] | None = None) -> list[Expert]:
    """Train each named model on ``train_set`` (early stopping on the split's validation cases)."""
    from ..train import train_model

    out = []
    for name in names:
        res = train_model(split, name, config, train_set=train_set, model_params=(params or {}).get(name),
                          evaluate_test=False)
        res.model.eval()
        for p in res.model.parameters():
            p.requires_grad_(False)
        out.append(Expert(name, res.model, config))
    return out
