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
outputs do not change); the graph is an edge list, and ``a_in`` / ``a_out`` are separate dense
properties built on request only (RecBole concatenates them into one matrix).

Also holds :class:`GatedGraphStep`, the gated GNN propagation both models share.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SessionGraph:
    """Batched session graphs (``N`` = number of node slots, ``<= L``) as edge lists.

    The dense matrices ``a_in`` / ``a_out`` (RecBole's ``A``) are built on request only: the
    models propagate along the edge list (:func:`propagate`).
    """

    alias: torch.Tensor  # [B, L] long: node index of each position (padding -> the item-0 node)
    items: torch.Tensor  # [B, N] long: item id of each node, sorted; unused slots are 0
    n_nodes: torch.Tensor  # [B] long: number of real nodes per row (item-0 node included)
    offsets: torch.Tensor  # [B] long: packed index of each row's first node
    node_items: torch.Tensor  # [T] long: item id of every real node, rows one after another (T = sum n_nodes)
    node_alias: torch.Tensor  # [B, L] long: packed node index of each position
    src: torch.Tensor  # [E] long: packed node index of the tail u of each distinct edge u -> v
    dst: torch.Tensor  # [E] long: packed node index of its head v
    w_in: torch.Tensor  # [E] float: 1 / indeg(v), the edge's entry in a_in
    w_out: torch.Tensor  # [E] float: 1 / outdeg(u), the edge's entry in a_out

    def _dense(self, rows: torch.Tensor, cols: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, n = self.items.shape
        row = torch.repeat_interleave(torch.arange(b, device=w.device), self.n_nodes)[rows]
        local_r, local_c = rows - self.offsets[row], cols - self.offsets[row]
        out = torch.zeros(b * n * n, dtype=w.dtype, device=w.device)
        return out.index_put_(((row * n + local_r) * n + local_c,), w).view(b, n, n)

    @property
    def a_in(self) -> torch.Tensor:
        """``[B, N, N]``: row i = in-neighbours of node i, / in-degree."""
        return self._dense(self.dst, self.src, self.w_in)

    @property
    def a_out(self) -> torch.Tensor:
        """``[B, N, N]``: row i = out-neighbours of node i, / out-degree."""
        return self._dense(self.src, self.dst, self.w_out)


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

    # distinct transitions between consecutive real positions (binary edges: a repeat counts
    # once), as an edge list -- a session graph has < L edges, so no dense [N, N] matrix is built
    valid = seq[:, 1:] != 0
    flat = alias[:, :-1] * n + alias[:, 1:]
    key = torch.unique(flat[valid] + (torch.arange(b, device=dev) * (n * n)).unsqueeze(1).expand_as(flat)[valid])
    # nodes packed row after row (no padding slots: the GNN's work is sum n_nodes, not B * N)
    offsets = torch.cumsum(count, 0) - count
    total = int(count.sum())
    row, uv = key // (n * n), key % (n * n)
    src, dst = offsets[row] + uv // n, offsets[row] + uv % n
    indeg = torch.bincount(dst, minlength=total).clamp(min=1).float()
    outdeg = torch.bincount(src, minlength=total).clamp(min=1).float()
    node_items = items[torch.arange(n, device=dev)[None, :] < count[:, None]]
    return SessionGraph(alias, items, count, offsets, node_items, alias + offsets[:, None], src, dst,
                        1.0 / indeg[dst], 1.0 / outdeg[src])


def propagate(g: SessionGraph, x_in: torch.Tensor, x_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a_in @ x_in, a_out @ x_out)`` for packed node features ``[T, k]``, summed along the edge
    list instead of multiplying dense ``[N, N]`` matrices (same sums, O(edges * k) work)."""
    out_in = torch.zeros_like(x_in).index_add_(0, g.dst, x_in.index_select(0, g.src) * g.w_in.unsqueeze(1))
    out_out = torch.zeros_like(x_out).index_add_(0, g.src, x_out.index_select(0, g.dst) * g.w_out.unsqueeze(1))
    return out_in, out_out


def gather_nodes(nodes: torch.Tensor, g: SessionGraph) -> torch.Tensor:
    """Node states back in sequence order: packed ``nodes [T, d]`` -> ``[B, L, d]``."""
    return nodes[g.node_alias]


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
        """One propagation step from packed node states ``h [T, d]``.

        ``W_ih [x_in ; x_out] + b_ih`` and ``W_hh h + b_hh`` are accumulated gate by gate with
        ``addmm`` into one buffer per gate (the reset and update gates add their input and hidden
        parts anyway): no ``[B, N, 2d]`` concatenation and no chunking of ``[B, N, 3d]`` products,
        whose backward pass concatenates gradients (slow on CPU). Same function as RecBole's cell.
        """
        d = h.size(-1)
        x_in, x_out = propagate(g, self.linear_edge_in(h), self.linear_edge_out(h))
        if self.b_iah is not None:
            x_in = x_in + self.b_iah
            x_out = x_out + self.b_ioh
        w_in, w_out = self.w_ih[:, :d], self.w_ih[:, d:]

        def part(k: int, bias: torch.Tensor, hidden: bool) -> torch.Tensor:
            rows = slice(k * d, (k + 1) * d)
            acc = torch.addmm(bias, x_in, w_in[rows].t())
            acc = torch.addmm(acc, x_out, w_out[rows].t())
            return torch.addmm(acc, h, self.w_hh[rows].t()) if hidden else acc

        reset = torch.sigmoid(part(0, self.b_ih[:d] + self.b_hh[:d], True))
        update = torch.sigmoid(part(1, self.b_ih[d:2 * d] + self.b_hh[d:2 * d], True))
        h_n = torch.addmm(self.b_hh[2 * d:], h, self.w_hh[2 * d:].t())
        new = torch.tanh(torch.addcmul(part(2, self.b_ih[2 * d:], False), reset, h_n))
        return torch.lerp(h, new, update)  # (1 - update) h + update new

    def forward(self, g: SessionGraph, h: torch.Tensor) -> torch.Tensor:
        for _ in range(self.step):
            h = self.cell(g, h)
        return h
