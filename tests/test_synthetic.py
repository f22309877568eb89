"""Tests for recsift.data.synthetic: determinism, planted labels, and learnable clean data."""
from __future__ import annotations

import numpy as np
import pytest

from recsift.data.synthetic import KINDS, SyntheticData, generate
from recsift.errors import ConfigError

CLEAN, NOISY, DUP = (KINDS.index(k) for k in ("clean", "noisy", "duplicate"))


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(seed=0)


def _seqs(d: SyntheticData) -> list[np.ndarray]:
    inter = d.interactions
    ip = inter.user_indptr()
    return [inter.item[ip[u] : ip[u + 1]] for u in range(inter.n_users)]


def test_same_seed_same_output_and_other_seed_differs():
    a, b, c = generate(300, 100, seed=3), generate(300, 100, seed=3), generate(300, 100, seed=4)
    for name in ("user", "item", "time"):
        np.testing.assert_array_equal(getattr(a.interactions, name), getattr(b.interactions, name))
    for name in ("user_kind", "duplicate_of", "cold_items", "topic_of_item"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.params == b.params and a.params["seed"] == 3
    assert len(a.interactions) != len(c.interactions) or not np.array_equal(a.interactions.item, c.interactions.item)
    assert not np.array_equal(a.user_kind, c.user_kind)


def test_shape_ids_and_every_item_occurs(data):
    inter = data.interactions
    assert inter.name == "synthetic" and inter.has_time
    assert (inter.n_users, inter.n_items) == (2000, 500)
    np.testing.assert_array_equal(inter.user_ids, np.arange(2000))
    np.testing.assert_array_equal(inter.item_ids[1:], np.arange(1, 501))
    assert inter.counts() == {"n_users": 2000, "n_items": 500, "n_interactions": len(inter)}
    assert data.topic_of_item.shape == (501,) and data.topic_of_item[0] == -1
    assert set(np.unique(data.topic_of_item[1:])) == set(range(10))
    lens = np.diff(inter.user_indptr())
    assert lens.min() >= 5 and lens.max() <= 40


def test_label_counts_match_fractions(data):
    assert data.user_kind.shape == (2000,) and data.duplicate_of.shape == (2000,)
    np.testing.assert_array_equal(np.bincount(data.user_kind, minlength=3), [1700, 200, 100])
    assert len(data.cold_items) == 50 and len(np.unique(data.cold_items)) == 50
    assert data.cold_items.min() >= 1 and data.cold_items.max() <= 500
    d = generate(400, 200, seed=1, noise_frac=0.25, dup_frac=0.0, cold_frac=0.2)
    np.testing.assert_array_equal(np.bincount(d.user_kind, minlength=3), [300, 100, 0])
    assert len(d.cold_items) == 40 and np.all(d.duplicate_of == -1)


def test_planted_users_are_not_contiguous(data):
    for kind in (NOISY, DUP):
        ids = np.flatnonzero(data.user_kind == kind)
        assert ids.max() - ids.min() > 1000  # spread over the id range
        assert np.mean(np.diff(ids) == 1) < 0.5  # not one block


def test_duplicates_are_exact_copies_of_clean_users(data):
    seqs = _seqs(data)
    dups = np.flatnonzero(data.user_kind == DUP)
    np.testing.assert_array_equal(np.flatnonzero(data.duplicate_of >= 0), dups)
    src = data.duplicate_of[dups]
    assert np.all(data.user_kind[src] == CLEAN)
    for u, s in zip(dups, src):
        np.testing.assert_array_equal(seqs[u], seqs[s])


def test_noise_matches_clean_length_and_popularity(data):
    inter = data.interactions
    lens = np.diff(inter.user_indptr())
    kind_of_row = data.user_kind[inter.user]
    logpop = np.log(np.bincount(inter.item)[inter.item])
    clean_len, noisy_len = lens[data.user_kind == CLEAN].mean(), lens[data.user_kind == NOISY].mean()
    assert abs(noisy_len / clean_len - 1) < 0.10
    clean_pop, noisy_pop = logpop[kind_of_row == CLEAN].mean(), logpop[kind_of_row == NOISY].mean()
    assert abs(noisy_pop / clean_pop - 1) < 0.10


def test_cold_items_occur_and_are_rare(data):
    counts = np.bincount(data.interactions.item, minlength=501)
    warm = np.setdiff1d(np.arange(1, 501), data.cold_items)
    assert counts[data.cold_items].min() >= 1
    assert counts[data.cold_items].max() <= 10
    assert counts[data.cold_items].mean() < 0.2 * counts[warm].mean()
    assert counts[data.cold_items].mean() < np.median(counts[warm])


def test_times_increase_per_user_so_loo_keeps_generated_order(data):
    inter = data.interactions
    same_user = inter.user[1:] == inter.user[:-1]
    assert np.all(np.diff(inter.time)[same_user] > 0)
    assert np.all(np.diff(inter.row)[same_user] == 1)  # sorting by time kept the generated order
    assert np.all(np.diff(inter.user) >= 0)


def _markov_vs_popularity(d: SyntheticData, eval_kind: int) -> tuple[float, float]:
    """hit@10 on the last item of ``eval_kind`` users; trained on clean users' other items."""
    inter, n = d.interactions, d.interactions.n_items + 1
    ip = inter.user_indptr()
    last = ip[1:] - 1
    train = np.ones(len(inter), dtype=bool)
    train[last] = False
    train &= d.user_kind[inter.user] == CLEAN
    pair = train[1:] & train[:-1] & (inter.user[1:] == inter.user[:-1])
    trans = np.zeros((n, n))
    np.add.at(trans, (inter.item[:-1][pair], inter.item[1:][pair]), 1.0)
    pop = np.bincount(inter.item[train], minlength=n).astype(float)
    pop[0] = -1.0
    users = np.flatnonzero(d.user_kind == eval_kind)
    prev, target = inter.item[last[users] - 1], inter.item[last[users]]
    scores = trans[prev] + 1e-6 * pop  # popularity breaks ties
    scores[:, 0] = -np.inf
    top_markov = np.argsort(-scores, axis=1)[:, :10]
    top_pop = np.argsort(-pop)[:10]
    return float(np.mean((top_markov == target[:, None]).any(1))), float(np.mean(np.isin(target, top_pop)))


def test_markov_predictor_beats_popularity_on_clean_users(data):
    markov, pop = _markov_vs_popularity(data, CLEAN)
    assert markov > 0.6
    assert markov > 2.5 * pop


def test_noisy_users_are_not_predictable_by_order(data):
    clean_markov, _ = _markov_vs_popularity(data, CLEAN)
    noisy_markov, _ = _markov_vs_popularity(data, NOISY)
    assert noisy_markov < 0.5 * clean_markov


def test_smallest_allowed_size_and_no_noise():
    d = generate(10, 20, seed=0, noise_frac=0.0, dup_frac=0.0, cold_frac=0.0)
    assert d.interactions.n_users == 10 and d.interactions.n_items == 20
    assert np.all(d.user_kind == CLEAN) and len(d.cold_items) == 0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_users=5), "n_users"),
        (dict(n_items=10), "n_items"),
        (dict(noise_frac=1.0), "noise_frac"),
        (dict(dup_frac=-0.1), "dup_frac"),
        (dict(cold_frac=1.5), "cold_frac"),
        (dict(min_len=2), "min_len"),
        (dict(max_len=4), "max_len"),
        (dict(mean_len=50), "mean_len"),
        (dict(mean_len=float("nan")), "mean_len"),
        (dict(n_topics=0), "n_topics"),
        (dict(n_topics=500), "n_topics"),
        (dict(p_successor=1.2), "p_successor"),
        (dict(p_successor=0.9, p_jump=0.2), "p_jump"),
        (dict(noise_frac=0.6, dup_frac=0.4), "dup_frac"),
        (dict(n_users=True), "n_users"),
        (dict(n_users=100.0), "n_users"),
        (dict(seed=-1), "seed"),
    ],
)
def test_invalid_arguments_raise_config_error(kwargs, name):
    args = dict(seed=0) | kwargs
    with pytest.raises(ConfigError, match=name) as err:
        generate(**args)
    assert repr(args[name]) in str(err.value) or str(args[name]) in str(err.value)


def test_too_few_interactions_for_all_items_raises():
    with pytest.raises(ConfigError, match="n_items"):
        generate(10, 2000, seed=0)
