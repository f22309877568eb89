"""MoE scorer: gate mechanics, routing to the planted better expert, frozen experts, mixture scores."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from recsift.errors import BudgetError, ConfigError
from recsift.moe import (ExpertOutputs, NoisyTopKGate, cv_squared, expert_outputs, fit_gate, fixed_weights,
                         mixture_scores, train_experts)


def test_noisy_top_k_gate_rows_are_sparse_distributions_and_balance_loss_is_differentiable():
    torch.manual_seed(0)
    g = NoisyTopKGate(8, 4, k=2)
    torch.nn.init.normal_(g.w_gate.weight)
    x = torch.randn(64, 8)
    gates, bal = g(x)
    assert torch.allclose(gates.sum(1), torch.ones(64))
    assert ((gates > 0).sum(1) <= 2).all()
    bal.backward()
    assert g.w_noise.weight.grad is not None and g.w_noise.weight.grad.abs().sum() > 0  # via the load estimate
    g.eval()
    a, _ = g(x)
    b, _ = g(x)
    assert torch.equal(a, b)  # no noise at inference
    assert float(cv_squared(torch.tensor([1.0, 1.0, 1.0]))) == 0.0
    assert float(cv_squared(torch.tensor([2.0, 0.0]))) == pytest.approx(2.0)  # var 2 (unbiased) / mean² 1
    with pytest.raises(ConfigError, match="k="):
        NoisyTopKGate(8, 3, k=4)


def _planted_outputs(n=4000, seed=0) -> tuple[ExpertOutputs, np.ndarray]:
    """3 experts; on a planted quarter of the samples expert 0 is right (p_y ~ .6) and the others are
    not (~.01); elsewhere expert 1 is best. The session embedding carries the subset membership."""
    rng = np.random.default_rng(seed)
    planted = rng.random(n) < 0.25
    p = np.where(planted[:, None], [0.6, 0.01, 0.01], [0.02, 0.5, 0.2]) * rng.uniform(0.8, 1.2, (n, 3))
    feats = np.zeros((n, 3, 4), np.float32)
    feats[:, :, 1] = p
    feats[:, :, 0] = -np.log(p)  # stand-in entropy
    feats[:, :, 3] = 1 - p
    emb = rng.normal(size=(n, 16)).astype(np.float32)
    emb[:, 0] += 3 * planted
    stats = rng.normal(size=(n, 3)).astype(np.float32)
    return ExpertOutputs(("a", "b", "c"), feats, p > 0.1, stats, emb), planted


def test_gate_routes_the_planted_subset_to_the_expert_that_is_right_there():
    out, planted = _planted_outputs()
    fit = fit_gate(out, k=2, epochs=5, lr=3e-3, batch_size=256, seed=0)
    w = fit.weights
    assert w[planted, 0].mean() > 0.7  # routed to expert a on its subset
    assert w[~planted, 1].mean() > 0.6 and w[~planted, 0].mean() < 0.2
    assert not np.allclose(w, w.mean(0))  # not uniform
    assert fit.history[-1]["nll"] < fit.history[0]["nll"]
    mix_nll = -np.log((w * out.p_target).sum(1)).mean()
    mean_nll = -np.log(fixed_weights(out, "mean").weights.__mul__(out.p_target).sum(1)).mean()
    assert mix_nll < mean_nll  # per-sample routing beats the uniform ensemble
    glob = fixed_weights(out, "global")
    assert glob.routing_share()[1] > glob.routing_share()[2]  # the globally better expert gets more weight
    assert fixed_weights(out, "single", expert="c").weights[:, 2].min() == 1.0
    with pytest.raises(ConfigError, match="weighting"):
        fixed_weights(out, "median")


def test_a_gate_trained_on_held_out_outputs_routes_the_samples_it_is_applied_to():
    held, _ = _planted_outputs(n=3000, seed=1)
    train, planted = _planted_outputs(n=2000, seed=2)
    fit = fit_gate(held, k=2, epochs=5, lr=3e-3, batch_size=256, seed=0, apply_to=train)
    assert fit.kind == "gate:heldout" and fit.weights.shape == (2000, 3)
    assert fit.weights[planted, 0].mean() > 0.7 and fit.weights[~planted, 1].mean() > 0.6
    # the applied samples are standardised with the held-out set's moments, not their own
    feats = torch.from_numpy(train.gate_features(held.feature_moments()))
    with torch.no_grad():
        w, _ = fit.gate(torch.from_numpy(train.embedding), feats)
    np.testing.assert_allclose(fit.weights, w.numpy(), atol=1e-6)


def test_experts_stay_frozen_and_mixture_scores_match_a_direct_computation():
    from recsift.data import leave_one_out
    from recsift.data.synthetic import generate
    from recsift.train import TrainConfig

    split = leave_one_out(generate(150, 60, seed=3).interactions)
    ts = split.training_set("sequence")
    cfg = TrainConfig(epochs=1, patience=None, batch_size=256, seed=0)
    experts = train_experts(split, ts, ["gru4rec", "core"], cfg)
    before = [{k: v.clone() for k, v in e.model.state_dict().items()} for e in experts]
    out = expert_outputs(experts, ts, top_k=5)
    fit = fit_gate(out, k=1, epochs=2, batch_size=64, seed=0)
    sc = mixture_scores(experts, ts, fit, out, top_k=5)
    for e, b in zip(experts, before):  # bit-identical after gate training and scoring
        assert all(torch.equal(b[k], v) for k, v in e.model.state_dict().items())
    # direct: mixture of the two experts' softmaxes for the first 5 samples
    idx = np.arange(5)
    seq = torch.from_numpy(ts.data.prefixes(idx, max_len=50, pad_left=False))
    lengths = torch.from_numpy(np.minimum(ts.data.prefix_lengths[idx], 50))
    with torch.no_grad():
        ps = [torch.softmax(e.model.logits(e.model(seq[:, : int(lengths.max())], lengths))[:, 1:], 1) for e in experts]
    mix = sum(torch.from_numpy(fit.weights[idx, i]).unsqueeze(1) * p for i, p in enumerate(ps)).numpy()
    y = ts.data.targets[idx] - 1
    py = mix[np.arange(5), y]
    np.testing.assert_allclose(sc["moe_loss"][idx], -np.log(py), rtol=1e-4)
    other = mix.copy()
    other[np.arange(5), y] = -1
    np.testing.assert_allclose(sc["moe_aum"][idx], py - other.max(1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sc["moe_entropy"][idx], -(mix * np.log(mix)).sum(1), rtol=1e-4)
    assert set(np.unique(sc["agreement"])) <= {0, 1, 2}
    np.testing.assert_array_equal(sc["agreement"], out.correct.sum(1))


def test_moe_curator_puts_coverage_first_then_d2_and_keeps_the_budget():
    from dataclasses import replace

    from recsift.curators import REASONS, CurationContext, curate
    from recsift.data import leave_one_out
    from recsift.data.synthetic import generate
    from recsift.train import TrainConfig

    split = leave_one_out(generate(300, 80, seed=4).interactions)
    ts = split.training_set("sequence")
    ctx = CurationContext(split=split, seed=0, probe_config=TrainConfig(batch_size=256))
    params = dict(experts=("gru4rec", "core"), expert_epochs=1, gate_epochs=1)
    kept, rep = curate(ts, "moe", 0.4, ctx, **params)
    assert len(kept) == int(0.4 * len(ts))
    assert (rep.reason == REASONS.index("kept: item coverage")).sum() == rep.extra["coverage_units"] > 0
    seen = np.concatenate([kept.data.targets, kept.data.prefixes(max_len=50).ravel()])
    assert np.isin(np.unique(ts.data.store.items), seen).all()
    # ablations reuse the trained experts (memoised on the context): plain top-k, no coverage, mean ensemble
    top, rep_top = curate(ts, "moe", 0.4, replace(ctx, coverage=False), selector="top", weighting="mean", **params)
    assert rep_top.extra["coverage_units"] == 0 and len(top) == len(kept)
    hard = rep_top.scores  # moe_aum: low = hard, top-k keeps the hardest
    assert hard[rep_top.kept].max() <= hard[~rep_top.kept].min()
    # CCS over the mixture score: the 20% hardest are cut (reason "hard cutoff"), the rest is stratified
    cc, rep_cc = curate(ts, "moe", 0.4, replace(ctx, coverage=False), selector="ccs", beta=0.2,
                        weighting="mean", **params)
    assert len(cc) == len(kept)
    hardest = np.argsort(rep_cc.scores, kind="stable")[: int(0.2 * len(ts))]  # moe_aum: low = hard
    assert not rep_cc.kept[hardest].any()
    assert (rep_cc.reason[hardest] == REASONS.index("dropped: hard cutoff")).all()
    assert rep_cc.scores[rep_cc.kept].min() < np.median(rep_cc.scores)  # not the easiest 40%: strata span the rest
    # the same cutoff before D2 (the d2pruning repository's "mis-ratio"): same samples cut
    cd2, rep_cd2 = curate(ts, "moe", 0.4, replace(ctx, coverage=False), beta=0.2, weighting="mean", **params)
    assert len(cd2) == len(kept) and not rep_cd2.kept[hardest].any()
    assert (rep_cd2.reason[hardest] == REASONS.index("dropped: hard cutoff")).all()
    with pytest.raises(BudgetError, match="beta"):
        curate(ts, "moe", 0.4, replace(ctx, coverage=False), beta=0.7, weighting="mean", **params)
    with pytest.raises(ConfigError, match="beta"):
        curate(ts, "moe", 0.4, replace(ctx, coverage=False), beta=-0.1, weighting="mean", **params)
    with pytest.raises(ConfigError, match="selector"):
        curate(ts, "moe", 0.4, ctx, selector="knn", **params)
    with pytest.raises(ConfigError, match="moe score"):
        curate(ts, "moe", 0.4, ctx, score="moe_whatever", **params)
    # the gate trained on the validation cases instead (held out from the experts' training)
    held, rep_held = curate(ts, "moe", 0.4, ctx, gate_data="valid", **params)
    assert len(held) == len(kept) and sum(rep_held.extra["routing_share"].values()) == pytest.approx(1, abs=1e-3)
    with pytest.raises(ConfigError, match="gate_data"):
        curate(ts, "moe", 0.4, ctx, gate_data="valid", weighting="mean", **params)


def test_moe_experts_are_cached_on_disk_and_reused(tmp_path, monkeypatch):
    from recsift.curators import CurationContext, curate
    from recsift.data import leave_one_out
    from recsift.data.synthetic import generate
    from recsift.train import TrainConfig

    split = leave_one_out(generate(200, 60, seed=5).interactions)
    ts = split.training_set("sequence")
    params = dict(experts=("gru4rec", "core"), expert_epochs=1, gate_epochs=1, selector="top")
    mk = lambda: CurationContext(split=split, seed=0, coverage=False, cache_dir=tmp_path,  # noqa: E731
                                 probe_config=TrainConfig(batch_size=256))
    a, rep_a = curate(ts, "moe", 0.5, mk(), **params)
    share = rep_a.summary()["routing_share"]  # each expert's share of the gate weight, in the summary
    assert list(share) == ["gru4rec", "core"] and sum(share.values()) == pytest.approx(1, abs=1e-3)
    import recsift.moe.experts as ex_mod

    monkeypatch.setattr(ex_mod, "train_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")),
                        raising=False)
    import recsift.train as train_mod

    monkeypatch.setattr(train_mod, "train_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    ctx_b = mk()
    b, rep_b = curate(ts, "moe", 0.5, ctx_b, **params)  # fresh context: experts come from disk
    np.testing.assert_array_equal(a.data.sample_id, b.data.sample_id)
    # the cached experts' training time is still known: a curation's cost from scratch
    from recsift.curators.base import cached_cost_seconds

    assert cached_cost_seconds(ctx_b) > 0
    np.testing.assert_allclose(rep_a.scores, rep_b.scores, rtol=1e-6)
