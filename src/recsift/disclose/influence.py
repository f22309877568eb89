"""Influence of each training interaction on its user's validation loss (IFRQE, ALGORITHMS.md §11.2).

For a CF model trained on interactions ``s`` with per-sample loss ``ℓ_s`` (the model's training
loss on the positive and its fixed sampled negative), the influence of ``s = (u, k)`` on user
``u``'s validation loss ``L_u`` (mean BCE over the user's 1 + 99 validation candidates) is

    g_s = ∇L_u(θ)ᵀ (H + μ I)⁻¹ ∇ℓ_s(θ),       H = Σ_s ∇²ℓ_s(θ)   (sum form)

which is the first-order change of ``L_u`` when ``s`` is removed and the model retrained
(Koh & Liang 2017). Sign convention: **larger g ⇒ disclosing s helps u** (removing it raises
the loss). ``s_test(u) = (H + μI)⁻¹ ∇L_u`` is computed once per user, then every interaction's
influence is one batched dot product with its per-sample gradient (``torch.func.vmap(grad)``;
no Python loop per interaction).

Parameter scopes
----------------
``"user"`` (default, scales to ml-1m): θ = the user's own embedding rows (every user-indexed
    embedding table of the model: ``user_embedding`` for BPR-MF, ``user_mf`` + ``user_mlp`` for
    NeuMF); everything else is held fixed. The Hessian is then block diagonal, one small
    ``d × d`` block per user built from that user's interactions only, so ``s_test`` is a
    ``d``-vector per user. This is the restriction §11.6 suggests instead of the seed's
    Python loop over examples; it ignores how a withheld interaction moves item embeddings.
``"full"``: θ = every parameter, one shared Hessian. Exact but ``O(P²)`` memory: tiny models
    only (tests, the leave-one-out check).

Inverse-Hessian-vector products
-------------------------------
``"lissa"`` (the paper's, appendix eq. 25): ``h_0 = v``, ``h_j = v + (1 − damp) h_{j−1} −
    Ĥ_j h_{j−1} / scale``, ``s_test = h_J / scale``, with ``Ĥ_j`` an unbiased estimate of H from
    ``lissa_batch`` interactions sampled per user (scaled to the sum form). Its fixed point is
    ``(H + damp·scale·I)⁻¹ v``, so μ = damp · scale. With ``auto_scale`` a user's scale is raised
    to 1.1 × its largest Hessian eigenvalue (power iteration) when needed for the recursion to
    converge, keeping μ fixed.
Curvature: the exact Hessian (double backward, as the paper), or by default its Gauss-Newton part
``Jᵀ ∇²_s ℓ J`` (J = Jacobian of the scores), which is positive semi-definite, so LiSSA and CG stay
stable on NeuMF, whose exact user-block Hessian is indefinite (LiSSA diverged on ml-100k NeuMF).
For MF in the user scope the scores are linear in θ and both are the same matrix.

``"cg"``: batched conjugate gradient on ``(H + μI) x = v`` with exact Hessian-vector products.
``"exact"``: explicit (block) Hessians and a batched solve.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.func import functional_call, grad, hessian, jacrev, jvp, vjp, vmap

from ..errors import ConfigError
from ..train.losses import get_loss

Solver = Literal["lissa", "cg", "exact"]
Scope = Literal["user", "full"]
Curvature = Literal["hessian", "gauss-newton"]


@dataclass(frozen=True)
class InfluenceConfig:
    """How s_test is solved. Defaults: the IFRQE configs (damp 0.1, scale 25, N_J = 30)."""

    solver: Solver = "lissa"  # lissa | cg | exact
    scope: Scope = "user"  # user: per-user embedding block; full: all parameters (tiny models)
    curvature: Curvature = "gauss-newton"  # gauss-newton (PSD) or the exact hessian (double backward)
    damp: float = 0.1  # LiSSA damping; μ = damp * scale is added to the Hessian for every solver
    scale: float = 25.0  # LiSSA scale (Amazon Video: 200)
    depth: int = 30  # LiSSA recursion depth N_J (paper: 10/20/30)
    lissa_batch: int = 8  # interactions sampled per user per LiSSA step (0 = all: deterministic)
    auto_scale: bool = True  # raise a user's scale when its Hessian is too large for LiSSA to converge
    cg_iters: int = 100  # conjugate-gradient iterations at most
    cg_tol: float = 1e-8  # stop CG when the residual norm is below tol * ||v||
    chunk: int = 8192  # interactions per vmap chunk
    seed: int = 0  # LiSSA sampling seed

    def __post_init__(self) -> None:
        if self.solver not in ("lissa", "cg", "exact"):
            raise ConfigError(f"influence solver {self.solver!r}: use 'lissa', 'cg' or 'exact'")
        if self.curvature not in ("hessian", "gauss-newton"):
            raise ConfigError(f"curvature {self.curvature!r}: use 'gauss-newton' or 'hessian'")
        if self.scope not in ("user", "full"):
            raise ConfigError(f"influence scope {self.scope!r}: use 'user' or 'full'")
        if not (self.damp >= 0 and self.scale > 0 and self.depth >= 1 and self.chunk >= 1):
            raise ConfigError("influence config: need damp >= 0, scale > 0, depth >= 1, chunk >= 1")

    @property
    def mu(self) -> float:
        return self.damp * self.scale


@dataclass(frozen=True)
class InfluenceProblem:
    """The training interactions (with their fixed negatives) and validation candidates of a model.

    ``user, pos`` int64 [N]; ``neg`` int64 [N, k] (sampled once, seeded); ``valid_user`` int64 [U];
    ``valid_cand`` int64 [U, C] with the positive in column 0.
    """

    user: np.ndarray
    pos: np.ndarray
    neg: np.ndarray
    valid_user: np.ndarray
    valid_cand: np.ndarray
    loss: str = "bce"


@dataclass
class InfluenceResult:
    """``s_test`` per validation user and the influence of every training interaction."""

    s_test: torch.Tensor  # [U, D]
    influence: np.ndarray  # float64 [N]; NaN for interactions of users without a validation case
    valid_loss: np.ndarray  # float64 [U], L_u at θ
    seconds: dict[str, float]


def valid_bce(scores: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over candidates ``[..., C]`` whose column 0 is the positive."""
    labels = torch.zeros_like(scores)
    labels[..., 0] = 1.0
    return torch.nn.functional.binary_cross_entropy_with_logits(scores, labels, reduction="none").mean(-1)


class _Scope:
    """Per-sample losses as functions of a flat parameter vector ``x`` (one per sample's user)."""

    def __init__(self, model: torch.nn.Module, prob: InfluenceProblem, scope: Scope) -> None:
        self.model, self.scope = model, scope
        self.params = {k: v.detach() for k, v in model.named_parameters()}
        self.loss_fn = get_loss(prob.loss)
        n_users = int(getattr(model, "n_users"))
        if scope == "user":
            self.names = [k for k, v in self.params.items() if "user" in k and v.dim() == 2 and v.shape[0] == n_users]
            if not self.names:
                raise ConfigError(f"{type(model).__name__} has no user embedding table ({n_users} rows): "
                                  "the 'user' influence scope needs one; use scope='full' for a tiny model")
        else:
            self.names = list(self.params)
            n = sum(self.params[k].numel() for k in self.names)
            if n > 20000:
                raise ConfigError(f"scope='full' builds a {n} x {n} Hessian; use scope='user' for models this large")
        self.sizes = [self.params[k].shape[1] if scope == "user" else self.params[k].numel() for k in self.names]
        self.dim = int(sum(self.sizes))

    def x_of(self, users: torch.Tensor) -> torch.Tensor:
        """Parameter vector of each sample: ``[B, D]`` (full scope: θ repeated, as a view)."""
        if self.scope == "user":
            return torch.cat([self.params[k][users] for k in self.names], dim=1)
        theta = torch.cat([self.params[k].reshape(-1) for k in self.names])
        return theta.expand(len(users), -1)

    def scores(self, x: torch.Tensor, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.sizes)
        if self.scope == "user":
            override = {k: p.unsqueeze(0) for k, p in zip(self.names, parts)}
            user = torch.zeros_like(user)
        else:
            override = {k: p.view_as(self.params[k]) for k, p in zip(self.names, parts)}
        return functional_call(self.model, {**self.params, **override}, (user.view(1), items.view(1, -1)))[0]

    def train_loss(self, x, user, pos, neg):
        s = self.scores(x, user, torch.cat([pos.view(1), neg]))
        return self.loss_fn(s[:1], s[1:].view(1, -1))[0]

    def _score_fn(self, user, pos, neg):
        items = torch.cat([pos.view(1), neg])
        return lambda y: self.scores(y, user, items)

    def _loss_curvature(self, s):
        """Hessian of the loss w.r.t. the scores of one sample ([k+1, k+1], tiny)."""
        return hessian(lambda z: self.loss_fn(z[:1], z[1:].view(1, -1))[0])(s)

    def gn_hvp(self, x, t, user, pos, neg):
        """Gauss-Newton product ``Jᵀ (∂²ℓ/∂s²) J t`` (J = ∂scores/∂x): PSD, equal to the Hessian
        when the scores are linear in x (MF in the user scope)."""
        f = self._score_fn(user, pos, neg)
        s, jt = jvp(f, (x,), (t,))
        _, pull = vjp(f, x)
        return pull(self._loss_curvature(s) @ jt)[0]

    def gn_matrix(self, x, user, pos, neg):
        f = self._score_fn(user, pos, neg)
        J = jacrev(f)(x)
        return J.t() @ self._loss_curvature(f(x)) @ J

    def valid_loss(self, x, user, cand):
        return valid_bce(self.scores(x, user, cand))


def _chunks(n: int, size: int):
    for lo in range(0, n, size):
        yield slice(lo, min(lo + size, n))


class InfluenceEstimator:
    """Batched per-sample gradients, Hessian-vector products and Hessians of one trained model."""

    def __init__(self, model: torch.nn.Module, prob: InfluenceProblem, config: InfluenceConfig | None = None) -> None:
        self.cfg = config or InfluenceConfig()
        self.prob = prob
        model.eval()
        self.sc = _Scope(model, prob, self.cfg.scope)
        self.user = torch.from_numpy(prob.user)
        self.pos = torch.from_numpy(prob.pos)
        self.neg = torch.from_numpy(prob.neg.reshape(len(prob.user), -1))
        self.vuser = torch.from_numpy(prob.valid_user)
        self.n_users = int(model.n_users)
        # row of each validation user in the s_test matrix; -1 = no validation case
        self.row_of = torch.full((self.n_users,), -1, dtype=torch.long)
        self.row_of[self.vuser] = torch.arange(len(self.vuser))
        self._g = vmap(grad(self.sc.train_loss))
        if self.cfg.curvature == "hessian":
            self._hvp = vmap(lambda x, t, u, p, n: jvp(lambda y: grad(self.sc.train_loss)(y, u, p, n), (x,), (t,))[1])
            self._hess = vmap(hessian(self.sc.train_loss))
        else:
            self._hvp = vmap(self.sc.gn_hvp)
            self._hess = vmap(self.sc.gn_matrix)

    # -- building blocks ------------------------------------------------------------------
    def valid_grads(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``∇L_u`` ``[U, D]`` and ``L_u`` ``[U]`` for every validation user."""
        cand = torch.from_numpy(self.prob.valid_cand)
        f = vmap(torch.func.grad_and_value(self.sc.valid_loss))
        gs, ls = [], []
        for sl in _chunks(len(self.vuser), self.cfg.chunk):
            u = self.vuser[sl]
            g, val = f(self.sc.x_of(u), u, cand[sl])
            gs.append(g)
            ls.append(val)
        return torch.cat(gs), torch.cat(ls)

    def sample_grads(self, idx: torch.Tensor) -> torch.Tensor:
        u = self.user[idx]
        return self._g(self.sc.x_of(u), u, self.pos[idx], self.neg[idx])

    def _aggregate(self, per: torch.Tensor, idx: torch.Tensor, out: torch.Tensor, weight: torch.Tensor | None = None):
        """Add per-sample rows into their user's row (user scope) or into one shared row (full)."""
        if weight is not None:
            per = per * weight.view(-1, *([1] * (per.dim() - 1)))
        if self.cfg.scope == "user":
            rows = self.row_of[self.user[idx]]
            keep = rows >= 0
            out.index_add_(0, rows[keep], per[keep])
        else:
            out += per.sum(0, keepdim=True)

    def hvp(self, V: torch.Tensor) -> torch.Tensor:
        """Exact ``H V`` (sum form) for one vector per validation user, ``[U, D]``."""
        if self.cfg.scope == "full":
            return (V.to(self.hessian().dtype) @ self.hessian()[0]).to(V.dtype)
        out = torch.zeros_like(V)
        rows_all = self.row_of[self.user]
        for sl in _chunks(len(self.user), self.cfg.chunk):
            idx = torch.arange(sl.start, sl.stop)
            rows = rows_all[idx]
            keep = rows >= 0
            idx, rows = idx[keep], rows[keep]
            u = self.user[idx]
            out.index_add_(0, rows, self._hvp(self.sc.x_of(u), V[rows], u, self.pos[idx], self.neg[idx]))
        return out

    def hessian(self) -> torch.Tensor:
        """Exact Hessians (sum form): ``[U, D, D]`` per user, or ``[1, P, P]`` shared (full scope)."""
        if getattr(self, "_H", None) is not None:
            return self._H
        D = self.sc.dim
        out = torch.zeros((len(self.vuser) if self.cfg.scope == "user" else 1), D, D, dtype=torch.float64)
        for sl in _chunks(len(self.user), max(1, self.cfg.chunk // max(1, D // 16))):
            idx = torch.arange(sl.start, sl.stop)
            u = self.user[idx]
            self._aggregate(self._hess(self.sc.x_of(u), u, self.pos[idx], self.neg[idx]).double(), idx, out)
        self._H = out
        return out

    def _sampled_hvp(self, V: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Unbiased estimate of ``H V`` from ``lissa_batch`` sampled interactions per user."""
        b = self.cfg.lissa_batch
        if b <= 0:
            return self.hvp(V)
        if self.cfg.scope == "full":
            idx = torch.from_numpy(rng.integers(0, len(self.user), size=b))
            u = self.user[idx]
            H = self._hess(self.sc.x_of(u), u, self.pos[idx], self.neg[idx]).sum(0) * (len(self.user) / b)
            return (V.to(H.dtype) @ H).to(V.dtype)
        starts, counts = self._user_ranges()
        pick = starts[:, None] + np.floor(rng.random((len(starts), b)) * counts[:, None]).astype(np.int64)
        idx = torch.from_numpy(self._order[pick.ravel()])
        rows = torch.arange(len(starts)).repeat_interleave(b)
        u = self.user[idx]
        per = self._hvp(self.sc.x_of(u), V[rows], u, self.pos[idx], self.neg[idx])
        out = torch.zeros_like(V).index_add_(0, rows, per)
        return out * torch.from_numpy(counts / b).to(V.dtype).view(-1, 1)

    def _user_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Per validation user: start and count of its interactions in ``self._order``."""
        if getattr(self, "_ranges", None) is None:
            rows = self.row_of[self.user].numpy()
            self._order = np.argsort(rows, kind="stable")
            counts = np.bincount(rows[rows >= 0], minlength=len(self.vuser))
            first = int((rows < 0).sum())  # rows of -1 sort first
            starts = first + np.concatenate([[0], np.cumsum(counts)[:-1]])
            if (counts == 0).any():
                u = int(self.prob.valid_user[np.flatnonzero(counts == 0)[0]])
                raise ConfigError(f"user {u} has a validation case but no training interaction; its influence is "
                                  "undefined: keep users with >= 3 interactions (leave-one-out) only")
            self._ranges = (starts.astype(np.int64), counts.astype(np.int64))
        return self._ranges

    def max_eigenvalue(self, iters: int = 8) -> torch.Tensor:
        """Largest-magnitude eigenvalue of each user's Hessian block (power iteration), ``[U]``."""
        gen = torch.Generator().manual_seed(self.cfg.seed)
        dtype = next(iter(self.sc.params.values())).dtype
        V = torch.randn(len(self.vuser), self.sc.dim, generator=gen).to(dtype)
        lam = torch.zeros(len(self.vuser), dtype=dtype)
        for _ in range(iters):
            V = V / V.norm(dim=1, keepdim=True).clamp_min(1e-30)
            HV = self.hvp(V)
            lam = (HV * V).sum(1)
            V = HV
        return lam.abs()

    # -- solvers ------------------------------------------------------------------------------
    def solve(self, v: torch.Tensor) -> torch.Tensor:
        """``(H + μI)⁻¹ v`` per row with the configured solver."""
        cfg = self.cfg
        if cfg.solver == "exact":
            H = self.hessian()
            A = H + cfg.mu * torch.eye(H.size(-1), dtype=H.dtype)
            return torch.linalg.solve(A, v.double().unsqueeze(-1)).squeeze(-1).to(v.dtype)
        if cfg.solver == "cg":
            return conjugate_gradient(lambda X: self.hvp(X) + cfg.mu * X, v, iters=cfg.cg_iters, tol=cfg.cg_tol)
        scale = torch.full((len(v),), float(cfg.scale), dtype=v.dtype)
        if cfg.auto_scale:
            scale = torch.maximum(scale, 1.1 * (self.max_eigenvalue().to(v.dtype) + cfg.mu))
        rng = np.random.default_rng(cfg.seed)
        return lissa(lambda X: self._sampled_hvp(X, rng), v, mu=cfg.mu, scale=scale, depth=cfg.depth)

    def run(self) -> InfluenceResult:
        """s_test for every validation user, then the influence of every training interaction."""
        with warnings.catch_warnings():
            # torch warns when the batched backward of an einsum resizes a [1, ...] output under vmap
            warnings.filterwarnings("ignore", message="An output with one or more elements was resized")
            return self._run()

    def _run(self) -> InfluenceResult:
        time_ = time.perf_counter
        t0 = time_()
        v, lval = self.valid_grads()
        t1 = time_()
        s_test = self.solve(v)
        t2 = time_()
        infl = np.full(len(self.user), np.nan)
        rows_all = self.row_of[self.user]
        for sl in _chunks(len(self.user), self.cfg.chunk):
            idx = torch.arange(sl.start, sl.stop)
            rows = rows_all[idx]
            keep = rows >= 0
            g = (self.sample_grads(idx) * s_test[rows.clamp_min(0)]).sum(1)
            infl[sl] = np.where(keep.numpy(), g.double().numpy(), np.nan)
        t3 = time_()
        return InfluenceResult(s_test, infl, lval.double().numpy(),
                               {"valid_grad": t1 - t0, "s_test": t2 - t1, "influence": t3 - t2, "total": t3 - t0})


def lissa(hvp, v: torch.Tensor, *, mu: float, scale: torch.Tensor | float, depth: int) -> torch.Tensor:
    """LiSSA for ``(H + μI) x = v``, one row per system: ``h_j = v + h − (Ĥ h + μ h) / scale``.

    Identical to the paper's ``h_j = v + (1 − damp) h − Ĥ h / scale`` with ``damp = μ / scale``;
    returns ``h_J / scale``. ``hvp(X)`` returns an (unbiased estimate of) ``H X`` row by row.
    """
    s = torch.as_tensor(scale, dtype=v.dtype)
    s = s.view(-1, 1) if s.dim() else s
    h = v.clone()
    for _ in range(depth):
        h = v + h - (hvp(h) + mu * h) / s
        if not torch.isfinite(h).all():
            raise ConfigError("LiSSA diverged: the Hessian is too large for its scale; raise scale, or keep "
                              "auto_scale=True, or use solver='cg'")
    return h / s


def conjugate_gradient(matvec, b: torch.Tensor, *, iters: int = 100, tol: float = 1e-8) -> torch.Tensor:
    """Batched CG: solve ``A x = b`` row by row for symmetric positive-definite ``A`` (``matvec(X)`` = rows ``A x``)."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = (r * r).sum(1)
    stop = (tol * b.norm(dim=1)) ** 2
    for _ in range(iters):
        active = rs > stop
        if not active.any():
            break
        Ap = matvec(p)
        pAp = (p * Ap).sum(1)
        alpha = torch.where(active & (pAp > 0), rs / pAp.clamp_min(1e-300), torch.zeros_like(rs))
        x = x + alpha.view(-1, 1) * p
        r = r - alpha.view(-1, 1) * Ap
        rs_new = (r * r).sum(1)
        beta = torch.where(active, rs_new / rs.clamp_min(1e-300), torch.zeros_like(rs))
        p = r + beta.view(-1, 1) * p
        rs = rs_new
    return x


def influence_problem(user: np.ndarray, item: np.ndarray, n_items: int, valid_user: np.ndarray,
                      valid_cand: np.ndarray, *, loss: str = "bce", n_negatives: int = 1,
                      seed: int = 0) -> InfluenceProblem:
    """Fix one seeded negative per training interaction (uniform over the user's non-interacted items)."""
    from ..train.cf import sample_negatives

    user = np.asarray(user, np.int64)
    item = np.asarray(item, np.int64)
    keys = np.sort(user * (n_items + 1) + item)
    neg = sample_negatives(user, n_negatives, n_items, keys, np.random.default_rng(seed))
    return InfluenceProblem(user, item, neg, np.asarray(valid_user, np.int64), np.asarray(valid_cand, np.int64), loss)


def compute_influence(model: torch.nn.Module, prob: InfluenceProblem,
                      config: InfluenceConfig | None = None) -> InfluenceResult:
    """Influence of every training interaction of ``prob`` on its user's validation BCE.

    Example
    -------
    >>> import numpy as np, torch
    >>> from recsift.models.registry import build_model
    >>> m = build_model("bpr", n_users=3, n_items=6, embedding_size=4)
    >>> prob = influence_problem(np.array([0, 0, 1, 2]), np.array([1, 2, 3, 4]), 6, np.array([0, 1]),
    ...                          np.array([[3, 5, 6], [1, 5, 6]]))
    >>> res = compute_influence(m, prob, InfluenceConfig(solver="exact"))
    >>> res.influence.shape, bool(np.isnan(res.influence[3]))
    ((4,), True)
    """
    return InfluenceEstimator(model, prob, config).run()
