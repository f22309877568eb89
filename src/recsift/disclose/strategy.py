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

`solve_disclosure_mirror` instead runs the released code's finite procedure (L multiplicative-
weights steps from the prior, only the played argmax action re-weighted): with every payoff
negative, as with λ = 1 on the paper's data, the exact best response withholds almost everything,
while the finite run stays near the prior's full disclosure and withholds the costliest
interactions — the behaviour of the paper's tables.

Baselines: ``base`` discloses everything; ``random`` each interaction w.p. 1/2; ``threshold``
discloses iff β < τ (τ = 0.5); ``proactive`` discloses each interaction w.p. 1 − β (the user acts
on its own willingness, without the model; our reading of the paper's baseline, whose code is not
in the released repository).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from math import comb
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


def _payoff_of(act: np.ndarray, user: np.ndarray, beta: np.ndarray, lam: float, A: np.ndarray, G: np.ndarray,
               Lu: np.ndarray, anchor_of: np.ndarray, players: np.ndarray) -> np.ndarray:
    """First-order payoff of each player's action under its anchor (NaN for non-players)."""
    n_users = len(anchor_of)
    payoff = np.full(n_users, np.nan)
    t_u, rows = anchor_of[user], np.arange(len(user))
    contrib = (act.astype(np.float64) - A[t_u, rows]) * G[t_u, rows] - lam * act * beta
    sums = np.bincount(user, weights=contrib, minlength=n_users)
    payoff[players] = -Lu[anchor_of[players], np.flatnonzero(players)] + sums[players]
    return payoff


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
    payoff = _payoff_of(act, user, beta, lam, A, G, Lu, anchor_of, players)
    act[~players[user]] = True
    return StrategyResult(act, payoff, anchor_of, rounds, converged, int(exact.sum()), int(fact.sum()),
                          info={"anchors": T, "lam": lam, "max_exact": max_exact})


def _next_same_popcount(x: int) -> int:
    """The next larger integer with as many set bits as ``x`` (Gosper's hack; ``x > 0``)."""
    c = x & -x
    r = x + c
    return (((r ^ x) >> 2) // c) | r


class _PriorOrder:
    """The 2^n actions in decreasing Binomial(s) prior (s > 1/2: more disclosed first), ties by
    increasing action index, generated lazily (never 2^n of them at once)."""

    def __init__(self, n: int) -> None:
        self.n, self.ones = n, n
        self.cur = (1 << n) - 1

    def peek(self) -> int | None:
        return self.cur

    def advance(self) -> None:
        if self.ones == 0:
            self.cur = None
            return
        nxt = _next_same_popcount(self.cur) if self.cur else 0
        if nxt >= 1 << self.n:  # class exhausted: the smallest index with one bit fewer
            self.ones -= 1
            nxt = (1 << self.ones) - 1
        self.cur = nxt

    def first_unplayed(self, played: dict) -> int | None:
        """The highest-prior action not in ``played`` (advancing past the played ones), or None."""
        while self.cur is not None and self.cur in played:
            self.advance()
        return self.cur


class _MirrorPlayer:
    """One player's multiplicative-weights state over its 2^n actions (see
    :func:`solve_disclosure_mirror`): played actions keep explicit log weights (and a heap for the
    argmax), unplayed ones keep their prior weight and come from a lazy prior order; the average of
    the renormalised distributions is accumulated per played action."""

    def __init__(self, idx: np.ndarray, w: np.ndarray, c: np.ndarray, prior: float) -> None:
        self.idx, self.n = idx, len(idx)
        self.w, self.c = w, c  # payoff of action a under anchor t: c[t] + sum of w[t, k] over k in a
        self.table = c[:, None] + over_actions(w) if self.n <= 12 else None  # lookup for short histories
        self.lg, self.l1 = np.log(prior), np.log1p(-prior)
        self.order = _PriorOrder(self.n)
        self.logw: dict[int, float] = {}  # played actions' log weights
        self.heap: list[tuple[float, int]] = []  # (-log weight, -action), stale entries skipped
        self.acc: dict[int, float] = {}  # average accumulated up to ``last[a]``
        self.last: dict[int, float] = {}
        self.v = self.v_exact = 0.0  # total weight of the played actions (running, last exact sum)
        self.seen = np.zeros(self.n + 1, np.int64)  # played actions per prior class (number disclosed)
        self.r = 1.0  # total prior weight of the unplayed actions
        self.s = 0.0  # sum over rounds of 1 / normaliser

    def prior_logw(self, a: int) -> float:
        k = bin(a).count("1")
        return k * self.lg + (self.n - k) * self.l1

    def bits(self, a: int) -> np.ndarray:
        return action_bits(a, self.n).astype(bool)

    def best(self) -> int:
        """The action of highest weight (ties to the lower index)."""
        heap, logw = self.heap, self.logw
        while heap and -heap[0][0] != logw[-heap[0][1]]:
            heapq.heappop(heap)
        cand = [(-heap[0][0], heap[0][1])] if heap else []
        unplayed = self.order.first_unplayed(logw)
        if unplayed is not None:
            cand.append((self.prior_logw(unplayed), -unplayed))
        return -max(cand)[1]

    def payoff(self, t: int, a: int) -> float:
        if self.table is not None:
            return float(self.table[t, a])
        return float(self.c[t] + self.w[t][self.bits(a)].sum())

    def update(self, a: int, pay: float, rate: float) -> None:
        """Multiply the played action's weight by exp(rate · pay), renormalise, extend the average."""
        old = self.logw.get(a, self.prior_logw(a))
        if a in self.logw:  # fold the average accumulated at the old weight
            self.acc[a] += np.exp(old) * (self.s - self.last[a])
            self.v -= np.exp(old)
        else:  # first play: leaves the unplayed mass, counted exactly per prior class (no cancellation)
            self.acc[a] = np.exp(old) * self.s
            self.seen[bin(a).count("1")] += 1
            self.r = sum((comb(self.n, k) - self.seen[k]) * np.exp(self.prior_logw((1 << k) - 1))
                         for k in range(self.n + 1))
        new = old + rate * pay
        self.logw[a], self.last[a] = new, self.s
        heapq.heappush(self.heap, (-new, -a))
        self.v += np.exp(new)
        if self.v < 1e-6 * self.v_exact or self.v <= 0:  # weights decayed: re-add exactly (no drift)
            self.v = self.v_exact = float(sum(np.exp(x) for x in self.logw.values()))
        self.v_exact = max(self.v_exact, self.v)
        self.s += 1.0 / (self.v + self.r)  # the average is over the renormalised distributions

    def final_action(self) -> int:
        """The argmax of the averaged distribution."""
        avg = {a: self.acc[a] + np.exp(x) * (self.s - self.last[a]) for a, x in self.logw.items()}
        cands = [(v, -a) for a, v in avg.items()]
        unplayed = self.order.first_unplayed(self.logw)
        if unplayed is not None:
            cands.append((np.exp(self.prior_logw(unplayed)) * self.s, -unplayed))
        return -max(cands)[1]


def solve_disclosure_mirror(user: np.ndarray, beta: np.ndarray, anchors: list[Anchor], lam: float = 1.0, *,
                            n_users: int | None = None, max_exact: int = 20, iters: int = 1000,
                            rate: float = 0.1, prior: float = 0.9) -> StrategyResult:
    """IFRQE / IFRQE++ the way the released code solves it: finite multiplicative weights from the prior.

    Each player u holds a distribution over its 2^n actions, initially the Binomial(``prior``)
    prior. For ``iters`` rounds (L), every player plays the argmax of its distribution (the code's
    ``action_type 2``); the anchor nearest in Hamming distance to that joint action is found; only
    the played action's weight is multiplied by ``exp(rate · B_u)`` (``rate`` = the code's
    ``mirror_rate``), with ``B_u`` the first-order payoff of the module docstring, and the
    distribution renormalised; the running average of the distributions is kept and its argmax
    is the final action. With finite L this stays near the prior: unlike
    :func:`solve_disclosure` (the L → ∞ limit, the exact best response to the reward) it keeps
    most interactions disclosed when every payoff is negative, which is what the paper's
    tables show. Differences from the released code: ``B_u`` uses u's own validation loss and
    influences under the anchor (the code adds the whole population's influence sum and the
    anchor's mean loss to every user's payoff); users with more than ``max_exact`` interactions
    use the factorised best response (the code filters them out).
    Cost O(L · log L) per player, never 2^n memory: unplayed actions keep their prior weight
    and are generated in prior order.
    """
    lam = check_lambda(lam)
    if iters < 1 or rate <= 0 or not 0.5 < prior < 1:
        raise ConfigError(f"mirror solver needs iters >= 1, rate > 0 and 0.5 < prior < 1 "
                          f"(got {iters}, {rate}, {prior})")
    user = np.asarray(user, np.int64)
    beta = check_unwillingness(beta, len(user))
    # non-players and users beyond max_exact: the factorised best response (one round from full disclosure)
    base = solve_disclosure(user, beta, anchors, lam, n_users=n_users, max_exact=0, max_rounds=1)
    n_users = len(base.anchor_of_user)
    A = np.stack([np.asarray(a.disclosed, bool) for a in anchors])
    G = np.stack([np.asarray(a.influence, np.float64) for a in anchors])
    Lu = np.stack([np.asarray(a.valid_loss, np.float64) for a in anchors])
    order, ptr = _user_index(user, n_users)
    counts = np.diff(ptr)
    players = np.flatnonzero(np.isfinite(Lu[0]) & (counts > 0) & (counts <= max_exact))
    act = base.disclosed.copy()  # factorised players keep their best response
    st = {}
    for u in players:
        idx = order[ptr[u]:ptr[u + 1]]
        st[u] = _MirrorPlayer(idx, G[:, idx] - lam * beta[idx][None, :],
                              -Lu[:, u] - (A[:, idx] * G[:, idx]).sum(1), prior)
    chosen = {u: st[u].best() for u in players}
    for u in players:
        act[st[u].idx] = st[u].bits(chosen[u])
    dist = (act[None, :] != A).sum(1)
    for _ in range(iters):
        t = int(np.argmin(dist))
        for u in players:
            p, a = st[u], chosen[u]
            p.update(a, p.payoff(t, a), rate)
            nxt = p.best()
            if nxt != a:
                A_u = A[:, p.idx]
                dist += (p.bits(nxt)[None, :] != A_u).sum(1) - (p.bits(a)[None, :] != A_u).sum(1)
                chosen[u] = nxt
    for u in players:
        act[st[u].idx] = st[u].bits(st[u].final_action())
    anchor_of = base.anchor_of_user.copy()
    anchor_of[players] = int(np.argmin((act[None, :] != A).sum(1)))
    is_player = np.isfinite(Lu[0]) & (counts > 0)
    payoff = _payoff_of(act, user, beta, lam, A, G, Lu, anchor_of, is_player)
    return StrategyResult(act, payoff, anchor_of, iters, True, len(players), int(is_player.sum()) - len(players),
                          info={"anchors": len(anchors), "lam": lam, "solver": "mirror", "iters": iters,
                                "rate": rate, "prior": prior, "max_exact": max_exact})


def baseline_disclosure(kind: str, beta: np.ndarray, *, seed: int = 0, threshold: float = 0.5) -> np.ndarray:
    """Disclosure mask of a baseline: ``base``, ``random``, ``threshold`` or ``proactive`` (see module doc)."""
    beta = check_unwillingness(beta)
    # a stream of its own: with default_rng(seed) and the unwillingness drawn by default_rng(seed) too
    # (draw_unwillingness's default), "random" and "proactive" would both equal "threshold"
    rng = np.random.default_rng([seed, 0xD15C])
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
