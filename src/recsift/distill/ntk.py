"""Closed-form neural tangent kernel of a one-hidden-layer ReLU autoencoder (∞-AE).

Sachdeva, Dhaliwal, Wu, McAuley, "Infinite Recommendation Networks: A Data-Centric Approach",
NeurIPS 2022 (reference code ``noveens/infinite_ae_cf``, ``model.py``: ``stax.serial(Dense,
Relu, Dense)`` in NTK parameterisation, ``W_std = sqrt(2)``, ``b_std = 0.1``). The kernel is the
same for every output unit, so one user x user matrix serves all items. With
``σ_w² = w_var``, ``σ_b² = b_var`` and ``d`` input features (ALGORITHMS.md §9):

* ``K₁(x, x') = σ_w² xᵀx'/d + σ_b²``, ``c = K₁(x, x') / sqrt(K₁(x, x) K₁(x', x'))``, ``θ = arccos c``;
* ``Σ = sqrt(K₁(x,x) K₁(x',x')) / (2π) · (sin θ + (π − θ) c)``, ``Σ̇ = (π − θ) / (2π)``;
* ``NTK = σ_w² Σ + σ_b² + σ_w² K₁ Σ̇ = σ_w² s / (2π) · (sin θ + 2 (π − θ) c) + σ_b²``
  with ``s = sqrt(K₁(x,x) K₁(x',x'))``.

Everything here is a pure torch function of a linear Gram matrix and squared norms, so the
same code serves the exact sparse ∞-AE solve (:func:`ntk_sparse`, row blocks, no autograd)
and the differentiable inner learner of Distill-CF (:func:`ntk_dense`).

When not to use: inputs whose rows are all zero still get a well-defined kernel (``K₁`` is
then ``σ_b²``), but such rows carry no signal; ∞-AE drops them from its training rows.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["W_VAR", "B_VAR", "ntk_from_gram", "ntk_dense", "ntk_sparse"]

#: σ_w² = W_std² of the reference code (W_std = sqrt(2))
W_VAR = 2.0
#: σ_b² = b_std² of the reference code (b_std = 0.1)
B_VAR = 0.01

# arccos is not differentiable at c = 1 (every diagonal entry): clamp just below 1 for the
# gradient path and return θ = 0 exactly there, so values stay exact and gradients finite.
_C_MAX = 1.0 - 1e-6


def _theta(c: torch.Tensor) -> torch.Tensor:
    safe = torch.arccos(c.clamp(-1.0, _C_MAX))
    return torch.where(c >= 1.0, torch.zeros_like(c), safe)


def ntk_from_gram(gram: torch.Tensor, sq_a: torch.Tensor, sq_b: torch.Tensor, n_features: int, *,
                  w_var: float = W_VAR, b_var: float = B_VAR) -> torch.Tensor:
    """NTK between two sets of inputs from their linear Gram ``A Bᵀ`` and squared row norms.

    Parameters
    ----------
    gram : torch.Tensor
        ``[na, nb]`` inner products ``xᵀx'``.
    sq_a, sq_b : torch.Tensor
        ``[na]`` and ``[nb]`` squared norms ``xᵀx`` of the rows of A and B.
    n_features : int
        Input dimension ``d`` (the number of items).
    w_var, b_var : float
        ``σ_w²`` and ``σ_b²`` (defaults: the reference code's 2 and 0.01).

    Returns
    -------
    torch.Tensor
        ``[na, nb]`` kernel, dtype of ``gram``.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    >>> k = ntk_from_gram(x @ x.T, (x * x).sum(1), (x * x).sum(1), 2)
    >>> bool(torch.allclose(k, k.T))
    True
    """
    k1 = gram * (w_var / n_features) + b_var
    ka = sq_a * (w_var / n_features) + b_var
    kb = sq_b * (w_var / n_features) + b_var
    s = torch.sqrt(ka[:, None] * kb[None, :])
    c = k1 / s
    theta = _theta(c)
    return s * (w_var / (2.0 * math.pi)) * (torch.sin(theta) + 2.0 * (math.pi - theta) * c) + b_var


def ntk_dense(a: torch.Tensor, b: torch.Tensor | None = None, *, n_features: int | None = None,
              w_var: float = W_VAR, b_var: float = B_VAR) -> torch.Tensor:
    """NTK between the rows of dense (or torch-sparse ``a``) matrices; differentiable.

    ``b=None`` means ``b = a``. ``n_features`` defaults to the number of columns.

    Examples
    --------
    >>> x = torch.eye(3)
    >>> ntk_dense(x).shape
    torch.Size([3, 3])
    """
    same = b is None
    b = a if b is None else b
    d = int(n_features or a.shape[1])
    gram = (torch.sparse.mm(a, b.T) if a.is_sparse or a.layout == torch.sparse_csr else a @ b.T)
    sq_b = (b * b).sum(1)
    sq_a = sq_b if same else _sq_norms(a)
    return ntk_from_gram(gram, sq_a, sq_b, d, w_var=w_var, b_var=b_var)


def _sq_norms(a: torch.Tensor) -> torch.Tensor:
    if a.layout == torch.sparse_csr:
        vals = a.values()
        rows = torch.repeat_interleave(torch.arange(a.shape[0]), a.crow_indices().diff())
        return torch.zeros(a.shape[0], dtype=vals.dtype).index_add_(0, rows, vals * vals)
    if a.is_sparse:
        return torch.sparse.sum(a * a, dim=1).to_dense()
    return (a * a).sum(1)


def ntk_sparse(a: sp.csr_matrix, b: sp.csr_matrix | None = None, *, n_features: int, block_rows: int = 1024,
               dtype: torch.dtype = torch.float32, w_var: float = W_VAR, b_var: float = B_VAR,
               out: torch.Tensor | None = None) -> torch.Tensor:
    """NTK between the rows of two scipy CSR matrices, computed in row blocks (no autograd).

    The Gram ``A Bᵀ`` is a sparse product per block of ``block_rows`` rows of ``a`` (exact for
    binary rows: counts below 2²⁴ are exact in float32), turned into the kernel in place, so peak extra memory is a few
    ``block_rows x n_b`` buffers besides the ``[n_a, n_b]`` result.

    Examples
    --------
    >>> x = sp.csr_matrix(np.eye(3, dtype=np.float32))
    >>> ntk_sparse(x, n_features=3).shape
    torch.Size([3, 3])
    """
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    a = sp.csr_matrix(a, dtype=np_dtype)
    b = a if b is None else sp.csr_matrix(b, dtype=np_dtype)
    # a dense-ish B (distilled users) is faster as a dense right-hand side of the sparse product
    bt = b.T.toarray() if b.nnz > 0.2 * b.shape[0] * b.shape[1] else b.T.tocsr()
    sq_a, sq_b = _csr_sq_norms(a), _csr_sq_norms(b)
    res = out if out is not None else torch.empty((a.shape[0], b.shape[0]), dtype=dtype)
    for lo in range(0, a.shape[0], block_rows):
        hi = min(a.shape[0], lo + block_rows)
        g = a[lo:hi] @ bt
        gram = torch.from_numpy(np.ascontiguousarray(g.toarray() if sp.issparse(g) else g))
        res[lo:hi] = _ntk_inplace(gram, sq_a[lo:hi], sq_b, n_features, w_var, b_var)
    return res


def _csr_sq_norms(m: sp.csr_matrix) -> torch.Tensor:
    return torch.from_numpy(np.asarray(m.multiply(m).sum(1), dtype=m.dtype).ravel())


@torch.no_grad()
def _ntk_inplace(gram: torch.Tensor, sq_a: torch.Tensor, sq_b: torch.Tensor, d: int, w_var: float,
                 b_var: float) -> torch.Tensor:
    """:func:`ntk_from_gram` overwriting ``gram`` (half the memory passes; no autograd)."""
    ka = sq_a * (w_var / d) + b_var
    kb = sq_b * (w_var / d) + b_var
    s = torch.sqrt(ka[:, None] * kb[None, :])
    c = gram.mul_(w_var / d).add_(b_var).div_(s).clamp_(-1.0, 1.0)
    rest = torch.arccos(c).neg_().add_(math.pi)  # π − θ
    out = c.mul_(rest).mul_(2.0).add_(torch.sin_(rest))  # sin θ = sin(π − θ)
    return out.mul_(s.mul_(w_var / (2.0 * math.pi))).add_(b_var)
