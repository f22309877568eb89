"""GRU4Rec: a recurrent next-item model.

Papers: B. Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks",
ICLR 2016; Y. K. Tan et al., "Improved Recurrent Neural Networks for Session-based
Recommendations", DLRS 2016 (prefix augmentation, which recsift's samples already are).
Reference implementation: RecBole 1.2.1, ``recbole/model/sequential_recommender/gru4rec.py``;
defaults from ``recbole/properties/model/GRU4Rec.yaml``.

Architecture (RecBole): item embedding -> dropout -> GRU (no biases) -> Linear
``hidden_size -> embedding_size`` at every step -> the output at the last real position;
scores are dot products with the tied item table. Initialisation as RecBole: Xavier-normal
item embedding (padding row included), Xavier-uniform GRU weights, PyTorch's default for the
dense layer.

Deviations from RecBole:

* With ``num_layers > 1`` RecBole only re-initialises the first GRU layer (it names
  ``weight_ih_l0``/``weight_hh_l0``); here every layer gets Xavier-uniform. The default
  (one layer) is identical.
* ``forward`` applies the dense layer to the gathered last state only (the same numbers as
  RecBole's dense-then-gather, less work); ``forward_all`` (all-prefix layout, new) applies
  it at every step. A GRU is causal, so step j equals ``forward`` on the prefix ending at j.
* Dropout is ``layers.Dropout`` (same semantics, faster mask on CPU; see ``layers.py``).
* The GRU skips padding (``layers.run_rnn``: a packed sequence when a batch's rows differ in
  length); RecBole runs it over the padding too. Real positions get the same states.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import SequentialRecommender, gather_last
from .layers import Dropout, run_rnn
from .registry import register_model


@register_model("gru4rec")
class GRU4Rec(SequentialRecommender):
    """Embedding -> dropout -> GRU -> dense, RecBole 1.2.1 architecture and defaults."""

    causal = True
    pad_left = False
    paper = "Hidasi et al., Session-based Recommendations with Recurrent Neural Networks, ICLR 2016"

    def __init__(self, n_items: int, max_len: int = 50, embedding_size: int = 64,
                 hidden_size: int = 128, num_layers: int = 1, dropout_prob: float = 0.3) -> None:
        super().__init__(n_items, max_len, embedding_size)
        self.hidden_size = int(hidden_size)
        self.emb_dropout = Dropout(dropout_prob)
        self.gru_layers = nn.GRU(embedding_size, hidden_size, num_layers, bias=False, batch_first=True)
        self.dense = nn.Linear(hidden_size, embedding_size)
        nn.init.xavier_normal_(self.item_embedding.weight)
        for name, w in self.gru_layers.named_parameters():
            if name.startswith("weight_"):
                nn.init.xavier_uniform_(w)

    def _states(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return run_rnn(self.gru_layers, self.emb_dropout(self.item_embedding(seq)), lengths)  # [B, L, hidden]

    def forward_all(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.dense(self._states(seq, lengths))

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.dense(gather_last(self._states(seq, lengths), lengths))
