"""Data graphs: DataGraph, session_graph (Jaccard co-item graph), knn_graph (ALGORITHMS §5.1–5.2)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from recsift.errors import ConfigError, DataFormatError
from recsift.selection import DataGraph, knn_graph, session_graph
from recsift.selection.graphs import item_sets, smallest_per_row


def _csr(units):
    indptr = np.r_[0, np.cumsum([len(u) for u in units])]
    return indptr, np.array([i for u in units for i in u], dtype=np.int64)


def _rows(g: DataGraph):
    return [
        (g.indices[a:b].tolist(), g.dist[a:b].tolist()) for a, b in zip(g.indptr[:-1], g.indptr[1:])
    ]


# ---------------------------------------------------------------- DataGraph


def test_datagraph_keeps_zero_distances_through_symmetrize_and_subgraph():
    g = DataGraph(indptr=[0, 2, 2, 3], indices=[1, 2, 0], dist=[0.0, 0.5, 0.25])
    assert g.n_nodes == 3 and g.n_edges == 3
    sym = g.symmetrized()
    # 0→1 (0), 0→2 (0.5), 2→0 (0.25): pair 0–2 listed both ways keeps the smaller distance
    assert _rows(sym) == [([1, 2], [0.0, 0.25]), ([0], [0.0]), ([0], [0.25])]
    sub = g.subgraph(np.array([1, 0]))  # local 0 = node 1, local 1 = node 0
    assert _rows(sub) == [([], []), ([0], [0.0])]
    assert g.to_scipy().shape == (3, 3)


def test_symmetrize_with_a_neighbour_listed_twice_keeps_the_smaller_distance():
    # row 0 lists 1 twice (0.7 and 0.2); 1 lists 0 at 0.4 → one 0–1 edge at 0.2 each way
    g = DataGraph(indptr=[0, 2, 3], indices=[1, 1, 0], dist=[0.7, 0.2, 0.4])
    assert _rows(g.symmetrized()) == [([1], [np.float32(0.2)]), ([0], [np.float32(0.2)])]


@pytest.mark.parametrize("seed", range(3))
def test_symmetrize_fast_path_equals_sort_path(seed):
    rng = np.random.default_rng(seed)
    g = knn_graph(rng.integers(0, 3, size=(200, 2)).astype(float), 4)  # many zero distances
    fast, slow = g.symmetrized(), g._symmetrized_by_sort()
    for a, b in ((fast.indptr, slow.indptr), (fast.indices, slow.indices), (fast.dist, slow.dist)):
        assert np.array_equal(a, b)
    assert (fast.dist == 0).sum() >= (g.dist == 0).sum()


def test_datagraph_validate_and_bad_input():
    g = DataGraph(indptr=np.zeros(101, dtype=np.int64), indices=[], dist=[])
    with pytest.raises(ConfigError, match="graph has 100 nodes but there are 120 scores; build the graph on the same units"):
        g.validate(120)
    with pytest.raises(DataFormatError, match="neighbour indices must lie in"):
        DataGraph(indptr=[0, 1], indices=[3], dist=[0.0])
    with pytest.raises(DataFormatError, match="finite and >= 0"):
        DataGraph(indptr=[0, 1, 1], indices=[1], dist=[-1.0])
    with pytest.raises(DataFormatError, match="indptr must start at 0"):
        DataGraph(indptr=[0, 2, 1], indices=[1], dist=[0.0])


def test_smallest_per_row_matches_sorting():
    rng = np.random.default_rng(0)
    lens = np.r_[0, rng.integers(0, 40, size=50), 300, 1]
    indptr = np.r_[0, np.cumsum(lens)]
    keys = rng.integers(0, 1000, size=indptr[-1])
    rows, top = smallest_per_row(indptr, keys, 5)
    assert sorted(rows.tolist()) == np.flatnonzero(lens).tolist()
    for r, t in zip(rows, top):
        expect = np.sort(keys[indptr[r] : indptr[r + 1]])[:5]
        assert t[: expect.size].tolist() == expect.tolist()


# ---------------------------------------------------------------- session graph


def test_session_graph_hand_example():
    # 0 = {1,2,3}, 1 = {1,2} (item 2 repeated), 2 = {3,4}, 3 = {5}, 4 = {1,2,3} (same set as 0)
    indptr, items = _csr([[1, 2, 3], [2, 1, 2], [3, 4], [5], [3, 2, 1]])
    # Jaccard distances: 0–1 = 1 - 2/3 = 1/3; 0–2 = 1 - 1/4 = 3/4; 0–4 = 0; 1–4 = 1/3; 2–4 = 3/4;
    # 1–2 share nothing (no edge); 3 shares nothing (isolated)
    g = session_graph(indptr, items, k=2)
    rows = _rows(g)
    third = np.float32(1 / 3)
    assert rows[0] == ([4, 1], [0.0, third])
    assert rows[1] == ([0, 4], [third, third])  # tie → smaller index first
    assert rows[2] == ([0, 4], [0.75, 0.75])
    assert rows[3] == ([], [])
    assert rows[4] == ([0, 1], [0.0, third])


def _brute_force_knn(units, k):
    sets = [set(u) for u in units]
    out = []
    for i, a in enumerate(sets):
        cand = [(1 - len(a & b) / len(a | b), j) for j, b in enumerate(sets) if j != i and a & b]
        out.append(sorted(cand)[:k])
    return out


@pytest.mark.parametrize("seed", range(4))
def test_session_graph_equals_brute_force_without_truncation(seed):
    rng = np.random.default_rng(seed)
    units = [rng.integers(0, 25, size=rng.integers(0, 7)).tolist() for _ in range(120)]
    indptr, items = _csr(units)
    expect = _brute_force_knn(units, 4)
    for block in (7, 2048):
        g = session_graph(indptr, items, k=4, max_candidates_per_item=10**6, block_size=block)
        for (nbr, dist), want in zip(_rows(g), expect):
            assert nbr == [j for _, j in want]
            np.testing.assert_allclose(dist, [d for d, _ in want], rtol=1e-6)


def test_session_graph_degree_bounded_and_edges_share_items():
    rng = np.random.default_rng(5)
    units = [rng.zipf(1.5, size=rng.integers(1, 8)).clip(max=60).tolist() for _ in range(400)]
    indptr, items = _csr(units)
    g = session_graph(indptr, items, k=3, max_candidates_per_item=20, rng=np.random.default_rng(0))
    assert (g.degrees() <= 3).all()
    x = item_sets(indptr, items)
    shared = np.asarray(x[g.sources()].multiply(x[g.indices]).sum(axis=1)).ravel()
    assert (shared >= 1).all()
    assert (g.indices != g.sources()).all()
    # stored distances are exact Jaccard distances even when lists were cut
    union = np.diff(x.indptr)[g.sources()] + np.diff(x.indptr)[g.indices] - shared
    np.testing.assert_allclose(g.dist, 1 - shared / union, rtol=1e-6)


def test_session_graph_hub_item_lists_are_truncated_deterministically():
    # 500 units share hub item 0, each also has its own item: candidates of every unit come
    # only from item 0's sampled list of 50 units, so at most 50 distinct neighbours exist.
    units = [[0, 1 + i] for i in range(500)]
    indptr, items = _csr(units)
    g = session_graph(indptr, items, k=5, max_candidates_per_item=50, rng=np.random.default_rng(1))
    assert (g.degrees() == 5).all()
    assert np.unique(g.indices).size <= 50
    np.testing.assert_allclose(g.dist, 1 - 1 / 3)  # share 1 of 3 items
    again = session_graph(indptr, items, k=5, max_candidates_per_item=50, rng=np.random.default_rng(1))
    assert np.array_equal(g.indices, again.indices)
    other = session_graph(indptr, items, k=5, max_candidates_per_item=50, rng=np.random.default_rng(2))
    assert not np.array_equal(g.indices, other.indices)


def test_session_graph_bad_input():
    with pytest.raises(DataFormatError, match="indptr must start at 0"):
        session_graph(np.array([0, 3]), np.array([1, 2]))
    with pytest.raises(DataFormatError, match="item ids must be >= 0"):
        session_graph(np.array([0, 2]), np.array([1, -2]))
    with pytest.raises(ConfigError, match="k >= 1"):
        session_graph(np.array([0, 2]), np.array([1, 2]), k=0)


# ---------------------------------------------------------------- kNN graph


def _brute_knn(x, k, metric):
    if metric == "cosine":
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        d = 1 - u @ u.T
    else:
        d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_graph_exact_matches_brute_force(metric):
    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    idx, dist = _brute_knn(x.astype(np.float64), 6, metric)
    for batch in (None, 37):
        g = knn_graph(x, 6, method="exact", metric=metric, batch_size=batch)
        assert (g.degrees() == 6).all()
        assert np.array_equal(g.indices.reshape(300, 6), idx)
        np.testing.assert_allclose(g.dist.reshape(300, 6), dist, rtol=1e-4, atol=1e-5)


def test_knn_graph_duplicates_have_zero_distance_and_small_n():
    x = np.array([[1.0, 2.0], [1.0, 2.0], [5.0, 5.0]])
    g = knn_graph(x, 10)  # k clipped to n - 1 = 2
    assert _rows(g)[0] == ([1, 2], [0.0, 5.0])
    assert _rows(g)[1] == ([0, 2], [0.0, 5.0])
    assert knn_graph(np.ones((1, 3)), 5).n_edges == 0
    with pytest.raises(DataFormatError, match="zero norm"):
        knn_graph(np.zeros((3, 2)), 1, metric="cosine")
    with pytest.raises(ConfigError, match="'exact', 'faiss'"):
        knn_graph(x, 1, method="annoy")


@pytest.mark.skipif(importlib.util.find_spec("faiss") is None, reason="faiss not installed (pip install recsift[ann])")
def test_knn_graph_faiss_recall_vs_exact():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(30, 16)) * 4
    x = (centers[rng.integers(30, size=4000)] + rng.normal(size=(4000, 16))).astype(np.float32)
    exact = knn_graph(x, 10, method="exact")
    approx = knn_graph(x, 10, method="faiss")
    hits = sum(
        np.intersect1d(exact.indices[a:b], approx.indices[c:d]).size
        for a, b, c, d in zip(exact.indptr[:-1], exact.indptr[1:], approx.indptr[:-1], approx.indptr[1:])
    )
    assert hits / exact.n_edges >= 0.9
    assert (approx.indices != approx.sources()).all()
