"""DR4SR's "GNN" backbone: a global item-transition graph in front of a SASRec encoder.

Paper: Yin et al., "Dataset Regeneration for Sequential Recommendation", KDD 2024 (the GNN
target model of its tables). Reference: ``USTC-StarTeam/DR4SR``, the GNN model and its graph
builder (ALGORITHMS.md §3.7). Not SR-GNN (no per-session graphs, no gated GNN).

* Graph, built from the training sequences the model is trained on (the trainer calls
  ``prepare_data(train_set)`` before the first epoch): edge ``i -> j`` with weight
  ``1 / distance`` for every ``j`` within the next ``window`` (2) positions, summed over
  occurrences; symmetrised (``A + A^T``); self-loops added; every row divided by its number of
  neighbours (non-zeros), not by its weight sum.
  ``graph_norm="row+col"`` uses the released code's ``D^-1 S + S D^-1`` instead (its
  ``_build_graph``; the entries of a row then sum to more than 1); ``"row_sum"`` (an option of
  ours, not the paper's) divides rows by their weight sums, whose scale does not grow when a
  training set repeats transitions (+ DR4SR's does: ``bench/gnn_graph_scale.py``).
* Item embeddings propagated LightGCN-style, ``E_{l+1} = A E_l`` for ``gnn_layers`` (3, as
  ALGORITHMS.md §3.7; the released ``configs/gnn.yaml`` sets 2) layers, averaged over
  ``E_0..E_L``. The propagated table is both the encoder's input table and the (tied) output table.
* Encoder: SASRec's (``sasrec.py``) with the reference's sizes: 2 layers, 2 heads, FFN 128,
  dropout 0.5.

The released code's graph (``graph: new``) is likewise built from the data the model trains on; its
builder shortens every sequence by one item first (``item_list_len -= 1``, commented as for the
validation data); here every item of the training sequences counts.

Deviations: without ``prepare_data`` (a model used before any training set was seen) the
graph is the identity, i.e. plain SASRec with FFN 128. The padding row has no edges. One
propagation is computed per forward call and reused by the scoring calls that follow it (as
long as the item table has not changed since).

Speed: on CPU the propagation multiplies by the graph with scipy's CSR product (`_spmm`; its
backward is the product with the transpose, itself differentiable, so DR4SR+'s second-order
hyper-gradient goes through it): on Beauty (12,102 items, 409,637 edges) three layers forward and
backward take 2.8x less time than ``torch.sparse.mm`` on the COO tensor, which dominated a training
step. On a GPU the torch product is used.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import torch

from ..data import SequenceSamples, TrainingSet
from ..errors import ConfigError
from .registry import register_model
from .sasrec import SASRec


GRAPH_NORMS = ("row", "row+col", "row_sum")


def _check_norm(norm: str) -> str:
    if norm not in GRAPH_NORMS:
        raise ConfigError(f"dr4sr_gnn: graph_norm={norm!r} is not one of {GRAPH_NORMS}")
    return norm


def transition_graph(indptr: np.ndarray, items: np.ndarray, n_items: int, window: int = 2,
                     norm: str = "row") -> torch.Tensor:
    """Normalised symmetric item graph ``[n_items + 1]^2`` (sparse COO tensor) of CSR sequences.

    ``norm``: ``"row"`` divides every row of ``S = A + A^T + I`` by its number of neighbours
    (``D^-1 S``, ALGORITHMS.md §3.7); ``"row+col"`` is the released code's ``D^-1 S + S D^-1``;
    ``"row_sum"`` (not the paper's) divides every row by its weight sum, so repeating the same
    transitions does not change the graph's scale.

    Example
    -------
    >>> import numpy as np
    >>> a = transition_graph(np.array([0, 3]), np.array([1, 2, 3]), 3).to_dense()
    >>> [round(float(x), 3) for x in a[1]]
    [0.0, 0.333, 0.333, 0.167]
    """
    return _to_torch(transition_csr(indptr, items, n_items, window, norm))


def _to_torch(a) -> torch.Tensor:
    """A scipy sparse matrix as a coalesced torch COO tensor."""
    a = a.tocoo()
    idx = torch.from_numpy(np.vstack([a.row, a.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(a.data), a.shape, check_invariants=True).coalesce()


def transition_csr(indptr: np.ndarray, items: np.ndarray, n_items: int, window: int = 2, norm: str = "row"):
    """`transition_graph` as a float32 scipy CSR matrix (what the CPU product multiplies by)."""
    import scipy.sparse as sp

    _check_norm(norm)
    seq_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    pos = np.arange(len(items))
    rows, cols, vals = [], [], []
    for d in range(1, window + 1):
        ok = pos + d < indptr[1:][seq_of]
        rows.append(items[pos[ok]])
        cols.append(items[pos[ok] + d])
        vals.append(np.full(int(ok.sum()), 1.0 / d))
    n = n_items + 1
    a = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    a = a + a.T
    eye = np.ones(n)
    eye[0] = 0.0
    a = (a + sp.diags(eye)).tocsr()
    a.sum_duplicates()
    if norm == "row_sum":
        sums = np.asarray(a.sum(1)).ravel()
        out = sp.diags(np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)) @ a
    else:
        inv = sp.diags(1.0 / np.maximum(np.diff(a.indptr), 1))  # 1 / number of neighbours (non-zeros)
        out = inv @ a if norm == "row" else inv @ a + a @ inv
    return out.tocsr().astype(np.float32)


class _SpMM(torch.autograd.Function):
    """``a @ x`` for a scipy CSR ``a`` and a dense CPU tensor ``x``; the gradient is ``a.T @ grad``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, a, at) -> torch.Tensor:  # type: ignore[override]
        ctx.pair = (a, at)
        return torch.from_numpy(np.ascontiguousarray(a @ x.detach().contiguous().numpy()))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        a, at = ctx.pair
        return _SpMM.apply(grad, at, a), None, None  # an autograd op itself: double backward works


def _spmm(pair, x: torch.Tensor) -> torch.Tensor:
    return _SpMM.apply(x, *pair)


@register_model("dr4sr_gnn")
class DR4SRGNN(SASRec):
    """Global-graph propagated item embeddings + SASRec encoder (DR4SR's GNN backbone)."""

    paper = "Yin et al., Dataset Regeneration for Sequential Recommendation, KDD 2024 (GNN backbone)"

    def __init__(self, n_items: int, max_len: int = 50, n_layers: int = 2, n_heads: int = 2,
                 hidden_size: int = 64, inner_size: int = 128, hidden_dropout_prob: float = 0.5,
                 attn_dropout_prob: float = 0.5, hidden_act: str = "gelu", layer_norm_eps: float = 1e-12,
                 initializer_range: float = 0.02, gnn_layers: int = 3, graph_window: int = 2,
                 graph_norm: str = "row") -> None:
        super().__init__(n_items, max_len, n_layers, n_heads, hidden_size, inner_size, hidden_dropout_prob,
                         attn_dropout_prob, hidden_act, layer_norm_eps, initializer_range)
        self.gnn_layers, self.graph_window = int(gnn_layers), int(graph_window)
        self.graph_norm = _check_norm(graph_norm)  # fails at construction, before any data is read
        self.graph: torch.Tensor | None = None
        self._csr: tuple | None = None  # (A, A^T) as scipy CSR, for the CPU product
        self._table: tuple[int, bool, torch.Tensor] | None = None

    def prepare_data(self, train_set: TrainingSet) -> None:
        """Build the item graph from the sequences of ``train_set`` (called by the trainer)."""
        d = train_set.data
        if not isinstance(d, SequenceSamples):
            return
        users = np.unique(d.user)
        st = d.store
        lens = st.indptr[users + 1] - st.indptr[users]
        idx = np.repeat(st.indptr[users], lens) + np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        a = transition_csr(np.concatenate([[0], np.cumsum(lens)]), st.items[idx], self.n_items, self.graph_window,
                           self.graph_norm)
        self.graph = _to_torch(a).to(self.item_embedding.weight.device)
        self._csr = (a, a.T.tocsr())
        self._table = None

    def propagated(self) -> torch.Tensor:
        """``mean(E_0, A E_0, ..., A^L E_0)``; cached per forward call while the table is unchanged."""
        w = self.item_embedding.weight
        key = (w._version, torch.is_grad_enabled())
        if self._table is not None and self._table[:2] == key:
            return self._table[2]
        if self.graph is None:
            out = w
        else:
            if w.device.type == "cpu" and w.dtype == torch.float32 and self._csr is not None:
                product = partial(_spmm, self._csr)
            else:
                product = partial(torch.sparse.mm, self.graph.to(w.device))
            layers, x = [w], w
            for _ in range(self.gnn_layers):
                x = product(x)
                layers.append(x)
            out = torch.stack(layers).mean(0)
        self._table = (*key, out)
        return out

    def _items(self, seq: torch.Tensor) -> torch.Tensor:
        self._table = None  # a forward call starts a fresh propagation (its own autograd graph)
        return self.propagated()[seq]

    def output_embedding(self) -> torch.Tensor:
        return self.propagated()


__all__ = ["DR4SRGNN", "GRAPH_NORMS", "transition_csr", "transition_graph"]
