"""GCSAN: graph contextualized self-attention network.

Paper: Chengfeng Xu, Pengpeng Zhao, Yanchi Liu, Victor S. Sheng, Jiajie Xu, Fuzhen Zhuang,
Junhua Fang, Xiaofang Zhou. "Graph Contextualized Self-Attention Network for Session-based
Recommendation." IJCAI 2019.
Reference implementation followed: RecBole 1.2.1,
``recbole/model/sequential_recommender/gcsan.py`` with ``recbole/properties/model/GCSAN.yaml``
and the ``TransformerEncoder`` of ``recbole/model/layers.py``.

The SR-GNN session graph and one gated-GNN step (without SR-GNN's two extra node biases)
give node states; they are put back in sequence order and fed to ``n_layers`` post-LayerNorm
self-attention blocks with a left-to-right (causal) mask over the real positions. With
``a_t`` the last block's output and ``h_t`` the GNN state at the last click,
``h = weight * a_t + (1 - weight) * h_t``. Defaults are RecBole 1.2.1's GCSAN.yaml:
``n_layers 2, n_heads 2, hidden 64, inner 256, hidden/attn dropout 0.5/0.5, gelu,
layer_norm_eps 1e-12, initializer_range 0.02, step 1, weight 0.6, reg_weight 5e-5``.
Init as RecBole: every Linear/Embedding weight N(0, 0.02) with zero biases (this includes
the GNN's edge linears), LayerNorm (1, 0), the GNN's GRU matrices uniform(+-1/sqrt(d)).

Deviations from RecBole 1.2.1
-----------------------------
* Batched, on-device session graphs (:func:`~.session_graph.build_session_graph`);
  identical matrices, node axis trimmed to the batch's largest node count (outputs unchanged).
* Attention is ``layers.attention``: in evaluation ``F.scaled_dot_product_attention`` with a
  boolean mask (masked scores are -inf instead of RecBole's additive -10000; every query has a
  real key, so the probabilities are the same in float32); in training RecBole's chain with
  attention dropout on the probabilities. Dropout is ``layers.Dropout`` (same rate and
  rescaling as ``nn.Dropout``, a faster mask on CPU; other masks than torch's from a seed).
* The last self-attention block computes its query, attention, and FFN only at the last
  click, because only that output is read. Its keys and values still cover every position, so
  the output is the same (checked against RecBole's code: forward within 3e-7, gradients
  within float32 rounding). This is about 1.7x faster per training step on CPU. Dropout masks
  therefore come from a different random stream than in RecBole.
* The item-embedding L2 term is not added inside the model: :meth:`GCSAN.extra_loss`
  returns it and the trainer adds it to the (weighted) batch loss. It is RecBole's
  ``EmbLoss`` exactly: ``reg_weight * ||E||_F / E.shape[0]`` (the norm is *not* squared,
  and divided by the number of table rows, padding row included), as a 0-dim tensor.
* The padding row 0 of the item table is zeroed after init (RecBole leaves it random); it
  never reaches a representation, and the trainer masks the padding logit column.
* Not causal in recsift's sense (the graph spans the whole prefix): use ``layout='prefix'``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .base import SequentialRecommender, gather_last
from .layers import ACTIVATIONS, Dropout, attention, init_normal_
from .registry import register_model
from .session_graph import GatedGraphStep, build_session_graph, gather_nodes


class _SelfAttentionBlock(nn.Module):
    """RecBole's TransformerLayer: post-LN multi-head attention, then post-LN FFN.

    RecBole's GCSAN uses the same ``TransformerEncoder`` and the same mask
    (``get_attention_mask(item_seq)``, causal AND key is not padding) as its SASRec, and in
    evaluation this block computes exactly what ``layers.TransformerEncoder`` computes (same
    parameters, created and initialised in the same order; same fused attention and mask), and
    in training it uses the same dropout (``layers.Dropout``, ``layers.attention``). It is kept
    rather than replaced by the shared encoder for its state-dict keys (``layers.{i}.ln_attn``
    ...; the shared one's are ``...layer.{i}.attention.LayerNorm`` ...), so saved models load.
    """

    def __init__(self, d: int, n_heads: int, inner: int, p_hidden: float, p_attn: float, act: str, eps: float):
        super().__init__()
        self.n_heads, self.p_attn, self.act = n_heads, p_attn, ACTIVATIONS[act]
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.dense = nn.Linear(d, d)
        self.ln_attn = nn.LayerNorm(d, eps=eps)
        self.dense_1, self.dense_2 = nn.Linear(d, inner), nn.Linear(inner, d)
        self.ln_ffn = nn.LayerNorm(d, eps=eps)
        self.dropout = Dropout(p_hidden)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, xq: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, L, d]`` keys/values; queries ``xq [B, Q, d]`` (default ``x``); ``allowed [B, 1, Q, L]``."""
        xq = x if xq is None else xq

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)

        ctx = attention(heads(self.query(xq)), heads(self.key(x)), heads(self.value(x)), allowed, self.p_attn,
                        self.training).transpose(1, 2).flatten(2)
        h = self.ln_attn(self.dropout(self.dense(ctx)) + xq)
        return self.ln_ffn(self.dropout(self.dense_2(self.act(self.dense_1(h)))) + h)


@register_model("gcsan")
class GCSAN(SequentialRecommender):
    """GCSAN (Xu et al., IJCAI 2019) with RecBole 1.2.1 defaults."""

    causal = False
    pad_left = False
    paper = "Xu et al., Graph Contextualized Self-Attention Network for Session-based Recommendation, IJCAI 2019"

    def __init__(
        self,
        n_items: int,
        max_len: int = 50,
        embedding_size: int = 64,  # RecBole's hidden_size
        n_layers: int = 2,
        n_heads: int = 2,
        inner_size: int = 256,
        hidden_dropout_prob: float = 0.5,
        attn_dropout_prob: float = 0.5,
        hidden_act: str = "gelu",
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        step: int = 1,
        weight: float = 0.6,
        reg_weight: float = 5e-5,
    ) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ConfigError(f"gcsan: weight must be in [0, 1] (share of the attention output), got {weight}")
        if n_heads < 1 or embedding_size % n_heads:
            raise ConfigError(f"gcsan: embedding_size {embedding_size} must be a multiple of n_heads {n_heads}")
        if hidden_act not in ACTIVATIONS:
            raise ConfigError(f"gcsan: hidden_act {hidden_act!r} unknown; use one of {sorted(ACTIVATIONS)}")
        if step < 1 or n_layers < 1:
            raise ConfigError(f"gcsan: step ({step}) and n_layers ({n_layers}) must be >= 1")
        for name, p in (("hidden_dropout_prob", hidden_dropout_prob), ("attn_dropout_prob", attn_dropout_prob)):
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"gcsan: {name} must be in [0, 1), got {p}")
        super().__init__(n_items, max_len, embedding_size)
        d = self.embedding_size
        self.weight, self.reg_weight = float(weight), float(reg_weight)
        self.gnn = GatedGraphStep(d, step, node_bias=False)  # uniform(+-1/sqrt(d)) init
        self.layers = nn.ModuleList(
            _SelfAttentionBlock(d, n_heads, inner_size, hidden_dropout_prob, attn_dropout_prob, hidden_act, layer_norm_eps)
            for _ in range(n_layers)
        )
        # RecBole's _init_weights, applied after the GNN's own init
        self.apply(lambda m: init_normal_(m, initializer_range))
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        g = build_session_graph(seq)
        nodes = self.gnn(g, self.item_embedding(g.node_items))  # [T, d], packed real nodes
        x = gather_nodes(nodes, g)  # [B, L, d], sequence order
        h_t = gather_last(x, lengths)
        valid = (seq > 0)[:, None, None, :]  # [B, 1, 1, L]
        if len(self.layers) > 1:
            length = seq.size(1)
            causal = torch.ones(length, length, dtype=torch.bool, device=seq.device).tril()
            allowed = causal & valid  # [B, 1, L, L], True = may attend (left-to-right)
            for layer in self.layers[:-1]:
                x = layer(x, allowed)
        # Only the last click's output is read: the last block runs its query, attention and
        # FFN at that position alone (same numbers, ~40% fewer FLOPs). Its causal row is
        # exactly the real positions, since the input is right-padded.
        a_t = self.layers[-1](x, valid, xq=gather_last(x, lengths).unsqueeze(1)).squeeze(1)
        return self.weight * a_t + (1.0 - self.weight) * h_t

    def extra_loss(self) -> torch.Tensor:
        """RecBole's L2 term on the item table: ``reg_weight * ||E||_F / E.shape[0]`` (0-dim)."""
        e = self.item_embedding.weight
        return self.reg_weight * torch.linalg.vector_norm(e) / e.shape[0]
