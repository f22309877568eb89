"""Interactions, sequences, samples, matrices, budgets, filters: small worked examples."""
from __future__ import annotations

import numpy as np
import pytest

from recsift.data import (
    Budget, EvalCases, InteractionMatrix, Interactions, SequenceSamples, SequenceStore, TrainingSet, k_core,
)
from recsift.errors import BudgetError, DataFormatError


def test_ids_start_at_one_and_rows_sorted_by_user_then_time():
    inter = Interactions.from_raw(["b", "a", "b", "a"], ["x", "y", "y", "z"], time=[5.0, 2.0, 1.0, 1.0])
    assert inter.n_users == 2 and inter.n_items == 3
    assert inter.item.min() == 1
    # user 'a' first (sorted raw ids), rows by time
    assert list(inter.user_ids[inter.user]) == ["a", "a", "b", "b"]
    assert list(inter.item_ids[inter.item]) == ["z", "y", "y", "x"]
    assert list(inter.row) == [3, 1, 2, 0]  # provenance of every row


def test_order_only_keeps_file_order_within_user():
    inter = Interactions.from_raw([2, 1, 2, 1], [9, 8, 7, 6])
    assert not inter.has_time
    assert list(inter.item_ids[inter.item]) == [8, 6, 9, 7]
    assert list(inter.time) == [0, 1, 0, 1]


def test_empty_and_ragged_input_raise():
    with pytest.raises(DataFormatError, match="empty"):
        Interactions.from_raw([], [])
    with pytest.raises(DataFormatError, match="different lengths"):
        Interactions.from_raw([1, 2], [1])
    with pytest.raises(DataFormatError, match="row 1"):
        Interactions.from_raw([1, 1], [1, 2], time=[0.0, np.nan])


def test_k_core_iterates_to_a_fixed_point():
    # user 3 has 1 item; once dropped, item 30 has 1 user and goes, which leaves user 2 with 1 item.
    u = [1, 1, 2, 2, 3, 4, 4]
    i = [10, 20, 10, 30, 30, 10, 20]
    out = k_core(Interactions.from_raw(u, i), user_k=2, item_k=2)
    assert set(out.user_ids.tolist()) == {1, 4}
    assert set(out.item_ids[1:].tolist()) == {10, 20}
    with pytest.raises(DataFormatError, match="removed every interaction"):
        k_core(Interactions.from_raw(u, i), user_k=9, item_k=9)


def test_samples_are_views_over_one_store():
    store = SequenceStore.from_lists([[1, 2, 3], [4, 5], [6]])
    s = SequenceSamples.all_prefixes(store)
    assert len(s) == 3  # (1->2), (1,2->3), (4->5)
    assert s.targets.tolist() == [2, 3, 5]
    assert s.prefix_lengths.tolist() == [1, 2, 1]
    sub = s.subset(np.array([2, 0]))
    assert sub.store is s.store
    assert sub.sample_id.tolist() == [2, 0]
    np.testing.assert_array_equal(sub.prefixes(max_len=3), [[0, 0, 4], [0, 0, 1]])
    np.testing.assert_array_equal(s.prefixes(max_len=3, pad_left=False), [[1, 0, 0], [1, 2, 0], [4, 0, 0]])
    np.testing.assert_array_equal(s.prefixes(max_len=1), [[1], [2], [4]])
    assert s.unit_ids("user").tolist() == [0, 0, 1]


def test_matrix_and_training_set_weights():
    m = InteractionMatrix.from_pairs(np.array([0, 0, 1, 1]), np.array([1, 2, 2, 2]), 2, 3)
    assert m.csr.shape == (2, 4) and len(m) == 3 and m.csr[:, 0].nnz == 0
    ts = TrainingSet(m)
    assert ts.weights.tolist() == [1, 1, 1]
    sub = ts.subset(np.array([0, 2]), curator="test")
    assert len(sub) == 2 and sub.provenance["curator"] == "test"
    with pytest.raises(DataFormatError, match="one weight per sample"):
        TrainingSet(m, weights=np.ones(5))


@pytest.mark.parametrize("value,n,expected", [(0.5, 10, 5), (1.0, 7, 7), (0.33, 10, 3), (3, 10, 3), (10, 10, 10),
                                              ("0.25", 8, 2), ("4", 8, 4)])
def test_budget_resolves(value, n, expected):
    assert Budget.parse(value).resolve(n) == expected


@pytest.mark.parametrize("value", [0, -3, 1.5, 0.0, float("nan"), "abc", True, "1e9"])
def test_budget_rejects_out_of_range(value):
    with pytest.raises(BudgetError, match=r"\(0, 1\]|positive"):
        Budget.parse(value)


def test_budget_count_larger_than_data_and_too_small_fraction():
    with pytest.raises(BudgetError, match="larger than the 10"):
        Budget(10**9).resolve(10)
    with pytest.raises(BudgetError, match="keeps nothing"):
        Budget(0.01).resolve(10)


def test_eval_cases_take_and_pad():
    c = EvalCases.from_lists([0, 1, 2], [[1, 2], [], [3]], [[4], [5, 6], [7]], n_items=7)
    sub = c.take(np.array([1, 2]))
    assert sub.history(0).tolist() == [] and sub.targets(0).tolist() == [5, 6]
    t, mask = c.padded_targets()
    assert t.tolist() == [[4, 0], [5, 6], [7, 0]] and mask.sum() == 4
    np.testing.assert_array_equal(c.padded_histories(3), [[0, 1, 2], [0, 0, 0], [0, 0, 3]])
    with pytest.raises(DataFormatError, match="at least one target"):
        EvalCases.from_lists([0], [[1]], [[]], n_items=3)


def test_sampled_candidates_exclude_history_and_targets():
    c = EvalCases.from_lists([0, 1], [[1, 2, 3], [4]], [[5], [6, 7]], n_items=20)
    c2 = c.with_sampled_candidates(9, np.random.default_rng(0))
    assert c2.candidates.shape == (2, 10)
    assert c2.candidates[:, 0].tolist() == [5, 6]
    assert not set(c2.candidates[0, 1:]) & {1, 2, 3, 5}
    assert not set(c2.candidates[1, 1:]) & {4, 6, 7, 0}
    assert len(set(c2.candidates[0].tolist())) == 10
    again = c.with_sampled_candidates(9, np.random.default_rng(0))
    np.testing.assert_array_equal(again.candidates, c2.candidates)
