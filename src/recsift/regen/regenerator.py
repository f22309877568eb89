"""The DR4SR regenerator: an encoder-decoder transformer with a diversity promoter.

Paper: Yin et al., "Dataset Regeneration for Sequential Recommendation", KDD 2024, §3.2.
Reference: ``USTC-StarTeam/DR4SR``, ``2.Pretrain_regenerator.py`` (ALGORITHMS.md §8.2).

Tokens: padding 0, items ``1..n_items``, ``SOS = n_items + 1``, ``EOS = n_items + 2``. A source
is ``[SOS] + last items of the sequence + [EOS]``; a target is ``[SOS] + pattern + [EOS]``.
One embedding table serves encoder input, decoder input and output projection (optionally
initialised from a trained recommender's item table); learned positions; dropout on inputs;
post-LN ``nn.Transformer`` layers (GELU, LayerNorm eps 1e-12).

Diversity promoter (K memories): the encoder memory ``m [B, S, d]`` is projected into K spaces
by one MLP ``d -> K d -> K d``; a condition encoder (2-layer transformer over the target
pattern, mean-pooled, MLP ``d -> d -> K``) gives logits, ``pi = GumbelSoftmax(logits, tau)``
with ``tau`` multiplied by 0.995 at every training forward call (floor 0.1), and the decoder
attends to ``sum_k pi_k m'_k``. Loss: cross-entropy of the pattern tokens restricted to the
source's tokens (restrictive masking, as the reference trains) + ``entropy_weight`` x the mean
entropy of ``pi``.

Deviations from the reference:

* Restricted cross-entropy is computed over the source's distinct tokens only (logits
  ``[B, T, S]`` instead of ``[B, T, |I|]`` then masked): the same softmax, without the
  ``|I|``-wide tensor.
* No causal mask on the encoder (the reference's encoder mask looks accidental: the source
  is fully known at inference).
* Batches group pairs of similar source length (`length_batches`; the reference shuffles
  uniformly), which cuts padding several-fold on Beauty.
* Cosine annealing is stepped once per epoch over ``epochs`` (the reference steps it per batch
  with ``T_max = 40``, so its lr cycles every 40 batches).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models.layers import use_fast_dropout
from ..train.checkpoint import load_checkpoint, rng_states, save_checkpoint, set_rng_states
from ..train.optim import adam

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegenConfig:
    """Regenerator size and pre-training recipe (defaults: the reference's, ALGORITHMS.md §14)."""

    d_model: int = 64  # embedding / hidden width
    n_heads: int = 2  # attention heads
    enc_layers: int = 2  # encoder layers
    dec_layers: int = 2  # decoder layers
    ffn: int = 256  # feed-forward width
    dropout: float = 0.5  # dropout of inputs and sub-layers
    k_memories: int = 5  # K, memory spaces of the diversity promoter
    max_src: int = 50  # source tokens incl. SOS/EOS (the last max_src - 2 items are kept)
    tau_start: float = 1.0  # Gumbel-softmax temperature at the start
    tau_decay: float = 0.995  # temperature multiplier per training forward call
    tau_min: float = 0.1  # temperature floor
    entropy_weight: float = 1.0  # weight of the memory-choice entropy term
    diversity: bool = True  # False = ablation "without diversity promoter" (one memory, no condition encoder)
    epochs: int = 40  # pre-training epochs
    batch_size: int = 256  # (sequence, pattern) pairs per step
    lr: float = 1e-3  # Adam lr (betas 0.9/0.98, eps 1e-9), cosine-annealed per epoch

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.k_memories < 1 or self.max_src < 3 or self.epochs < 0:
            raise ConfigError("k_memories >= 1, max_src >= 3 and epochs >= 0 are required")


class Regenerator(nn.Module):
    """Encoder-decoder transformer with K memory projections (see module docstring)."""

    def __init__(self, n_items: int, cfg: RegenConfig = RegenConfig(), item_embeddings: torch.Tensor | None = None,
                 max_tgt: int = 32) -> None:
        super().__init__()
        self.n_items, self.cfg = int(n_items), cfg
        self.sos, self.eos = self.n_items + 1, self.n_items + 2
        d = cfg.d_model
        self.k = cfg.k_memories if cfg.diversity else 1
        self.embedding = nn.Embedding(self.n_items + 3, d, padding_idx=0)
        nn.init.normal_(self.embedding.weight, 0.0, 0.02)
        if item_embeddings is not None:
            if item_embeddings.shape != (self.n_items + 1, d):
                raise ConfigError(f"item_embeddings must be [{self.n_items + 1}, {d}], "
                                  f"got {tuple(item_embeddings.shape)}")
            with torch.no_grad():
                self.embedding.weight[: self.n_items + 1].copy_(item_embeddings)
        self.src_pos = nn.Embedding(cfg.max_src, d)
        self.tgt_pos = nn.Embedding(max_tgt, d)
        for pos in (self.src_pos, self.tgt_pos):  # same scale as the items (N(0, 1) would drown them)
            nn.init.normal_(pos.weight, 0.0, 0.02)
        self.drop = nn.Dropout(cfg.dropout)

        def enc_layer() -> nn.TransformerEncoderLayer:
            return nn.TransformerEncoderLayer(d, cfg.n_heads, cfg.ffn, cfg.dropout, activation="gelu",
                                              batch_first=True, layer_norm_eps=1e-12)

        self.encoder = nn.TransformerEncoder(enc_layer(), cfg.enc_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, cfg.n_heads, cfg.ffn, cfg.dropout, activation="gelu", batch_first=True,
                                       layer_norm_eps=1e-12), cfg.dec_layers)
        self.project = nn.Sequential(nn.Linear(d, self.k * d), nn.GELU(), nn.Linear(self.k * d, self.k * d))
        if cfg.diversity:
            self.cond_encoder = nn.TransformerEncoder(enc_layer(), 2, enable_nested_tensor=False)
            self.cond_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, self.k))
        # torch's layers draw dropout masks with bernoulli_, ~30% of a CPU pre-training step
        use_fast_dropout(self)
        self.register_buffer("tau", torch.tensor(cfg.tau_start))

    # -- pieces ------------------------------------------------------------------------
    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """Projected memories ``[B, K, S, d]`` of the sources ``src [B, S]``."""
        x = self.drop(self.embedding(src) + self.src_pos.weight[: src.size(1)])
        m = self.encoder(x, src_key_padding_mask=src == 0)
        b, s, d = m.shape
        return self.project(m).view(b, s, self.k, d).transpose(1, 2)

    def memory_weights(self, tgt: torch.Tensor) -> torch.Tensor:
        """``pi [B, K]``: Gumbel-softmax over the memories, conditioned on the target pattern."""
        if not self.cfg.diversity:
            return torch.ones(tgt.size(0), 1, device=tgt.device)
        pad = tgt == 0
        x = self.embedding(tgt) + self.tgt_pos.weight[: tgt.size(1)]
        h = self.cond_encoder(x, src_key_padding_mask=pad).masked_fill(pad.unsqueeze(-1), 0.0)
        pooled = h.sum(1) / (~pad).sum(1, keepdim=True).clamp(min=1)
        logits = self.cond_head(pooled)
        if self.training:
            pi = F.gumbel_softmax(logits, tau=float(self.tau))
            self.tau.mul_(self.cfg.tau_decay).clamp_(min=self.cfg.tau_min)
            return pi
        return F.softmax(logits, -1)

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_pad: torch.Tensor) -> torch.Tensor:
        """Decoder outputs ``[B, T, d]`` for inputs ``tgt_in [B, T]`` over ``memory [B, S, d]``."""
        t = tgt_in.size(1)
        x = self.drop(self.embedding(tgt_in) + self.tgt_pos.weight[:t])
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        return self.decoder(x, memory, tgt_mask=causal, tgt_key_padding_mask=tgt_in == 0,
                            memory_key_padding_mask=src_pad)

    # -- training loss -----------------------------------------------------------------
    def loss(self, src: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Restricted reconstruction loss of ``tgt`` given ``src`` + entropy of the memory choice."""
        mem = self.encode(src)
        pi = self.memory_weights(tgt)
        memory = (pi[:, :, None, None] * mem).sum(1)
        h = self.decode(tgt[:, :-1], memory, src == 0)  # [B, T, d]
        labels = tgt[:, 1:]
        cand_ok = candidate_mask(src, self.sos)
        logits = torch.einsum("btd,bsd->bts", h, self.embedding(src)).masked_fill(~cand_ok[:, None, :], float("-inf"))
        # label = first position of the target token in the source (restrictive training)
        match = (src[:, None, :] == labels[:, :, None]) & cand_ok[:, None, :]
        idx = match.float().argmax(-1)
        idx = idx.masked_fill((labels == 0) | ~match.any(-1), -100)
        recon = F.cross_entropy(logits.reshape(-1, logits.size(-1)), idx.reshape(-1), ignore_index=-100)
        ent = -(pi * pi.clamp(min=1e-12).log()).sum(-1).mean()
        return recon + self.cfg.entropy_weight * ent, {"recon": float(recon.detach()), "entropy": float(ent.detach())}


def candidate_mask(src: torch.Tensor, sos: int) -> torch.Tensor:
    """``[B, S]`` True at the first occurrence of every real token of the source (EOS included)."""
    ok = (src != 0) & (src != sos)
    same = src[:, :, None] == src[:, None, :]  # [B, S, S]
    earlier = same.tril(-1).any(-1)  # an earlier position holds the same token
    return ok & ~earlier


def source_tokens(indptr: np.ndarray, items: np.ndarray, rows: np.ndarray, max_src: int, n_items: int) -> np.ndarray:
    """``[len(rows), max_src]`` right-padded ``[SOS] + last (max_src - 2) items + [EOS]`` of CSR rows."""
    rows = np.asarray(rows, dtype=np.int64)
    start, end = indptr[rows], indptr[rows + 1]
    lo = np.maximum(start, end - (max_src - 2))
    n = end - lo
    out = np.zeros((len(rows), max_src), dtype=np.int64)
    out[:, 0] = n_items + 1
    j = np.arange(max_src - 2)[None, :]
    inside = j < n[:, None]
    out[:, 1:-1][inside] = items[(lo[:, None] + j)[inside]]
    out[np.arange(len(rows)), n + 1] = n_items + 2
    return out


def target_tokens(indptr: np.ndarray, items: np.ndarray, rows: np.ndarray, n_items: int) -> np.ndarray:
    """``[len(rows), max_len + 2]`` right-padded ``[SOS] + pattern + [EOS]`` of CSR rows."""
    rows = np.asarray(rows, dtype=np.int64)
    n = indptr[rows + 1] - indptr[rows]
    width = int(n.max(initial=0)) + 2
    out = np.zeros((len(rows), width), dtype=np.int64)
    out[:, 0] = n_items + 1
    j = np.arange(width - 2)[None, :]
    inside = j < n[:, None]
    out[:, 1:-1][inside] = items[(indptr[rows][:, None] + j)[inside]]
    out[np.arange(len(rows)), n + 1] = n_items + 2
    return out


def pretrain(model: Regenerator, src: np.ndarray, tgt: np.ndarray, *, seed: int = 0,
             device: str | torch.device = "cpu", checkpoint: str | os.PathLike[str] | None = None,
             fingerprint: str = "") -> list[dict[str, float]]:
    """Train ``model`` on (``src[j]`` -> ``tgt[j]``) token pairs; returns per-epoch losses.

    ``checkpoint``: a file where the weights, optimiser, schedule and random states are saved after
    every epoch (atomically, tagged with ``fingerprint``); a call that finds it continues after its
    last epoch and ends with the same weights as an uninterrupted run. Deleted when training ends.

    Example
    -------
    >>> import numpy as np
    >>> m = Regenerator(5, RegenConfig(epochs=1, max_src=6))
    >>> src = np.array([[6, 1, 2, 3, 7, 0]]); tgt = np.array([[6, 1, 3, 7]])
    >>> len(pretrain(m, src, tgt))
    1
    """
    cfg = model.cfg
    model.to(device).train()
    opt = adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    src_len = (src != 0).sum(1)
    hist: list[dict[str, float]] = []
    start = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        st = load_checkpoint(checkpoint, fingerprint)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        set_rng_states(st["rng"], rng)
        hist, start = list(st["history"]), int(st["epoch"]) + 1
        log.info("regenerator: resumed from %s after epoch %d", checkpoint, start - 1)
    for epoch in range(start, cfg.epochs):
        t0, tot, n = time.perf_counter(), 0.0, 0
        parts = {"recon": 0.0, "entropy": 0.0}
        for idx in length_batches(src_len, cfg.batch_size, rng):
            s = torch.from_numpy(_trim(src[idx])).to(device)
            t = torch.from_numpy(_trim(tgt[idx])).to(device)
            loss, info = model.loss(s, t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
            n += len(idx)
            for k in parts:
                parts[k] += info[k] * len(idx)
        sched.step()
        row = {"epoch": epoch, "loss": tot / max(n, 1), **{k: v / max(n, 1) for k, v in parts.items()},
               "seconds": time.perf_counter() - t0, "tau": float(model.tau)}
        hist.append(row)
        log.info("regenerator epoch %d loss %.4f (%.1fs)", epoch, row["loss"], row["seconds"])
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                                         "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                         "rng": rng_states(rng), "history": hist})
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
    model.eval()
    return hist


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 50) -> list[np.ndarray]:
    """Shuffled batches of similar source length: a random permutation is cut into pools of
    ``pool`` batches, each pool sorted by length and cut into batches, and the batches shuffled
    (Beauty: most sources are short, a few reach 50 tokens; unsorted batches pad to the longest)."""
    order = rng.permutation(len(lengths))
    out = []
    for lo in range(0, len(order), pool * batch_size):
        chunk = order[lo: lo + pool * batch_size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out += [chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def _trim(x: np.ndarray) -> np.ndarray:
    """Drop trailing all-padding columns of a right-padded batch."""
    used = np.flatnonzero((x != 0).any(0))
    return x[:, : int(used[-1]) + 1] if len(used) else x[:, :1]


def embedding_from(table: torch.Tensor, n_items: int) -> torch.Tensor:
    """The ``[n_items + 1, d]`` item rows of a recommender's tied table (row 0 = padding)."""
    if table.size(0) < n_items + 1:
        raise ConfigError(f"item table has {table.size(0)} rows, need {n_items + 1}")
    return table[: n_items + 1].detach().float().cpu()


__all__ = ["RegenConfig", "Regenerator", "candidate_mask", "embedding_from", "pretrain", "source_tokens",
           "target_tokens"]
