"""Seeded synthetic sessions with planted ground truth (noisy users, duplicates, cold items).

The embedded default dataset of the offline demo, and the fixture with which tests check that
data-pruning scores find what was planted.

Model
-----
Items ``0..n_items-1`` (raw ids ``1..n_items``) split into *warm* items and a *cold* tail. Warm
items are spread evenly over ``n_topics`` topics and get a Zipf-like popularity
``1 / rank**zipf_a`` (ranks in random order). Each warm item has ``n_successors`` fixed
successors, drawn from its own topic by popularity (50%) or uniformly (40%), or uniformly from
all warm items (10%); popularity-drawn successors keep the walk's item frequencies skewed.
A clean sequence (one user = one session) starts at a popularity-drawn item and walks: with
probability ``p_successor`` to a random successor of the current item, with ``p_jump`` to a
uniformly random warm item, otherwise to a popularity-drawn item of the current item's topic.
So a first-order Markov model predicts the next item far better than popularity does.
Lengths are ``min_len - 1 + Geometric(1 / (mean_len - min_len + 1))`` clipped to ``max_len``.

Then, in the clean sequences only, a few positions are overwritten (preferably ones holding an
item of the same topic, and without losing any item) so that each cold item occurs
``1..cold_max_count`` times there and every warm item occurs at least once, so no raw id is
dropped by the id mapping. Cold items never occur in the walk itself.

Labels (``SyntheticData.user_kind``, see ``KINDS``)
-------------------------------------------------
- ``clean`` (0): a walk as above.
- ``noisy`` (1): same length distribution; items i.i.d. from the empirical item frequencies
  of the clean sequences, so length and popularity look clean and only order gives it away.
- ``duplicate`` (2): an exact copy of a clean user's item sequence (``duplicate_of``).
``cold_items`` are the planted tail; other items may also end up rare by chance when
``n_items`` is large relative to the number of interactions. User order is shuffled, and each
user's timestamps increase (start time + positive gaps), so a leave-one-out split by time
reproduces the generated order. Do not use these data for accuracy claims about real data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError
from .interactions import Interactions

KINDS = ("clean", "noisy", "duplicate")


@dataclass(frozen=True)
class SyntheticData:
    """Generated interactions plus ground truth keyed by internal ids.

    Attributes
    ----------
    interactions : the data (name ``"synthetic"``, raw users ``0..n_users-1``, raw items ``1..n_items``).
    user_kind : int8 [n_users], index into ``KINDS`` (0 clean, 1 noisy, 2 duplicate).
    duplicate_of : int64 [n_users], internal id of the copied clean user, -1 if not a duplicate.
    cold_items : int64 internal ids of the planted cold-tail items (sorted).
    topic_of_item : int64 [n_items + 1], topic of each internal item; index 0 (padding) is -1.
    params : the generation parameters (including ``seed``).
    """

    interactions: Interactions
    user_kind: np.ndarray
    duplicate_of: np.ndarray
    cold_items: np.ndarray
    topic_of_item: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    KINDS: ClassVar[tuple[str, ...]] = KINDS


def generate(n_users: int = 2000, n_items: int = 500, *, seed: int, noise_frac: float = 0.10,
             dup_frac: float = 0.05, cold_frac: float = 0.10, mean_len: float = 12, min_len: int = 5,
             max_len: int = 40, n_topics: int = 10, n_successors: int = 3, p_successor: float = 0.8,
             p_jump: float = 0.03, zipf_a: float = 1.0, cold_max_count: int = 3) -> SyntheticData:
    """Generate the synthetic dataset (see the module docstring); same seed, same output.

    Example
    -------
    >>> data = generate(200, 100, seed=0)
    >>> data.interactions.n_users, data.interactions.n_items
    (200, 100)
    """
    params = dict(n_users=n_users, n_items=n_items, seed=seed, noise_frac=noise_frac, dup_frac=dup_frac,
                  cold_frac=cold_frac, mean_len=mean_len, min_len=min_len, max_len=max_len, n_topics=n_topics,
                  n_successors=n_successors, p_successor=p_successor, p_jump=p_jump, zipf_a=zipf_a,
                  cold_max_count=cold_max_count)
    n_noise, n_dup, n_cold = _validate(params)
    rng = np.random.default_rng(seed)
    n_clean, n_warm = n_users - n_noise - n_dup, n_items - n_cold

    # items: cold tail, topics, Zipf popularity, successor table (generative ids 0..n_items-1)
    perm_items = rng.permutation(n_items)
    cold, warm = np.sort(perm_items[:n_cold]), np.sort(perm_items[n_cold:])
    topic = rng.integers(0, n_topics, n_items)
    topic[warm] = rng.permutation(n_warm) % n_topics
    weight = 1.0 / (rng.permutation(n_warm) + 1.0) ** zipf_a
    by_topic = np.lexsort((warm, topic[warm]))  # warm items grouped by topic
    t_items, t_of, t_w = warm[by_topic], topic[warm][by_topic], weight[by_topic]
    t_start, t_end = np.searchsorted(t_of, np.arange(n_topics)), np.searchsorted(t_of, np.arange(n_topics), "right")
    t_tot = np.bincount(t_of, weights=t_w, minlength=n_topics)
    before = np.repeat(np.cumsum(t_tot) - t_tot, t_end - t_start)  # weight of the earlier topics
    t_cdf = t_of + (np.cumsum(t_w) - before) / t_tot[t_of]  # topic t's items span (t, t + 1]
    g_cdf = np.cumsum(weight) / weight.sum()

    def in_topic(t: np.ndarray, uniform: bool = False) -> np.ndarray:  # warm item of topic t
        u = rng.random(len(t))
        if uniform:
            return t_items[t_start[t] + (u * (t_end[t] - t_start[t])).astype(np.int64)]
        return t_items[np.clip(np.searchsorted(t_cdf, t + u, side="right"), t_start[t], t_end[t] - 1)]

    def anywhere(k: int) -> np.ndarray:  # popularity-drawn warm item
        return warm[np.minimum(np.searchsorted(g_cdf, rng.random(k), side="right"), n_warm - 1)]

    succ = np.zeros((n_items, n_successors), dtype=np.int64)
    own = np.repeat(warm, n_successors)
    r = rng.random(len(own))
    s = np.where(r < 0.5, in_topic(topic[own]), in_topic(topic[own], True))
    s = np.where(r < 0.9, s, warm[rng.integers(0, n_warm, len(own))])
    s = np.where(s == own, in_topic(topic[own], True), s)  # one redraw of self-loops
    succ[warm] = s.reshape(n_warm, n_successors)

    # clean walks: walkers sorted by length (descending), so the active ones are a prefix
    lens = -np.sort(-_lengths(rng, n_clean, mean_len, min_len, max_len))
    indptr = np.concatenate([[0], np.cumsum(lens)])
    seq = np.empty(indptr[-1], dtype=np.int64)
    cur = anywhere(n_clean)
    seq[indptr[:-1]] = cur
    n_alive = np.searchsorted(-lens, -np.arange(1, max_len), side="left")  # users with len > step
    for step in range(1, max_len):
        cur = cur[: n_alive[step - 1]]
        if len(cur) == 0:
            break
        r = rng.random(len(cur))
        nxt = in_topic(topic[cur])
        nxt = np.where(r < p_successor, succ[cur, rng.integers(0, n_successors, len(cur))], nxt)
        jump = (r >= p_successor) & (r < p_successor + p_jump)
        nxt[jump] = warm[rng.integers(0, n_warm, int(jump.sum()))]
        cur = nxt
        seq[indptr[: len(cur)] + step] = cur
    need = np.concatenate([np.repeat(cold, rng.integers(1, cold_max_count + 1, n_cold)),
                           np.setdiff1d(warm, seq, assume_unique=False)])
    _plant(rng, seq, need, topic, n_items)

    # noisy users (empirical clean frequencies) and duplicates (copies of clean users)
    n_lens = _lengths(rng, n_noise, mean_len, min_len, max_len)
    noise = seq[rng.integers(0, len(seq), n_lens.sum())]
    src = rng.choice(n_clean, n_dup, replace=n_dup > n_clean) if n_dup else np.zeros(0, np.int64)
    dup = seq[_ranges(indptr[src], lens[src])]
    all_lens = np.concatenate([lens, n_lens, lens[src]])
    kind = np.repeat(np.arange(3, dtype=np.int8), [n_clean, n_noise, n_dup])

    # shuffle user ids, times = start + cumulative positive gaps
    raw_user = rng.permutation(n_users)
    user = np.repeat(raw_user, all_lens)
    gaps = rng.integers(1, 3600, len(user)).astype(np.float64)
    csum = np.cumsum(gaps)
    starts = np.concatenate([[0], np.cumsum(all_lens)[:-1]])
    time = np.repeat(rng.integers(0, 10**8, n_users) - (csum[starts] - gaps[starts]), all_lens) + csum
    inter = Interactions.from_raw(user, np.concatenate([seq, noise, dup]) + 1, time, name="synthetic",
                                  meta={"generator": "recsift.data.synthetic", "params": dict(params)})

    # ground truth through the id maps (raw -> internal)
    uid, iid = inter.user_ids, inter.item_ids[1:]
    kind_raw = np.empty(n_users, np.int8)
    kind_raw[raw_user] = kind
    dup_raw = np.full(n_users, -1, np.int64)
    dup_raw[raw_user[n_clean + n_noise:]] = np.searchsorted(uid, raw_user[src])
    topic_of_item = np.concatenate([[-1], topic[iid - 1]]).astype(np.int64)
    return SyntheticData(inter, kind_raw[uid], dup_raw[uid], np.searchsorted(iid, cold + 1) + 1,
                         topic_of_item, params)


def _lengths(rng: np.random.Generator, n: int, mean_len: float, min_len: int, max_len: int) -> np.ndarray:
    """``min_len - 1 + Geometric(1 / (mean_len - min_len + 1))``, clipped to ``max_len``."""
    return np.minimum(min_len - 1 + rng.geometric(1.0 / (mean_len - min_len + 1.0), n), max_len).astype(np.int64)


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for each pair."""
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
    return np.repeat(starts - offs, lens) + np.arange(int(lens.sum()))


def _plant(rng: np.random.Generator, seq: np.ndarray, need: np.ndarray, topic: np.ndarray, n_items: int) -> None:
    """Overwrite positions of ``seq`` in place so each entry of ``need`` occurs once more.

    Positions come from the same topic as the planted item when possible, are planted at most
    once, and hold items occurring at least twice; items that still lose their last occurrence
    (two hits in one round) are planted again in the next round.
    """
    locked = np.zeros(len(seq), dtype=bool)
    for _ in range(50):
        if len(need) == 0:
            return
        counts = np.bincount(seq, minlength=n_items)
        cand = np.flatnonzero(~locked & (counts[seq] >= 2))
        if len(cand) < len(need):
            raise ConfigError(
                f"too few clean interactions ({len(seq)}) to make all {n_items} items occur; raise "
                "n_users or mean_len, or lower n_items, cold_frac or noise_frac/dup_frac")
        cand = cand[np.argsort(topic[seq[cand]], kind="stable")]
        bounds = np.searchsorted(topic[seq[cand]], np.arange(topic.max() + 2))
        chosen, taken = np.full(len(need), -1, np.int64), np.zeros(len(cand), dtype=bool)
        for t in np.unique(topic[need]):
            j = np.flatnonzero(topic[need] == t)[: bounds[t + 1] - bounds[t]]
            pick = bounds[t] + rng.choice(bounds[t + 1] - bounds[t], len(j), replace=False)
            chosen[j], taken[pick] = cand[pick], True
        rest = np.flatnonzero(chosen < 0)  # topics without enough room: any free candidate
        chosen[rest] = rng.choice(cand[~taken], len(rest), replace=False)
        seq[chosen], locked[chosen] = need, True
        need = np.flatnonzero(np.bincount(seq, minlength=n_items) == 0)
    raise ConfigError("could not make every item occur; raise n_users or lower n_items")  # pragma: no cover


def _validate(p: dict[str, Any]) -> tuple[int, int, int]:
    """Check ranges (ConfigError naming the parameter, its value and the valid range)."""
    def bad(name: str, rng: str) -> ConfigError:
        return ConfigError(f"synthetic.generate: {name}={p[name]!r} is out of range; valid: {rng}")

    ints = {"n_users": 10, "n_items": 20, "min_len": 3, "max_len": 3, "n_topics": 1, "n_successors": 1,
            "cold_max_count": 1, "seed": 0}
    for name, lo in ints.items():
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise bad(name, f"an integer >= {lo}")
    reals = {"noise_frac": (1, False), "dup_frac": (1, False), "cold_frac": (1, False), "p_successor": (1, True),
             "p_jump": (1, True), "zipf_a": (math.inf, False), "mean_len": (math.inf, False)}
    for name, (hi, closed) in reals.items():
        v = p[name]
        ok = not isinstance(v, bool) and isinstance(v, (int, float, np.number))
        if not (ok and (0 <= v <= hi if closed else 0 <= v < hi)):
            raise bad(name, f"[0, {hi}{']' if closed else ')'}")
    if p["max_len"] < p["min_len"]:
        raise bad("max_len", f"integer >= min_len ({p['min_len']})")
    if not p["min_len"] <= p["mean_len"] <= p["max_len"]:
        raise bad("mean_len", f"[min_len, max_len] = [{p['min_len']}, {p['max_len']}]")
    if p["p_successor"] + p["p_jump"] > 1:
        raise bad("p_jump", f"[0, 1 - p_successor] = [0, {1 - p['p_successor']:.3g}]")
    n_noise, n_dup = round(p["noise_frac"] * p["n_users"]), round(p["dup_frac"] * p["n_users"])
    if p["n_users"] - n_noise - n_dup < 1:
        raise bad("dup_frac", f"noise_frac + dup_frac must leave at least one clean user "
                  f"(noise_frac={p['noise_frac']})")
    n_cold = round(p["cold_frac"] * p["n_items"])
    if p["n_topics"] > p["n_items"] - n_cold:
        raise bad("n_topics", f"[1, number of warm items = n_items - cold items = {p['n_items'] - n_cold}]")
    return n_noise, n_dup, n_cold
