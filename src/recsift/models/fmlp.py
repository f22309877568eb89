"""FMLP-Rec: filter-enhanced MLP for sequential recommendation.

Paper: K. Zhou, H. Yu, W. X. Zhao and J.-R. Wen, "Filter-enhanced MLP is All You Need for
Sequential Recommendation", WWW 2022. Reference implementation: Woeee/FMLP-Rec
(``models.py``: ``FMLPRecModel``; ``modules.py``: ``FilterLayer``, ``Intermediate``,
``Encoder``); DR4SR (``USTC-StarTeam/DR4SR``) uses it as a backbone with the defaults below.
RecBole 1.2.1 has no FMLP-Rec.

Architecture: item embedding + learned position embedding -> LayerNorm -> dropout ->
``n_layers`` blocks of

* filter layer: ``X_f = rFFT_time(X)`` (norm "ortho"), ``X_f * W`` with a learnable complex
  filter ``W`` of shape ``[max_len // 2 + 1, d]`` (real and imaginary parts N(0, 0.02)),
  ``irFFT(., n=max_len)``, dropout, residual + LayerNorm;
* feed-forward: ``d -> 4d`` GELU ``-> d``, dropout, residual + LayerNorm;

then the output at the last position. Sequences are pre-padded (``pad_left``) to ``max_len``:
the filter spans the whole window, padding positions included, so the model is not causal.
Initialisation as the reference: N(0, initializer_range) Linear/Embedding weights (padding
row included), zero biases, unit LayerNorm; the filter is drawn once and copied into every
block (the reference builds one block and ``deepcopy``-s it, and its ``init_weights`` does not
touch the filter).

Deviations from the reference:

* The filter is applied as the equivalent real linear map along time: ``rFFT -> * W ->
  irFFT`` is linear in ``X``, so it equals a per-channel ``[L, L]`` matrix
  ``K_c = irFFT(rFFT(I) * W_c)``, built from ``W`` each call (gradients reach ``W`` through
  the same FFTs) and applied with one batched matmul. Same numbers to float rounding
  (checked against the FFT form in the tests), about 1.6x faster on this CPU at B=2048.
* Inputs shorter than ``max_len`` are left-padded to ``max_len`` (the filter size fixes the
  window); the reference always feeds ``max_len`` items.
* Dropout is ``layers.Dropout`` (same semantics, faster mask on CPU; see ``layers.py``).
* The reference's ``LayerNorm`` is a hand-written TF-style one (eps inside the square root),
  which is what ``nn.LayerNorm`` computes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import SequentialRecommender
from .layers import Dropout, FeedForward, check_length, init_normal_
from .registry import register_model


class FilterLayer(nn.Module):
    """Learnable global frequency filter along time, then dropout, residual and LayerNorm."""

    def __init__(self, max_len: int, hidden_size: int, dropout: float, layer_norm_eps: float) -> None:
        super().__init__()
        self.max_len = max_len
        self.complex_weight = nn.Parameter(torch.randn(max_len // 2 + 1, hidden_size, 2) * 0.02)
        self.out_dropout = Dropout(dropout)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def kernel(self) -> torch.Tensor:
        """``[d, L(s), L(t)]``: output position t of channel c is ``sum_s x[s, c] K[c, s, t]``."""
        n = self.max_len
        eye = torch.eye(n, device=self.complex_weight.device, dtype=self.complex_weight.dtype)
        spec = torch.fft.rfft(eye, dim=1, norm="ortho").unsqueeze(-1)  # [s, f, 1]
        k = torch.fft.irfft(spec * torch.view_as_complex(self.complex_weight), n=n, dim=1, norm="ortho")
        return k.permute(2, 0, 1)  # [s, t, d] -> [d, s, t]

    def filter_fft(self, x: torch.Tensor) -> torch.Tensor:
        """The reference's form (rFFT, multiply, irFFT); used by the tests as the oracle."""
        xf = torch.fft.rfft(x, dim=1, norm="ortho") * torch.view_as_complex(self.complex_weight)
        return torch.fft.irfft(xf, n=x.size(1), dim=1, norm="ortho")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.bmm(x.permute(2, 0, 1), self.kernel()).permute(1, 2, 0)  # [d, B, L] -> [B, L, d]
        return self.LayerNorm(self.out_dropout(y) + x)

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x)[:, -1]`` without the other output positions, ``[B, d]``."""
        y = torch.einsum("bsd,ds->bd", x, self.kernel()[:, :, -1])
        return self.LayerNorm(self.out_dropout(y) + x[:, -1])


@register_model("fmlp")
class FMLPRec(SequentialRecommender):
    """All-MLP encoder with learnable frequency filters (Zhou et al. 2022)."""

    causal = False
    pad_left = True
    paper = "Zhou et al., Filter-enhanced MLP is All You Need for Sequential Recommendation, WWW 2022"

    def __init__(self, n_items: int, max_len: int = 50, hidden_size: int = 64, n_layers: int = 2,
                 hidden_dropout_prob: float = 0.5, hidden_act: str = "gelu",
                 layer_norm_eps: float = 1e-12, initializer_range: float = 0.02) -> None:
        super().__init__(n_items, max_len, hidden_size)
        self.position_embedding = nn.Embedding(self.max_len, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = Dropout(hidden_dropout_prob)
        self.layer = nn.ModuleList(
            nn.ModuleDict({
                "filterlayer": FilterLayer(self.max_len, hidden_size, hidden_dropout_prob, layer_norm_eps),
                "intermediate": FeedForward(hidden_size, 4 * hidden_size, hidden_dropout_prob,
                                            hidden_act, layer_norm_eps),
            })
            for _ in range(n_layers))
        self.apply(lambda m: init_normal_(m, initializer_range))
        with torch.no_grad():  # one filter draw shared by every block at init (reference's deepcopy)
            for blk in self.layer[1:]:
                blk["filterlayer"].complex_weight.copy_(self.layer[0]["filterlayer"].complex_weight)

    def _blocks(self, seq: torch.Tensor, n: int) -> torch.Tensor:
        """Embedding and the first ``n`` blocks over the (left-padded to ``max_len``) window."""
        check_length(seq, self.max_len, "fmlp")
        if seq.size(1) < self.max_len:
            seq = F.pad(seq, (self.max_len - seq.size(1), 0))
        x = self.dropout(self.LayerNorm(self.item_embedding(seq) + self.position_embedding.weight))
        for blk in self.layer[:n]:
            x = blk["intermediate"](blk["filterlayer"](x))
        return x

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """Outputs at every position of the (left-padded to ``max_len``) window, ``[B, max_len, d]``."""
        return self._blocks(seq, len(self.layer))

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The output at the last position. The filter mixes every position, so all blocks but the last
        run over the whole window; the last block's filter output, feed-forward and LayerNorms are
        position-wise, so only the last position is computed there (``encode(seq)[:, -1]``, same values)."""
        last = self.layer[-1]
        return last["intermediate"](last["filterlayer"].forward_last(self._blocks(seq, len(self.layer) - 1)))
