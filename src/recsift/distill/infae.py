"""∞-AE: an infinitely wide autoencoder for CF, solved in closed form by kernel ridge regression.

Sachdeva, Dhaliwal, Wu, McAuley, "Infinite Recommendation Networks: A Data-Centric Approach",
NeurIPS 2022; reference code ``noveens/infinite_ae_cf`` (``model.py``, ``main.py``, ``eval.py``).
Model (ALGORITHMS.md §9): with ``K = NTK(X, X)`` over the training users' rows ``X``
(:mod:`recsift.distill.ntk`) and ``K_reg = K + λ · tr(K)/n · I``, the weights are
``α = K_reg⁻¹ X`` and a user with input row ``x`` gets the item scores ``NTK(x, X) α``.

Choices and deviations (each one documented where it is made):

* **λ grid.** The union ``{1e-5, 1e-3, 0.1, 1, 5, 20, 50, 100}`` of the current reference code's
  ``{0, 1, 5, 20, 50, 100}`` and the earlier / Distill-CF grid ``{1e-5, 1e-3, 0.1, 1, 5, 50}``,
  **without 0**: at λ = 0 the solve is exactly singular whenever two users have identical
  training rows (magazine has many), and where it is not singular it reproduces the input
  (``K α = X``), so every unseen item scores ~0 — a degenerate model, never worth selecting.
  λ is chosen on validation over all grid points (``search="grid"``) or by hill-climbing on the
  sorted grid from its middle (``search="stepwise"``, 3–4 solves instead of 8).
* **Selection metric.** Default validation ``ndcg@10`` (the headline metric), not the reference's
  ``HR@100`` (``select_metric="recall_norm@100"``). Measured on the shipped splits: ml-1m picks
  λ = 5 under either (test nDCG@10 33.39); on magazine validation HR@100 picks λ = 20 (test
  nDCG@10 21.93, HR@100 61.10) while validation nDCG@10 picks λ = 5 (test nDCG@10 22.99, HR@100
  56.30): select on the metric you report.
* **Validation shortcut.** Validation queries are the training rows themselves, and
  ``K_reg α = X`` gives ``K α = X − c α`` with ``c = λ tr(K)/n``: no second kernel product.
  It is used whenever a validation case's input equals its user's training row; otherwise
  (curated or distilled training sets) the cross-kernel is computed once and reused per λ.
* **Precision.** Kernel and solves in float32 (the reference runs JAX in float32; a float64
  re-implementation gave the same ml-1m metrics). A float32 Cholesky that fails (tiny λ, near-
  duplicate users) is redone in float64 for that λ only.
* **Empty rows.** Users without training interactions are not training rows (as in the
  reference code); they can still be queried and then get a popularity-like ranking.
* **Memory.** The kernel, its Cholesky factor and a cross-kernel are ``n_users²`` floats each.
  Beyond ``max_memory_gb`` ``fit`` raises a `ConfigError` naming the limit; ``max_users`` fits on a
  seeded uniform sample of users instead (the paper sampled 5% of Netflix's 480k users).

When not to use: tens of thousands of users or more without ``max_users`` (cubic solve time),
or when a learned, inductive model is needed for unseen users' *items*: ∞-AE only scores the
item columns it was trained with.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from ..data import EvalCases, InteractionMatrix, SequenceSamples, TrainingSet
from ..errors import ConfigError, DataFormatError
from ..evaluate import evaluate, parse_metric
from ..models.registry import register_model
from .ntk import B_VAR, W_VAR, ntk_sparse

__all__ = ["DISTILL_LAMBDAS", "LAMBDA_GRID", "InfiniteAE", "KRRFactor", "cases_matrix", "factorise",
           "krr_solve", "memory_bytes", "training_rows"]

log = logging.getLogger(__name__)

#: union of the reference codes' grids without the degenerate λ = 0 (see the module docstring)
LAMBDA_GRID = (1e-5, 1e-3, 0.1, 1.0, 5.0, 20.0, 50.0, 100.0)
#: the grid of Distill-CF's ``eval.py`` (and of the earlier ∞-AE code)
DISTILL_LAMBDAS = (1e-5, 1e-3, 0.1, 1.0, 5.0, 50.0)


@dataclass(frozen=True)
class KRRFactor:
    """Cholesky factor of ``K + c I`` with ``c = λ · tr(K)/n``."""

    chol: torch.Tensor
    ridge: float
    lam: float

    def solve(self, y: torch.Tensor) -> torch.Tensor:
        """``(K + c I)⁻¹ y`` in the dtype of ``y``."""
        return torch.cholesky_solve(y.to(self.chol.dtype), self.chol).to(y.dtype)


def _check_lambda(lam: float) -> float:
    lam = float(lam)
    if not math.isfinite(lam) or lam < 0:
        raise ConfigError(f"∞-AE regulariser λ={lam!r} is invalid: λ must be a finite number >= 0 "
                          f"(it scales tr(K)/n on the diagonal); use one of {list(LAMBDA_GRID)}")
    return lam


def factorise(kernel: torch.Tensor, lam: float, *, fallback64: bool = True) -> KRRFactor:
    """Cholesky factor of ``K + λ · tr(K)/n · I`` (float64 retry when float32 fails).

    ``kernel`` is modified in place during the call and restored before returning.

    Raises
    ------
    ConfigError
        If ``λ < 0`` or the regularised kernel is singular even in float64 (e.g. ``λ = 0``
        with two identical training users).

    Examples
    --------
    >>> f = factorise(torch.eye(2) * 2.0, 1.0)
    >>> f.ridge, f.chol.dtype
    (2.0, torch.float32)
    """
    lam = _check_lambda(lam)
    n = kernel.shape[0]
    ridge = lam * float(torch.diagonal(kernel).sum()) / n
    diag = torch.diagonal(kernel)
    diag += ridge
    try:
        chol, ok = _cholesky(kernel)
        if not ok and fallback64 and kernel.dtype != torch.float64:
            log.info("float32 Cholesky failed at λ=%g; retrying in float64", lam)
            chol, ok = _cholesky(kernel.double())
    finally:
        diag -= ridge
    if not ok:
        raise ConfigError(f"the ∞-AE kernel plus λ·tr(K)/n·I is singular at λ={lam:g} (users with identical "
                          "training rows make K singular); use a larger λ, e.g. one of "
                          f"{[x for x in LAMBDA_GRID if x > lam][:3]}")
    return KRRFactor(chol, ridge, lam)


def _cholesky(a: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Cholesky factor and whether it is usable: a failed factorisation, or a pivot ratio
    ``(min L_ii / max L_ii)²`` below machine epsilon (numerically singular), is not."""
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) > 0:
        return chol, False
    d = torch.diagonal(chol)
    return chol, bool((d.min() / d.max()) ** 2 > torch.finfo(a.dtype).eps)


def krr_solve(kernel: torch.Tensor, targets: torch.Tensor, lam: float) -> torch.Tensor:
    """Kernel ridge regression weights ``α = (K + λ · tr(K)/n · I)⁻¹ Y``.

    Examples
    --------
    >>> k = torch.tensor([[2.0, 1.0], [1.0, 2.0]])
    >>> krr_solve(k, torch.eye(2), 0.5).shape
    torch.Size([2, 2])
    """
    return factorise(kernel, lam).solve(targets)


def training_rows(train: TrainingSet) -> tuple[sp.csr_matrix, np.ndarray]:
    """The rows ∞-AE trains on: values × weights, users without interactions dropped.

    A matrix is used as it is; prefix samples become the (user, target) pairs of the kept
    samples (sequence order is ignored; the first item of a sequence is never a target).

    Returns the float32 CSR of the kept rows (``n_items + 1`` columns, column 0 empty) and
    the user id of each kept row.

    Raises
    ------
    DataFormatError
        If no user has an interaction.
    """
    data = train.data
    if isinstance(data, SequenceSamples):  # order is ignored: a user's row holds its samples' targets
        unit = train.weights.min(initial=1.0) == train.weights.max(initial=1.0) == 1.0
        x = InteractionMatrix.from_pairs(data.user, data.targets, len(data.store.indptr) - 1, data.store.n_items,
                                         train.weights, binary=unit).csr
    else:
        x = data.csr.astype(np.float32, copy=True)
        x.data *= train.weights
    x.eliminate_zeros()
    users = np.flatnonzero(np.diff(x.indptr) > 0)
    if len(users) == 0:
        raise DataFormatError("∞-AE: no user has a training interaction (empty training set); a budget must keep "
                              "at least one interaction")
    return x[users], users


def cases_matrix(cases: EvalCases, n_cols: int) -> sp.csr_matrix:
    """Binary CSR of the cases' input histories (``n_cols`` = ``n_items + 1``; padding ids dropped)."""
    rows = np.repeat(np.arange(len(cases)), cases.hist_lengths)
    keep = cases.hist_items > 0
    x = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (rows[keep], cases.hist_items[keep])),
                      shape=(len(cases), n_cols))
    x.sum_duplicates()
    x.data[:] = 1.0
    x.sort_indices()
    return x


def memory_bytes(n_users: int, n_items: int) -> int:
    """Approximate peak bytes of a fit: 3 float32 ``n²`` buffers (kernel, Cholesky factor,
    cross-kernel) and 4 ``n x (n_items + 1)`` buffers (dense targets, α, best α, scores)."""
    return 4 * (3 * n_users * n_users + 4 * n_users * (n_items + 1))


def max_users_within(cap_bytes: float, n_items: int) -> int:
    """The largest user count whose `memory_bytes` fits in ``cap_bytes`` (the positive root of
    ``12 m² + 16 (n_items + 1) m = cap``)."""
    b = 16.0 * (n_items + 1)
    m = int((-b + math.sqrt(b * b + 48.0 * cap_bytes)) / 24.0)
    while m > 0 and memory_bytes(m, n_items) > cap_bytes:  # float rounding
        m -= 1
    return m


_PARAM_SPEC = {
    "lambdas": "non-empty sequence of λ >= 0 (default: the union grid without 0)",
    "lam": "None (choose λ on validation) or a fixed λ >= 0",
    "select_metric": "metric@K used to choose λ on validation (default ndcg@10; the papers used recall_norm@100)",
    "search": "'grid' (every λ) or 'stepwise' (hill-climb on the sorted grid)",
    "max_users": "None, or fit on at most this many users (seeded uniform sample)",
    "max_memory_gb": "refuse fits whose n_users² buffers would exceed this many GB",
    "seed": "seed of the user subsample",
    "chunk_users": "query rows per prediction chunk",
}


@register_model("infae")
class InfiniteAE:
    """∞-AE (Sachdeva et al., NeurIPS 2022): closed-form infinite-width autoencoder.

    Parameters
    ----------
    lambdas : sequence of float, default :data:`LAMBDA_GRID`
        Candidate λ (relative to the mean kernel diagonal), chosen by ``select_metric`` on
        the validation cases passed to :meth:`fit`.
    lam : float, optional
        Fix λ and skip the search (no validation cases needed).
    select_metric : str, default ``"ndcg@10"``
        Validation metric that picks λ (the papers' ``HR@100`` is ``"recall_norm@100"``).
    search : {"grid", "stepwise"}, default "grid"
    max_users : int, optional
        Fit on a seeded uniform sample of at most this many users (the others can still be
        scored). Needed beyond the ``max_memory_gb`` limit.
    max_memory_gb : float, default 4.0
        Refuse a fit whose ``n_users²`` buffers (:func:`memory_bytes`) exceed this.
    seed : int, default 0
    chunk_users : int, default 4096
        Query rows per prediction chunk (bounds the cross-kernel buffer).

    Examples
    --------
    >>> from recsift.data import load_split
    >>> split = load_split("synthetic", split="ratio")
    >>> model = InfiniteAE().fit(split.training_set("matrix"), split.valid)
    >>> model.score(split.test.take(np.arange(2))).shape[0]
    2
    """

    def __init__(self, lambdas: Sequence[float] = LAMBDA_GRID, lam: float | None = None,
                 select_metric: str = "ndcg@10", search: str = "grid", max_users: int | None = None,
                 max_memory_gb: float = 4.0, seed: int = 0, chunk_users: int = 4096) -> None:
        self.lambdas = lambdas
        self.lam = lam
        self.select_metric = select_metric
        self.search = search
        self.max_users = max_users
        self.max_memory_gb = max_memory_gb
        self.seed = seed
        self.chunk_users = chunk_users

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _PARAM_SPEC}

    def _checked_lambdas(self) -> list[float]:
        if self.lam is not None:
            return [_check_lambda(self.lam)]
        lams = sorted({_check_lambda(x) for x in self.lambdas})
        if not lams:
            raise ConfigError(f"InfiniteAE: lambdas is empty; give {_PARAM_SPEC['lambdas']}")
        return lams

    def _check(self) -> None:
        if self.search not in ("grid", "stepwise"):
            raise ConfigError(f"InfiniteAE: search={self.search!r}; use {_PARAM_SPEC['search']}")
        if self.max_users is not None and int(self.max_users) < 1:
            raise ConfigError(f"InfiniteAE: max_users={self.max_users!r}; give {_PARAM_SPEC['max_users']}")
        if not self.max_memory_gb > 0:
            raise ConfigError(f"InfiniteAE: max_memory_gb={self.max_memory_gb!r} must be > 0")
        if int(self.chunk_users) < 1:
            raise ConfigError(f"InfiniteAE: chunk_users={self.chunk_users!r} must be a positive integer")
        parse_metric(self.select_metric)

    # ------------------------------------------------------------------ fit
    def fit(self, train: TrainingSet, valid: EvalCases | None = None, *, mask_history: bool = True) -> InfiniteAE:
        """Compute the kernel over ``train``'s users and solve for α, choosing λ on ``valid``.

        Raises
        ------
        ConfigError
            Bad parameters, no validation cases while λ is to be chosen, or a kernel larger
            than ``max_memory_gb`` (the message gives the ``max_users`` that would fit).
        DataFormatError
            ``train`` has no interaction at all.
        """
        self._check()
        lams = self._checked_lambdas()
        if len(lams) > 1 and (valid is None or len(valid) == 0):
            raise ConfigError("InfiniteAE chooses λ on validation cases: pass valid=split.valid to fit(), or fix "
                              "λ with lam=5.0")
        t0 = time.perf_counter()
        x, users = training_rows(train)
        self.n_items_ = x.shape[1] - 1
        if self.max_users is not None and len(users) > int(self.max_users):
            keep = np.sort(np.random.default_rng(self.seed).choice(len(users), int(self.max_users), replace=False))
            x, users = x[keep], users[keep]
        self._check_memory(len(users))
        self.x_train_, self.users_ = x, users
        kernel = ntk_sparse(x, n_features=self.n_items_)
        # solve only for item columns someone interacted with: the others have α = 0 exactly
        self.cols_ = torch.from_numpy(np.flatnonzero(np.diff(x.tocsc().indptr) > 0))
        targets = torch.from_numpy(x[:, self.cols_.numpy()].toarray())
        t_kernel = time.perf_counter()
        if valid is None or len(valid) == 0:
            self.lam_, self.valid_metrics_ = lams[0], {}
            factor = factorise(kernel, lams[0])
            self.alpha_ = factor.solve(targets)
        else:
            plan = self._valid_plan(valid)
            self.lam_, self.alpha_, self.valid_metrics_ = self._search(kernel, targets, valid, plan, lams,
                                                                       mask_history)
        self.fit_info_ = {"n_train_users": int(len(users)), "lam": self.lam_, "valid": dict(self.valid_metrics_),
                          "kernel_seconds": round(t_kernel - t0, 3),
                          "solve_seconds": round(time.perf_counter() - t_kernel, 3)}
        log.info("∞-AE: %d users, λ=%g, kernel %.1fs, solves %.1fs", len(users), self.lam_,
                 t_kernel - t0, time.perf_counter() - t_kernel)
        return self

    def _check_memory(self, n: int) -> None:
        need = memory_bytes(n, self.n_items_)
        cap = float(self.max_memory_gb) * 2**30
        if need > cap:
            fit = max_users_within(cap, self.n_items_)
            raise ConfigError(
                f"∞-AE on {n:,} users needs about {need / 2**30:.1f} GB (its kernel, Cholesky factor and cross-kernel "
                f"are n_users² = {n * n:,} floats each), more than max_memory_gb={self.max_memory_gb:g}. Subsample "
                f"users with max_users={max(fit, 1):,} (as the paper did for Netflix) or raise max_memory_gb.")

    def _valid_plan(self, valid: EvalCases) -> dict[str, Any]:
        """How validation scores are formed: the ``X − c α`` shortcut rows, or a cross-kernel."""
        xq = cases_matrix(valid, self.x_train_.shape[1])
        row_of = np.full(int(max(self.users_.max(), valid.user.max())) + 1, -1, np.int64)
        row_of[self.users_] = np.arange(len(self.users_))
        rows = row_of[valid.user]
        if (rows >= 0).all() and (xq != self.x_train_[rows]).nnz == 0:
            return {"rows": torch.from_numpy(rows)}
        return {"cross": ntk_sparse(xq, self.x_train_, n_features=self.n_items_)}

    def _search(self, kernel: torch.Tensor, targets: torch.Tensor, valid: EvalCases, plan: dict[str, Any],
                lams: list[float], mask_history: bool) -> tuple[float, torch.Tensor, dict[float, float]]:
        metric = parse_metric(self.select_metric).key
        results: dict[float, float] = {}
        best: dict[str, Any] = {}

        def value(i: int) -> float:
            lam = lams[i]
            if lam not in results:
                try:
                    factor = factorise(kernel, lam)
                except ConfigError as e:
                    log.warning("∞-AE: skipping λ=%g: %s", lam, e)
                    results[lam] = -math.inf
                    return results[lam]
                alpha, ridge = factor.solve(targets), factor.ridge
                del factor  # the Cholesky factor (n² floats) is not needed while ranking
                fn = self._valid_scores(plan, targets, alpha, ridge, self.cols_, self.x_train_.shape[1])
                results[lam] = evaluate(fn, valid, [metric], mask_history=mask_history).means[metric]
                log.debug("∞-AE λ=%g: valid %s = %.5f", lam, metric, results[lam])
                if not best or results[lam] > best["value"]:
                    best.update(value=results[lam], lam=lam, alpha=alpha)
            return results[lam]

        if self.search == "grid":
            for i in range(len(lams)):
                value(i)
        else:
            _hill_climb(value, len(lams))
        if not best:
            raise ConfigError(f"∞-AE: every λ in {lams} gave a singular system; use larger λ values")
        return best["lam"], best["alpha"], results

    @staticmethod
    def _valid_scores(plan: dict[str, Any], targets: torch.Tensor, alpha: torch.Tensor, ridge: float,
                      cols: torch.Tensor, width: int) -> Callable[[EvalCases], torch.Tensor]:
        pos = {"next": 0}  # evaluate() asks for consecutive chunks of the cases, in order (its contract)

        def fn(batch: EvalCases) -> torch.Tensor:
            lo, hi = pos["next"], pos["next"] + len(batch)
            pos["next"] = hi
            out = torch.zeros((hi - lo, width), dtype=alpha.dtype)
            if "rows" in plan:
                rows = plan["rows"][lo:hi]
                out[:, cols] = torch.sub(targets[rows], alpha[rows], alpha=ridge)  # K α = X − c α
            else:
                out[:, cols] = plan["cross"][lo:hi] @ alpha
            return out

        return fn

    # ------------------------------------------------------------------ predict
    def score(self, cases: EvalCases) -> np.ndarray:
        """Scores ``[len(cases), n_items + 1]`` for the cases' input histories, ``NTK(x, X) α``."""
        if not hasattr(self, "alpha_"):
            raise ConfigError("InfiniteAE.score called before fit()")
        xq = cases_matrix(cases, self.x_train_.shape[1])
        out = torch.zeros((len(cases), self.x_train_.shape[1]), dtype=torch.float32)
        step = int(self.chunk_users)
        for lo in range(0, len(cases), step):
            k = ntk_sparse(xq[lo:lo + step], self.x_train_, n_features=self.n_items_)
            out[lo:lo + step, self.cols_] = (k @ self.alpha_).float()
        return out.numpy()


def _hill_climb(value: Callable[[int], float], n: int) -> int:
    """Index of a local maximum of ``value`` over ``0..n-1``, climbing from the middle."""
    i = n // 2
    for step in (1, -1):
        moved = False
        while 0 <= i + step < n and value(i + step) > value(i):
            i += step
            moved = True
        if moved:
            break
    return i
