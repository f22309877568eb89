"""BPR-MF: matrix factorisation trained with the BPR pairwise loss.

Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.
Reference: RecBole 1.2.1 ``recbole/model/general_recommender/bpr.py`` (embedding 64,
xavier-normal init, score = <p_u, q_i>). Deviation: none in the model; negatives are drawn
by the CF trainer uniformly among the user's non-interacted items, as RecBole does.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import CFRecommender
from .registry import register_model


@register_model("bpr")
class BPRMF(CFRecommender):
    default_loss = "bpr"
    paper = "Rendle et al., UAI 2009"

    def __init__(self, n_users: int, n_items: int, embedding_size: int = 64) -> None:
        super().__init__(n_users, n_items)
        self.user_embedding = nn.Embedding(n_users, embedding_size)
        self.item_embedding = nn.Embedding(n_items + 1, embedding_size)
        nn.init.xavier_normal_(self.user_embedding.weight)
        nn.init.xavier_normal_(self.item_embedding.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of ``items [B, k]`` for ``users [B]`` -> ``[B, k]``."""
        return torch.einsum("bd,bkd->bk", self.user_embedding(users), self.item_embedding(items))

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_embedding(users) @ self.item_embedding.weight.t()
