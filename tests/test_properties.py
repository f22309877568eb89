"""Property-based tests (hypothesis) for loaders and splits: any valid input gives a split that
loses nothing, leaks nothing and round-trips ids."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsift.data import Interactions, leave_one_out, load_split
from recsift.data.splits import ratio_split

rows = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 40), st.integers(0, 10**6)), min_size=1, max_size=300)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _inter(r) -> Interactions:
    a = np.array(r)
    return Interactions.from_raw(a[:, 0], a[:, 1], a[:, 2].astype(np.float64), None, name="prop")


def _pairs(inter: Interactions, users: np.ndarray, items: np.ndarray) -> list[tuple]:
    return sorted(zip(inter.user_ids[users].tolist(), inter.item_ids[items].tolist()))


@SETTINGS
@given(rows)
def test_leave_one_out_keeps_every_interaction_once_and_tests_the_last(r):
    inter = _inter(r)
    sp = leave_one_out(inter)
    tv = [np.repeat(c.user, np.diff(c.tgt_indptr)) for c in (sp.valid, sp.test)]
    got = _pairs(sp.train, np.concatenate([sp.train.user, *tv]),
                 np.concatenate([sp.train.item, sp.valid.tgt_items, sp.test.tgt_items]))
    assert got == _pairs(inter, inter.user, inter.item)  # no interaction lost or duplicated
    counts = np.bincount(inter.user, minlength=inter.n_users)
    assert sorted(sp.test.user.tolist()) == np.flatnonzero(counts >= 3).tolist()
    assert (np.diff(sp.test.tgt_indptr) == 1).all() and (np.diff(sp.valid.tgt_indptr) == 1).all()
    for k, u in enumerate(sp.test.user):  # the test target is the user's last row (time, then file order)
        assert sp.test.tgt_items[k] == inter.item[inter.user_indptr()[u + 1] - 1]
    # test histories = the user's train rows + its valid target; the target never leaks into them
    hist_len = np.diff(sp.test.hist_indptr)
    assert (hist_len == counts[sp.test.user] - 1).all()
    assert ((sp.train.item >= 1) & (sp.train.item <= inter.n_items)).all()


@SETTINGS
@given(rows, st.integers(0, 2**31 - 1))
def test_ratio_split_partitions_each_user(r, seed):
    inter = _inter(r)
    sp = ratio_split(inter, seed=seed)
    tv_users = [np.repeat(c.user, np.diff(c.tgt_indptr)) for c in (sp.valid, sp.test)]
    got = _pairs(sp.train, np.concatenate([sp.train.user, *tv_users]),
                 np.concatenate([sp.train.item, sp.valid.tgt_items, sp.test.tgt_items]))
    uniq = sorted(set(_pairs(inter, inter.user, inter.item)))  # a binary matrix: repeats count once
    per_user = pd.Series([u for u, _ in uniq]).value_counts()
    assert got == [p for p in uniq if per_user[p[0]] >= 3]  # users with < 3 distinct items are dropped
    assert sp.info["duplicates_collapsed"] == len(inter) - len(uniq)
    assert len(sp.test) == len(np.unique(tv_users[1]))
    for k, u in enumerate(sp.test.user):  # no test target in its own input
        hist = sp.test.hist_items[sp.test.hist_indptr[k]:sp.test.hist_indptr[k + 1]]
        assert not np.isin(sp.test.targets(k), hist).any()


@SETTINGS
@given(rows)
def test_csv_round_trip_keeps_raw_ids(tmp_path_factory, r):
    a = np.array(r)
    df = pd.DataFrame({"visitor": [f"v{x}" for x in a[:, 0]], "product": [f"p{x}" for x in a[:, 1]],
                       "when": a[:, 2]})
    path = tmp_path_factory.mktemp("csv") / "clicks.csv"
    df.to_csv(path, index=False)
    from recsift.data import load

    inter = load(path, format="csv", user_col="visitor", item_col="product", time_col="when")
    assert sorted(zip(inter.user_ids[inter.user], inter.item_ids[inter.item])) == \
        sorted(zip(df["visitor"], df["product"]))
    assert np.all(np.diff(inter.user) >= 0)  # grouped by user
