"""Hybrid inference: regenerate patterns from every sequence with a pre-trained regenerator.

Paper: Yin et al., KDD 2024, §3.3; reference ``3.Hybrid_inference.py`` (ALGORITHMS.md §8.3).

For every source sequence and every memory k = 1..K (no target exists at inference, so each
projected memory ``m'_k`` is decoded on its own), greedy decoding from SOS for up to
``max_steps`` tokens, stopping at EOS, never repeating an item. At each step a row decodes in

* **restrictive** mode: only tokens of its source sequence (and EOS) may be emitted; or
* **generative** mode: any item may be emitted,

generative with probability ``gamma`` (the paper's hybrid rule), after ``restrictive_steps``
forced restrictive steps (``restrictive_steps=2, gamma=1`` is the released code's effective
schedule; the maintainers suggest ``gamma=0.3``, our default).

Batched: many sequences x K memories (grouped by length) decode in lock-step as one ``[B*K, t]`` decoder call per
step (the reference decodes one sequence at a time). The mode draw of (sequence, k, step) is a
counter-based hash of ``(seed, sequence row, k, step)``, so a sequence regenerates the same
patterns whatever batch it lands in (tested: batched = one at a time).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..errors import ConfigError
from .regenerator import Regenerator, _trim, source_tokens

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def step_uniforms(seed: int, rows: np.ndarray, k: np.ndarray, step: int) -> np.ndarray:
    """Uniform [0, 1) draws keyed by ``(seed, row, k, step)`` (splitmix64 finaliser over the key)."""
    with np.errstate(over="ignore"):
        x = (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
             + np.asarray(rows, np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
             + np.asarray(k, np.uint64) * np.uint64(0x94D049BB133111EB)
             + np.uint64(step) * np.uint64(0x2545F4914F6CDD1D))
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2 ** 53)


@torch.no_grad()
def decode_batch(model: Regenerator, src: torch.Tensor, rows: np.ndarray, *, gamma: float, max_steps: int = 25,
                 restrictive_steps: int = 0, seed: int = 0) -> np.ndarray:
    """Greedy hybrid decoding of sources ``src [B, S]`` (tokens, see `source_tokens`) with every memory.

    ``rows`` are the sequences' ids (they key the mode draws). Returns ``[B, K, max_steps]`` item
    ids, 0-padded after the last generated item (EOS is not included).
    """
    was = model.training
    model.eval()
    try:
        b, k = src.size(0), model.k
        mem = model.encode(src)  # [B, K, S, d]
        r = b * k
        memory = mem.reshape(r, src.size(1), -1)
        src_r = src.repeat_interleave(k, 0)
        src_pad = src_r == 0
        v = model.n_items + 3
        dev = src.device
        in_src = torch.zeros(r, v, dtype=torch.bool, device=dev)
        in_src.scatter_(1, src_r, True)
        in_src[:, 0] = in_src[:, model.sos] = False
        in_src[:, model.eos] = True
        generated = torch.zeros(r, v, dtype=torch.bool, device=dev)
        generated[:, 0] = generated[:, model.sos] = True  # never emitted
        row_of = np.repeat(np.asarray(rows, dtype=np.int64), k)
        k_of = np.tile(np.arange(k), b)
        tgt = torch.full((r, 1), model.sos, dtype=torch.long, device=dev)
        done = torch.zeros(r, dtype=torch.bool, device=dev)
        out = torch.zeros(r, max_steps, dtype=torch.long, device=dev)
        table = model.embedding.weight
        ar = torch.arange(r, device=dev)
        for t in range(max_steps):
            h = model.decode(tgt, memory, src_pad)[:, -1]
            logits = h @ table.t()
            gen = torch.from_numpy(step_uniforms(seed, row_of, k_of, t) < gamma).to(dev) & (t >= restrictive_steps)
            blocked = generated | (~gen[:, None] & ~in_src)
            nxt = logits.masked_fill_(blocked, float("-inf")).argmax(-1)
            nxt = nxt.masked_fill(done, 0)
            emitted = (nxt != 0) & (nxt != model.eos)
            out[:, t] = nxt.masked_fill(~emitted, 0)
            generated[ar[emitted], nxt[emitted]] = True
            done |= nxt == model.eos
            tgt = torch.cat([tgt, nxt[:, None]], 1)
            if bool(done.all()):
                break
        return out.view(b, k, max_steps).cpu().numpy()
    finally:
        model.train(was)


def regenerate(model: Regenerator, indptr: np.ndarray, items: np.ndarray, rows: np.ndarray | None = None, *,
               gamma: float = 0.3, max_steps: int = 25, restrictive_steps: int = 0, batch_size: int = 512,
               seed: int = 0, device: str | torch.device = "cpu") -> dict[str, np.ndarray | float]:
    """Hybrid inference over CSR sequences ``(indptr, items)`` (all rows, or ``rows``), batched.

    Returns ``indptr``/``items`` of the generated patterns (one per sequence x memory, in that
    order, possibly empty), ``source`` (sequence row of each) and ``seconds``.

    Example
    -------
    >>> import numpy as np
    >>> from recsift.regen.regenerator import RegenConfig, Regenerator
    >>> m = Regenerator(9, RegenConfig(k_memories=2, max_src=8))
    >>> out = regenerate(m, np.array([0, 3, 5]), np.array([1, 2, 3, 4, 5]), gamma=0.0)
    >>> len(out["source"])
    4
    """
    if not 0.0 <= gamma <= 1.0:
        raise ConfigError(f"gamma must be in [0, 1], got {gamma}")
    if max_steps < 1 or batch_size < 1:
        raise ConfigError("max_steps and batch_size must be >= 1")
    indptr = np.asarray(indptr, dtype=np.int64)
    rows = np.arange(len(indptr) - 1) if rows is None else np.asarray(rows, dtype=np.int64)
    model.to(device)
    t0 = time.perf_counter()
    # decode sequences of similar length together (less padding); outputs go back to row order
    by_len = np.argsort(indptr[rows + 1] - indptr[rows], kind="stable")
    toks = np.zeros((len(rows), model.k, max_steps), np.int64)
    for lo in range(0, len(rows), batch_size):
        sel = by_len[lo: lo + batch_size]
        rr = rows[sel]
        src = torch.from_numpy(_trim(source_tokens(indptr, items, rr, model.cfg.max_src, model.n_items))).to(device)
        toks[sel] = decode_batch(model, src, rr, gamma=gamma, max_steps=max_steps,
                                 restrictive_steps=restrictive_steps, seed=seed)
    toks = toks.reshape(-1, max_steps)
    lengths = (toks > 0).sum(1)
    return {"indptr": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), "items": toks[toks > 0],
            "source": np.repeat(rows, model.k), "seconds": time.perf_counter() - t0}


def unique_sequences(indptr: np.ndarray, items: np.ndarray, *, min_len: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Distinct CSR sequences of length >= ``min_len`` (sorted order), as CSR."""
    lengths = np.diff(indptr)
    keep = np.flatnonzero(lengths >= min_len)
    if len(keep) == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.int64)
    width = int(lengths[keep].max())
    mat = np.zeros((len(keep), width), dtype=np.int64)
    j = np.arange(width)[None, :]
    inside = j < lengths[keep][:, None]
    mat[inside] = items[(indptr[keep][:, None] + j)[inside]]
    uniq = np.unique(mat, axis=0)
    n = (uniq > 0).sum(1)
    return np.concatenate([[0], np.cumsum(n)]).astype(np.int64), uniq[uniq > 0]


__all__ = ["decode_batch", "regenerate", "step_uniforms", "unique_sequences"]
