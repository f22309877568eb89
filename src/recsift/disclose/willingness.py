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

Not implemented: the category-frequency unwillingness type (needs item categories, which the
staged datasets lack), and a separate MindSpore-seed normalisation of wv: ALGORITHMS.md §11.7
does not define one, so the ml-1m comparison uses the definition above.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError

KINDS = ("uniform", "constant", "rating")


def draw_unwillingness(n: int, *, kind: str = "uniform", seed: int = 0, ratings: np.ndarray | None = None,
                       constant: float = 0.5) -> np.ndarray:
    """Unwillingness β ∈ [0, 1] for ``n`` interactions, seeded (one draw = one willingness scenario).

    ``uniform``: U(0, 1) i.i.d. (IFRQE's ``unwillingness_type 2``); ``constant``: ``constant`` for
    every interaction; ``rating``: ``1 / rating`` (ratings >= 1 needed).

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
    raise ConfigError(f"unknown unwillingness kind {kind!r}; use one of {', '.join(KINDS)}")


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
