"""Splits on worked examples: what goes to train, valid and test."""
from __future__ import annotations

import numpy as np

from recsift.data import Interactions, index_split, leave_one_out, ratio_split, session_split


def _inter():
    # user 7: a b c d (by time), user 8: e f (too short for valid/test), user 9: c a e
    u = [7, 7, 7, 7, 8, 8, 9, 9, 9]
    i = ["b", "a", "d", "c", "e", "f", "c", "a", "e"]
    t = [2, 1, 4, 3, 1, 2, 1, 2, 3]
    return Interactions.from_raw(u, i, time=t)


def _raw(inter, items):
    return [str(inter.item_ids[x]) for x in items]


def test_leave_one_out_by_time():
    inter = _inter()
    s = leave_one_out(inter)
    assert len(s.valid) == 2 and len(s.test) == 2  # users 7 and 9
    assert _raw(inter, s.valid.history(0)) == ["a", "b"] and _raw(inter, s.valid.targets(0)) == ["c"]
    assert _raw(inter, s.test.history(0)) == ["a", "b", "c"] and _raw(inter, s.test.targets(0)) == ["d"]
    assert _raw(inter, s.test.history(1)) == ["c", "a"] and _raw(inter, s.test.targets(1)) == ["e"]
    seqs = s.train_sequences()
    assert _raw(inter, seqs.sequence(0)) == ["a", "b"]
    assert _raw(inter, seqs.sequence(1)) == ["e", "f"]  # short user keeps everything for training
    assert s.info["users_without_cases"] == 1
    ts = s.training_set()
    assert _raw(inter, ts.data.targets) == ["b", "f"]
    assert not s.mask_history


def test_ratio_split_follows_the_original_rule():
    rng = np.random.default_rng(1)
    lens = [3, 10, 2, 25]
    u = np.repeat(np.arange(4), lens)
    i = np.concatenate([rng.choice(100, n, replace=False) for n in lens])
    s = ratio_split(Interactions.from_raw(u, i), seed=3)
    # n=3 -> 1 train, 0 valid, 2 test; n=10 -> 7/1/2 (first shuffled row forced to test); n=25 -> 19/2/4
    tr = np.bincount(s.train.user, minlength=3)
    assert tr.tolist() == [1, 7, 19]
    assert s.info["dropped_interactions"] == 2  # the user with 2 rows
    assert [len(s.test.targets(k)) for k in range(len(s.test))] == [2, 2, 4]
    assert [len(s.valid.targets(k)) for k in range(len(s.valid))] == [1, 2]
    # test input = train + valid items, and no target is in its own input
    for k in range(len(s.test)):
        assert not set(s.test.targets(k)) & set(s.test.history(k))
    assert s.mask_history


def test_index_split_uses_source_rows():
    inter = Interactions.from_raw([1, 1, 1, 2, 2], [5, 6, 7, 5, 8])
    s = index_split(inter, np.array([0, 1, 2, -1, 0]))
    assert s.info["dropped_interactions"] == 1
    assert len(s.train) == 2 and len(s.valid) == 1 and len(s.test) == 1
    assert inter.item_ids[s.valid.targets(0)].tolist() == [6] and inter.item_ids[s.test.targets(0)].tolist() == [7]
    assert s.test.history(0).size == 2  # train + valid items of user 1


def test_repeated_target_rows_become_one_target():
    inter = Interactions.from_raw([1, 1, 1, 1], [5, 6, 6, 7])
    s = index_split(inter, np.array([0, 2, 2, 2]))
    assert sorted(inter.item_ids[s.test.targets(0)].tolist()) == [6, 7]
    assert s.info["test_rows"] == 3


def test_session_split_every_prefix_is_a_case():
    # 10 sessions of length 3, later sessions have later times
    u = np.repeat(np.arange(10), 3)
    i = np.tile([1, 2, 3], 10) + np.repeat(np.arange(10), 3) % 2
    t = np.arange(30, dtype=float)
    s = session_split(Interactions.from_raw(u, i, time=t))
    assert s.info == {"train_sessions": 8, "valid_sessions": 1, "test_sessions": 1}
    assert len(s.test) == 2 and len(s.valid) == 2  # 2 prefixes per 3-item session
    assert s.test.history(1).tolist() == [s.test.history(0)[0], s.test.targets(0)[0]]
    assert s.test.user.tolist() == [9, 9]


def test_eval_cases_as_samples_one_sample_per_case_target():
    from recsift.data import EvalCases

    inter = _inter()
    s = leave_one_out(inter)
    smp = s.valid.as_samples()  # LOO: one sample per user with cases, prefix = history, target = valid item
    assert len(smp) == 2
    assert _raw(inter, smp.targets) == ["c", "a"]
    assert [_raw(inter, p[p > 0]) for p in smp.prefixes(max_len=5)] == [["a", "b"], ["c"]]
    # several targets per case: one sample each, the same history; an empty history gives a 0-length prefix
    c = EvalCases.from_lists([0, 1], [[3, 4], []], [[7, 8], [9]], 10)
    smp = c.as_samples()
    assert smp.targets.tolist() == [7, 8, 9] and smp.prefix_lengths.tolist() == [2, 2, 0]
    assert smp.prefixes(max_len=3).tolist() == [[0, 3, 4], [0, 3, 4], [0, 0, 0]]
