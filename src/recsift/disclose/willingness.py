"""Disclosure (un)willingness: simulated per-interaction unwillingness, the wv measure and the reward.

IFRQE (Paitesanshi/IFRQE, AAAI 2024; ALGORITHMS.md §1.4, §11.1) gives every training interaction
``s^u_k`` of user u an unwillingness ``β^u_k ∈ [0, 1]`` (how much u minds disclosing it). The
paper's simulation (``unwillingness_type 2``) draws it uniformly at random; the repo's other types
are a constant 0.5 and 1 / rating. Disclosing a set ``o^u`` costs u ``λ Σ_k o^u_k β^u_k``.

* ``wv`` (willingness violation) = the average over users of the summed unwillingness of their
  disclosed interactions (§1.4), exactly: ``wv = (1/|U|) Σ_u Σ_k o^u_k β^u_k`` over the users
  ``U`` that hold at least one training interaction.
* ``reward = −L_val − λ · wv`` with ``L_val`` the mean over the same users of their validation
  BCE (1 positive + 99 sampled negatives).

The repo's category-frequency type (``unwillingness_type 4``) is ``kind="category"``: a user minds
disclosing an interaction more the rarer its item's categories are in that user's own history
(see `category_unwillingness`). The MindSpore seed's ml-1m reward is normalised differently and its
code is not public; `recsift.disclose.evaluate_disclosure` reports the parts it can be built from.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError

KINDS = ("uniform", "constant", "rating", "category")


def draw_unwillingness(n: int, *, kind: str = "uniform", seed: int = 0, ratings: np.ndarray | None = None,
                       constant: float = 0.5, user: np.ndarray | None = None, item: np.ndarray | None = None,
                       categories: sp.spmatrix | None = None) -> np.ndarray:
    """Unwillingness β ∈ [0, 1] for ``n`` interactions, seeded (one draw = one willingness scenario).

    ``uniform``: U(0, 1) i.i.d. (IFRQE's ``unwillingness_type 2``); ``constant``: ``constant`` for
    every interaction; ``rating``: ``1 / rating`` (ratings >= 1 needed); ``category``: from the
    interactions' ``user``, ``item`` and the item ``categories`` matrix, `category_unwillingness`
    (deterministic; ``seed`` is unused).

    Example
    -------
    >>> b = draw_unwillingness(4, seed=0)
    >>> b.shape, bool(((b >= 0) & (b <= 1)).all())
    ((4,), True)
    """
    if kind == "uniform":
        return np.random.default_rng(seed).random(n)
    if kind == "constant":
        return check_unwillingness(np.full(n, float(constant)))
    if kind == "rating":
        if ratings is None or len(ratings) != n:
            raise ConfigError("unwillingness kind 'rating' needs one rating per interaction (>= 1); this "
                              "training set has none: use kind='uniform' or 'constant'")
        r = np.asarray(ratings, np.float64)
        if (r < 1).any():
            raise ConfigError("unwillingness kind 'rating' is 1 / rating and needs ratings >= 1")
        return 1.0 / r
    if kind == "category":
        if user is None or item is None or categories is None or len(user) != n or len(item) != n:
            raise ConfigError("unwillingness kind 'category' needs each interaction's user and item and the item "
                              "categories (recsift.data.categories.item_categories); use kind='uniform' without them")
        return category_unwillingness(user, item, categories)
    raise ConfigError(f"unknown unwillingness kind {kind!r}; use one of {', '.join(KINDS)}")


def category_unwillingness(user: np.ndarray, item: np.ndarray, categories: sp.spmatrix) -> np.ndarray:
    """IFRQE's category-frequency unwillingness (``unwillingness_type 4``), vectorised.

    For user u, ``count_u(c)`` = how many of u's interactions have an item in category c (an item
    counts once per category), ``maxv_u = max_c count_u(c)``; for interaction k with item i,
    ``maxk = max_{c ∈ cats(i)} count_u(c)`` and ``β_k = (1/maxk − 1/maxv_u) / (1 − 1/maxv_u) / 2 + 0.5``:
    0.5 for items of u's most frequent category, up to 1 for items only in categories u consumed
    once. The reference normalises by ``1/minv − 1/maxv`` with ``minv`` a running minimum that is 1
    as soon as the user has one category, which is the 1 used here. A user whose categories all
    appear once gets 0.5 everywhere (as the reference); so does an item without categories (the
    reference has no value for it).

    ``categories``: ``[n_items + 1, n_categories]`` sparse 0/1, row = internal item id.
    """
    user = np.asarray(user, np.int64)
    item = np.asarray(item, np.int64)
    cat = sp.csr_matrix(categories)
    if len(item) and (item.min() < 0 or item.max() >= cat.shape[0]):
        raise ConfigError(f"item ids reach {int(item.max())} but the categories matrix has {cat.shape[0]} rows "
                          "(one per internal item id, row 0 = padding)")
    cat.sum_duplicates()
    n_cat = max(cat.shape[1], 1)
    starts, lens = cat.indptr[item], np.diff(cat.indptr)[item]
    k = np.repeat(np.arange(len(item)), lens)  # one row per (interaction, category of its item)
    pos = np.arange(len(k)) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(starts, lens)
    key = user[k] * n_cat + cat.indices[pos]
    uniq, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    per_pair = cnt[inv].astype(np.float64)
    maxk = np.zeros(len(item))
    np.maximum.at(maxk, k, per_pair)
    maxv = np.zeros(int(user.max()) + 1 if len(user) else 0)
    np.maximum.at(maxv, uniq // n_cat, cnt.astype(np.float64))
    mv = maxv[user]
    beta = np.full(len(item), 0.5)
    ok = (mv > 1) & (maxk > 0)
    beta[ok] = (1 / maxk[ok] - 1 / mv[ok]) / (1 - 1 / mv[ok]) / 2 + 0.5
    return beta


def check_unwillingness(beta: np.ndarray, n: int | None = None) -> np.ndarray:
    """Validate a β array: finite, in [0, 1], one per interaction. Returns it as float64."""
    b = np.asarray(beta, dtype=np.float64)
    if b.ndim != 1 or (n is not None and len(b) != n):
        raise ConfigError(f"unwillingness must be a 1-d array with one value per training interaction "
                          f"({n}); got shape {b.shape}")
    bad = ~np.isfinite(b) | (b < 0) | (b > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"unwillingness must lie in [0, 1]; interaction {i} has {b[i]!r} "
                          f"({int(bad.sum())} values out of range): rescale it to [0, 1]")
    return b


def check_lambda(lam: float) -> float:
    """λ weighs the willingness cost against accuracy; it must be a finite number >= 0."""
    lam = float(lam)
    if not np.isfinite(lam) or lam < 0:
        raise ConfigError(f"λ (lam) must be >= 0, got {lam}: it weighs the willingness cost, a negative value "
                          "would reward disclosing what users do not want disclosed")
    return lam


def willingness_violation(disclosed: np.ndarray, beta: np.ndarray, user: np.ndarray,
                          users: np.ndarray | None = None) -> float:
    """wv = mean over ``users`` (default: every user with an interaction) of Σ disclosed β.

    Example
    -------
    >>> willingness_violation(np.array([1, 0, 1]), np.array([.2, .9, .4]), np.array([0, 0, 1]))
    0.30000000000000004
    """
    return float(per_user_violation(disclosed, beta, user, users).mean())


def per_user_violation(disclosed: np.ndarray, beta: np.ndarray, user: np.ndarray,
                       users: np.ndarray | None = None) -> np.ndarray:
    """Σ_k o_k β_k for each user in ``users`` (default: the users present in ``user``)."""
    beta = check_unwillingness(beta, len(user))
    d = np.asarray(disclosed).astype(np.float64)
    if d.shape != beta.shape:
        raise ConfigError(f"disclosure mask has shape {d.shape}, expected {beta.shape}")
    user = np.asarray(user, np.int64)
    n = int(user.max()) + 1 if len(user) else 0
    if users is not None and len(users):
        n = max(n, int(np.max(users)) + 1)
    sums = np.bincount(user, weights=d * beta, minlength=n)
    users = np.unique(user) if users is None else np.asarray(users, np.int64)
    if len(users) == 0:
        raise ConfigError("wv is undefined without users: the training set is empty")
    return sums[users]


def reward(valid_loss: float, wv: float, lam: float = 1.0) -> float:
    """IFRQE's reward ``−L_val − λ · wv``."""
    return -float(valid_loss) - check_lambda(lam) * float(wv)
