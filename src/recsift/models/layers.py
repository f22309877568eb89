"""Building blocks shared by the sequential models (SASRec, CORE, FMLP-Rec, GRU4Rec, NARM, GCSAN).

Each block reproduces a RecBole 1.2.1 piece (``recbole/model/layers.py`` unless said
otherwise); the models that use it say so in their own docstrings.

* :func:`dropout` / :class:`Dropout` (with the autograd function ``_Dropout16``):
  element-wise inverted dropout, ``nn.Dropout`` / ``F.dropout`` semantics as RecBole uses
  them everywhere, but on CPU the keep mask is cut from 16-bit random words (2.5-4x faster
  than ``bernoulli_``), so the drop probability is ``p`` rounded to a multiple of 2^-16
  (0.5 and 0.25 exact, 0.2 -> 0.199997) and the scale ``1 / (1 - that)``. Other devices
  and dtypes use ``F.dropout``. Used by every model here.
* :func:`attention`: scaled dot-product attention with RecBole's attention dropout (the chain
  below in training, the fused kernel in evaluation); :class:`MultiHeadAttention` and GCSAN's
  blocks use it.
* ``ACTIVATIONS``: RecBole's ``FeedForward.get_hidden_act`` table (``gelu`` is the exact
  erf form, ``swish`` is ``x * sigmoid(x)``, i.e. ``F.silu``).
* :class:`MultiHeadAttention`: RecBole's ``MultiHeadAttention`` -- post-LN self-attention
  sub-layer (Q/K/V projections, scaled dot-product attention with attention dropout, output
  projection, dropout, residual, LayerNorm).
* :class:`FeedForward`: RecBole's ``FeedForward`` -- point-wise ``d -> inner -> d`` with an
  activation, dropout, residual, LayerNorm (also FMLP-Rec's ``Intermediate``).
* :class:`TransformerEncoder`: RecBole's ``TransformerEncoder`` -- ``n_layers`` RecBole
  ``TransformerLayer``-s (attention then feed-forward), the last layer's output returned.
  SASRec's and CORE's encoder.
* :func:`causal_padding_mask`: RecBole's ``SequentialRecommender.get_attention_mask(item_seq)``
  (``recbole/model/abstract_recommender.py``, uni-directional) as booleans instead of an
  additive 0 / -10000 mask.
* :func:`packed_causal_mask` / :func:`position_vectors`: recsift's packed rows (several
  windows per row, positions restarting at each; SASRec, CORE) -- attention stays inside a
  window, and each window gets the position embeddings it would have alone.
* :func:`init_normal_`: the ``_init_weights`` of RecBole's SASRec / GCSAN / BERT4Rec
  (BERT's init), applied with ``module.apply``.
* :func:`run_rnn`: a batch-first RNN over right-padded rows, as a packed sequence when their
  lengths differ (no steps on padding; GRU4Rec, NARM).
* :func:`check_length`: recsift's guard for sequences longer than a model's ``max_len``
  (RecBole cuts sequences in its data pipeline instead).

Deviations from RecBole (none changes a real position's output or the dropout semantics):

* :class:`MultiHeadAttention` in training (attention dropout on) runs RecBole's chain --
  scores / sqrt(d_h), -10000 on masked keys, softmax, dropout, @ V -- by hand; evaluation (no
  dropout) runs ``F.scaled_dot_product_attention`` with the same boolean mask, which computes
  the same probabilities (``exp(-10000)`` is 0 in float32) 2-3x faster. With dropout the fused
  call falls back to that same chain with torch's slower dropout: measured on this 2-core CPU
  at B=2048, L=50, the hand-written chain with :func:`dropout` made a SASRec training step
  ~25% faster than the fused call with ``dropout_p``.
* :class:`TransformerEncoder` can compute the last block's query and feed-forward only at one
  position per row (``last=``; keys and values everywhere): the same numbers as gathering
  the full output, about a quarter less work with two blocks.
* RecBole's mask is "causal AND key is not padding"; it is kept as is, although with right
  padding the causal part alone already hides every padding key from a real position.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "swish": F.silu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


class _Dropout16(torch.autograd.Function):
    """Inverted dropout whose keep mask comes from 16-bit random words (CPU only).

    ``F.dropout`` draws one Bernoulli per element through ``bernoulli_``, the slowest op of a
    CPU training step here; three 16-bit words cut from each 64-bit ``random_()`` draw are
    2.5-4x faster forward + backward. The drop probability becomes ``round(p * 2^16) / 2^16``
    (0.2 -> 0.199997, 0.5 exact) and the scale is ``1 / (1 - that)``, so E[output] = x exactly.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:  # type: ignore[override]
        n = x.numel()
        words = -(-n // 3)
        # random_() on int64 fills 63 bits: keep the three low 16-bit words (little-endian)
        r16 = torch.empty(words, dtype=torch.int64).random_().view(torch.int16).view(words, 4)[:, :3]
        k = round(p * 65536)
        keep = (r16.reshape(-1)[:n] >= k - 32768).view(x.shape)
        mask = keep.to(x.dtype).mul_(65536.0 / (65536 - k))
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Element-wise inverted dropout (``F.dropout`` semantics); the fast 16-bit mask on CPU."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not 0.0 < p < 1.0 or x.dtype not in (torch.float32, torch.float64):
        return F.dropout(x, p, True)
    return _Dropout16.apply(x, p)


class Dropout(nn.Module):
    """Drop-in ``nn.Dropout`` using :func:`dropout`."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_fast_dropout(module: nn.Module) -> nn.Module:
    """Replace every ``nn.Dropout`` inside ``module`` (torch's own transformer layers included) by
    :class:`Dropout`, in place; returns ``module``. Attention-weight dropout inside
    ``nn.MultiheadAttention`` is a float, not a module, and stays torch's."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p))
    return module


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor, p: float,
              training: bool) -> torch.Tensor:
    """Scaled dot-product attention over heads ``[B, h, L, d_h]``; ``allowed`` boolean (True = may attend).

    With attention dropout (training): RecBole's chain by hand -- scores / sqrt(d_h), -10000 on masked
    keys, softmax, :func:`dropout`, @ V. Without: the fused kernel, same probabilities, faster."""
    if training and p > 0:
        scores = (q @ k.transpose(-1, -2)).mul_(1.0 / math.sqrt(q.size(-1)))
        return dropout(scores.masked_fill_(~allowed, -10000.0).softmax(-1), p, True) @ v
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)


class MultiHeadAttention(nn.Module):
    """Self-attention sub-layer: attention, projection, dropout, residual, LayerNorm (post-LN)."""

    def __init__(self, n_heads: int, hidden_size: int, hidden_dropout_prob: float,
                 attn_dropout_prob: float, layer_norm_eps: float) -> None:
        super().__init__()
        if hidden_size % n_heads:
            raise ConfigError(f"hidden_size ({hidden_size}) must be a multiple of n_heads ({n_heads})")
        self.n_heads, self.head_size = n_heads, hidden_size // n_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.attn_dropout_prob = float(attn_dropout_prob)
        self.out_dropout = Dropout(hidden_dropout_prob)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(t.size(0), t.size(1), self.n_heads, self.head_size).transpose(1, 2)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, x_q: torch.Tensor | None = None,
                allowed_q: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, L, d]`` keys/values; queries at ``x_q [B, Lq, d]`` (default: every position of x).

        ``allowed`` (``allowed_q`` for ``x_q``) is boolean, broadcastable to ``[B, heads, Lq, L]``,
        True where the query may attend to the key.
        """
        if x_q is None:
            x_q, allowed_q = x, allowed
        q, k, v = self._heads(self.query(x_q)), self._heads(self.key(x)), self._heads(self.value(x))
        ctx = attention(q, k, v, allowed_q, self.attn_dropout_prob, self.training)
        b, n = x_q.shape[:2]
        h = self.dense(ctx.transpose(1, 2).reshape(b, n, -1))
        return self.LayerNorm(self.out_dropout(h) + x_q)


class FeedForward(nn.Module):
    """Point-wise feed-forward sub-layer: d -> inner (activation) -> d, dropout, residual, LayerNorm."""

    def __init__(self, hidden_size: int, inner_size: int, hidden_dropout_prob: float,
                 hidden_act: str, layer_norm_eps: float) -> None:
        super().__init__()
        if hidden_act not in ACTIVATIONS:
            raise ConfigError(f"hidden_act {hidden_act!r} is not one of {sorted(ACTIVATIONS)}")
        self.dense_1 = nn.Linear(hidden_size, inner_size)
        self.act = ACTIVATIONS[hidden_act]
        self.dense_2 = nn.Linear(inner_size, hidden_size)
        self.dropout = Dropout(hidden_dropout_prob)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense_2(self.act(self.dense_1(x)))) + x)


class TransformerEncoder(nn.Module):
    """``n_layers`` (>= 1) post-LN transformer blocks (RecBole's ``TransformerEncoder``)."""

    def __init__(self, n_layers: int, n_heads: int, hidden_size: int, inner_size: int,
                 hidden_dropout_prob: float, attn_dropout_prob: float, hidden_act: str,
                 layer_norm_eps: float) -> None:
        super().__init__()
        if n_layers < 1:
            raise ConfigError(f"n_layers must be >= 1, got {n_layers}")
        self.layer = nn.ModuleList(
            nn.ModuleDict({
                "attention": MultiHeadAttention(n_heads, hidden_size, hidden_dropout_prob,
                                                attn_dropout_prob, layer_norm_eps),
                "feed_forward": FeedForward(hidden_size, inner_size, hidden_dropout_prob,
                                            hidden_act, layer_norm_eps),
            })
            for _ in range(n_layers))

    def forward(self, x: torch.Tensor, allowed: torch.Tensor,
                last: torch.Tensor | None = None) -> torch.Tensor:
        """Last layer's output at every position ``[B, L, d]``, or only at ``last`` (``[B]``,
        one position per row) as ``[B, d]``: the last block then computes its query and
        feed-forward at that position alone (keys and values still span every position)."""
        *body, final = self.layer
        for blk in body:
            x = blk["feed_forward"](blk["attention"](x, allowed))
        if last is None:
            return final["feed_forward"](final["attention"](x, allowed))
        b, n, d = x.shape
        x_q = x.gather(1, last.view(-1, 1, 1).expand(-1, 1, d))  # [B, 1, d]
        allowed_q = allowed.expand(b, -1, n, -1).gather(
            2, last.view(-1, 1, 1, 1).expand(-1, allowed.size(1), 1, n))  # [B, 1, 1, L]
        return final["feed_forward"](final["attention"](x, allowed, x_q, allowed_q)).squeeze(1)


def causal_padding_mask(seq: torch.Tensor) -> torch.Tensor:
    """RecBole's uni-directional mask as booleans ``[B, 1, L, L]``.

    Key j is visible from query i iff ``j <= i`` and ``seq[j] > 0``."""
    n = seq.size(1)
    causal = torch.ones(n, n, dtype=torch.bool, device=seq.device).tril()
    return causal & (seq > 0)[:, None, None, :]


def run_rnn(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Outputs ``[B, L, hidden]`` of a batch-first RNN over right-padded inputs ``x [B, L, d]``.

    Rows shorter than ``L`` are run as a packed sequence, so no step is computed on padding
    (Beauty's all-prefix batches are ~6x more positions than items, bench/results/padding.md; GRU4Rec
    steps 1.32x faster there, bench/results/rnn_packing_beauty.md). Real
    positions get the same outputs as the padded run (a causal RNN never sees later padding);
    padding positions are 0 instead of the states the RNN would have carried through them."""
    n = x.size(1)
    lengths = lengths.clamp(min=1, max=n)
    if bool((lengths == n).all()):
        return rnn(x)[0]
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    return nn.utils.rnn.pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=n)[0]


def packed_causal_mask(segments: torch.Tensor) -> torch.Tensor:
    """Causal mask of packed rows as booleans ``[B, 1, L, L]``: key j is visible from query i iff
    ``j <= i`` and both belong to the same window (``segments [B, L]``; padding, -1, only sees
    padding, so no query row is empty). For real positions this is `causal_padding_mask` of each
    window on its own."""
    n = segments.size(1)
    causal = torch.ones(n, n, dtype=torch.bool, device=segments.device).tril()
    return causal & (segments[:, None, :, None] == segments[:, None, None, :])


def init_normal_(module: nn.Module, std: float) -> None:
    """RecBole/BERT initialisation: N(0, std) Linear and Embedding weights, zero biases, unit LayerNorm."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def check_length(seq: torch.Tensor, max_len: int, model: str) -> None:
    """Raise a :class:`ConfigError` naming the fix when ``seq [B, L]`` is longer than ``max_len``."""
    if seq.size(1) > max_len:
        raise ConfigError(f"{model}: sequences of length {seq.size(1)} exceed max_len={max_len}; "
                          f"build the model with max_len >= {seq.size(1)} or cut the sequences")


def position_vectors(table: nn.Embedding, seq: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
    """Absolute position embeddings for ``seq [B, L]``: rows ``0..L-1`` of ``table`` (``[L, d]``,
    broadcast over the batch), or ``table(positions)`` (``[B, L, d]``) for packed rows, where
    positions restart at every window."""
    return table.weight[: seq.size(1)] if positions is None else table(positions)


__all__ = ["ACTIVATIONS", "Dropout", "FeedForward", "MultiHeadAttention", "TransformerEncoder",
           "causal_padding_mask", "check_length", "dropout", "init_normal_", "packed_causal_mask", "position_vectors", "run_rnn",
           "use_fast_dropout"]
