"""EASE: embarrassingly shallow autoencoder (closed-form item-item regression).

Paper: Harald Steck. "Embarrassingly Shallow Autoencoders for Sparse Data." WWW 2019.

With the (weighted) user x item matrix X and Gram G = XᵀX + λI, the item-item weights with a
zero diagonal are ``B = I − P · diag(1 / diag(P))``, ``P = G⁻¹``; a user with history row x is
scored ``x B``. Like ∞-AE it has no user parameters, so it trains on *any* user x item matrix —
including Distill-CF's synthetic users — and scores real users from their histories. λ is an
absolute ridge on G (Steck's default 500 for ml-20m-sized data); with validation cases it is
chosen from ``lambdas`` by ``select_metric``. Memory is n_items² float64 (a limit is enforced).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..data import EvalCases, SequenceSamples, TrainingSet
from ..errors import ConfigError
from .registry import register_model

#: λ candidates when validation cases are given (absolute, on XᵀX)
EASE_LAMBDAS = (1.0, 10.0, 50.0, 200.0, 500.0, 2000.0)
#: refuse item counts whose Gram matrix would not fit comfortably (float64, n_items²)
MAX_ITEMS = 40_000


@register_model("ease")
class EASE:
    """EASE (Steck, WWW 2019): closed-form item-item weights; λ on validation when given."""

    paper = "Steck, Embarrassingly Shallow Autoencoders for Sparse Data, WWW 2019"

    def __init__(self, lam: float | None = None, lambdas: tuple[float, ...] = EASE_LAMBDAS,
                 select_metric: str = "ndcg@10") -> None:
        if lam is not None and lam <= 0:
            raise ConfigError(f"ease: lam={lam} must be > 0 (the ridge keeps XᵀX + λI invertible)")
        if not lambdas or min(lambdas) <= 0:
            raise ConfigError(f"ease: lambdas={lambdas} must be a non-empty list of values > 0")
        self.lam, self.lambdas, self.select_metric = lam, tuple(lambdas), select_metric
        self.lam_: float | None = None
        self.valid_metrics_: dict[float, float] = {}
        self.B_: torch.Tensor | None = None

    def fit(self, train: TrainingSet, valid: EvalCases | None = None, *, mask_history: bool = True) -> EASE:
        d = train.data
        if isinstance(d, SequenceSamples):  # prefix samples: each user's (weighted) training targets
            n = d.store.n_items
            x = sp.csr_matrix((train.weights, (d.user, d.targets)), shape=(int(d.user.max(initial=-1)) + 1, n + 1))
        else:
            x = d.csr.copy()
            x.data = x.data * train.weights
        if x.shape[1] - 1 > MAX_ITEMS:
            raise ConfigError(f"ease: {x.shape[1] - 1} items need a {x.shape[1] - 1}² Gram matrix; the limit is "
                              f"{MAX_ITEMS} items — keep the most popular items first")
        gram = torch.from_numpy(np.asarray((x.T @ x).todense(), dtype=np.float64))
        if self.lam is not None or valid is None:
            self.lam_ = float(self.lam if self.lam is not None else 500.0)
            self.B_ = _weights(gram, self.lam_)
            return self
        from ..evaluate import evaluate, parse_metric

        key = parse_metric(self.select_metric).key
        best = None
        for lam in self.lambdas:
            self.B_ = _weights(gram, lam)
            value = evaluate(self.score, valid, [key], mask_history=mask_history).means[key]
            self.valid_metrics_[lam] = value
            if best is None or value > best[0]:
                best = (value, lam, self.B_)
        _, self.lam_, self.B_ = best
        return self

    def score(self, cases: EvalCases) -> np.ndarray:
        if self.B_ is None:
            raise ConfigError("ease: call fit() before score()")
        n = self.B_.shape[0]
        q = sp.csr_matrix((np.ones(len(cases.hist_items), np.float32), cases.hist_items, cases.hist_indptr),
                          shape=(len(cases), n))
        return np.asarray(q @ self.B_.numpy(), dtype=np.float32)


def _weights(gram: torch.Tensor, lam: float) -> torch.Tensor:
    """``B = I − P diag(1/diag(P))`` with ``P = (G + λI)⁻¹``; the padding column 0 stays empty."""
    g = gram.clone()
    g.diagonal().add_(lam)
    p = torch.linalg.inv(g)
    b = -p / p.diagonal().unsqueeze(0)
    b.diagonal().zero_()
    b[0, :] = 0.0
    b[:, 0] = 0.0
    return b.float()
