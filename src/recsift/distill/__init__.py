"""Distillation of CF data: ∞-AE (closed-form infinite-width autoencoder) and Distill-CF.

Sachdeva, Dhaliwal, Wu, McAuley, "Infinite Recommendation Networks: A Data-Centric Approach",
NeurIPS 2022 (ALGORITHMS.md §9–§10).

* :class:`InfiniteAE` — registered as model ``"infae"``: ``fit(train_set, valid)`` / ``score(cases)``.
* :func:`distill_cf` — learn ``n_users`` synthetic users; returns a `TrainingSet` and an info dict;
  also the transforming curator ``distill_cf`` (budget = synthetic users).
* The user/interaction samplers the paper compares against are curators registered by
  :mod:`recsift.curators.samplers` (``head_users``, ``svp_cf``; ``random`` is built in).
"""
from . import curator as _curator  # noqa: F401  (registers the distill_cf curator)
from .distill_cf import DistillConfig, distill_cf
from .infae import DISTILL_LAMBDAS, LAMBDA_GRID, InfiniteAE, factorise, krr_solve
from .ntk import ntk_dense, ntk_from_gram, ntk_sparse

__all__ = ["DISTILL_LAMBDAS", "DistillConfig", "InfiniteAE", "LAMBDA_GRID", "distill_cf", "factorise", "krr_solve",
           "ntk_dense", "ntk_from_gram", "ntk_sparse"]
