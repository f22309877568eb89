"""SR-GNN: session-based recommendation with graph neural networks.

Paper: Shu Wu, Yuyuan Tang, Yanqiao Zhu, Liang Wang, Xing Xie, Tieniu Tan. "Session-based
Recommendation with Graph Neural Networks." AAAI 2019.
Reference implementation followed: RecBole 1.2.1,
``recbole/model/sequential_recommender/srgnn.py`` (itself a port of CRIPAC-DIG/SR-GNN).

Each prefix is a directed graph over its unique items (see :mod:`.session_graph`); one
gated-GNN step (``step = 1``) refines the node states; the session is read out as

    s_l = state of the last click,   alpha_j = q^T sigmoid(W1 s_l + W2 v_j),
    s_g = sum_j alpha_j v_j  (over sequence positions, repeats counted),   h = W3 [s_g ; s_l]

and items are scored by ``h @ E^T`` with the tied item table. All weights are initialised
uniform(+-1/sqrt(d)), as in RecBole.

Deviations from RecBole 1.2.1
-----------------------------
* The session graphs are built for the whole batch with tensor ops on the model's device
  (:func:`~.session_graph.build_session_graph`), not per sample in numpy; the matrices are
  identical, the node axis is trimmed to the batch's largest node count (isolated padding
  nodes only, so outputs are unchanged).
* The padding row 0 of the item table is reset to zero after the uniform init (RecBole
  leaves it random). Row 0 never reaches a representation (padding positions are masked and
  the item-0 node has no edges), and the trainer masks the padding column of the logits, so
  this only keeps ``logits[..., 0] == 0``.
* The loss (full-softmax CE, or BPR) lives in the shared trainer, not in the model.
* Not causal: every prefix needs its own graph, so train it with ``layout='prefix'``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError
from .base import SequentialRecommender, gather_last
from .registry import register_model
from .session_graph import GatedGraphStep, build_session_graph, gather_nodes


@register_model("srgnn")
class SRGNN(SequentialRecommender):
    """SR-GNN (Wu et al., AAAI 2019) with RecBole 1.2.1 defaults (``embedding_size 64, step 1``)."""

    causal = False
    pad_left = False
    paper = "Wu et al., Session-based Recommendation with Graph Neural Networks, AAAI 2019"

    def __init__(self, n_items: int, max_len: int = 50, embedding_size: int = 64, step: int = 1) -> None:
        if step < 1:
            raise ConfigError(f"srgnn: step must be >= 1 (number of GNN steps), got {step}")
        super().__init__(n_items, max_len, embedding_size)
        d = self.embedding_size
        self.step = int(step)
        self.gnn = GatedGraphStep(d, self.step, node_bias=True)
        self.linear_one = nn.Linear(d, d)  # W1, on the last click
        self.linear_two = nn.Linear(d, d)  # W2, on every position
        self.linear_three = nn.Linear(d, 1, bias=False)  # q
        self.linear_transform = nn.Linear(2 * d, d)  # W3
        bound = 1.0 / math.sqrt(d)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        g = build_session_graph(seq)
        nodes = self.gnn(g, self.item_embedding(g.node_items))  # [T, d], packed real nodes
        seq_hidden = gather_nodes(nodes, g)  # [B, L, d]
        last = gather_last(seq_hidden, lengths)  # s_l
        q1 = self.linear_one(last).unsqueeze(1)
        q2 = self.linear_two(seq_hidden)
        alpha = self.linear_three(torch.sigmoid(q1 + q2))  # [B, L, 1]
        mask = (seq > 0).unsqueeze(-1).to(seq_hidden.dtype)
        s_g = (alpha * seq_hidden * mask).sum(1)
        return self.linear_transform(torch.cat([s_g, last], dim=1))
