"""Selectors: top-k, CCS, D², item coverage (ALGORITHMS §4, §5.1, §5.4)."""
from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsift.errors import BudgetError, ConfigError, DataFormatError, RecsiftError
from recsift.selection import (
    DataGraph,
    ccs_budgets,
    ccs_strata,
    d2_sampler,
    forward_message_pass,
    item_coverage,
    select_ccs,
    select_d2,
    select_random,
    select_top,
    select_with_prefix,
)
from recsift.selection import ccs, coverage, d2, graphs, topk

LN2, LN4 = math.log(2.0), math.log(4.0)


def test_docstring_examples_run():
    for mod in (topk, ccs, d2, coverage, graphs):
        failed, _ = doctest.testmod(mod, extraglobs={"np": np})
        assert failed == 0, mod.__name__


# ---------------------------------------------------------------- top-k


def test_select_top_ties_break_to_smaller_index_in_both_directions():
    s = np.array([0.5, 0.9, 0.5, 0.9, 0.1, 0.5])
    assert select_top(s, 3).tolist() == [0, 1, 3]  # 0.9 (1), 0.9 (3), then the first 0.5 (0)
    assert select_top(s, 2, keep="low").tolist() == [0, 4]  # 0.1, then the first 0.5
    assert select_top(s, 4, keep="low").tolist() == [0, 2, 4, 5]
    assert select_top(s, 1.0).tolist() == list(range(6))


def test_select_top_fraction_uses_floor():
    assert select_top(np.arange(10.0), 0.35).tolist() == [7, 8, 9]  # floor(3.5) = 3


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_select_top_rejects_non_finite_scores(bad):
    with pytest.raises(DataFormatError, match="NaN/inf.*index 2"):
        select_top(np.array([0.1, 0.2, bad]), 1)


def test_select_top_rejects_unknown_direction():
    with pytest.raises(ConfigError, match="'high', 'low'"):
        select_top(np.ones(3), 1, keep="middle")


@pytest.mark.parametrize("budget", [0, -3, 1.5, 10**9, 1e9, 0.0])
@pytest.mark.parametrize(
    "select",
    [
        lambda s, b: select_top(s, b),
        lambda s, b: select_ccs(s, b, rng=np.random.default_rng(0)),
        lambda s, b: select_d2(s, b, graph=DataGraph(np.zeros(len(s) + 1), [], [])),
        lambda s, b: select_random(len(s), b, rng=np.random.default_rng(0)),
    ],
)
def test_bad_budgets_raise_budget_error(budget, select):
    with pytest.raises(BudgetError):
        select(np.linspace(0.0, 1.0, 20), budget)


# ---------------------------------------------------------------- CCS


def test_ccs_budgets_hand_example_smallest_first():
    # sizes [2, 5, 30], m = 15, k = 3: 2 -> min(2, 15//3=5) = 2 (M = 13, R = 2);
    # 5 -> min(5, 13//2=6) = 5 (M = 8, R = 1); 30 -> min(30, 8) = 8.
    assert ccs_budgets([2, 5, 30], 15).tolist() == [2, 5, 8]
    assert ccs_budgets([30, 5, 2], 15).tolist() == [8, 5, 2]  # order of strata does not matter
    assert ccs_budgets([0, 3, 3], 6).tolist() == [0, 3, 3]
    with pytest.raises(BudgetError, match="7 units over strata holding 6"):
        ccs_budgets([0, 3, 3], 7)


@given(st.lists(st.integers(0, 40), min_size=1, max_size=12), st.data())
@settings(max_examples=150, deadline=None)
def test_ccs_budgets_exact_and_within_sizes(sizes, data):
    m = data.draw(st.integers(0, sum(sizes)))
    b = ccs_budgets(sizes, m)
    assert b.sum() == m
    assert (b >= 0).all() and (b <= np.array(sizes)).all()


def test_ccs_strata_max_in_last_bin_for_non_positive_scores():
    s = np.array([-5.0, -4.0, -2.5, -1.0, 0.0])
    strata = ccs_strata(s, 5)  # width 1: bins [-5,-4), [-4,-3), [-3,-2), [-2,-1), [-1,0]
    assert strata.tolist() == [0, 1, 2, 4, 4]
    assert ccs_strata(-np.arange(1.0, 11.0), 3)[0] == 2  # max (-1) of negative scores in the last bin
    assert ccs_strata(np.full(7, -2.0), 50).tolist() == [0] * 7  # constant -> one stratum


@given(
    n=st.integers(1, 200),
    frac_m=st.floats(0.0, 1.0),
    k=st.integers(1, 60),
    beta=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=120, deadline=None)
def test_select_ccs_exact_budget_and_cutoff(n, frac_m, k, beta, seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=n).round(1)  # rounding makes ties
    aum = rng.normal(size=n).round(1)
    m = max(1, int(frac_m * n))
    cut = math.floor(beta * n + 1e-9)
    if m > n - cut:
        with pytest.raises(BudgetError, match=f"{m} units exceeds the {n - cut} units"):
            select_ccs(scores, m, cutoff_scores=aum, beta=beta, n_strata=k, rng=rng)
        return
    sel = select_ccs(scores, m, cutoff_scores=aum, beta=beta, n_strata=k, rng=rng)
    assert sel.size == m and np.unique(sel).size == m and sel.dtype == np.int64
    assert (np.diff(sel) > 0).all()
    dropped = np.argsort(aum, kind="stable")[:cut]
    assert not np.isin(sel, dropped).any()


def test_select_ccs_error_names_both_numbers_and_suggests_smaller_beta():
    with pytest.raises(BudgetError, match=r"budget of 80 units exceeds the 70 units left .*drops 30 of 100.*smaller beta \(at most 0.2\)"):
        select_ccs(np.arange(100.0), 80, beta=0.3, rng=np.random.default_rng(0))


def test_select_ccs_follows_strata_budgets():
    # 3 strata of sizes 2, 5, 30 (scores 0, 1, 2 with n_strata=3 → bins [0,2/3) [2/3,4/3) [4/3,2])
    s = np.array([0.0] * 2 + [1.0] * 5 + [2.0] * 30)
    sel = select_ccs(s, 15, n_strata=3, rng=np.random.default_rng(1))
    assert np.bincount(s[sel].astype(int), minlength=3).tolist() == [2, 5, 8]


def test_select_ccs_with_sampler_and_bad_sampler():
    s = np.array([0.0] * 2 + [1.0] * 5 + [2.0] * 30)
    calls = []

    def first_b(pool, b):
        calls.append((pool.tolist(), b))
        return pool[:b]

    sel = select_ccs(s, 15, n_strata=3, rng=np.random.default_rng(1), sampler=first_b)
    assert sel.tolist() == [0, 1, 2, 3, 4, 5, 6] + list(range(7, 15))
    assert sorted(b for _, b in calls) == [2, 5, 8]
    with pytest.raises(RecsiftError, match=r"CCS sampler must return 2 distinct ids .* returned 2 ids \(1 distinct, 0 not among"):
        select_ccs(s, 15, n_strata=3, rng=np.random.default_rng(1), sampler=lambda pool, b: pool[:1].repeat(b))


# ---------------------------------------------------------------- D²


def _six_node_graph() -> DataGraph:
    # Directed lists (symmetrised inside D²): 0→1 (d 0), 1→0 (d 0), 1→2 (ln 2), 3→4 (ln 2), 4→5 (ln 4).
    return DataGraph(
        indptr=[0, 1, 3, 3, 4, 5, 5],
        indices=[1, 0, 2, 4, 5],
        dist=[0.0, 0.0, LN2, LN2, LN4],
    )


def test_d2_forward_pass_by_hand():
    s = np.array([1.0, 1.0, 2.0, 3.0, 1.0, 2.0])
    # symmetrised: 0:{1 (w 1)}, 1:{0 (1), 2 (1/2)}, 2:{1 (1/2)}, 3:{4 (1/2)}, 4:{3 (1/2), 5 (1/4)}, 5:{4 (1/4)}
    # s'0 = 1 + 1*1 = 2;       s'1 = 1 + 1*1 + 0.5*2 = 3;      s'2 = 2 + 0.5*1 = 2.5
    # s'3 = 3 + 0.5*1 = 3.5;   s'4 = 1 + 0.5*3 + 0.25*2 = 3;   s'5 = 2 + 0.25*1 = 2.25
    fwd = forward_message_pass(s, _six_node_graph())
    np.testing.assert_allclose(fwd, [2.0, 3.0, 2.5, 3.5, 3.0, 2.25], rtol=1e-6)
    # product mode: s_i * sum_j w s_j
    prod = forward_message_pass(s, _six_node_graph(), mode="product")
    np.testing.assert_allclose(prod, [1.0, 2.0, 1.0, 1.5, 2.0, 0.5], rtol=1e-6)


def test_d2_reverse_pass_by_hand():
    s = np.array([1.0, 1.0, 2.0, 3.0, 1.0, 2.0])
    # start from s' = [2, 3, 2.5, 3.5, 3, 2.25]; gamma_r = 1, so weights are the same as above.
    # pick 3 (3.5): s'4 = 3 - 0.5*3.5 = 1.25
    # pick 1 (3):   s'0 = 2 - 1*3 = -1;  s'2 = 2.5 - 0.5*3 = 1.0
    # pick 5 (2.25): s'4 = 1.25 - 0.25*2.25 = 0.6875
    # pick 2 (1.0), then 4 (0.6875), then 0 (-1)
    order = select_d2(s, 6, graph=_six_node_graph(), gamma_f=1.0, gamma_r=1.0, order=True)
    assert order.tolist() == [3, 1, 5, 2, 4, 0]
    assert select_d2(s, 3, graph=_six_node_graph(), gamma_r=1.0).tolist() == [1, 3, 5]
    # top-k on the forward scores would keep 3, 1 and 4 (4 ties 1 at 3.0, loses on index)
    assert select_top(forward_message_pass(s, _six_node_graph()), 3).tolist() == [1, 3, 4]
    # "absolute": subtract s'_{i*} itself. pick 3 (3.5): s'4 = -0.5; pick 1 (3): s'0 = -1, s'2 = -0.5;
    # pick 5 (2.25): s'4 = -2.75
    assert select_d2(s, 3, graph=_six_node_graph(), gamma_r=1.0, reverse="absolute", order=True).tolist() == [3, 1, 5]


def test_d2_large_gamma_r_is_top_k_of_forward_scores():
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(60, 4))
    g = graphs.knn_graph(emb, 5)
    s = rng.random(60)
    assert select_d2(s, 20, graph=g, gamma_r=1e6).tolist() == select_top(forward_message_pass(s, g), 20).tolist()


def _naive_reverse(values, sym, weights, m):
    v = values.copy()
    sel = np.zeros(v.size, dtype=bool)
    order = []
    for _ in range(m):
        i = int(np.argmax(np.where(sel, -np.inf, v)))  # first maximum = smaller index
        order.append(i)
        sel[i] = True
        cur = v[i]
        for p in range(sym.indptr[i], sym.indptr[i + 1]):
            j = sym.indices[p]
            if not sel[j]:
                v[j] -= weights[p] * cur
    return order


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("reverse", ["weighted", "absolute"])
def test_d2_greedy_matches_naive_greedy(seed, reverse):
    # Dense enough that values go negative (then picks *raise* neighbours); integer scores
    # and rounded distances make many ties.
    rng = np.random.default_rng(seed)
    n = 80
    g = graphs.knn_graph(rng.integers(0, 4, size=(n, 3)).astype(float), 8)
    s = rng.integers(0, 5, size=n).astype(float)
    sym = g.symmetrized()
    fwd = forward_message_pass(s, g)
    w = np.exp(-0.1 * sym.dist.astype(np.float64)) if reverse == "weighted" else np.ones(sym.n_edges)
    expect = _naive_reverse(fwd, sym, w, n)
    assert select_d2(s, n, graph=g, gamma_r=0.1, reverse=reverse, order=True).tolist() == expect


def test_d2_graph_size_mismatch_and_negative_scores():
    g = _six_node_graph()
    with pytest.raises(ConfigError, match="graph has 6 nodes but there are 7 scores; build the graph on the same units"):
        select_d2(np.ones(7), 2, graph=g)
    with pytest.raises(DataFormatError, match=r"must be >= 0.*minimum is -0.5.*rank-normalise them or shift"):
        select_d2(np.array([1.0, -0.5, 0, 0, 0, 0]), 2, graph=g)
    with pytest.raises(DataFormatError, match="NaN/inf"):
        select_d2(np.array([1.0, np.nan, 0, 0, 0, 0]), 2, graph=g)


def test_d2_sampler_inside_ccs_runs_on_the_stratum_subgraph():
    s = np.array([1.0, 1.0, 2.0, 3.0, 1.0, 2.0])
    g = _six_node_graph()
    # one stratum holding everything → same as global D²
    sel = select_ccs(s, 3, n_strata=1, rng=np.random.default_rng(0), sampler=d2_sampler(s, g, gamma_r=1.0))
    assert sel.tolist() == [1, 3, 5]
    # pool {0, 1, 2} alone: s' = [2, 3, 2.5] → pick 1, then 0 → -1 and 2 → 1.0 → pick 2
    assert d2.d2_within(np.array([0, 1, 2]), 2, scores=s, graph=g, gamma_r=1.0).tolist() == [1, 2]


# ---------------------------------------------------------------- item coverage


def _csr(units: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.r_[0, np.cumsum([len(u) for u in units])]
    items = np.array([i for u in units for i in u], dtype=np.int64)
    return indptr, items


def test_item_coverage_greedy_takes_the_largest_gain_first():
    # index order would take 0 and 1; greedy takes 2 (covers 4 items), then 3.
    indptr, items = _csr([[0, 1], [2, 3], [0, 1, 2, 3], [4]])
    assert item_coverage(indptr, items).tolist() == [2, 3]


def test_item_coverage_ties_by_smaller_index_and_repeats_ignored():
    # units 0 and 2 are the same set ({0, 1}; unit 2 repeats item 1): 0 wins the tie.
    # after it, unit 3 {1, 5} gains 1 and unit 1 {2, 3, 3} gains 2 → 1; then 3 (5), no more.
    indptr, items = _csr([[0, 1], [2, 3, 3], [1, 0, 1], [1, 5]])
    assert item_coverage(indptr, items).tolist() == [0, 1, 3]
    # restricted to candidates 2 and 3 (items 0, 1, 5 must be covered)
    assert item_coverage(indptr, items, candidates=[2, 3]).tolist() == [2, 3]


@given(st.lists(st.lists(st.integers(0, 30), max_size=8), min_size=1, max_size=40))
@settings(max_examples=100, deadline=None)
def test_item_coverage_covers_every_item(units):
    indptr, items = _csr(units)
    cov = item_coverage(indptr, items, n_items=31)
    covered = set(i for u in cov for i in units[u])
    assert covered == set(items.tolist())
    assert (np.diff(cov) > 0).all()
    # every pick added something new: no redundant unit at the time it was picked
    assert cov.size <= len(set(items.tolist()))


def test_select_with_prefix_exact_m_and_errors():
    scores = np.array([0.9, 0.1, 0.8, 0.7, 0.2, 0.6])
    rest = lambda idx, b: idx[select_top(scores[idx], b)]  # noqa: E731
    assert select_with_prefix(np.array([1, 4]), 6, 4, rest).tolist() == [0, 1, 2, 4]
    assert select_with_prefix(np.array([1, 4]), 6, 2, rest).tolist() == [1, 4]  # prefix fills the budget
    assert select_with_prefix(np.array([1]), 6, 0.5, rest).tolist() == [0, 1, 2]
    with pytest.raises(BudgetError, match="prefix alone has 3 units but the budget keeps only 2"):
        select_with_prefix(np.array([0, 1, 2]), 6, 2, rest)
    with pytest.raises(RecsiftError, match=r"select_rest .* must return 2 distinct ids .* \(2 distinct, 1 not among those given\)"):
        select_with_prefix(np.array([1]), 6, 3, lambda idx, b: np.array([1, 0]))  # 1 is in the prefix
