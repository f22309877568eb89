"""Session graphs for SR-GNN and GCSAN, built for a whole batch with tensor ops.

Each prefix ``seq[b]`` becomes a directed graph over its unique items, with an edge
``u -> v`` when item ``v`` is clicked right after ``u`` (Wu et al., "Session-based
Recommendation with Graph Neural Networks", AAAI 2019). The matrices are exactly those of
RecBole 1.2.1's per-sample numpy loop (``SRGNN._get_slice`` / ``GCSAN._get_slice``):

* nodes are ``np.unique(seq[b])`` -- sorted item ids, *including item 0 when the row is
  padded* (that padding node has no edges and is never read by the models);
* the edge matrix is binary (a repeated transition counts once; ``u -> u`` self-loops are
  kept);
* ``a_in[b, i, j] = E[j, i] / indeg(i)`` and ``a_out[b, i, j] = E[i, j] / outdeg(i)``
  (a degree of 0 is replaced by 1), i.e. RecBole's ``A[:, :, :N]`` and ``A[:, :, N:]``.

Deviations from RecBole: no Python loop over samples and no host round-trip (everything
stays on the input's device); the node axis is trimmed to the largest node count of the
batch instead of always ``L`` (the dropped nodes are isolated zero-padding nodes, so model
outputs do not change); ``a_in`` / ``a_out`` are returned separately instead of
concatenated.

Also holds :class:`GatedGraphStep`, the gated GNN propagation both models share.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class SessionGraph(NamedTuple):
    """Batched session graphs (``N`` = number of node slots, ``<= L``)."""

    alias: torch.Tensor  # [B, L] long: node index of each position (padding -> the item-0 node)
    items: torch.Tensor  # [B, N] long: item id of each node, sorted; unused slots are 0
    a_in: torch.Tensor  # [B, N, N] float: row i = in-neighbours of node i, / in-degree
    a_out: torch.Tensor  # [B, N, N] float: row i = out-neighbours of node i, / out-degree
    n_nodes: torch.Tensor  # [B] long: number of real nodes per row (item-0 node included)
    src: torch.Tensor  # [E] long: flat node index (b * N + u) of each distinct edge u -> v
    dst: torch.Tensor  # [E] long: flat node index (b * N + v)
    w_in: torch.Tensor  # [E] float: 1 / indeg(v), the edge's entry in a_in
    w_out: torch.Tensor  # [E] float: 1 / outdeg(u), the edge's entry in a_out


def build_session_graph(seq: torch.Tensor, n_nodes: int | None = None) -> SessionGraph:
    """Session graphs of a right-padded batch ``seq [B, L]`` (0 = padding), no loop over rows.

    Parameters
    ----------
    seq : LongTensor ``[B, L]``, right-padded item ids.
    n_nodes : width of the node axis; default the largest node count in the batch
        (pass ``L`` for RecBole's shape).

    Example
    -------
    >>> g = build_session_graph(torch.tensor([[5, 3, 5, 0]]))
    >>> g.items.tolist(), g.alias.tolist()
    ([[0, 3, 5]], [[2, 1, 2, 0]])
    >>> g.a_out[0].tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    if seq.dim() != 2:
        raise ValueError(f"seq must be [B, L], got shape {tuple(seq.shape)}")
    b, length = seq.shape
    dev = seq.device
    # np.unique per row: sort, flag first occurrences, running count = node index.
    vals, perm = seq.sort(dim=1)
    first = torch.ones_like(vals, dtype=torch.bool)
    first[:, 1:] = vals[:, 1:] != vals[:, :-1]
    node_sorted = first.long().cumsum(1) - 1  # [B, L]
    count = node_sorted[:, -1] + 1
    n = int(count.max()) if n_nodes is None else int(n_nodes)
    if n < int(count.max()):
        raise ValueError(f"n_nodes={n} is smaller than the largest node count {int(count.max())}")

    alias = torch.empty_like(node_sorted).scatter_(1, perm, node_sorted)
    # duplicates write the same item id into the same slot, so plain scatter is exact
    items = torch.zeros(b, n, dtype=seq.dtype, device=dev).scatter_(1, node_sorted, vals)

    # binary edge matrix over consecutive real positions; invalid pairs go to a dump slot
    valid = seq[:, 1:] != 0
    flat = alias[:, :-1] * n + alias[:, 1:]
    flat = torch.where(valid, flat, torch.full_like(flat, n * n))
    edges = torch.zeros(b, n * n + 1, device=dev)
    edges.scatter_(1, flat, 1.0)
    edges = edges[:, : n * n].view(b, n, n)  # edges[b, u, v] = 1 iff u -> v

    indeg = edges.sum(1).clamp(min=1.0)  # [B, N]
    outdeg = edges.sum(2).clamp(min=1.0)
    a_in = edges.transpose(1, 2) / indeg.unsqueeze(2)
    a_out = edges / outdeg.unsqueeze(2)
    # the same edges as a list (a session graph has < L edges: sparse products are far cheaper)
    key = torch.unique(flat[valid] + (torch.arange(b, device=dev) * (n * n)).unsqueeze(1).expand_as(flat)[valid])
    row, uv = key // (n * n), key % (n * n)
    src, dst = row * n + uv // n, row * n + uv % n
    return SessionGraph(alias, items, a_in, a_out, count, src, dst, 1.0 / indeg.view(-1)[dst],
                        1.0 / outdeg.view(-1)[src])


def propagate(g: SessionGraph, x_in: torch.Tensor, x_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a_in @ x_in, a_out @ x_out)`` for node features ``[B, N, k]``, summed along the edge
    list instead of multiplying dense ``[N, N]`` matrices (same sums, O(edges * k) work)."""
    b, n, k = x_in.shape
    fi, fo = x_in.reshape(b * n, k), x_out.reshape(b * n, k)
    out_in = torch.zeros_like(fi).index_add_(0, g.dst, fi.index_select(0, g.src) * g.w_in.unsqueeze(1))
    out_out = torch.zeros_like(fo).index_add_(0, g.src, fo.index_select(0, g.dst) * g.w_out.unsqueeze(1))
    return out_in.view(b, n, k), out_out.view(b, n, k)


def gather_nodes(hidden: torch.Tensor, alias: torch.Tensor) -> torch.Tensor:
    """Node states back in sequence order: ``hidden [B, N, d]``, ``alias [B, L]`` -> ``[B, L, d]``."""
    return hidden.gather(1, alias.unsqueeze(-1).expand(-1, -1, hidden.size(-1)))


class GatedGraphStep(nn.Module):
    """Gated graph neural network over a session graph (SR-GNN eq. 1-5).

    ``a = [A_in (W_in h + b_in) + b_iah ; A_out (W_out h + b_out) + b_ioh]`` then a GRU-style
    update of ``h`` from ``a``, repeated ``step`` times. ``node_bias`` toggles the extra
    ``b_iah``/``b_ioh`` biases that RecBole's SR-GNN has and its GCSAN does not.
    Parameters are initialised uniform(+-1/sqrt(d)) as in RecBole.
    """

    def __init__(self, dim: int, step: int = 1, node_bias: bool = True) -> None:
        super().__init__()
        self.step = int(step)
        self.w_ih = nn.Parameter(torch.empty(3 * dim, 2 * dim))
        self.w_hh = nn.Parameter(torch.empty(3 * dim, dim))
        self.b_ih = nn.Parameter(torch.empty(3 * dim))
        self.b_hh = nn.Parameter(torch.empty(3 * dim))
        if node_bias:
            self.b_iah = nn.Parameter(torch.empty(dim))
            self.b_ioh = nn.Parameter(torch.empty(dim))
        else:
            self.register_parameter("b_iah", None)
            self.register_parameter("b_ioh", None)
        self.linear_edge_in = nn.Linear(dim, dim)
        self.linear_edge_out = nn.Linear(dim, dim)
        bound = 1.0 / math.sqrt(dim)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def cell(self, g: SessionGraph, h: torch.Tensor) -> torch.Tensor:
        """One propagation step from node states ``h [B, N, d]``."""
        d = h.size(-1)
        x_in, x_out = propagate(g, self.linear_edge_in(h), self.linear_edge_out(h))
        if self.b_iah is not None:
            x_in = x_in + self.b_iah
            x_out = x_out + self.b_ioh
        # W_ih [x_in ; x_out] as two products: no [B, N, 2d] concatenation (slow on CPU)
        gi = F.linear(x_in, self.w_ih[:, :d]) + F.linear(x_out, self.w_ih[:, d:], self.b_ih)
        return self._gru(gi, F.linear(h, self.w_hh, self.b_hh), h)

    @staticmethod
    def _gru(gi: torch.Tensor, gh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        i_r, i_u, i_n = gi.chunk(3, 2)
        h_r, h_u, h_n = gh.chunk(3, 2)
        reset = torch.sigmoid(i_r + h_r)
        update = torch.sigmoid(i_u + h_u)
        new = torch.tanh(i_n + reset * h_n)
        return (1 - update) * h + update * new

    def forward(self, g: SessionGraph, h: torch.Tensor) -> torch.Tensor:
        for _ in range(self.step):
            h = self.cell(g, h)
        return h
