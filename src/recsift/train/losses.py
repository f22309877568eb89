"""Per-sample training losses and weighted reduction (one loss factory for every model).

Every loss returns one value per target so that sample weights and training dynamics stay
per sample. The batch loss is the weighted mean ``sum(w * l) / sum(w)``: a sample of weight
2 counts exactly like the same sample present twice.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import unknown_name

LOSSES: dict[str, Callable[..., torch.Tensor]] = {}


def register_loss(name: str):
    def deco(fn):
        if name in LOSSES:
            raise ValueError(f"loss {name!r} registered twice")
        LOSSES[name] = fn
        return fn

    return deco


def get_loss(name: str) -> Callable[..., torch.Tensor]:
    try:
        return LOSSES[name]
    except KeyError:
        raise unknown_name("loss", name, LOSSES) from None


def masked_log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log-softmax over items with the padding column 0 excluded (its probability is 0).

    A copy with column 0 set to -inf: on CPU ``masked_fill`` with a broadcast column mask is
    several times slower than a copy, forward and backward."""
    z = logits.clone()
    z[:, 0] = float("-inf")
    return F.log_softmax(z, dim=1)


@register_loss("ce")
def ce_loss(logp: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Full-softmax cross-entropy from log-probabilities ``[M, n_items + 1]``."""
    return -logp.gather(1, targets.view(-1, 1)).squeeze(1)


@register_loss("bpr")
def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """BPR: ``-log sigmoid(s_pos - s_neg)`` averaged over the sampled negatives ``[M, k]``."""
    return -F.logsigmoid(pos.unsqueeze(1) - neg).mean(1)


@register_loss("bce")
def bce_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Binary CE with sampled negatives: ``-log s(pos) - mean_k log(1 - s(neg_k))``."""
    return -F.logsigmoid(pos) - F.logsigmoid(-neg).mean(1)


def weighted_mean(per_sample: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum(w * l) / sum(w)`` (0 when every weight is 0)."""
    total = weights.sum()
    return (per_sample * weights).sum() / total.clamp(min=torch.finfo(per_sample.dtype).tiny)
