"""Planted noise for experiments: random sessions for a sequential training set
(`inject_noisy_sequences`), random user-item interactions for a matrix (`inject_random_interactions`).

The injected sessions copy the length distribution of the real ones and draw their items
i.i.d. from the empirical item frequencies (``items="popularity"``, so neither length nor
popularity gives them away — only order/coherence does) or uniformly (``items="uniform"``).
Valid and test cases are untouched: the noise only ever enters training.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError
from .matrix import InteractionMatrix
from .sequences import SequenceSamples, SequenceStore
from .training_set import TrainingSet


def inject_noisy_sequences(train_set: TrainingSet, frac: float, *, rng: np.random.Generator,
                           items: str = "popularity") -> tuple[TrainingSet, np.ndarray]:
    """``train_set`` plus ``round(frac * n_sequences)`` random sequences; returns the new set and a
    boolean mask over its samples marking the injected ones (their users follow the real ones)."""
    if not isinstance(train_set.data, SequenceSamples):
        raise ConfigError("noise injection works on prefix samples (a sequential training set)")
    if not 0 <= frac <= 10:
        raise ConfigError(f"noise fraction {frac} out of range; give e.g. 0.1 for 10% extra sequences")
    store = train_set.data.store
    lens = store.lengths[store.lengths >= 2]
    n_new = int(round(frac * store.n_users))
    new_lens = rng.choice(lens, size=n_new, replace=True)
    if items == "popularity":
        freq = store.item_counts()[1:].astype(np.float64)
        new_items = rng.choice(np.arange(1, store.n_items + 1), size=int(new_lens.sum()), p=freq / freq.sum())
    elif items == "uniform":
        new_items = rng.integers(1, store.n_items + 1, size=int(new_lens.sum()))
    else:
        raise ConfigError(f"items={items!r}: use 'popularity' or 'uniform'")
    indptr = np.concatenate([store.indptr, store.indptr[-1] + np.cumsum(new_lens)]).astype(np.int64)
    big = SequenceStore(indptr, np.concatenate([store.items, new_items]).astype(np.int64), store.n_items)
    added = SequenceSamples.all_prefixes(SequenceStore(indptr[store.n_users:] - indptr[store.n_users],
                                                       new_items.astype(np.int64), store.n_items))
    s = train_set.data
    n_old = len(s)
    user = np.concatenate([s.user, added.user + store.n_users])
    pos = np.concatenate([s.pos, added.pos + store.indptr[-1]])
    sample_id = np.concatenate([s.sample_id, s.sample_id.max(initial=-1) + 1 + np.arange(len(added))])
    weights = np.concatenate([train_set.weights, np.ones(len(added), np.float32)])
    out = TrainingSet(SequenceSamples(big, user, pos, sample_id), weights,
                      {**train_set.provenance, "noise": {"frac": frac, "items": items, "sequences": n_new}})
    noisy = np.zeros(len(out), bool)
    noisy[n_old:] = True
    return out, noisy


def inject_random_interactions(train_set: TrainingSet, frac: float, *,
                               rng: np.random.Generator) -> tuple[TrainingSet, np.ndarray]:
    """``train_set`` (a user x item matrix) plus ``round(frac * nnz)`` new interactions, each a
    uniformly random (user, item) pair among the users with training interactions and all items,
    never one already present (the Distill-CF noise experiment). Returns the new set and a
    boolean mask over its stored interactions (CSR order) marking the injected ones."""
    if not isinstance(train_set.data, InteractionMatrix):
        raise ConfigError("random-interaction noise works on a user x item matrix (split.training_set('matrix'))")
    if not 0 <= frac <= 1:
        raise ConfigError(f"noise fraction {frac} out of range; give e.g. 0.05 for 5% extra interactions")
    m = train_set.data
    u, i = m.coo_pairs()
    users = np.flatnonzero(np.diff(m.csr.indptr) > 0)
    n_new = int(round(frac * len(u)))
    free = len(users) * m.n_items - len(u)
    if n_new > free:
        raise ConfigError(f"cannot add {n_new} new interactions: only {free} user-item pairs are empty")
    base = np.int64(m.n_items + 1)
    taken = u * base + i
    new = np.zeros(0, np.int64)
    while len(new) < n_new:  # rejection: drop pairs already present or drawn twice
        draw = rng.choice(users, size=2 * (n_new - len(new)) + 16) * base + rng.integers(1, m.n_items + 1, size=2 * (
            n_new - len(new)) + 16)
        draw = draw[~np.isin(draw, taken)]
        new = np.concatenate([new, draw])
        _, first = np.unique(new, return_index=True)
        new = new[np.sort(first)]
    new = new[:n_new]
    keys = np.concatenate([taken, new])
    order = np.argsort(keys, kind="stable")  # CSR order of the combined matrix
    keys = keys[order]
    values = np.concatenate([m.csr.data, np.ones(n_new, np.float32)])[order]
    weights = np.concatenate([train_set.weights, np.ones(n_new, np.float32)])[order]
    is_new = order >= len(u)
    indptr = np.searchsorted(keys // base, np.arange(m.n_users + 1)).astype(np.int64)
    out_m = InteractionMatrix(sp.csr_matrix((values, (keys % base).astype(np.int32), indptr),
                                            shape=(m.n_users, m.n_items + 1)))
    out = TrainingSet(out_m, weights, {**train_set.provenance,
                                       "noise": {"frac": frac, "kind": "random interactions", "added": n_new}})
    return out, is_new
