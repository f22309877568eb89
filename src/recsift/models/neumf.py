"""NeuMF: generalised matrix factorisation fused with an MLP (neural collaborative filtering).

He et al., "Neural Collaborative Filtering", WWW 2017. Reference: RecBole 1.2.1
``recbole/model/general_recommender/neumf.py``: GMF branch ``p_u * q_i`` (64-d), MLP branch
``[p'_u; q'_i]`` (64 + 64) -> [128, 64] ReLU with dropout 0.1, prediction
``w^T [gmf; mlp] + b``; embeddings N(0, 0.01); trained with BCE on 1 sampled negative
per positive (the IFRQE setting). Deviation: the score is the pre-sigmoid logit (ranking is
unchanged; the loss applies the sigmoid in a numerically stable log-sigmoid).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import CFRecommender
from .registry import register_model


@register_model("neumf")
class NeuMF(CFRecommender):
    default_loss = "bce"
    paper = "He et al., WWW 2017"

    def __init__(self, n_users: int, n_items: int, mf_embedding_size: int = 64, mlp_embedding_size: int = 64,
                 mlp_hidden_size: tuple[int, ...] = (128, 64), dropout_prob: float = 0.1,
                 score_chunk: int = 64) -> None:
        super().__init__(n_users, n_items)
        self.user_mf = nn.Embedding(n_users, mf_embedding_size)
        self.item_mf = nn.Embedding(n_items + 1, mf_embedding_size)
        self.user_mlp = nn.Embedding(n_users, mlp_embedding_size)
        self.item_mlp = nn.Embedding(n_items + 1, mlp_embedding_size)
        layers: list[nn.Module] = []
        width = 2 * mlp_embedding_size
        for h in mlp_hidden_size:
            layers += [nn.Dropout(dropout_prob), nn.Linear(width, h), nn.ReLU()]
            width = h
        self.mlp = nn.Sequential(*layers)
        self.predict = nn.Linear(mf_embedding_size + width, 1)
        self.score_chunk = score_chunk
        for emb in (self.user_mf, self.item_mf, self.user_mlp, self.item_mlp):
            nn.init.normal_(emb.weight, 0.0, 0.01)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.kaiming_uniform_(self.predict.weight, a=1, nonlinearity="sigmoid")

    def _score(self, u_mf, u_mlp, items):  # u_*: [B, k, d] broadcast against items [B, k]
        gmf = u_mf * self.item_mf(items)
        mlp = self.mlp(torch.cat([u_mlp.expand(-1, items.size(1), -1), self.item_mlp(items)], dim=-1))
        return self.predict(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits of ``items [B, k]`` for ``users [B]`` -> ``[B, k]``."""
        return self._score(self.user_mf(users).unsqueeze(1), self.user_mlp(users).unsqueeze(1), items)

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """All items for each user, in user chunks so the MLP input stays bounded."""
        all_items = torch.arange(self.n_items + 1, device=users.device)
        out = []
        for lo in range(0, len(users), self.score_chunk):
            u = users[lo: lo + self.score_chunk]
            items = all_items.expand(len(u), -1)
            out.append(self.forward(u, items))
        return torch.cat(out)
