"""Train / valid / test splits. Valid and test cases are fixed here and never curated.

Protocols
---------
``loo``      leave-one-out by time (or file order): per user, last item = test target,
             second-to-last = valid target, the rest = training sequence. Users with fewer
             than 3 interactions have no valid/test case and keep all rows for training.
             Evaluation default: no history masking (RecBole's sequential protocol).
``ratio``    ∞-AE / Distill-CF protocol: drop users with < 3 interactions, shuffle each user's
             rows (seeded), first ``int(.8 n)`` -> train, next up to ``int(.9 n)`` -> valid, the
             rest -> test, and the first shuffled row is always forced into test (exactly the
             original ``preprocess.py``). Valid input = train row; test input = train + valid.
             Evaluation default: the input items are masked.
``index``    a shipped per-row split array (``index.npz``: 0 train, 1 valid, 2 test, -1 drop),
             for exact comparison with the ∞-AE / Distill-CF papers on ml-1m and magazine.
``sessions`` session datasets: sessions ordered by their last timestamp, the last 10% are
             test sessions and the 10% before them valid sessions; every prefix of a valid or
             test session is a case (history = the prefix, target = the next item).
``given``    the training sessions and the valid/test sessions come from separate files
             (yoochoose-100k: train_tr / train_valid for validation, test for test).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataFormatError
from .cases import EvalCases, _gather_csr
from .interactions import Interactions, _positions
from .matrix import InteractionMatrix
from .sequences import SequenceSamples, SequenceStore
from .training_set import TrainingSet


@dataclass(frozen=True)
class SplitData:
    """A dataset cut into training rows and fixed valid/test evaluation cases."""

    name: str
    protocol: str
    train: Interactions
    valid: EvalCases
    test: EvalCases
    mask_history: bool
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def train_sequences(self) -> SequenceStore:
        """Each user's training items in time order (CSR)."""
        return SequenceStore(self.train.user_indptr(), self.train.item, self.n_items)

    def training_set(self, kind: str = "sequence") -> TrainingSet:
        """The full (uncurated) training set as prefix samples or as a user x item matrix."""
        prov = {"dataset": self.name, "protocol": self.protocol}
        if kind == "sequence":
            return TrainingSet(SequenceSamples.all_prefixes(self.train_sequences()), provenance=prov)
        if kind == "matrix":
            m = InteractionMatrix.from_pairs(self.train.user, self.train.item, self.n_users, self.n_items)
            return TrainingSet(m, provenance=prov)
        raise DataFormatError(f"unknown training-set kind {kind!r}; use 'sequence' or 'matrix'")

    def counts(self) -> dict[str, Any]:
        """Sizes after the split: training rows/users/items and the number of valid/test cases."""
        tr = self.train.counts()
        return {
            "protocol": self.protocol,
            "train_interactions": tr["n_interactions"],
            "train_users": tr["n_users"],
            "train_items": tr["n_items"],
            "valid_cases": len(self.valid),
            "test_cases": len(self.test),
            "valid_targets": int(len(self.valid.tgt_items)),
            "test_targets": int(len(self.test.tgt_items)),
            "n_users": self.n_users,
            "n_items": self.n_items,
            **self.info,
        }


def _cases_from_rows(inter: Interactions, hist_rows: np.ndarray, tgt_rows: np.ndarray, users: np.ndarray) -> EvalCases:
    """Cases for ``users`` with histories/targets = the marked rows (boolean masks over rows)."""
    def csr(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = inter.user[mask]
        cnt = np.bincount(u, minlength=inter.n_users)
        indptr = np.concatenate([[0], np.cumsum(cnt)]).astype(np.int64)
        items, ptr = _gather_csr(indptr, inter.item[mask], users)
        return ptr, items

    hp, hi = csr(hist_rows)
    tp, ti = csr(_first_occurrence(inter, tgt_rows))  # a repeated (user, item) row is one target
    return EvalCases(users.astype(np.int64), hp, hi, tp, ti, inter.n_items)


def _first_occurrence(inter: Interactions, mask: np.ndarray) -> np.ndarray:
    """``mask`` without rows that repeat an earlier (user, item) pair among the masked rows."""
    rows = np.flatnonzero(mask)
    key = inter.user[rows] * (inter.n_items + 1) + inter.item[rows]
    _, first = np.unique(key, return_index=True)
    out = np.zeros_like(mask, dtype=bool)
    out[rows[first]] = True
    return out


def leave_one_out(inter: Interactions) -> SplitData:
    """Last item -> test, second-to-last -> valid, rest -> train (users with >= 3 rows)."""
    n_u = np.bincount(inter.user, minlength=inter.n_users)
    pos = _positions(inter.user, inter.n_users)
    length = n_u[inter.user]
    eligible = length >= 3
    is_test = eligible & (pos == length - 1)
    is_valid = eligible & (pos == length - 2)
    is_train = ~(is_test | is_valid)
    users = np.flatnonzero(n_u >= 3)
    valid = _cases_from_rows(inter, is_train, is_valid, users)
    test = _cases_from_rows(inter, is_train | is_valid, is_test, users)
    info = {"users_without_cases": int((n_u[n_u > 0] < 3).sum())}
    return SplitData(inter.name, "loo", inter.subset(is_train), valid, test, mask_history=False, info=info)


def ratio_split(inter: Interactions, seed: int = 42, *, min_user: int = 3, train: float = 0.8, valid: float = 0.1) -> SplitData:
    """Per-user random 80/10/10 split of the ∞-AE protocol (see module docstring).

    The protocol is a binary user x item matrix, so a repeated (user, item) pair counts once: the
    first occurrence is kept (``info["duplicates_collapsed"]`` says how many were dropped) and the
    same item can never be both a user's input and its test target.
    """
    rng = np.random.default_rng(seed)
    key = inter.user.astype(np.int64) * (inter.n_items + 1) + inter.item
    _, first_rows = np.unique(key, return_index=True)
    n_dup = len(inter) - len(first_rows)
    if n_dup:
        keep = np.zeros(len(inter), bool)
        keep[first_rows] = True
        inter = inter.subset(keep)
    n_u = np.bincount(inter.user, minlength=inter.n_users)
    length = n_u[inter.user]
    order = np.lexsort((rng.random(len(inter)), inter.user))  # shuffled rows, grouped by user
    rank = np.empty(len(inter), dtype=np.int64)
    rank[order] = _positions(inter.user[order], inter.n_users)
    first = np.floor(train * length + 1e-9).astype(np.int64)
    second = np.floor((train + valid) * length + 1e-9).astype(np.int64)
    label = np.where(rank < first, 0, np.where(rank < second, 1, 2))
    label[rank == 0] = 2
    label[length < min_user] = -1
    return _labelled_split(inter, label, "ratio", {"seed": seed, "duplicates_collapsed": int(n_dup)})


def index_split(inter: Interactions, labels: np.ndarray) -> SplitData:
    """Apply a per-source-row label array (0 train, 1 valid, 2 test, -1 dropped)."""
    labels = np.asarray(labels).ravel()
    if inter.row is None or labels.shape[0] <= int(inter.row.max()):
        raise DataFormatError(
            f"{inter.name}: the split index has {labels.shape[0]} entries but the data has {len(inter)} rows; "
            "use the index file shipped with this exact data file"
        )
    if not np.isin(labels, (-1, 0, 1, 2)).all():
        raise DataFormatError(f"{inter.name}: split index values must be -1, 0, 1 or 2")
    return _labelled_split(inter, labels[inter.row], "index", {})


def _labelled_split(inter: Interactions, label: np.ndarray, protocol: str, info: dict[str, Any]) -> SplitData:
    kept = inter.subset(label >= 0).compact()
    label = label[label >= 0]
    is_train, is_valid, is_test = label == 0, label == 1, label == 2
    users_v = np.unique(kept.user[is_valid])
    users_t = np.unique(kept.user[is_test])
    valid = _cases_from_rows(kept, is_train, is_valid, users_v)
    test = _cases_from_rows(kept, is_train | is_valid, is_test, users_t)
    info = {**info, "dropped_interactions": int(len(inter) - len(kept)), "kept_users": kept.n_users,
            "valid_rows": int(is_valid.sum()), "test_rows": int(is_test.sum()),
            "kept_items": kept.n_items, "kept_interactions": len(kept)}
    return SplitData(inter.name, protocol, kept.subset(is_train), valid, test, mask_history=True, info=info)


def session_prefix_cases(store: SequenceStore, sessions: np.ndarray, users: np.ndarray | None = None) -> EvalCases:
    """Every prefix -> next item of each session in ``sessions`` (rows of ``store``) as a case."""
    sessions = np.asarray(sessions, dtype=np.int64)
    lens = store.indptr[sessions + 1] - store.indptr[sessions]
    n_cases = np.maximum(lens - 1, 0)
    sess_of_case = np.repeat(sessions, n_cases)
    k = np.arange(n_cases.sum()) - np.repeat(np.cumsum(n_cases) - n_cases, n_cases)  # 0-based prefix end - 1
    start = store.indptr[sess_of_case]
    end = start + k + 1  # history = items[start:end], target = items[end]
    hist_len = end - start
    hist_ptr = np.concatenate([[0], np.cumsum(hist_len)]).astype(np.int64)
    offs = np.arange(hist_ptr[-1]) - np.repeat(hist_ptr[:-1], hist_len)
    hist_items = store.items[np.repeat(start, hist_len) + offs]
    user = sess_of_case if users is None else np.asarray(users, dtype=np.int64)[np.repeat(np.arange(len(sessions)), n_cases)]
    return EvalCases(user, hist_ptr, hist_items, np.arange(len(end) + 1, dtype=np.int64), store.items[end], store.n_items)


def session_split(inter: Interactions, *, valid: float = 0.1, test: float = 0.1) -> SplitData:
    """Temporal split on whole sessions (users): the latest ``test`` fraction are test sessions."""
    last = np.full(inter.n_users, -np.inf)
    np.maximum.at(last, inter.user, inter.time)
    present = np.flatnonzero(np.bincount(inter.user, minlength=inter.n_users) > 0)
    order = present[np.argsort(last[present], kind="stable")]
    n = len(order)
    n_test, n_valid = int(round(test * n)), int(round(valid * n))
    if n_test < 1 or n_valid < 1 or n - n_test - n_valid < 1:
        raise DataFormatError(f"{inter.name}: {n} sessions are too few for a {valid:g}/{test:g} valid/test split")
    test_s, valid_s = order[n - n_test:], order[n - n_test - n_valid: n - n_test]
    role = np.zeros(inter.n_users, dtype=np.int8)
    role[valid_s], role[test_s] = 1, 2
    store = SequenceStore(inter.user_indptr(), inter.item, inter.n_items)
    train = inter.subset(role[inter.user] == 0)
    info = {"train_sessions": n - n_test - n_valid, "valid_sessions": n_valid, "test_sessions": n_test}
    return SplitData(inter.name, "sessions", train, session_prefix_cases(store, np.sort(valid_s)),
                     session_prefix_cases(store, np.sort(test_s)), mask_history=False, info=info)


SPLITS = {"loo": leave_one_out, "ratio": ratio_split, "sessions": session_split}
