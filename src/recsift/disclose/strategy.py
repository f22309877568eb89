"""Disclosure strategies: IFRQE (one anchor), IFRQE++ (several anchors) and the paper's baselines.

ALGORITHMS.md §11.2–§11.4, §11.6. With anchor t (a disclosure mask ``õ^t`` over all training
interactions, the model trained on it, each user's validation loss ``L^t_u`` and the influence
``g^t`` of every interaction on its user's loss, larger = disclosing helps), user u's payoff for
action ``o`` (its own disclosure bits) is the first-order estimate

    B^t_u(o) = −L^t_u + Σ_k (o_k − õ^t_k) g^t_k − λ Σ_k o_k β_k

and IFRQE++ uses the anchor nearest in Hamming distance to the joint action (u's ``o`` plus every
other user's current action). Only u's own interactions enter its loss estimate (one s_test per
user), so other users matter only through the anchor choice.

Solver. Starting from the argmax of the Binomial(s = 0.9) prior (disclose everything), users
best-respond simultaneously to the others' current actions until no action changes (or
``max_rounds``): for ``n_u ≤ max_exact`` (20) over all ``2^{n_u}`` actions exactly (payoffs built
by doubling, so ``O(T · 2^n)`` per user), beyond that with the factorised best response of §11.6
(disclose k iff ``g^{t*}_k − λβ_k > 0`` for the anchor t* nearest to the current joint action).
The final action is the argmax of the payoff: the limit, as the number of mirror-ascent steps
L grows, of the argmax of the averaged multiplicative-weights strategy the paper runs (its
Theorem 5); `mirror_ascent` computes that averaged distribution over the 2^n actions for finite L.
With one anchor the payoff is linear in o, so exact and factorised coincide.

Baselines: ``base`` discloses everything; ``random`` each interaction w.p. 1/2; ``threshold``
discloses iff β < τ (τ = 0.5); ``proactive`` discloses each interaction w.p. 1 − β (the user acts
on its own willingness, without the model; our reading of the paper's baseline, whose code is not
in the released repository).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from .willingness import check_lambda, check_unwillingness

BASELINES = ("base", "random", "threshold", "proactive")


@dataclass(frozen=True)
class Anchor:
    """A disclosure mask with the model trained on it: per-user validation loss and influences."""

    disclosed: np.ndarray  # bool [N]
    valid_loss: np.ndarray  # float64 [n_users]; NaN where a user has no validation case
    influence: np.ndarray  # float64 [N]; g of each interaction on its own user's validation loss


@dataclass
class StrategyResult:
    """The chosen disclosure and how it was found."""

    disclosed: np.ndarray  # bool [N]
    estimated_payoff: np.ndarray  # float64 [n_users] first-order payoff of the chosen action (NaN: no case)
    anchor_of_user: np.ndarray  # int64 [n_users] anchor used for the final payoff
    rounds: int
    converged: bool
    exact_users: int
    factorised_users: int
    info: dict[str, Any] = field(default_factory=dict)


def over_actions(w: np.ndarray) -> np.ndarray:
    """``Σ_k o_k w[..., k]`` for every action ``o ∈ {0,1}^n``, action index bit k = o_k: ``[..., 2^n]``."""
    w = np.asarray(w, np.float64)
    out = np.zeros(w.shape[:-1] + (1,))
    for k in range(w.shape[-1]):
        out = np.concatenate([out, out + w[..., k:k + 1]], axis=-1)
    return out


def action_bits(index: int | np.ndarray, n: int) -> np.ndarray:
    """The 0/1 disclosure vector(s) of action index(es): bit k of the index is interaction k."""
    return (np.asarray(index)[..., None] >> np.arange(n)) & 1


def exact_payoffs(g: np.ndarray, anchor_bits: np.ndarray, anchor_loss: np.ndarray, beta: np.ndarray, lam: float,
                  other_dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Payoff of every one of the 2^n actions of one user and the anchor each one uses.

    ``g`` [T, n] influences, ``anchor_bits`` [T, n] the anchors' bits for this user,
    ``anchor_loss`` [T] the user's validation loss under each anchor, ``beta`` [n],
    ``other_dist`` [T] Hamming distance of the other users' current actions to each anchor.
    Ties in distance go to the lower anchor index.
    """
    g = np.atleast_2d(g)
    a = np.atleast_2d(anchor_bits).astype(np.float64)
    const = -np.asarray(anchor_loss, np.float64) - (a * g).sum(1)
    pay = const[:, None] + over_actions(g - lam * np.asarray(beta)[None, :])  # [T, 2^n]
    dist = (np.asarray(other_dist, np.float64) + a.sum(1))[:, None] + over_actions(1.0 - 2.0 * a)
    choice = np.argmin(dist, axis=0)
    return pay[choice, np.arange(pay.shape[1])], choice


def mirror_ascent(payoff: np.ndarray, *, prior: float = 0.9, eta: float = 0.1, iters: int = 1000) -> np.ndarray:
    """Averaged multiplicative-weights strategy over the 2^n actions for a fixed payoff vector.

    ``α_0(o) ∝ s^{|o|} (1 − s)^{n − |o|}`` (the Binomial prior), ``α_l ∝ α_{l−1} · exp(η B)``;
    returns ``(1/L) Σ_l α_l`` (§11.4, full-information version of the update).
    """
    payoff = np.asarray(payoff, np.float64)
    n = int(round(np.log2(len(payoff))))
    if 2 ** n != len(payoff):
        raise ConfigError("mirror_ascent needs one payoff per action: a vector of length 2^n")
    count = over_actions(np.ones(n))
    logp = count * np.log(prior) + (n - count) * np.log1p(-prior)
    avg = np.zeros_like(payoff)
    for _ in range(iters):
        logp = logp + eta * payoff
        logp -= logp.max()
        p = np.exp(logp)
        avg += p / p.sum()
    return avg / iters


def _user_index(user: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(user, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(user, minlength=n_users))]).astype(np.int64)
    return order, ptr


def solve_disclosure(user: np.ndarray, beta: np.ndarray, anchors: list[Anchor], lam: float = 1.0, *,
                     n_users: int | None = None, max_exact: int = 20, max_rounds: int = 50) -> StrategyResult:
    """IFRQE (one anchor) / IFRQE++ (several): each user's disclosure (see module docstring).

    Users without a validation case (NaN loss under the first anchor) disclose everything and
    are not players. Example
    -------
    >>> a = Anchor(np.ones(3, bool), np.array([0.5]), np.array([0.3, 0.01, 0.0]))
    >>> solve_disclosure(np.zeros(3, np.int64), np.array([0.2, 0.5, 0.1]), [a], 1.0).disclosed.tolist()
    [True, False, False]
    """
    lam = check_lambda(lam)
    user = np.asarray(user, np.int64)
    beta = check_unwillingness(beta, len(user))
    if not anchors:
        raise ConfigError("solve_disclosure needs at least one anchor (IFRQE: the model trained on all data)")
    if not 0 <= max_exact <= 24:
        raise ConfigError(f"max_exact={max_exact}: exact strategies enumerate 2^n actions; use 0..24")
    n_users = int(n_users if n_users is not None else (user.max() + 1 if len(user) else 0))
    T = len(anchors)
    A = np.stack([np.asarray(a.disclosed, bool) for a in anchors])  # [T, N]
    G = np.stack([np.asarray(a.influence, np.float64) for a in anchors])
    Lu = np.stack([np.asarray(a.valid_loss, np.float64) for a in anchors])  # [T, n_users]
    order, ptr = _user_index(user, n_users)
    counts = np.diff(ptr)
    players = np.isfinite(Lu[0]) & (counts > 0)
    if np.isnan(G[:, np.isin(user, np.flatnonzero(players))]).any():
        raise ConfigError("an anchor has no influence value for some interaction of a player; recompute influences")
    exact = players & (counts <= max_exact)
    fact = players & ~exact
    net = G - lam * beta[None, :]  # [T, N] marginal payoff of disclosing each interaction
    act = np.ones(len(user), bool)
    anchor_of = np.zeros(n_users, np.int64)
    in_fact = fact[user]
    rounds, converged = 0, False
    for rounds in range(1, max_rounds + 1):
        diff = act[None, :] != A  # [T, N]
        total = diff.sum(1)
        own = np.stack([np.bincount(user, weights=diff[t], minlength=n_users) for t in range(T)])  # [T, n_users]
        new = act.copy()
        t_star = int(np.argmin(total))
        new[in_fact] = net[t_star, in_fact] > 0
        anchor_of[fact] = t_star
        for u in np.flatnonzero(exact):
            idx = order[ptr[u]:ptr[u + 1]]
            pay, choice = exact_payoffs(G[:, idx], A[:, idx], Lu[:, u], beta[idx], lam, total - own[:, u])
            best = int(np.argmax(pay))
            new[idx] = action_bits(best, len(idx)).astype(bool)
            anchor_of[u] = choice[best]
        if (new == act).all():
            converged = True
            break
        act = new
    # first-order payoff of the final action under each player's anchor
    payoff = np.full(n_users, np.nan)
    t_u = anchor_of[user]
    contrib = (act.astype(np.float64) - A[t_u, np.arange(len(user))]) * G[t_u, np.arange(len(user))] \
        - lam * act * beta
    sums = np.bincount(user, weights=contrib, minlength=n_users)
    payoff[players] = -Lu[anchor_of[players], np.flatnonzero(players)] + sums[players]
    act[~players[user]] = True
    return StrategyResult(act, payoff, anchor_of, rounds, converged, int(exact.sum()), int(fact.sum()),
                          info={"anchors": T, "lam": lam, "max_exact": max_exact})


def baseline_disclosure(kind: str, beta: np.ndarray, *, seed: int = 0, threshold: float = 0.5) -> np.ndarray:
    """Disclosure mask of a baseline: ``base``, ``random``, ``threshold`` or ``proactive`` (see module doc)."""
    beta = check_unwillingness(beta)
    rng = np.random.default_rng(seed)
    if kind == "base":
        return np.ones(len(beta), bool)
    if kind == "random":
        return rng.random(len(beta)) < 0.5
    if kind == "threshold":
        if not 0 <= threshold <= 1:
            raise ConfigError(f"threshold must lie in [0, 1], got {threshold}")
        return beta < threshold
    if kind == "proactive":
        return rng.random(len(beta)) < 1.0 - beta
    raise ConfigError(f"unknown disclosure baseline {kind!r}; use one of {', '.join(BASELINES)}")
