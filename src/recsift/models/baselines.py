"""Non-neural baselines: most-popular and item-to-item kNN.

Both fit on a `TrainingSet` of either kind (prefix samples or a user x item matrix), honour
per-sample weights, and score `EvalCases` over all items. They make the demo and tests real
without a GPU, and are the "is my neural model any good" floor on every dataset.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..data import EvalCases, SequenceSamples, TrainingSet
from .registry import register_model


@register_model("pop")
class Popularity:
    """Rank items by their (weighted) number of training targets / interactions."""

    def __init__(self) -> None:
        self.counts_: np.ndarray | None = None

    def fit(self, train: TrainingSet) -> Popularity:
        data = train.data
        if isinstance(data, SequenceSamples):
            items, n_items = data.targets, data.store.n_items
        else:
            _, items = data.coo_pairs()
            n_items = data.n_items
        self.counts_ = np.bincount(items, weights=train.weights, minlength=n_items + 1).astype(np.float32)
        return self

    def score(self, cases: EvalCases) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(cases), len(self.counts_)))


@register_model("itemknn")
class ItemKNN:
    """Item-to-item kNN with cosine-normalised co-occurrence.

    For prefix samples, an item at lag ``d <= window`` before a target co-occurs with it with
    weight ``w / d`` (sequence-aware, as in session kNN / sequential rules; Ludewig & Jannach
    2018). For a matrix, co-occurrence is ``X^T X``. Similarities are ``C_ij / sqrt(f_i f_j)``,
    pruned to the ``k`` largest per item. A case is scored by summing the rows of its last
    ``window`` history items with weight ``1 / lag`` (all history items, weight 1, for a matrix).
    """

    def __init__(self, k: int = 100, window: int = 3) -> None:
        self.k = k
        self.window = window
        self.sim_: sp.csr_matrix | None = None
        self.sequential_ = True

    def fit(self, train: TrainingSet) -> ItemKNN:
        data = train.data
        if isinstance(data, SequenceSamples):
            n = data.store.n_items + 1
            rows, cols, vals = [], [], []
            start = data.store.indptr[data.user]
            for d in range(1, self.window + 1):
                ok = data.pos - d >= start
                rows.append(data.store.items[data.pos[ok] - d])
                cols.append(data.targets[ok])
                vals.append(train.weights[ok] / d)
            c = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
            c = c + c.T  # co-occurrence in either order
            self.sequential_ = True
        else:
            x = data.csr.copy()
            x.data = x.data * train.weights
            c = (x.T @ x).tocsr()
            c.setdiag(0)
            n = data.n_items + 1
            self.sequential_ = False
        c.eliminate_zeros()
        f = np.asarray(c.sum(axis=1)).ravel()
        inv = np.zeros_like(f)
        inv[f > 0] = 1.0 / np.sqrt(f[f > 0])
        s = (sp.diags(inv) @ c @ sp.diags(inv)).tocsr()
        self.sim_ = _top_k_per_row(s, self.k).astype(np.float32)
        self.n_ = n
        return self

    def score(self, cases: EvalCases) -> np.ndarray:
        if self.sequential_:
            hist = cases.padded_histories(self.window)  # right-aligned, last column = most recent
            lag = np.arange(self.window, 0, -1, dtype=np.float32)[None, :]
            w = np.where(hist > 0, 1.0 / lag, 0.0).astype(np.float32)
            rows = np.repeat(np.arange(len(cases)), self.window)
            q = sp.csr_matrix((w.ravel(), (rows, hist.ravel())), shape=(len(cases), self.n_))
        else:
            q = sp.csr_matrix((np.ones(len(cases.hist_items), np.float32), cases.hist_items, cases.hist_indptr),
                              shape=(len(cases), self.n_))
        return np.asarray((q @ self.sim_).todense(), dtype=np.float32)


def _top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row of a CSR matrix."""
    m = m.tocsr()
    m.sort_indices()
    lens = np.diff(m.indptr)
    if lens.max(initial=0) <= k:
        return m
    row = np.repeat(np.arange(m.shape[0]), lens)
    order = np.lexsort((-m.data, row))  # by row, then value descending
    rank = np.arange(len(order)) - np.repeat(m.indptr[:-1], lens)
    keep = np.zeros(len(order), dtype=bool)
    keep[order[rank < k]] = True
    return sp.csr_matrix((m.data[keep], (row[keep], m.indices[keep])), shape=m.shape)
