"""IFRQE's evaluation protocol (ALGORITHMS.md §1.4): leave-one-out, 1 + 99 candidates, F1@5, BCE, wv, reward.

* Split: leave-one-out by time; by file order for order-only sequence datasets; for CF datasets
  without timestamps (the staged ml-1m) each user's rows are put in a seeded random order first
  (``order="random"``), so the held-out items are random, not the latest.
* Candidates: the target plus 99 distinct uniform negatives the user has not interacted with
  (history excluded), drawn once per split and seed, for validation and for test.
* ``L_val``: per user the mean BCE over its 100 validation candidates (label 1 for the target);
  ``F1@5`` on the test candidates: with one relevant item, P@5 = hit/5 and R@5 = hit, so
  F1@5 = hit@5 / 3 (rank = 1 + number of negatives scored strictly higher).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..data import EvalCases, Interactions, SplitData, TrainingSet, leave_one_out
from ..errors import ConfigError, DataFormatError
from .influence import valid_bce
from .willingness import check_lambda, per_user_violation


@dataclass(frozen=True)
class DisclosureData:
    """A split prepared for the disclosure game: CSR-ordered training pairs and fixed candidates."""

    split: SplitData
    train_set: TrainingSet  # InteractionMatrix of the full training data
    user: np.ndarray  # int64 [N] in CSR order (the unit order of ``train_set``)
    item: np.ndarray
    valid: EvalCases  # with 1 + n_negatives candidates
    test: EvalCases
    order: str  # how leave-one-out ordered each user's rows: time, file or random

    @property
    def n_users(self) -> int:
        return self.split.n_users

    def valid_loss_vector(self, per_case: np.ndarray) -> np.ndarray:
        """Spread per-validation-case values into an ``[n_users]`` array (NaN where no case)."""
        out = np.full(self.n_users, np.nan)
        out[self.valid.user] = per_case
        return out


def order_rows(inter: Interactions, order: str, seed: int = 0) -> Interactions:
    """Re-order each user's rows for leave-one-out: ``time``/``file`` keep the stored order;
    ``random`` shuffles each user's rows (seeded) and renumbers ``time`` as the new position."""
    if order in ("time", "file"):
        return inter
    if order != "random":
        raise ConfigError(f"leave-one-out order {order!r}: use 'auto', 'time', 'file' or 'random'")
    rng = np.random.default_rng(seed)
    rows = np.lexsort((rng.random(len(inter)), inter.user))
    out = inter.subset(rows)
    pos = np.arange(len(out)) - np.repeat(out.user_indptr()[:-1], np.bincount(out.user, minlength=out.n_users))
    return replace(out, time=pos.astype(np.float64), has_time=False)


def disclosure_split(inter: Interactions, *, order: str = "auto", seed: int = 0, n_negatives: int = 99,
                     min_len: int | None = None, max_len: int | None = None, sequential: bool = True) -> DisclosureData:
    """Leave-one-out split with fixed 1 + ``n_negatives`` candidates (see the module docstring).

    ``order="auto"``: by time when the data has timestamps, by file order for sequence data
    (``sequential=True``), else seeded random. ``min_len``/``max_len`` keep users with that many
    interactions (the paper's 5–20 filter), before splitting.
    """
    if min_len is not None or max_len is not None:
        n_u = np.bincount(inter.user, minlength=inter.n_users)[inter.user]
        keep = (n_u >= (min_len or 0)) & (n_u <= (max_len or np.iinfo(np.int64).max))
        if not keep.any():
            raise DataFormatError(f"{inter.name}: no user has {min_len}..{max_len} interactions")
        inter = inter.subset(keep).compact()
    if order == "auto":
        order = "time" if inter.has_time else ("file" if sequential else "random")
    return prepare(leave_one_out(order_rows(inter, order, seed)), seed=seed, n_negatives=n_negatives, order=order)


def prepare(split: SplitData, *, train_set: TrainingSet | None = None, seed: int = 0, n_negatives: int = 99,
            order: str = "given") -> DisclosureData:
    """Fix the 1 + ``n_negatives`` validation/test candidates of an existing split (seeded)."""
    ts = split.training_set("matrix") if train_set is None else train_set
    if ts.kind != "matrix":
        raise ConfigError("the disclosure game works on a user x item matrix: pass split.training_set('matrix')")
    user, item = ts.data.coo_pairs()
    check_players(split, user)
    rng = np.random.default_rng([seed, 99])
    valid = split.valid.with_sampled_candidates(n_negatives, rng)
    test = split.test.with_sampled_candidates(n_negatives, rng)
    return DisclosureData(split, ts, user, item, valid, test, order)


def check_players(split: SplitData, user: np.ndarray) -> None:
    """Every user holding training interactions (``user``: one entry per interaction) must have a
    validation case of ``split`` to play the disclosure game; else a clear error naming the fix."""
    has_case = np.zeros(split.n_users, bool)
    has_case[split.valid.user] = True
    counts = np.bincount(np.asarray(user, np.int64), minlength=split.n_users)
    bad = np.flatnonzero((counts > 0) & ~has_case)
    if len(bad):
        u = int(bad[0])
        total = int(counts[u])
        what = "has a single interaction" if total == 1 else f"has {total} interactions but no validation case"
        raise DataFormatError(f"user {u} {what}: the disclosure game needs each user's own validation item "
                              f"({len(bad)} such users); keep users with >= 3 interactions "
                              "(recsift.data.min_user_interactions) before splitting")


@torch.no_grad()
def candidate_scores(model: torch.nn.Module, cases: EvalCases, chunk: int = 4096) -> np.ndarray:
    """Model scores of each case's candidates, ``[n_cases, C]`` (column 0 = the target)."""
    if cases.candidates is None:
        raise ConfigError("these cases have no fixed candidates; build them with disclosure_split")
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for lo in range(0, len(cases), chunk):
        u = torch.from_numpy(cases.user[lo: lo + chunk]).to(dev)
        c = torch.from_numpy(cases.candidates[lo: lo + chunk]).to(dev)
        out.append(model(u, c).double().cpu())
    return torch.cat(out).numpy()


def f1_at_k(scores: np.ndarray, k: int = 5) -> np.ndarray:
    """F1@k per case with one relevant candidate (column 0): ``2·hit/(k+1)`` (= hit/3 at k = 5)."""
    rank = 1 + (scores[:, 1:] > scores[:, :1]).sum(1)
    hit = (rank <= k).astype(np.float64)
    return 2.0 * hit / (k + 1)


def evaluate_disclosure(model: torch.nn.Module, data: DisclosureData, disclosed: np.ndarray, beta: np.ndarray,
                        lam: float = 1.0) -> dict[str, float]:
    """F1@5 (test), validation and test BCE, wv and reward of a model trained on ``disclosed``.

    Users = the validation users (every user holding training interactions, see `check_players`).
    ``reward = −L_val − λ wv`` (the paper's, selection on validation); ``reward_test`` uses the test BCE.
    Two extra measures for comparing with the MindSpore seed, whose reward is normalised differently and
    whose reward code is not public: ``wv_share`` = Σ disclosed β / Σ β over all training interactions (its
    ``regret / tot_regret``; 1 when everything is disclosed) and ``valid_ce`` = softmax cross-entropy of the
    validation positive among its candidates (the loss its README names).
    """
    lam = check_lambda(lam)
    sv = candidate_scores(model, data.valid)
    st = candidate_scores(model, data.test)
    l_val = valid_bce(torch.from_numpy(sv)).numpy()
    l_test = valid_bce(torch.from_numpy(st)).numpy()
    wv_u = per_user_violation(disclosed, beta, data.user, data.valid.user)
    wv = float(wv_u.mean())
    b = np.asarray(beta, np.float64)
    share = float(np.dot(np.asarray(disclosed, np.float64), b) / max(float(b.sum()), 1e-300))
    ce = -torch.log_softmax(torch.from_numpy(sv), dim=-1)[:, 0].numpy()
    return {"f1@5": float(f1_at_k(st, 5).mean()), "valid_bce": float(l_val.mean()), "test_bce": float(l_test.mean()),
            "wv": wv, "reward": float(-l_val.mean() - lam * wv), "reward_test": float(-l_test.mean() - lam * wv),
            "disclosed": float(np.mean(disclosed)), "wv_share": share, "valid_ce": float(ce.mean())}
