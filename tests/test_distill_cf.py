"""Distill-CF (Gumbel sampling, loss, driver) and the paper's samplers as curators."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import recsift.curators  # noqa: F401  (registers head_users, svp_cf)
from recsift.curators import CurationContext, curate
from recsift.data import InteractionMatrix, TrainingSet, load_split
from recsift.distill import InfiniteAE, distill_cf
from recsift.distill.distill_cf import DistillConfig, GumbelNoise, distill_loss, multi_gumbel
from recsift.errors import BudgetError, ConfigError
from recsift.train import TrainConfig


def _naive(logits: torch.Tensor, z: torch.Tensor, tau: float) -> torch.Tensor:
    """Σ_s softmax((logits + g_s) / τ) with Z = exp(g / τ), one draw at a time."""
    g = torch.log(z) * tau
    return torch.clamp(sum(torch.softmax((logits + g[:, s]) / tau, dim=1) for s in range(z.shape[1])), max=1.0)


@pytest.mark.parametrize("n_users", [3, 9])  # 9 users > 7 items: two noise pools
def test_shifted_noise_is_a_per_user_permutation_and_sampling_is_exact(n_users):
    n_items, draws, tau = 7, 4, 2.0
    noise = GumbelNoise(n_users, n_items, draws, tau, "shifted", seed=1).draw()
    order = noise["pool_of"] * n_items + noise["idx"][:, 0]
    assert len(torch.unique(order)) == n_users  # distinct (pool, shift): no two users share noise on an item
    z = noise["pool"][noise["pool_of"]][:, :, :].gather(2, noise["idx"][:, None, :].expand(-1, draws, -1))
    logits = torch.randn(n_users, n_items, dtype=torch.float32)
    got = multi_gumbel(logits, noise, tau)
    assert torch.allclose(got, multi_gumbel(logits, {"z": z}, tau), atol=1e-6)
    assert torch.allclose(got, _naive(logits, z, tau), atol=1e-5)


def test_independent_noise_rows_sum_to_the_number_of_draws():
    noise = GumbelNoise(4, 50, 3, 1.0, "independent", seed=0).draw()
    x = multi_gumbel(torch.zeros(4, 50), noise, 1.0)
    assert torch.allclose(x.sum(1), torch.full((4,), 3.0), atol=1e-5)  # no entry reaches the clamp


def _small(n_users: int = 40, n_items: int = 30, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = (rng.random((n_users, n_items)) < 0.2).astype(np.float32)
    x[:, 0] = 1.0
    return torch.from_numpy(x)


def test_one_adam_step_reduces_the_loss_at_fixed_noise():
    targets = _small()
    logits = targets[:8].clone().requires_grad_(True)
    noise = GumbelNoise(8, targets.shape[1], 20, 10.0, "shifted", seed=0).draw()
    opt = torch.optim.Adam([logits], lr=0.04)

    def loss() -> torch.Tensor:
        return distill_loss(multi_gumbel(logits, noise, 10.0), targets, 1.0, size_penalty=1e-3, avg_degree=6.0)

    before = loss()
    opt.zero_grad()
    before.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    opt.step()
    assert loss().item() < before.item()


@pytest.fixture(scope="module")
def split():
    return load_split("synthetic", split="ratio")


def test_distill_cf_returns_a_valid_training_set(split):
    full = split.training_set("matrix")
    ts, info = distill_cf(full, 25, valid=split.valid, steps=3, log_freq=2, draws=10)
    assert isinstance(ts, TrainingSet) and isinstance(ts.data, InteractionMatrix)
    assert ts.data.n_users == 25 and ts.data.n_items == split.n_items
    vals = ts.data.csr.data
    assert (vals > 0).all() and (vals <= 1).all() and ts.data.csr[:, 0].nnz == 0
    assert ts.provenance["curator"] == "distill_cf" and ts.provenance["best_step"] == info["best_step"]
    assert info["steps_run"] == 3 and [h["step"] for h in info["history"]] == [0, 2, 3]
    model = InfiniteAE(lam=info["lam"]).fit(ts)  # the inner learner trains on it
    assert np.isfinite(model.score(split.test.take(np.arange(3)))).all()


def test_distill_cf_errors(split):
    full = split.training_set("matrix")
    n_real = int((np.diff(full.data.csr.indptr) > 0).sum())
    with pytest.raises(BudgetError, match=f"1..{n_real}"):
        distill_cf(full, n_real + 1, valid=split.valid)
    with pytest.raises(BudgetError):
        distill_cf(full, 0, valid=split.valid)
    with pytest.raises(ConfigError, match="valid=split.valid"):
        distill_cf(full, 10)
    with pytest.raises(ConfigError, match="tau"):
        DistillConfig(tau=0.0)


def test_head_users_keeps_the_heaviest_users(split):
    full = split.training_set("matrix")
    kept, report = curate(full, "head_users", 50, CurationContext(split=split, unit="user"))
    counts = np.diff(full.data.csr.indptr)
    kept_users = np.flatnonzero(np.diff(kept.data.csr.indptr) > 0)
    assert len(kept_users) == 50 and counts[kept_users].min() >= np.sort(counts)[-50]
    with pytest.raises(ConfigError, match="unit"):
        curate(full, "head_users", 50, CurationContext(split=split, unit="sample"))
    with pytest.raises(BudgetError, match="larger than"):
        curate(full, "head_users", 10**6, CurationContext(split=split, unit="user"))


def test_svp_cf_keeps_users_by_proxy_loss(split):
    full = split.training_set("matrix")
    ctx = CurationContext(split=split, unit="user", seed=0,
                          probe_config=TrainConfig(epochs=1, patience=None, batch_size=4096))
    kept, report = curate(full, "svp_cf", 0.1, ctx, proxy_epochs=1)
    # the budget is a fraction of the split's real users, rounded down (1997 users -> 199)
    assert report.summary()["kept_units"] == int(0.1 * split.n_users) and report.score_name == "svp_cf:loss_mean"
    unit_scores = report.scores  # per interaction: its user's mean proxy loss
    assert unit_scores[report.kept].min() >= unit_scores[~report.kept].max() - 1e-12


def test_distill_cf_curator_replaces_the_data_and_validates_input(split):
    from recsift.curators import REASONS

    full = split.training_set("matrix")
    out, report = curate(full, "distill_cf", 0.01, CurationContext(split=split, seed=3), steps=2)
    n_syn = int(0.01 * split.n_users)
    assert out.data.n_users == n_syn and out.provenance["curator"] == "distill_cf"
    assert report.summary()["regenerated"] and not report.kept.any()
    assert (report.reason == REASONS.index("replaced: regenerated data")).all()
    assert report.extra["n_users"] == n_syn and report.extra["real_users"] == split.n_users
    with pytest.raises(ConfigError, match="needs a budget"):
        curate(full, "distill_cf", None, CurationContext(split=split))
    with pytest.raises(ConfigError, match="matrix"):
        curate(split.training_set("sequence"), "distill_cf", 10, CurationContext(split=split))
    with pytest.raises(ConfigError, match="split"):
        curate(full, "distill_cf", 10, CurationContext())
    with pytest.raises(BudgetError, match="larger than"):
        curate(full, "distill_cf", 10**5, CurationContext(split=split))
    with pytest.raises(ConfigError, match="unknown parameter"):
        curate(full, "distill_cf", 10, CurationContext(split=split), stepz=2)


def test_random_interaction_noise_adds_only_new_pairs(split):
    from recsift.data.noise import inject_random_interactions

    full = split.training_set("matrix")
    full = TrainingSet(full.data, np.linspace(0.5, 1.5, len(full)).astype(np.float32))
    noisy, new = inject_random_interactions(full, 0.25, rng=np.random.default_rng(0))
    assert new.sum() == round(0.25 * len(full)) and len(noisy) == len(full) + new.sum()
    u, i = noisy.data.coo_pairs()
    u0, i0 = full.data.coo_pairs()
    assert len(np.unique(u * 10**6 + i)) == len(u)  # no duplicate pair
    assert np.array_equal(u[~new] * 10**6 + i[~new], u0 * 10**6 + i0)  # originals kept, in order
    assert np.array_equal(noisy.weights[~new], full.weights) and (noisy.weights[new] == 1).all()
    assert np.isin(u[new], np.flatnonzero(np.diff(full.data.csr.indptr) > 0)).all()
    assert (i[new] >= 1).all()
    with pytest.raises(ConfigError, match="matrix"):
        inject_random_interactions(split.training_set("sequence"), 0.1, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="out of range"):
        inject_random_interactions(full, 1.5, rng=np.random.default_rng(0))


def test_distilled_matrix_saves_and_loads_back(split, tmp_path):
    from recsift.curators import load_curated, save_curation

    full = split.training_set("matrix")
    out, report = curate(full, "distill_cf", 12, CurationContext(split=split), steps=1)
    save_curation(tmp_path / "c", full, report, dataset=split.name, protocol=split.protocol, curated=out)
    back, meta = load_curated(tmp_path / "c", split)
    assert meta["regenerated"] and back.kind == "matrix" and back.data.n_users == 12
    assert (back.data.csr != out.data.csr).nnz == 0 and np.array_equal(back.weights, out.weights)
    m = InfiniteAE(lam=1.0).fit(back)  # a user-free learner trains on the synthetic users
    assert np.isfinite(m.score(split.test.take(np.arange(5)))).all()
