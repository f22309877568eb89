"""Data graphs for D² selection (ALGORITHMS §5.1–5.2): kNN graphs on embeddings and
session graphs whose edges join units that share an item.

A :class:`DataGraph` is a CSR neighbour list with float32 distances. Zero distances (two
identical sessions, duplicate embeddings) are legal and are kept, which is why the graph is
not a ``scipy.sparse`` matrix: scipy drops explicit zeros in many operations.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, DataFormatError, RecsiftError
from .topk import check_choice

log = logging.getLogger(__name__)

#: ``method="auto"`` uses the exact kNN search up to this many nodes, faiss beyond.
EXACT_KNN_MAX_NODES = 50_000
#: IVF lists probed per query by ``method="faiss"`` at a million nodes; fewer nodes probe
#: more lists (see :func:`default_nprobe`).
DEFAULT_NPROBE = 8
_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True, eq=False)  # arrays: compare fields with np.array_equal
class DataGraph:
    """Directed neighbour lists: the neighbours of node ``i`` are
    ``indices[indptr[i]:indptr[i+1]]`` at distances ``dist[indptr[i]:indptr[i+1]]``.

    Example
    -------
    >>> g = DataGraph(indptr=[0, 1, 2, 2], indices=[1, 0], dist=[0.0, 0.0])
    >>> g.n_nodes, g.n_edges, g.symmetrized().n_edges
    (3, 2, 2)
    """

    indptr: np.ndarray
    indices: np.ndarray
    dist: np.ndarray

    def __post_init__(self) -> None:
        indptr = np.ascontiguousarray(self.indptr, dtype=np.int64)
        indices = np.ascontiguousarray(self.indices, dtype=np.int64)
        dist = np.ascontiguousarray(self.dist, dtype=np.float32)
        object.__setattr__(self, "indptr", indptr)
        object.__setattr__(self, "indices", indices)
        object.__setattr__(self, "dist", dist)
        _check_csr(indptr, indices.size, "graph")
        if dist.shape != indices.shape:
            raise DataFormatError(f"graph has {indices.size} neighbour indices but {dist.size} distances; give one per edge")
        n = indptr.size - 1
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            raise DataFormatError(f"graph neighbour indices must lie in [0, {n}); rebuild the graph")
        if dist.size and not (np.isfinite(dist).all() and dist.min() >= 0):
            raise DataFormatError("graph distances must be finite and >= 0; rebuild the graph")

    @property
    def n_nodes(self) -> int:
        return int(self.indptr.size - 1)

    @property
    def n_edges(self) -> int:
        return int(self.indices.size)

    def degrees(self) -> np.ndarray:
        """Out-degree of every node."""
        return np.diff(self.indptr)

    def sources(self) -> np.ndarray:
        """Source node of every edge (the row of each CSR entry)."""
        return np.repeat(np.arange(self.n_nodes, dtype=np.int64), self.degrees())

    def to_scipy(self) -> sp.csr_matrix:
        """Distances as a ``csr_matrix`` (explicit zeros are present here but later scipy
        operations may drop them: use the graph's own methods for anything structural)."""
        return sp.csr_matrix((self.dist, self.indices, self.indptr), shape=(self.n_nodes, self.n_nodes))

    def validate(self, n: int, what: str = "scores") -> None:
        """Raise if the graph is not built on ``n`` units (one node per score)."""
        if self.n_nodes != n:
            raise ConfigError(
                f"graph has {self.n_nodes} nodes but there are {n} {what}; build the graph on the same units"
            )

    def symmetrized(self) -> DataGraph:
        """Edge i–j if j is a neighbour of i or i of j (D² dense path); the distance of a pair
        listed both ways is the smaller of the two. Rows are sorted by neighbour index."""
        n, e = self.n_nodes, self.n_edges
        # Edge ids + 1 as sparse values (never 0, so scipy drops nothing): the union of A and
        # Aᵀ, with each entry's two ids packed as id(i→j) + big·id(j→i), in linear time.
        a = sp.csr_matrix((np.arange(1, e + 1, dtype=np.int64), self.indices, self.indptr), shape=(n, n))
        a.sort_indices()
        if not a.has_canonical_format:  # a neighbour listed twice in one row
            return self._symmetrized_by_sort()
        big = e + 1
        both = a + a.T.tocsr() * big
        by_id = np.r_[np.float32(np.inf), self.dist]  # id 0 = "not listed this way"
        dist = np.minimum(by_id[both.data % big], by_id[both.data // big])
        return DataGraph(indptr=both.indptr, indices=both.indices, dist=dist)

    def _symmetrized_by_sort(self) -> DataGraph:
        n = self.n_nodes
        src, dst = self.sources(), self.indices
        key = np.concatenate([src * n + dst, dst * n + src])
        dist = np.concatenate([self.dist, self.dist])
        order = np.argsort(key)
        key, dist = key[order], dist[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        return from_edges(n, key[starts] // n, key[starts] % n, np.minimum.reduceat(dist, starts))

    def subgraph(self, nodes: np.ndarray) -> DataGraph:
        """Graph induced on ``nodes`` (distinct global ids), relabelled ``0..len(nodes)-1``
        in the order given."""
        nodes = np.asarray(nodes, dtype=np.int64)
        local = np.full(self.n_nodes, -1, dtype=np.int64)
        local[nodes] = np.arange(nodes.size)
        starts, lens = self.indptr[nodes], self.degrees()[nodes]
        pos = segment_positions(starts, lens)
        dst = local[self.indices[pos]]
        keep = dst >= 0
        src = np.repeat(np.arange(nodes.size, dtype=np.int64), lens)[keep]
        return from_edges(nodes.size, src, dst[keep], self.dist[pos][keep])


def from_edges(n: int, src: np.ndarray, dst: np.ndarray, dist: np.ndarray) -> DataGraph:
    """A :class:`DataGraph` on ``n`` nodes from edge lists; edges of one source keep their order."""
    src = np.asarray(src, dtype=np.int64)
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return DataGraph(indptr=indptr, indices=np.asarray(dst)[order], dist=np.asarray(dist)[order])


def segment_positions(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for every (start, length) pair, vectorised."""
    starts = np.asarray(starts, dtype=np.int64)
    lens = np.asarray(lens, dtype=np.int64)
    total = int(lens.sum())
    offsets = np.cumsum(lens) - lens
    return np.repeat(starts - offsets, lens) + np.arange(total, dtype=np.int64)


def _check_csr(indptr: np.ndarray, n_values: int, what: str) -> None:
    if indptr.ndim != 1 or indptr.size < 1:
        raise DataFormatError(f"{what} indptr must be a 1-D array of length n+1")
    if indptr[0] != 0 or indptr[-1] != n_values or (indptr.size > 1 and np.any(np.diff(indptr) < 0)):
        raise DataFormatError(
            f"{what} indptr must start at 0, never decrease and end at the number of values ({n_values}); "
            f"got start {indptr[0]}, end {indptr[-1]}"
        )


# ---------------------------------------------------------------- unit × item incidence


def item_sets(unit_indptr: np.ndarray, unit_items: np.ndarray, n_items: int | None = None) -> sp.csr_matrix:
    """Binary unit × item ``csr_matrix`` (float32, sorted, repeats removed): row ``i`` is the
    item *set* of ``unit_items[unit_indptr[i]:unit_indptr[i+1]]``.

    Example
    -------
    >>> item_sets([0, 3, 4], [2, 0, 2, 1]).toarray().tolist()
    [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    indptr = np.asarray(unit_indptr, dtype=np.int64)
    items = np.asarray(unit_items)
    if items.ndim != 1 or (items.size and not np.issubdtype(items.dtype, np.integer)):
        raise DataFormatError(f"unit_items must be a 1-D integer array of item ids, got dtype {items.dtype}")
    _check_csr(indptr, items.size, "unit")
    hi = int(items.max()) + 1 if items.size else 0
    if items.size and items.min() < 0:
        raise DataFormatError(f"item ids must be >= 0, found {int(items.min())}")
    n_items = hi if n_items is None else int(n_items)
    if hi > n_items:
        raise DataFormatError(f"item id {hi - 1} is out of range for n_items={n_items}; pass a larger n_items")
    x = sp.csr_matrix(
        (np.ones(items.size, dtype=np.float32), items.astype(np.int64), indptr), shape=(indptr.size - 1, n_items)
    )
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


# ---------------------------------------------------------------- session graph


def session_graph(
    unit_indptr: np.ndarray,
    unit_items: np.ndarray,
    *,
    k: int = 10,
    max_candidates_per_item: int = 200,
    rng: np.random.Generator | None = None,
    block_size: int = 2048,
) -> DataGraph:
    """k nearest co-item neighbours of every unit under the Jaccard distance of item sets.

    Node ``i`` is the unit whose item set is ``unit_items[unit_indptr[i]:unit_indptr[i+1]]``
    (repeats ignored). An edge i→j exists only if i and j share an item; its distance is
    ``1 - |A_i ∩ A_j| / |A_i ∪ A_j|`` (exact); each node keeps its ``k`` nearest, ties by the
    smaller index. Our design for the seed's session graph (ALGORITHMS §5.2).

    Hub items would make the candidate set dense, so each item's list of units is cut to
    ``max_candidates_per_item`` units sampled with ``rng`` (default: seed 0, so the graph is
    deterministic). The candidates of ``i`` are the units on the (cut) lists of its items.
    They are first ranked by the overlap counted through those lists (a shared hub item
    counts only if ``j`` is on its sampled list), the best ``2k`` are then re-ranked by their
    exact Jaccard distance, and the best ``k`` kept. With no list cut (every item in at most
    ``max_candidates_per_item`` units) this is exactly the k nearest co-item neighbours.

    Work is done in blocks of ``block_size`` units (sparse unit×item by item×unit products,
    run on ``RECSIFT_THREADS`` threads), so memory stays ~O(block_size · items per unit ·
    max_candidates_per_item) per thread.

    Example
    -------
    >>> g = session_graph([0, 2, 4, 5, 6], [1, 2, 1, 2, 2, 3], k=2)
    >>> g.indices.tolist(), g.dist.round(3).tolist()
    ([1, 2, 0, 2, 0, 1], [0.0, 0.5, 0.0, 0.5, 0.5, 0.5])
    """
    if k < 1 or max_candidates_per_item < 1 or block_size < 1:
        raise ConfigError("session_graph needs k >= 1, max_candidates_per_item >= 1 and block_size >= 1")
    x = item_sets(unit_indptr, unit_items)
    rng = np.random.default_rng(0) if rng is None else rng
    lists = _cut_item_lists(x, max_candidates_per_item, rng)
    # Blocks of units with similar candidate counts pad little in `smallest_per_row`.
    n_cand = x @ np.diff(lists.indptr).astype(np.float32)
    order = np.argsort(n_cand, kind="stable")
    blocks = [order[a : a + block_size] for a in range(0, order.size, block_size)]
    ctx = _SessionContext(x, lists, k)
    with ThreadPoolExecutor(max_workers=n_threads()) as pool:
        parts = list(pool.map(ctx.block_edges, blocks))
    src, dst, dist = (np.concatenate([p[i] for p in parts] or [np.zeros(0)]) for i in range(3))
    return from_edges(x.shape[0], src, dst, dist)


def n_threads() -> int:
    """Worker threads for numpy/scipy/faiss work: ``RECSIFT_THREADS``, else all cores."""
    return int(os.environ.get("RECSIFT_THREADS", "0") or 0) or (os.cpu_count() or 1)


def _cut_item_lists(x: sp.csr_matrix, cap: int, rng: np.random.Generator) -> sp.csr_matrix:
    """Item × unit incidence where every item keeps at most ``cap`` of its units (uniform sample)."""
    lists = x.T.tocsr()
    lists.sort_indices()
    df = np.diff(lists.indptr)
    hubs = np.flatnonzero(df > cap)
    if hubs.size == 0:
        return lists
    pos = segment_positions(lists.indptr[hubs], df[hubs])
    owner = np.repeat(np.arange(hubs.size, dtype=np.float64), df[hubs])
    order = np.argsort(owner + rng.random(pos.size))  # random order inside each hub's list
    rank = np.arange(pos.size) - np.repeat(np.cumsum(df[hubs]) - df[hubs], df[hubs])
    keep = np.ones(lists.nnz, dtype=bool)
    keep[pos[order[rank >= cap]]] = False
    row = np.repeat(np.arange(lists.shape[0]), df)[keep]
    indptr = np.zeros(lists.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=lists.shape[0]), out=indptr[1:])
    return sp.csr_matrix((lists.data[keep], lists.indices[keep], indptr), shape=lists.shape)


class _SessionContext:
    """What every block of :func:`session_graph` needs (read-only, shared by the threads)."""

    def __init__(self, x: sp.csr_matrix, lists: sp.csr_matrix, k: int) -> None:
        self.x, self.lists, self.k = x, lists, k
        self.sizes = np.diff(x.indptr)
        self.col_bits = max(int(x.shape[0] - 1).bit_length(), 1)
        # float32 ratios of integers below 2**11.5 are distinct whenever the ratios are.
        self.exact32 = 2 * int(self.sizes.max(initial=0)) < 2896
        self.sizes_f = self.sizes.astype(np.float32 if self.exact32 else np.float64)

    def block_edges(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Edges (src, dst, dist) of ``units``, the ``k`` nearest per unit."""
        crow, cols, counts = _overlap_counts(self.x[units], self.lists)
        key = self._rank_keys(units, crow, cols, counts)
        rows, top = smallest_per_row(crow, key, 2 * self.k + 1)
        src = np.repeat(units[rows], top.shape[1])
        dst = (top & ((1 << self.col_bits) - 1)).ravel()
        ok = (top.ravel() != _INT64_MAX) & (dst != src)
        src, dst = src[ok], dst[ok]
        inter = _exact_overlap(self.x, src, dst)
        union = self.sizes[src] + self.sizes[dst] - inter
        dist = ((union - inter) / union).astype(np.float32)
        order = np.lexsort((dst, dist, src))
        src, dst, dist = src[order], dst[order], dist[order]
        keep = np.arange(src.size) - np.searchsorted(src, src) < self.k
        return src[keep], dst[keep], dist[keep]

    def _rank_keys(self, units: np.ndarray, crow: np.ndarray, cols: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """int64 keys ordered like (Jaccard distance through the cut lists, column).

        float32 path: the distance's bit pattern (monotone for floats >= 0). float64 path (huge
        sets): the distance quantised to the bits the column leaves free; distinct distances of
        sets up to 2**((59 - col_bits) / 2) items (~700k for a million units) stay distinct.
        """
        sz = self.sizes_f
        union = np.repeat(sz[units], np.diff(crow))
        union += sz[cols]
        union -= counts
        dist = union - counts
        dist -= counts
        dist /= union
        if self.exact32:
            key = dist.view(np.int32).astype(np.int64)
        else:
            key = (dist * float(2 ** (62 - self.col_bits))).astype(np.int64)
        key <<= self.col_bits
        key |= cols
        return key


def _overlap_counts(block: sp.csr_matrix, lists: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (indptr, cols, counts) of ``block @ lists``: items shared through the cut lists.

    scipy, not ``torch.sparse.mm``: torch 2.13's CPU sparse matmul leaks ~18 MB a call."""
    prod = block @ lists
    return prod.indptr, prod.indices, prod.data


def smallest_per_row(indptr: np.ndarray, keys: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``kk`` smallest ``keys`` of every CSR row, sorted, padded with int64 max.

    Returns ``(rows, top)`` with ``top[r]`` the sorted smallest keys of row ``rows[r]``
    (only rows with at least one entry). Each group of rows becomes one dense array and one
    ``np.partition``; when one dense array for all rows would be mostly padding, rows are
    grouped by power-of-two length instead.
    """
    lens = np.diff(indptr)
    if lens.size == 0 or lens.max() == 0:
        return np.zeros(0, np.int64), np.zeros((0, kk), np.int64)
    if lens.size * int(lens.max()) <= 2 * keys.size + lens.size * kk:
        return np.arange(lens.size), _dense_smallest(lens, keys, kk)
    width_class = np.ceil(np.log2(np.maximum(lens, 1))).astype(np.int64)
    width_class[lens == 0] = -1
    groups = [np.flatnonzero(width_class == c) for c in np.unique(width_class[width_class >= 0])]
    tops = [_dense_smallest(lens[g], keys[segment_positions(indptr[g], lens[g])], kk) for g in groups]
    return np.concatenate(groups), np.concatenate(tops)


def _dense_smallest(lens: np.ndarray, keys: np.ndarray, kk: int) -> np.ndarray:
    """Rows given by ``lens`` over the concatenated ``keys``: their ``kk`` smallest, sorted."""
    width = max(int(lens.max()), kk)
    dense = np.full((lens.size, width), _INT64_MAX, dtype=np.int64)
    shift = np.arange(lens.size, dtype=np.int64) * width - (np.cumsum(lens) - lens)  # flat = row*width + offset
    flat = np.repeat(shift, lens)
    flat += np.arange(keys.size)
    dense.ravel()[flat] = keys
    if dense.shape[1] > kk:
        dense = np.partition(dense, kk - 1, axis=1)[:, :kk]
    dense.sort(axis=1)
    return dense


def _exact_overlap(x: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|A_a ∩ A_b| for every pair, as a row-wise merge of the two sorted item lists."""
    if a.size == 0:
        return np.zeros(0, np.int64)
    both = x[a].multiply(x[b])
    return np.asarray(both.sum(axis=1)).ravel().astype(np.int64)


# ---------------------------------------------------------------- kNN graph on embeddings


def knn_graph(
    emb: np.ndarray,
    k: int = 10,
    *,
    method: str = "auto",
    metric: str = "euclidean",
    batch_size: int | None = None,
    nprobe: int | None = None,
) -> DataGraph:
    """Directed k-nearest-neighbour lists of the rows of ``emb`` (self excluded), nearest first.

    ``metric="euclidean"`` gives ``‖v_i − v_j‖₂`` (D², ALGORITHMS §5.1); ``"cosine"`` gives
    ``1 − cos(v_i, v_j)``. ``method="exact"`` is a chunked brute force (``torch.mm`` in blocks
    of ``batch_size`` query rows); ``"faiss"`` an IVF-Flat index (``nlist ≈ 4·sqrt(N)``,
    ``nprobe`` default :func:`default_nprobe` — recall@10 0.98 at 1M nodes on the bench's
    clustered 64-d data; raise ``nprobe`` for more recall at more cost); ``"auto"`` is
    exact up to 50,000 nodes and faiss beyond
    when ``faiss`` is installed (``pip install recsift[ann]``), else exact with a warning.
    The distances of the found pairs are recomputed directly (so duplicates get exactly 0).
    Ties at the k-th neighbour are broken arbitrarily by the search.

    Example
    -------
    >>> g = knn_graph(np.array([[0.0], [1.0], [3.0]]), k=1)
    >>> g.indices.tolist(), g.dist.tolist()
    ([1, 0, 1], [1.0, 1.0, 2.0])
    """
    check_choice("method", method, ("auto", "exact", "faiss"))
    check_choice("metric", metric, ("euclidean", "cosine"))
    x = _as_embeddings(emb, metric)
    n = x.shape[0]
    if k < 1:
        raise ConfigError(f"k={k} must be >= 1")
    kk = min(k, n - 1)
    if kk == 0:
        return DataGraph(indptr=np.zeros(n + 1, np.int64), indices=np.zeros(0), dist=np.zeros(0))
    method = _resolve_method(method, n)
    if method == "exact":
        nbr = _knn_exact(x, kk, batch_size)
    else:
        nbr = _knn_faiss(x, kk, nprobe)
    return _graph_from_knn(x, nbr, metric)


def _as_embeddings(emb: np.ndarray, metric: str) -> np.ndarray:
    from ..scoring.embedding import as_embeddings, unit_rows

    x = as_embeddings(emb)
    return unit_rows(x) if metric == "cosine" else x


def _resolve_method(method: str, n: int) -> str:
    if method == "exact" or (method == "auto" and n <= EXACT_KNN_MAX_NODES):
        return "exact"
    if method == "faiss":
        _import_faiss()
        return "faiss"
    try:
        _import_faiss()
        return "faiss"
    except RecsiftError:
        log.warning("faiss is not installed: exact kNN on %d nodes will be slow (pip install 'recsift[ann]')", n)
        return "exact"


def _import_faiss():
    try:
        import faiss
    except ImportError:
        raise ConfigError("method='faiss' needs faiss: pip install 'recsift[ann]' (or faiss-cpu)") from None
    return faiss


def _knn_exact(x: np.ndarray, kk: int, batch_size: int | None) -> np.ndarray:
    """(n, kk) neighbour indices by brute force, ``batch_size`` query rows at a time."""
    import torch

    n = x.shape[0]
    bs = batch_size or max(1, min(4096, (1 << 26) // n))  # ~256 MB of distances per block
    xt = torch.from_numpy(x)
    sq = (xt * xt).sum(1)
    out = np.empty((n, kk), dtype=np.int64)
    for a in range(0, n, bs):
        b = min(n, a + bs)
        d2 = torch.addmm(sq[None, :], xt[a:b], xt.T, alpha=-2.0)
        d2 += sq[a:b, None]
        d2[torch.arange(b - a), torch.arange(a, b)] = float("inf")
        out[a:b] = torch.topk(d2, kk, dim=1, largest=False, sorted=False).indices.numpy()
    return out


def _knn_faiss(x: np.ndarray, kk: int, nprobe: int | None) -> np.ndarray:
    """(n, kk) neighbour indices from an IVF-Flat index (-1 where fewer were found).

    ``nlist ≈ 4·sqrt(N)`` lists; the coarse quantizer is trained (10 k-means iterations,
    faiss's fixed seed) on ``16·nlist`` sampled rows, which is plenty for routing and keeps
    training a few seconds at 1M rows. Every row is routed once: its ``nprobe`` nearest lists
    serve both to add it (the first) and to search from it, which saves one full pass of
    the quantizer. Why IVF and not HNSW, measured on 2 cores (``bench/selection_scale.py``
    data): at 1M nodes IVF took 43 s at recall@10 0.975, HNSW (M=16, efSearch=32) 92 s at
    0.77; at 200k they tie on time (9 vs 10 s) and HNSW has the better recall (0.94 vs 0.87).
    """
    faiss = _import_faiss()
    faiss.omp_set_num_threads(n_threads())
    n, d = x.shape
    nlist = int(max(1, min(n // 16, round(4 * np.sqrt(n)))))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
    index.cp.niter = 10
    index.cp.min_points_per_centroid = 1  # we sample 16 per list on purpose: no warning
    index.train(x[np.sort(np.random.default_rng(0).choice(n, size=min(n, 16 * nlist), replace=False))])
    index.nprobe = min(nlist, nprobe or default_nprobe(n))
    coarse_dist, lists = index.quantizer.search(x, index.nprobe)
    first = np.ascontiguousarray(lists[:, 0])  # keep a reference: swig_ptr does not
    index.add_core(n, faiss.swig_ptr(x), None, faiss.swig_ptr(first))
    _, found = index.search_preassigned(x, kk + 1, lists, coarse_dist)
    return _drop_self(found, kk)


def default_nprobe(n: int) -> int:
    """``max(8, 8·sqrt(1M / n))``: with ``nlist = 4·sqrt(n)`` every query scans about 2,000
    candidates whatever ``n``, so the search stays linear in ``n``. On the bench's clustered
    64-d embeddings this gave recall@10 0.98 at 1M nodes (``bench/selection_scale.py``)."""
    return max(DEFAULT_NPROBE, round(DEFAULT_NPROBE * np.sqrt(1e6 / max(n, 1))))


def _drop_self(found: np.ndarray, kk: int) -> np.ndarray:
    """Remove each row's own index (and faiss's -1 fillers) and keep ``kk`` columns."""
    found = found.astype(np.int64)
    bad = (found == np.arange(found.shape[0])[:, None]) | (found < 0)
    order = np.argsort(bad, axis=1, kind="stable")[:, :kk]
    out = np.take_along_axis(found, order, axis=1)
    out[np.take_along_axis(bad, order, axis=1)] = -1
    return out


def _graph_from_knn(x: np.ndarray, nbr: np.ndarray, metric: str) -> DataGraph:
    """Graph with exact pair distances, each row sorted by (distance, index); -1 = no neighbour."""
    n, kk = nbr.shape
    dist = np.full(nbr.shape, np.inf, dtype=np.float32)
    valid = nbr >= 0
    rows = np.repeat(np.arange(n), kk).reshape(n, kk)
    dist[valid] = _pair_distances(x, rows[valid], nbr[valid], metric)
    order = np.lexsort((np.where(valid, nbr, _INT64_MAX), dist), axis=-1)
    nbr = np.take_along_axis(nbr, order, axis=1)
    dist = np.take_along_axis(dist, order, axis=1)
    valid = nbr >= 0
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(valid.sum(1), out=indptr[1:])
    return DataGraph(indptr=indptr, indices=nbr[valid], dist=dist[valid])


def _pair_distances(x: np.ndarray, a: np.ndarray, b: np.ndarray, metric: str, chunk: int = 1 << 20) -> np.ndarray:
    out = np.empty(a.size, dtype=np.float32)
    for s in range(0, a.size, chunk):
        diff = x[a[s : s + chunk]] - x[b[s : s + chunk]]
        sq = np.einsum("ij,ij->i", diff, diff)
        out[s : s + chunk] = sq / 2 if metric == "cosine" else np.sqrt(sq)
    return out
