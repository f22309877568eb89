"""Base classes of the neural models: what every model implements, and nothing more.

Sequential models map a batch of item sequences to representations and score every item
against one (tied) item-embedding table. The trainer owns batching, losses, optimisation,
evaluation and training dynamics; a model only encodes.

Layout conventions (shared by trainer and models)
-------------------------------------------------
* ``seq`` is a LongTensor ``[B, L]`` of item ids, 0 = padding. Right-padded
  (``[i1, i2, i3, 0, 0]``) unless the class sets ``pad_left = True`` (then
  ``[0, 0, i1, i2, i3]``, FMLP-Rec). ``lengths`` is ``[B]`` with 1 <= length <= L.
* ``forward(seq, lengths) -> [B, d]``: the representation of each whole prefix (the
  output at its last real position).
* ``forward_all(seq, lengths) -> [B, L, d]``: only for ``causal = True`` models: the
  representation of *every* prefix ``seq[b, :j+1]`` at position j, each computed exactly
  as ``forward`` would compute it on that prefix alone (this is what lets the trainer's
  ``all-prefix`` layout train all prefix->target samples of a window in one pass).
  Positions past ``lengths`` are ignored by the caller.
* ``forward_packed(seq, positions, segments) -> [B, L, d]``: only for ``packable = True``
  models: ``forward_all`` over rows that each hold several short windows back to back
  (``positions`` = position inside the window, ``segments`` = window id, -1 = padding), so a
  batch of short sessions is not padded to its longest one.
* ``logits(h) -> [..., n_items + 1]``: scores of all items (column 0 = padding; the
  trainer and evaluator mask it). Default ``h @ E^T`` with the tied embedding table.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class SequentialRecommender(nn.Module):
    """Base class of next-item models. Subclasses set the class attributes and implement ``forward``."""

    name: ClassVar[str] = ""
    default_loss: ClassVar[str] = "ce"
    causal: ClassVar[bool] = False  # True => forward_all is implemented and exact
    packable: ClassVar[bool] = False  # True => forward_packed is implemented and exact
    pad_left: ClassVar[bool] = False
    paper: ClassVar[str] = ""

    def __init__(self, n_items: int, max_len: int = 50, embedding_size: int = 64) -> None:
        super().__init__()
        self.n_items = int(n_items)
        self.max_len = int(max_len)
        self.embedding_size = int(embedding_size)
        self.item_embedding = nn.Embedding(self.n_items + 1, self.embedding_size, padding_idx=0)

    # -- to implement -------------------------------------------------------------------
    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_all(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} is not causal; train it with layout='prefix'")

    def forward_packed(self, seq: torch.Tensor, positions: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """``forward_all`` over rows that hold several windows (``packable = True`` models only):
        ``positions`` is each token's position inside its window, ``segments`` which window it
        belongs to (-1 = padding); every real position's output equals ``forward_all``'s on its
        window alone."""
        raise NotImplementedError(f"{type(self).__name__} cannot train on packed windows; use pack=False")

    # -- shared -------------------------------------------------------------------------
    def output_embedding(self) -> torch.Tensor:
        """Item table the representations are scored against ([n_items + 1, d])."""
        return self.item_embedding.weight

    def output_matrix(self) -> torch.Tensor:
        """``W`` with ``logits(h) = h @ W.T`` ([n_items + 1, d]; the item table by default, CORE
        normalises it): what the trainer's fused cross-entropy multiplies by. A model whose scores
        are not a product with one matrix overrides `logits` instead, and trains on the unfused path."""
        return self.output_embedding()

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Scores of all items for representations ``h`` (``[..., d]`` -> ``[..., n_items + 1]``)."""
        return h @ self.output_matrix().t()

    def score_items(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of chosen items: ``h [M, d]``, ``items [M, k]`` -> ``[M, k]`` (for sampled-negative losses)."""
        return torch.einsum("md,mkd->mk", h, self.output_embedding()[items])

    def grand_scale(self, h: torch.Tensor) -> torch.Tensor:
        """``||d logits / d E||`` factor of the last-layer GraNd score (``||h||`` for a plain dot product)."""
        return h.norm(dim=-1)

    @classmethod
    def hparams(cls) -> dict[str, Any]:
        """Default hyper-parameters, read from the constructor signature (sklearn's get_params idea)."""
        return constructor_defaults(cls)


def constructor_defaults(cls: type) -> dict[str, Any]:
    """Keyword defaults of ``cls.__init__`` except the data dimensions."""
    import inspect

    sig = inspect.signature(cls.__init__)
    return {k: p.default for k, p in sig.parameters.items()
            if k not in ("self", "n_items", "n_users") and p.default is not inspect.Parameter.empty}


def gather_last(x: torch.Tensor, lengths: torch.Tensor, pad_left: bool = False) -> torch.Tensor:
    """Output at the last real position of each row: ``x [B, L, d]`` -> ``[B, d]``."""
    if pad_left:
        return x[:, -1]
    idx = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, x.size(-1))
    return x.gather(1, idx).squeeze(1)


def causal_mask(length: int, device: torch.device) -> torch.Tensor:
    """Boolean ``[L, L]`` mask, True where attention is NOT allowed (future positions)."""
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)


class CFRecommender(nn.Module):
    """Base class of user x item models (BPR-MF, NeuMF).

    ``forward(users, items) -> [B]`` scores pairs; ``score_users(users) -> [B, n_items + 1]``
    scores all items for each user (column 0 = padding).
    """

    name: ClassVar[str] = ""
    default_loss: ClassVar[str] = "bpr"
    paper: ClassVar[str] = ""

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.n_users = int(n_users)
        self.n_items = int(n_items)

    @classmethod
    def hparams(cls) -> dict[str, Any]:
        return constructor_defaults(cls)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_users(self, users: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
