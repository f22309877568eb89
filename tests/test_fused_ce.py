"""The fused, chunked cross-entropy (recsift.train.fused_ce) against the autograd path."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from recsift.data import SequenceSamples, SequenceStore, TrainingSet
from recsift.errors import ConfigError
from recsift.models import build_model
from recsift.train import DynamicsRecorder, SequenceTrainer, TrainConfig
from recsift.train.fused_ce import fused_ce_enabled, softmax_ce_loss
from recsift.train.losses import ce_loss, masked_log_softmax, weighted_mean


def _inputs(m=301, d=8, n_items=57, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(m, d, generator=g)
    w_out = torch.randn(n_items + 1, d, generator=g)
    targets = torch.randint(1, n_items + 1, (m,), generator=g)
    weights = torch.rand(m, generator=g)
    weights[:10] = 0.0  # samples a curator dropped by weight
    return h, w_out, targets, weights


def test_loss_gradients_and_chunks_match_the_autograd_path():
    h, w_out, t, w = _inputs()
    h1, w1 = h.clone().requires_grad_(), w_out.clone().requires_grad_()
    ref = weighted_mean(ce_loss(masked_log_softmax(h1 @ w1.t()), t), w)
    (3 * ref).backward()
    h2, w2 = h.clone().requires_grad_(), w_out.clone().requires_grad_()
    seen = []
    loss = softmax_ce_loss(h2, w2, t, w, rows=64, on_chunk=lambda s, e, lp, p: seen.append((s, e, lp.clone(), p.clone())))
    (3 * loss).backward()  # backward scales the stored gradients by the incoming one
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    torch.testing.assert_close(h2.grad, h1.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(w2.grad, w1.grad, rtol=1e-5, atol=1e-7)
    assert torch.all(w2.grad[0] == 0)  # the padding row gets no gradient
    assert [(s, e) for s, e, _, _ in seen] == [(0, 64), (64, 128), (128, 192), (192, 256), (256, 301)]
    lp_all = torch.cat([lp for _, _, lp, _ in seen])
    torch.testing.assert_close(lp_all, masked_log_softmax(h @ w_out.t()))
    torch.testing.assert_close(torch.cat([p for *_, p in seen]), lp_all.exp())


def test_all_zero_weights_give_zero_loss_and_gradients():
    h, w_out, t, _ = _inputs(m=40)
    h = h.requires_grad_()
    loss = softmax_ce_loss(h, w_out, t, torch.zeros(40))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(h.grad == 0)


def test_second_derivatives_and_learnt_weights_are_refused_not_silently_wrong():
    h, w_out, t, w = _inputs(m=20)
    h = h.requires_grad_()
    (g,) = torch.autograd.grad(softmax_ce_loss(h, w_out, t, w), h, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()
    with pytest.raises(ValueError, match="weights"):
        softmax_ce_loss(h, w_out, t, w.clone().requires_grad_())


def test_bad_environment_value_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("RECSIFT_FUSED_CE", "yes")
    with pytest.raises(ConfigError, match="RECSIFT_FUSED_CE"):
        fused_ce_enabled("cpu")
    monkeypatch.setenv("RECSIFT_FUSED_CE", "auto")
    assert fused_ce_enabled("cpu") and not fused_ce_enabled("cuda")


def _train(monkeypatch, mode: str, model_name: str, epochs=3):
    monkeypatch.setenv("RECSIFT_FUSED_CE", mode)
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 41, rng.integers(3, 14)) for _ in range(60)]
    samples = SequenceSamples.all_prefixes(SequenceStore.from_lists(seqs, 40))
    ts = TrainingSet(samples, rng.uniform(0.2, 2.0, len(samples)).astype(np.float32))  # DR4SR+-style weights
    torch.manual_seed(0)
    model = build_model(model_name, n_items=40, max_len=20)
    tr = SequenceTrainer(model, TrainConfig(epochs=epochs, batch_size=64, lr=5e-3, patience=None, max_len=20, seed=0))
    rec = DynamicsRecorder(len(ts))
    hist = tr.fit(ts, None, mask_history=False, recorder=rec)
    return tr, [e["train_loss"] for e in hist.epochs], rec, model


@pytest.mark.parametrize("model_name", ["gru4rec", "sasrec", "core"])
def test_trainer_fused_and_unfused_give_the_same_gradients_and_dynamics(monkeypatch, model_name):
    # one batch, same dropout draws: the two paths' parameter gradients agree to float rounding
    tr, *_ = _train(monkeypatch, "1", model_name, epochs=1)
    b = next(iter(tr.batcher.batches(np.random.default_rng(0))))
    grads = []
    for fused in (True, False):
        tr._fused_ce = fused
        tr.model.train()
        tr.model.zero_grad()
        torch.manual_seed(1)
        loss, _ = tr._batch_loss(b, tr._represent(b), None)
        loss.backward()
        grads.append([p.grad.clone() for p in tr.model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, c in zip(*grads):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-6)
    # whole runs (Adam amplifies rounding in near-zero gradients, so only losses and dynamics are compared)
    tr_f, loss_f, rec_f, _ = _train(monkeypatch, "1", model_name)
    tr_u, loss_u, rec_u, _ = _train(monkeypatch, "0", model_name)
    assert tr_f._fused_ce and not tr_u._fused_ce
    np.testing.assert_allclose(loss_f, loss_u, rtol=1e-4)
    for key in ("loss_sum", "p_target_sum", "el2n_sum", "entropy_sum", "margin_sum", "aum_logit_sum", "grand_sum"):
        np.testing.assert_allclose(rec_f.state[key], rec_u.state[key], rtol=2e-3, atol=1e-4, err_msg=key)
    np.testing.assert_array_equal(rec_f.state["n_seen"], rec_u.state["n_seen"])
    np.testing.assert_array_equal(rec_f.state["n_correct"], rec_u.state["n_correct"])


def test_a_model_with_its_own_logits_trains_unfused(monkeypatch):
    monkeypatch.setenv("RECSIFT_FUSED_CE", "1")

    class Biased(type(build_model("gru4rec", n_items=10, max_len=5))):
        def logits(self, h):
            return super().logits(h) + 1.0

    seqs = [[1, 2, 3, 4], [2, 3, 4, 5]]
    ts = TrainingSet(SequenceSamples.all_prefixes(SequenceStore.from_lists(seqs, 10)))
    tr = SequenceTrainer(Biased(n_items=10, max_len=5), TrainConfig(epochs=1, batch_size=4, patience=None, max_len=5))
    tr.fit(ts, None, mask_history=False)
    assert not tr._fused_ce


def test_train_result_says_which_cross_entropy_trained_it(monkeypatch):
    from recsift.data import leave_one_out
    from recsift.data.synthetic import generate
    from recsift.train import train_model

    split = leave_one_out(generate(30, 25, seed=0, mean_len=6).interactions)
    for mode, loss, expected in (("1", None, True), ("0", None, False), ("1", "bpr", False)):
        monkeypatch.setenv("RECSIFT_FUSED_CE", mode)
        res = train_model(split, "gru4rec", TrainConfig(epochs=1, batch_size=64, patience=None, loss=loss))
        assert res.extra["fused_ce"] is expected
