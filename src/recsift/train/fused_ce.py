"""Full-softmax cross-entropy fused with the output layer, computed in cache-sized row chunks.

For logits ``z = h @ W.T`` over all items (column 0 = padding, excluded) the usual autograd path
writes and re-reads several ``[M, |I|]`` tensors per batch (logits, their masked copy, the
log-probabilities kept for backward, the gather's zero-filled gradient, the logits' gradient):
on Beauty (12k items) each is 100 MB for a batch of 2048, far outside the CPU caches. Here the
forward pass walks ``rows`` samples at a time and, while a chunk's ``[rows, |I|]`` block is in
cache, computes its loss and its exact gradients, ``dL/dz = w (softmax(z) - onehot(y)) / sum(w)``,
``dL/dh = dL/dz @ W`` and ``dL/dW += dL/dz.T @ h``. Backward only scales the two stored gradients.
Same values as the autograd path up to float rounding (tests compare both); the idea is the
"fused linear cross-entropy" of memory-efficient LLM training (Liger kernel, Cut Cross-Entropy).

``on_chunk(start, stop, logp, p)`` sees each chunk's log-probabilities and probabilities while
they are hot: the trainer computes the `DynamicsRecorder` statistics there instead of in extra
passes over a batch-sized matrix.

Not used for double backward (DR4SR+'s implicit gradients keep the autograd path) and, by
default, only on CPU: ``RECSIFT_FUSED_CE`` = ``auto`` (default: CPU only), ``1`` or ``0``.
"""
from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch.autograd.function import once_differentiable

from ..errors import ConfigError

ChunkHook = Callable[[int, int, torch.Tensor, torch.Tensor], None]

#: elements of a chunk's ``[rows, |I|]`` block: 1M float32 = 4 MB, about an L2/L3 slice
CHUNK_ELEMENTS = 1 << 20


def fused_ce_enabled(device: torch.device | str) -> bool:
    """Whether the trainer uses `softmax_ce_loss` (``RECSIFT_FUSED_CE``: auto / 1 / 0)."""
    mode = os.environ.get("RECSIFT_FUSED_CE", "auto").strip().lower()
    if mode not in ("auto", "1", "0"):
        raise ConfigError(f"RECSIFT_FUSED_CE={mode!r}: use 1, 0 or auto")
    return mode == "1" or (mode == "auto" and torch.device(device).type == "cpu")


def chunk_rows(n_items: int) -> int:
    """Rows per chunk: ``CHUNK_ELEMENTS`` logits, between 32 and 512 rows."""
    return max(32, min(512, CHUNK_ELEMENTS // max(1, n_items)))


class _ChunkedSoftmaxCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: torch.Tensor, w_out: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
                rows: int, on_chunk: ChunkHook | None) -> torch.Tensor:
        total = weights.sum()
        wn = (weights / total.clamp(min=torch.finfo(h.dtype).tiny)).to(h.dtype).unsqueeze(1)
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros_like(w_out)
        loss = h.new_zeros(())
        for s in range(0, h.shape[0], rows):
            e = min(s + rows, h.shape[0])
            hc, tc, wc = h[s:e], targets[s:e].view(-1, 1), wn[s:e]
            z = hc @ w_out.t()
            z[:, 0] = float("-inf")  # the padding column: probability 0, no gradient
            logp = torch.log_softmax(z, dim=1)
            loss -= (logp.gather(1, tc) * wc).sum()
            g = logp.exp()
            if on_chunk is not None:
                on_chunk(s, e, logp, g)
            g.mul_(wc).scatter_add_(1, tc, -wc)  # w (p - onehot(y)) / sum(w)
            torch.mm(g, w_out, out=grad_h[s:e])
            grad_w.addmm_(g.t(), hc)
        ctx.save_for_backward(grad_h, grad_w)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad_out, grad_w * grad_out, None, None, None, None


def softmax_ce_loss(h: torch.Tensor, w_out: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, *,
                    on_chunk: ChunkHook | None = None, rows: int | None = None) -> torch.Tensor:
    """Weighted mean full-softmax CE of ``logits = h @ w_out.T`` (column 0 masked), i.e.
    ``weighted_mean(ce_loss(masked_log_softmax(h @ w_out.T), targets), weights)``, without
    keeping any ``[M, |I|]`` tensor. ``h [M, d]``, ``w_out [|I| + 1, d]``, ``targets [M]`` (>= 1),
    ``weights [M]``; gradients flow to ``h`` and ``w_out`` (single backward only)."""
    if h.dim() != 2 or w_out.dim() != 2 or h.shape[1] != w_out.shape[1]:
        raise ValueError(f"softmax_ce_loss: h {tuple(h.shape)} and w_out {tuple(w_out.shape)} must be [M, d] and [I, d]")
    if weights.requires_grad:
        raise ValueError("softmax_ce_loss gives no gradient to the sample weights; learnt weights (DR4SR+) need "
                         "weighted_mean(ce_loss(...), weights)")
    return _ChunkedSoftmaxCE.apply(h, w_out, targets, weights, rows or chunk_rows(w_out.shape[0]), on_chunk)
