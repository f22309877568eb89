"""∞-AE: the NTK formula, the KRR solve, λ search, limits and the registry path."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsift.data import EvalCases, InteractionMatrix, TrainingSet, load_split
from recsift.distill import LAMBDA_GRID, InfiniteAE, factorise, krr_solve, ntk_dense, ntk_from_gram, ntk_sparse
from recsift.errors import ConfigError, DataFormatError
from recsift.evaluate import evaluate


def _empirical_ntk(x: torch.Tensor, width: int, seed: int) -> torch.Tensor:
    """Empirical NTK of f(x) = σ_w/√n W2 relu(σ_w/√d W1 x + σ_b b1) + σ_b b2 (NTK parameterisation)."""
    g = torch.Generator().manual_seed(seed)
    d = x.shape[1]
    w1 = torch.randn(width, d, generator=g, dtype=torch.float64).requires_grad_()
    b1 = torch.randn(width, generator=g, dtype=torch.float64).requires_grad_()
    w2 = torch.randn(width, generator=g, dtype=torch.float64).requires_grad_()
    b2 = torch.randn((), generator=g, dtype=torch.float64).requires_grad_()
    params = (w1, b1, w2, b2)
    sw, sb = 2.0 ** 0.5, 0.1
    grads = []
    for row in x:
        h = sw / d ** 0.5 * (w1 @ row) + sb * b1
        out = sw / width ** 0.5 * (w2 @ torch.relu(h)) + sb * b2
        grads.append(torch.cat([gr.flatten() for gr in torch.autograd.grad(out, params)]))
    jac = torch.stack(grads)
    return jac @ jac.T


def test_ntk_formula_matches_wide_finite_network():
    x = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 1, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 0]],
                     dtype=torch.float64)
    emp = torch.stack([_empirical_ntk(x, 40_000, seed) for seed in range(4)]).mean(0)
    exact = ntk_dense(x)
    rel = ((emp - exact).abs() / exact.abs()).max().item()
    assert rel < 0.02, rel


def test_sparse_dense_and_gram_kernels_agree():
    rng = np.random.default_rng(0)
    a = (rng.random((7, 12)) < 0.3).astype(np.float32)
    b = (rng.random((5, 12)) < 0.4).astype(np.float32)
    b[0] = a[0]  # an identical pair: c = 1 exactly
    dense = ntk_dense(torch.from_numpy(a).double(), torch.from_numpy(b).double())
    sparse = ntk_sparse(sp.csr_matrix(a), sp.csr_matrix(b), n_features=12, block_rows=3, dtype=torch.float64)
    ta, tb = torch.from_numpy(a).double(), torch.from_numpy(b).double()
    gram = ntk_from_gram(ta @ tb.T, (ta * ta).sum(1), (tb * tb).sum(1), 12)
    assert torch.allclose(dense, sparse, rtol=1e-10) and torch.allclose(dense, gram, rtol=1e-12)
    f32 = ntk_sparse(sp.csr_matrix(a), sp.csr_matrix(b), n_features=12)
    assert torch.allclose(f32.double(), dense, rtol=1e-5)


def test_ntk_gradient_is_finite_on_the_diagonal():
    x = torch.rand(4, 6, dtype=torch.float64, requires_grad=True)
    ntk_dense(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_krr_matches_direct_numpy_solve():
    rng = np.random.default_rng(1)
    x = (rng.random((6, 9)) < 0.4).astype(np.float64)
    k = ntk_dense(torch.from_numpy(x)).numpy()
    lam = 0.7
    want = np.linalg.solve(k + lam * np.trace(k) / 6 * np.eye(6), x)
    got = krr_solve(torch.from_numpy(k), torch.from_numpy(x), lam).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    kt = torch.from_numpy(k.copy())
    factorise(kt, lam)
    assert np.array_equal(kt.numpy(), k)  # the kernel is restored after the in-place ridge


def test_negative_or_singular_lambda_is_a_clear_error():
    k = ntk_dense(torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]], dtype=torch.float64))
    with pytest.raises(ConfigError, match="λ must be a finite number >= 0"):
        factorise(k, -1.0)
    with pytest.raises(ConfigError, match="singular"):
        factorise(k, 0.0)  # identical users
    with pytest.raises(ConfigError, match=">= 0"):
        InfiniteAE(lam=-0.5).fit(_tiny_set())


def _tiny_set(n_users: int = 12, n_items: int = 15, seed: int = 0) -> TrainingSet:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.3)
    dense[:, 0] = True  # nobody is empty
    u, i = np.nonzero(dense)
    return TrainingSet(InteractionMatrix.from_pairs(u, i + 1, n_users, n_items))


def _cases_from_rows(ts: TrainingSet, users: np.ndarray, rng: np.random.Generator) -> EvalCases:
    csr = ts.data.csr
    hist = [csr.indices[csr.indptr[u]:csr.indptr[u + 1]] for u in users]
    tgt = [rng.choice(np.setdiff1d(np.arange(1, ts.data.n_items + 1), h), 2, replace=False) for h in hist]
    return EvalCases.from_lists(users, hist, tgt, ts.data.n_items)


def test_empty_training_set_and_empty_users():
    ts = _tiny_set()
    empty = TrainingSet(InteractionMatrix.from_pairs(np.zeros(0, int), np.zeros(0, int), 3, 5))
    with pytest.raises(DataFormatError, match="no user has a training interaction"):
        InfiniteAE(lam=1.0).fit(empty)
    sub = TrainingSet(ts.data.subset_users(np.arange(6)))  # users 6..11 have no interactions
    model = InfiniteAE(lam=1.0).fit(sub)
    assert model.fit_info_["n_train_users"] == 6
    cases = EvalCases.from_lists([8, 9], [[], [3]], [[1], [2]], ts.data.n_items)  # an empty query row too
    assert np.isfinite(model.score(cases)).all()
    with pytest.raises(ConfigError, match="valid=split.valid"):
        InfiniteAE().fit(ts)


def test_memory_cap_names_the_limit_and_subsampling_works():
    ts = _tiny_set(n_users=40)
    with pytest.raises(ConfigError, match="max_memory_gb=1e-05.*max_users="):
        InfiniteAE(lam=1.0, max_memory_gb=1e-5).fit(ts)
    # the suggested subsample is the largest that fits (beauty-sized: 12,101 items, a 4 GB cap)
    from recsift.distill.infae import max_users_within, memory_bytes

    m = max_users_within(4 * 2**30, 12_101)
    assert memory_bytes(m, 12_101) <= 4 * 2**30 < memory_bytes(m + 1, 12_101) and m > 10_000
    model = InfiniteAE(lam=1.0, max_users=10, seed=3).fit(ts)
    assert model.fit_info_["n_train_users"] == 10 and len(np.unique(model.users_)) == 10


def test_validation_shortcut_equals_the_kernel_path():
    ts = _tiny_set(n_users=30, n_items=20)
    rng = np.random.default_rng(2)
    valid = _cases_from_rows(ts, np.arange(30), rng)
    model = InfiniteAE(lambdas=(0.1, 1.0, 5.0), select_metric="ndcg@5").fit(ts, valid)
    plan = model._valid_plan(valid)
    assert "rows" in plan  # histories equal the training rows: the X − cα shortcut applies
    direct = evaluate(model.score, valid, ["ndcg@5"], mask_history=True).means["ndcg@5"]
    assert direct == pytest.approx(model.valid_metrics_[model.lam_], abs=1e-9)
    # the shortcut's scores equal NTK(x, X) α on every unmasked item
    x = torch.from_numpy(model.x_train_.toarray())
    ridge = model.lam_ * float(torch.diagonal(ntk_sparse(model.x_train_, n_features=20)).sum()) / 30
    short = (x[:, model.cols_] - ridge * model.alpha_).numpy()
    full = model.score(valid)[:, model.cols_.numpy()]
    unmasked = x[:, model.cols_].numpy() == 0
    np.testing.assert_allclose(short[unmasked], full[unmasked], rtol=1e-3, atol=1e-4)


def test_stepwise_search_evaluates_fewer_lambdas():
    ts = _tiny_set(n_users=30, n_items=20)
    valid = _cases_from_rows(ts, np.arange(30), np.random.default_rng(4))
    grid = InfiniteAE().fit(ts, valid)
    step = InfiniteAE(search="stepwise").fit(ts, valid)
    assert len(grid.valid_metrics_) == len(LAMBDA_GRID)
    assert len(step.valid_metrics_) < len(LAMBDA_GRID)
    assert step.lam_ in LAMBDA_GRID
    with pytest.raises(ConfigError, match="search="):
        InfiniteAE(search="random").fit(ts, valid)


def test_registered_model_trains_through_train_model():
    from recsift.train import TrainConfig, train_model

    split = load_split("synthetic", split="ratio")
    res = train_model(split, "infae", TrainConfig(metrics=("ndcg@10", "recall_norm@10")),
                      model_params={"lambdas": [1.0, 5.0]})
    assert res.model.lam_ in (1.0, 5.0)
    assert 0.0 < res.test["ndcg@10"] <= 1.0 and res.extra["mask_history"] is True


@pytest.mark.dataset
def test_magazine_reaches_the_paper(data_dir):
    split = load_split("magazine", data_dir=data_dir)
    # the union grid's neighbourhood of the optimum (the full grid is in bench/infae.py)
    model = InfiniteAE(lambdas=(1.0, 5.0, 20.0)).fit(split.training_set("matrix"), split.valid)
    res = evaluate(model.score, split.test, ["ndcg@10"], mask_history=True)
    assert model.lam_ == 5.0  # validation nDCG@10 (validation HR@100 would pick 20: test nDCG@10 21.9)
    assert res.means["ndcg@10"] >= 0.228  # paper 23.06


def test_prefix_samples_become_user_rows():
    split = load_split("synthetic")  # leave-one-out, prefix samples
    ts = split.training_set("sequence")
    model = InfiniteAE(lam=5.0).fit(ts)
    want = {(u, i) for u, i in zip(ts.data.user.tolist(), ts.data.targets.tolist())}
    rows = model.x_train_.tocoo()
    assert {(int(model.users_[r]), int(c)) for r, c in zip(rows.row, rows.col)} == want
    assert np.isfinite(model.score(split.test.take(np.arange(4)))).all()
