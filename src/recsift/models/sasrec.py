"""SASRec: self-attentive sequential recommendation.

Paper: W.-C. Kang and J. McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.
Reference implementation: RecBole 1.2.1, ``recbole/model/sequential_recommender/sasrec.py``
and ``TransformerEncoder`` in ``recbole/model/layers.py`` (BERT-style post-LN blocks); the
defaults below are those of ``recbole/properties/model/SASRec.yaml``.

Architecture: item embedding + learned absolute position embedding -> LayerNorm -> dropout
-> ``n_layers`` post-LN blocks (multi-head self-attention with a causal mask, then a GELU
feed-forward network; each sub-layer ends with dropout, residual and LayerNorm) -> the
output at the last real position. Scores are dot products with the (tied) item table.
Initialisation: N(0, initializer_range) for every Linear/Embedding weight (the padding row
included, as in RecBole), zero biases, LayerNorm weight 1 and bias 0.

The blocks (encoder, mask, dropout, init) live in ``layers.py``, shared with CORE, FMLP-Rec,
GRU4Rec and NARM; its docstring lists their deviations from RecBole (fused attention in
evaluation, the faster CPU dropout mask, the mask kept as "causal AND key is not padding").
None changes a real position's output or the dropout semantics. Specific to this model:

* ``forward`` computes the last block's query and feed-forward only at the last real
  position (keys and values everywhere): the same numbers as gathering the full output,
  about a quarter less work with two blocks.
* ``forward_all`` (all-prefix layout, new) is the output at every position, which the causal
  mask makes equal to ``forward`` on each prefix alone.
* ``forward_packed`` (new) is ``forward_all`` over rows that hold several windows back to back:
  positions restart at each window and attention stays inside it, so short sessions need not
  be padded to the longest one in the batch.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import SequentialRecommender
from .layers import (Dropout, TransformerEncoder, causal_padding_mask, check_length, init_normal_, packed_causal_mask,
                     position_vectors)
from .registry import register_model


@register_model("sasrec")
class SASRec(SequentialRecommender):
    """Causal self-attention encoder (Kang & McAuley 2018), RecBole 1.2.1 architecture and defaults."""

    causal = True
    packable = True
    pad_left = False
    paper = "Kang & McAuley, Self-Attentive Sequential Recommendation, ICDM 2018"

    def __init__(self, n_items: int, max_len: int = 50, n_layers: int = 2, n_heads: int = 2,
                 hidden_size: int = 64, inner_size: int = 256, hidden_dropout_prob: float = 0.5,
                 attn_dropout_prob: float = 0.5, hidden_act: str = "gelu",
                 layer_norm_eps: float = 1e-12, initializer_range: float = 0.02) -> None:
        super().__init__(n_items, max_len, hidden_size)
        self.position_embedding = nn.Embedding(self.max_len, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = Dropout(hidden_dropout_prob)
        self.trm_encoder = TransformerEncoder(n_layers, n_heads, hidden_size, inner_size,
                                              hidden_dropout_prob, attn_dropout_prob, hidden_act,
                                              layer_norm_eps)
        self.apply(lambda m: init_normal_(m, initializer_range))

    def _items(self, seq: torch.Tensor) -> torch.Tensor:
        return self.item_embedding(seq)

    def _embed(self, seq: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        check_length(seq, self.max_len, self.name)
        pos = position_vectors(self.position_embedding, seq, positions)
        return self.dropout(self.LayerNorm(self._items(seq) + pos))

    def forward_all(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.trm_encoder(self._embed(seq), causal_padding_mask(seq))

    def forward_packed(self, seq: torch.Tensor, positions: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        return self.trm_encoder(self._embed(seq, positions), packed_causal_mask(segments))

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        last = (lengths - 1).clamp(min=0).to(seq.device)
        return self.trm_encoder(self._embed(seq), causal_padding_mask(seq), last=last)


__all__ = ["SASRec"]
