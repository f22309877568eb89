"""NARM: neural attentive session-based recommendation.

Paper: J. Li et al., "Neural Attentive Session-based Recommendation", CIKM 2017.
Reference implementation: RecBole 1.2.1, ``recbole/model/sequential_recommender/narm.py``;
defaults from ``recbole/properties/model/NARM.yaml``.

Architecture (RecBole): item embedding -> dropout ``dropout_probs[0]`` -> GRU (no biases)
-> hidden states ``H``; global encoder ``c_g = H_t`` (last real state); local encoder
``alpha_j = v^T sigmoid(A1 H_j + A2 c_g)`` over the real positions (no softmax, as in
RecBole and the paper), ``c_l = sum_j alpha_j H_j``; ``c = dropout_probs[1]([c_l; c_g])``;
representation ``B c`` (``2 hidden -> embedding``, no bias), scored against the tied item
table. Initialisation as RecBole: Xavier-normal embedding and Linear weights, PyTorch's
default for the GRU.

Deviations from RecBole:

* RecBole masks padding by multiplying ``sigmoid(.)`` by 0 before ``v``; this is the same
  value (``v`` has no bias) computed as a masked ``alpha``.
* ``forward_all`` (all-prefix layout, new): for every position t, ``c_g = H_t`` and the sum
  runs over j <= t, i.e. exactly ``forward`` on the prefix ending at t. This materialises
  about ``L (L + 1) / 2`` vectors ``sigmoid(A1 H_j + A2 H_t)`` per row (``[B, ~L^2/2,
  hidden]`` floats kept for backward, ~0.36 GB at B = 512, L = 50), in blocks of query
  positions.
* Dropout is ``layers.Dropout`` (same semantics, faster mask on CPU; see ``layers.py``).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import SequentialRecommender, gather_last
from .layers import Dropout, run_rnn
from .registry import register_model

# forward_all handles this many query positions per block: [B, block, <= L, hidden] at a time.
# Blocks of 5 were ~25% faster than gathering the L(L+1)/2 pairs j <= t (fewer passes over
# memory; at most block-1 wasted pairs per row).
_T_BLOCK = 5


@register_model("narm")
class NARM(SequentialRecommender):
    """GRU with a global and an attentive local encoder (Li et al. 2017), RecBole 1.2.1 defaults."""

    causal = True
    pad_left = False
    paper = "Li et al., Neural Attentive Session-based Recommendation, CIKM 2017"

    def __init__(self, n_items: int, max_len: int = 50, embedding_size: int = 64,
                 hidden_size: int = 128, n_layers: int = 1,
                 dropout_probs: tuple[float, float] = (0.25, 0.5)) -> None:
        super().__init__(n_items, max_len, embedding_size)
        self.hidden_size = int(hidden_size)
        self.dropout_probs = tuple(float(p) for p in dropout_probs)
        self.emb_dropout = Dropout(self.dropout_probs[0])
        self.gru = nn.GRU(embedding_size, hidden_size, n_layers, bias=False, batch_first=True)
        self.a_1 = nn.Linear(hidden_size, hidden_size, bias=False)
        self.a_2 = nn.Linear(hidden_size, hidden_size, bias=False)
        self.v_t = nn.Linear(hidden_size, 1, bias=False)
        self.ct_dropout = Dropout(self.dropout_probs[1])
        self.b = nn.Linear(2 * hidden_size, embedding_size, bias=False)
        for m in (self.item_embedding, self.a_1, self.a_2, self.v_t, self.b):
            nn.init.xavier_normal_(m.weight)

    def _states(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return run_rnn(self.gru, self.emb_dropout(self.item_embedding(seq)), lengths)  # [B, L, hidden]

    def _readout(self, c_local: torch.Tensor, c_global: torch.Tensor) -> torch.Tensor:
        return self.b(self.ct_dropout(torch.cat([c_local, c_global], dim=-1)))

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self._states(seq, lengths)
        c_global = gather_last(h, lengths)
        alpha = self.v_t(torch.sigmoid(self.a_1(h) + self.a_2(c_global).unsqueeze(1))).squeeze(-1)
        alpha = alpha * (seq > 0)
        c_local = torch.bmm(alpha.unsqueeze(1), h).squeeze(1)
        return self._readout(c_local, c_global)

    def forward_all(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        n = seq.size(1)
        h = self._states(seq, lengths)
        q1, q2 = self.a_1(h), self.a_2(h)  # q1 for the attended state j, q2 for the query state t
        real = (seq > 0).unsqueeze(1)  # [B, 1, L(j)]
        c_local = []
        for t0 in range(0, n, _T_BLOCK):  # query positions t0..t1-1 attend to j < t1
            t1 = min(t0 + _T_BLOCK, n)
            s = torch.sigmoid(q1[:, None, :t1] + q2[:, t0:t1, None])  # [B, T, t1, hidden]
            future = torch.ones(t1 - t0, t1, dtype=torch.bool, device=seq.device).triu(t0 + 1)
            alpha = self.v_t(s).squeeze(-1).masked_fill(future, 0.0) * real[..., :t1]
            c_local.append(torch.bmm(alpha, h[:, :t1]))
        return self._readout(torch.cat(c_local, dim=1), h)
