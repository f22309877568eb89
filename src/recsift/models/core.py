"""CORE: session-based recommendation within a consistent representation space.

Paper: Y. Hou, B. Hu, Z. Zhang and W. X. Zhao, "CORE: Simple and Effective Session-based
Recommendation within Consistent Representation Space", SIGIR 2022 (RUCAIBox/CORE).
Reference implementation: RecBole 1.2.1, ``recbole/model/sequential_recommender/core.py``;
defaults from ``recbole/properties/model/CORE.yaml``.

Architecture (RecBole):

* Representation-consistent encoder: ``x = sess_dropout(E[seq])``; weights ``alpha`` over
  the real positions from either a causal transformer (``dnn_type="trm"``: ``x`` + learned
  position embedding -> LayerNorm -> dropout -> ``n_layers`` post-LN blocks with RecBole's
  uni-directional mask (causal AND key is not padding) -> Linear(d, 1) -> softmax over the
  real positions) or uniform weights (``"ave"``); session ``s = normalize(sum_j alpha_j x_j)``
  -- a weighted sum of the dropped-out *item embeddings*, not of transformer outputs.
* Robust distance measuring: ``logits = s . normalize(item_dropout(E))^T / temperature``;
  item dropout only while training (RecBole's ``calculate_loss`` vs ``full_sort_predict``).
* Initialisation: every parameter (embeddings, transformer, LayerNorm included) is
  U(-1/sqrt(d), 1/sqrt(d)), as RecBole's ``CORE._reset_parameters`` overwrites the
  transformer's own N(0, 0.02) init. RecBole's ``initializer_range`` therefore has no effect
  and is not a parameter here.

Deviations from RecBole:

* RecBole casts the position scores to float64, fills padding with -9e15 and takes the
  softmax in float32; here the scores stay float32 and padding is filled with -inf (the same
  probabilities; a row always has at least one real position).
* The transformer is ``layers.TransformerEncoder`` and every dropout (session, item,
  transformer) is ``layers.dropout``: same semantics, faster on CPU (see ``layers.py``).
* ``forward_all`` (all-prefix layout, new): the transformer is causal, so position j's
  score only depends on items <= j; the prefix ending at t takes the softmax of those scores
  over j <= t (one masked row of an ``[L, L]`` matrix per t), i.e. exactly ``forward`` on it.
  ``forward_packed`` does the same over rows holding several windows (positions restart and
  attention and pooling stay inside each window; see ``TrainConfig.pack``).
* ``grand_scale`` is ``||s|| / temperature`` (the logit is linear in the normalised item
  table with factor ``s / temperature``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import SequentialRecommender
from .layers import (Dropout, TransformerEncoder, causal_padding_mask, check_length, dropout, packed_causal_mask,
                     position_vectors)
from .registry import register_model


@register_model("core")
class CORE(SequentialRecommender):
    """Weighted sum of item embeddings, cosine logits with temperature (Hou et al. 2022)."""

    causal = True
    packable = True
    pad_left = False
    paper = ("Hou et al., CORE: Simple and Effective Session-based Recommendation within "
             "Consistent Representation Space, SIGIR 2022")

    def __init__(self, n_items: int, max_len: int = 50, embedding_size: int = 64,
                 dnn_type: str = "trm", n_layers: int = 2, n_heads: int = 2,
                 inner_size: int = 256, hidden_dropout_prob: float = 0.5,
                 attn_dropout_prob: float = 0.5, hidden_act: str = "gelu",
                 layer_norm_eps: float = 1e-12, sess_dropout: float = 0.2,
                 item_dropout: float = 0.2, temperature: float = 0.07) -> None:
        super().__init__(n_items, max_len, embedding_size)
        if dnn_type not in ("trm", "ave"):
            raise ConfigError(f"core: dnn_type must be 'trm' or 'ave', got {dnn_type!r}")
        if temperature <= 0:
            raise ConfigError(f"core: temperature must be > 0, got {temperature}")
        self.dnn_type = dnn_type
        self.temperature = float(temperature)
        self.sess_dropout = Dropout(sess_dropout)
        self.item_dropout_prob = float(item_dropout)
        if dnn_type == "trm":
            self.position_embedding = nn.Embedding(self.max_len, embedding_size)
            self.LayerNorm = nn.LayerNorm(embedding_size, eps=layer_norm_eps)
            self.dropout = Dropout(hidden_dropout_prob)
            self.trm_encoder = TransformerEncoder(n_layers, n_heads, embedding_size, inner_size,
                                                  hidden_dropout_prob, attn_dropout_prob,
                                                  hidden_act, layer_norm_eps)
            self.fn = nn.Linear(embedding_size, 1)
        stdv = 1.0 / math.sqrt(embedding_size)
        for w in self.parameters():
            nn.init.uniform_(w, -stdv, stdv)

    def _scores(self, seq: torch.Tensor, x: torch.Tensor, allowed: torch.Tensor | None = None,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        """Unnormalised position scores ``[B, L]`` (before the masked softmax); ``allowed`` and
        ``positions`` for packed rows (default: RecBole's causal mask, positions 0..L-1)."""
        if self.dnn_type == "ave":
            return torch.zeros_like(seq, dtype=x.dtype)
        check_length(seq, self.max_len, "core")
        pos = position_vectors(self.position_embedding, seq, positions)
        h = self.dropout(self.LayerNorm(x + pos))
        mask = causal_padding_mask(seq) if allowed is None else allowed
        return self.fn(self.trm_encoder(h, mask)).squeeze(-1)

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.sess_dropout(self.item_embedding(seq))
        # an empty history (all padding) pools nothing: weights 0, not the NaN of an all -inf softmax
        alpha = self._scores(seq, x).masked_fill(seq == 0, float("-inf")).softmax(-1).nan_to_num(0.0)
        return F.normalize(torch.bmm(alpha.unsqueeze(1), x).squeeze(1), dim=-1)

    def forward_all(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._pool_every_position(seq, causal_padding_mask(seq))

    def forward_packed(self, seq: torch.Tensor, positions: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        return self._pool_every_position(seq, packed_causal_mask(segments), positions)

    def _pool_every_position(self, seq: torch.Tensor, allowed: torch.Tensor,
                             positions: torch.Tensor | None = None) -> torch.Tensor:
        """Row t pools the items j the mask lets t see (``allowed [B, 1, L, L]``: j <= t, same window)."""
        x = self.sess_dropout(self.item_embedding(seq))
        scores = self._scores(seq, x, allowed, positions).unsqueeze(1).expand(-1, seq.size(1), -1)
        alpha = scores.masked_fill(~allowed.squeeze(1), float("-inf")).softmax(-1)  # row t always sees t
        return F.normalize(torch.bmm(alpha, x), dim=-1)

    # -- cosine scoring ----------------------------------------------------------------------
    def output_embedding(self) -> torch.Tensor:
        """The L2-normalised item table (no item dropout)."""
        return F.normalize(self.item_embedding.weight, dim=-1)

    def output_matrix(self) -> torch.Tensor:
        """Training and evaluation logits: cosine similarity over ``temperature``, with item dropout
        on the (unnormalised) table in training."""
        w = dropout(self.item_embedding.weight, self.item_dropout_prob, self.training)
        return F.normalize(w, dim=-1) / self.temperature

    def grand_scale(self, h: torch.Tensor) -> torch.Tensor:
        return h.norm(dim=-1) / self.temperature
