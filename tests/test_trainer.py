"""The trainer, its two layouts, weighted losses and the dynamics recorder, on tiny data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from recsift.data import EvalCases, SequenceSamples, SequenceStore, TrainingSet
from recsift.models.base import SequentialRecommender
from recsift.train import DynamicsRecorder, SequenceTrainer, TrainConfig
from recsift.train.batching import AllPrefixBatcher, PrefixBatcher
from recsift.train.losses import ce_loss, masked_log_softmax, weighted_mean


class TinyGRU(SequentialRecommender):
    """A small causal model for trainer tests (not registered)."""

    name = "tiny"
    causal = True

    def __init__(self, n_items: int, max_len: int = 50, embedding_size: int = 16) -> None:
        super().__init__(n_items, max_len, embedding_size)
        self.gru = nn.GRU(embedding_size, embedding_size, batch_first=True)

    def forward_all(self, seq, lengths):
        return self.gru(self.item_embedding(seq))[0]

    def forward(self, seq, lengths):
        out = self.forward_all(seq, lengths)
        return out[torch.arange(len(seq)), lengths - 1]


def _store(seed=0, n_users=40, n_items=30, lo=3, hi=12):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(1, n_items + 1, rng.integers(lo, hi)) for _ in range(n_users)]
    return SequenceStore.from_lists(seqs, n_items)


def _epoch_samples(batcher, seed=0):
    seen = []
    for b in batcher.batches(np.random.default_rng(seed)):
        seen.append(b.sample_idx.numpy())
        assert (b.targets.numpy() > 0).all()
    return np.concatenate(seen)


@pytest.mark.parametrize("pack", [False, True])
@pytest.mark.parametrize("bucket", [False, True])
@pytest.mark.parametrize("overlap", [0, 2])
@pytest.mark.parametrize("max_len", [3, 5, 50])
def test_all_prefix_visits_every_selected_sample_once(max_len, overlap, bucket, pack):
    if overlap >= max_len:
        return
    samples = SequenceSamples.all_prefixes(_store())
    keep = np.random.default_rng(1).random(len(samples)) < 0.6
    ts = TrainingSet(samples).subset(keep)
    batcher = AllPrefixBatcher(ts, max_len, batch_size=16, overlap=overlap, bucket=bucket, pack=pack)
    seen = _epoch_samples(batcher)
    assert sorted(seen.tolist()) == list(range(len(ts)))
    # targets agree with the samples they claim to be
    for b in batcher.batches(np.random.default_rng(0)):
        np.testing.assert_array_equal(b.targets.numpy(), ts.data.targets[b.sample_idx.numpy()])
        # the input at (row, col) is the item right before the target
        prev = ts.data.store.items[ts.data.pos[b.sample_idx.numpy()] - 1]
        np.testing.assert_array_equal(b.seq.numpy()[b.rows.numpy(), b.cols.numpy()], prev)
        assert b.seq.shape[1] <= max_len
        if pack:  # every window's tokens sit contiguously in one row, positions counting from 0
            seg, posn = b.segments.numpy(), b.positions.numpy()
            assert ((seg >= 0) == (b.seq.numpy() > 0)).all()
            for w in np.unique(seg[seg >= 0]):
                r, c = np.nonzero(seg == w)
                assert len(set(r)) == 1 and (np.diff(c) == 1).all()
                np.testing.assert_array_equal(posn[r, c], np.arange(len(c)))
            # the context of each target is its window up to (row, col): same items as the sample's prefix
            r, c = b.rows.numpy(), b.cols.numpy()
            assert (posn[r, c] < max_len).all()
    # about batch_size targets per step, so steps per epoch match the prefix layout
    batches = list(batcher.batches(np.random.default_rng(0)))
    assert abs(len(batches) - len(ts) / 16) <= 2
    if bucket:  # similar lengths batch together: less padding than random batches
        pad = sum(int((b.seq == 0).sum()) for b in batches)
        plain = AllPrefixBatcher(ts, max_len, batch_size=16, overlap=overlap, bucket=False)
        assert pad <= sum(int((b.seq == 0).sum()) for b in plain.batches(np.random.default_rng(0)))


def test_prefix_batcher_matches_store_prefixes():
    samples = SequenceSamples.all_prefixes(_store())
    ts = TrainingSet(samples)
    batcher = PrefixBatcher(ts, 4, batch_size=7)
    assert sorted(_epoch_samples(batcher).tolist()) == list(range(len(ts)))
    b = next(batcher.batches(np.random.default_rng(0), shuffle=False))
    for r in range(len(b.targets)):
        u, p = samples.user[r], samples.pos[r]
        full = samples.store.items[samples.store.indptr[u]:p][-4:]
        assert b.seq[r, : b.lengths[r]].tolist() == full.tolist()
        assert b.cols[r] == len(full) - 1


def test_layouts_give_identical_per_sample_losses_when_windows_hold_whole_sequences():
    torch.manual_seed(0)
    store = _store(n_users=10, lo=3, hi=8)
    ts = TrainingSet(SequenceSamples.all_prefixes(store))
    model = TinyGRU(store.n_items).eval()
    cfg = TrainConfig(max_len=10, batch_size=1000, seed=0)
    out = {}
    for layout in ("prefix", "all-prefix"):
        tr = SequenceTrainer(model, cfg.model_copy(update={"layout": layout}))
        tr._prepare(ts)
        b = next(tr.batcher.batches(np.random.default_rng(0), shuffle=False))
        with torch.no_grad():
            per = ce_loss(masked_log_softmax(model.logits(tr._represent(b))), b.targets)
        out[layout] = dict(zip(b.sample_idx.tolist(), per.tolist()))
    assert out["prefix"].keys() == out["all-prefix"].keys()
    for k, v in out["prefix"].items():
        assert out["all-prefix"][k] == pytest.approx(v, abs=1e-5)


def test_weight_two_equals_sample_repeated():
    torch.manual_seed(0)
    logits = torch.randn(5, 8)
    targets = torch.tensor([1, 2, 3, 4, 5])
    per = ce_loss(masked_log_softmax(logits), targets)
    w = torch.tensor([2.0, 1, 1, 1, 1])
    rep = torch.cat([per, per[:1]])
    assert weighted_mean(per, w).item() == pytest.approx(rep.mean().item(), rel=1e-6)

    # and end to end: one Adam step on weights == one step on the repeated data
    store = _store(n_users=6, lo=3, hi=5)
    samples = SequenceSamples.all_prefixes(store)
    w = np.ones(len(samples), np.float32)
    w[0] = 2.0
    dup = np.concatenate([np.arange(len(samples)), [0]])
    params = []
    for ts in (TrainingSet(samples, weights=w), TrainingSet(samples.subset(dup))):
        torch.manual_seed(3)
        model = TinyGRU(store.n_items)
        tr = SequenceTrainer(model, TrainConfig(epochs=1, batch_size=10_000, layout="prefix", seed=0))
        tr.fit(ts, None, mask_history=False)
        params.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(params[0], params[1], atol=1e-6, rtol=1e-5)


def test_dynamics_match_a_direct_computation():
    torch.manual_seed(0)
    n_items = 30
    logits = torch.randn(6, n_items + 1) * 3
    targets = torch.tensor([1, 5, 7, 30, 2, 9])
    logits[2, 7] = 50.0  # sample 2 is confidently right
    rec = DynamicsRecorder(6, top_k=3, snapshot_epochs=(0,))
    h_norm = torch.rand(6) + 0.5
    rec.update(0, torch.arange(6), logits, targets, h_norm)
    z = logits.numpy().astype(np.float64)[:, 1:]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = targets.numpy() - 1
    onehot = np.eye(n_items)[y]
    py = p[np.arange(6), y]
    el2n = np.linalg.norm(p - onehot, axis=1)
    other = np.where(onehot == 1, -np.inf, p).max(1)
    other_z = np.where(onehot == 1, -np.inf, z).max(1)
    top3 = np.argsort(-z, axis=1)[:, :3]
    srt = np.sort(p, axis=1)[:, ::-1]
    st = rec.state
    np.testing.assert_allclose(st["p_target_last"], py, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(st["loss_last"], -np.log(py), rtol=1e-4)
    np.testing.assert_allclose(st["el2n_last"], el2n, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(st["el2n_epoch0"], el2n, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(st["grand_last"], el2n * h_norm.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(st["aum_prob_last"], py - other, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(st["aum_logit_last"], z[np.arange(6), y] - other_z, rtol=1e-5)
    np.testing.assert_allclose(st["margin_last"], srt[:, 0] - srt[:, 1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(st["entropy_last"], -(p * np.log(p)).sum(1), rtol=1e-4)
    assert st["correct_last"].tolist() == [int(y[i] in top3[i]) for i in range(6)]
    assert st["correct_last"][2] == 1
    # the trainer passes the loss's log-probabilities: same state
    rec2 = DynamicsRecorder(6, top_k=3, snapshot_epochs=(0,))
    rec2.update(0, torch.arange(6), logits, targets, h_norm, logp=masked_log_softmax(logits))
    for key, v in rec.state.items():
        np.testing.assert_allclose(rec2.state[key], v, rtol=1e-5, atol=1e-6, err_msg=key)



def test_per_sample_stats_in_cache_blocks_equal_one_pass(monkeypatch):
    """On CPU the rows are processed in blocks; forcing tiny blocks changes no value."""
    from recsift.train import dynamics

    torch.manual_seed(1)
    logits, targets = torch.randn(100, 41) * 2, torch.randint(1, 41, (100,))
    logits[:, 7] = logits[:, 9]  # ties
    targets[:5] = 7
    whole = dynamics.per_sample_stats(logits, targets, grad_scale=torch.rand(100), pessimistic_rank=True)
    monkeypatch.setattr(dynamics, "CHUNK_ELEMENTS", 41 * 16)  # 16 rows per block -> 7 blocks
    blocks = dynamics.per_sample_stats(logits, targets, grad_scale=whole["grand"] / whole["el2n"],
                                       pessimistic_rank=True)
    assert set(blocks) == set(whole)
    for key in whole:
        torch.testing.assert_close(blocks[key], whole[key], rtol=1e-5, atol=1e-6, msg=key)
    z, zy = logits[:, 1:], logits[torch.arange(100), targets]
    assert torch.equal(whole["n_above"], (z > zy[:, None]).sum(1))
    assert torch.equal(whole["rank"], (z >= zy[:, None]).sum(1) - 1)
    assert (whole["rank"][:5] >= 1).all()  # the tied item counts against the target


@pytest.mark.parametrize("n_cols", [64, 129, 1684, 5000])
def test_top2_values_equal_topk_with_ties_and_a_short_last_block(n_cols):
    """The block-maxima top 2 gives topk's values: ties at the top inside one block and across
    blocks, the maximum in the short last block, a padding column of -inf."""
    from recsift.train.dynamics import top2_values

    g = torch.Generator().manual_seed(n_cols)
    x = torch.randn(40, n_cols, generator=g)
    x[:, 0] = float("-inf")
    x[0, 3] = x[0, 5] = 9.0  # tie at the top, same block
    x[1, 3] = x[1, n_cols - 1] = 9.0  # tie at the top, different blocks
    x[2, n_cols - 1] = 9.0  # maximum in the last column
    x[3, n_cols - 2], x[3, n_cols - 1] = 8.0, 9.0  # both of the top 2 in the last block
    x[4, 1], x[4, 2] = 8.0, 9.0  # both of the top 2 in the first block
    v1, v2 = top2_values(x)
    ref = x.topk(2, dim=1).values
    assert torch.equal(v1, ref[:, 0]) and torch.equal(v2, ref[:, 1])


def test_fused_statistics_equal_the_eager_ones_and_fall_back_when_compiling_fails(monkeypatch, caplog):
    """The compiled kernel (RECSIFT_FUSED_STATS) gives the eager values, ties included; a failed
    compile warns once and the recorder goes on with the eager passes."""
    from recsift.errors import ConfigError
    from recsift.train import dynamics

    torch.manual_seed(2)
    logits, targets = torch.randn(300, 57) * 3, torch.randint(1, 57, (300,))
    logits[:, 7] = logits[:, 9]  # ties, also at the top
    logits[:10, 7] = logits[:10, 9] = 50.0
    targets[:5] = 7
    eager = dynamics.per_sample_stats(logits, targets, pessimistic_rank=True)
    fused = dynamics.per_sample_stats(logits, targets, pessimistic_rank=True, fused=True)
    if not dynamics._FUSED.get("failed"):  # a machine without a working compiler only checks the fallback
        for key in eager:
            torch.testing.assert_close(fused[key], eager[key], rtol=1e-5, atol=1e-6, msg=key)
    assert (eager["margin"][:10] == 0).all() and (eager["aum_logit"][:5] == 0).all()

    monkeypatch.setattr(dynamics, "_FUSED", {})
    monkeypatch.setattr(dynamics, "_fused_row_stats", lambda: (_ for _ in ()).throw(RuntimeError("no compiler")))
    monkeypatch.setenv("RECSIFT_FUSED_STATS", "1")
    rec = DynamicsRecorder(300)
    rec.update(0, torch.arange(300), logits, targets)
    assert rec.fused and dynamics._FUSED["failed"] and "eager" in caplog.text
    np.testing.assert_allclose(rec.state["el2n_last"], eager["el2n"].numpy(), rtol=1e-6)
    assert not dynamics.fused_stats_enabled(10**6, 10**6)  # off for the rest of the process
    monkeypatch.setattr(dynamics, "_FUSED", {})
    assert dynamics.fused_stats_enabled(10, 10) and not dynamics.fused_stats_enabled(10, 10, "meta")
    monkeypatch.setenv("RECSIFT_FUSED_STATS", "auto")
    assert not dynamics.fused_stats_enabled(10**5, 10**4) and dynamics.fused_stats_enabled(10**6, 10**4)
    monkeypatch.setenv("RECSIFT_FUSED_STATS", "yes")
    with pytest.raises(ConfigError, match="RECSIFT_FUSED_STATS"):
        dynamics.fused_stats_enabled(10, 10)


def test_forgetting_counts_transitions_and_state_is_o_n(tmp_path):
    rec = DynamicsRecorder(2, top_k=1)
    right = torch.tensor([[0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    wrong = torch.tensor([[0.0, 0.0, 5.0], [0.0, 5.0, 0.0]])
    tgt = torch.tensor([1, 1])
    for e, z in enumerate([right, wrong, right, wrong]):  # sample 0: R W R W (2 forgettings), sample 1: W R W R (1)
        rec.update(e, torch.tensor([0, 1]), z, tgt)
        rec.end_epoch()
    assert rec.state["forgetting"].tolist() == [2, 1]
    assert rec.state["n_correct"].tolist() == [2, 2]
    assert rec.state["first_learned"].tolist() == [0, 1]
    assert all(v.shape == (2,) for v in rec.state.values())
    p = rec.save(tmp_path / "dyn.npz")
    back = DynamicsRecorder.load(p)
    assert back.epochs_seen == 4 and back.state["forgetting"].tolist() == [2, 1]
    assert back.std("p_target")[1] > 0.4  # p_y swings between ~0 and ~1


def test_pack_rows_fills_first_fit_decreasing_within_capacity():
    from recsift.train.batching import pack_rows

    rng = np.random.default_rng(0)
    for _ in range(50):
        lengths = rng.integers(1, 11, rng.integers(1, 40))
        row, off = pack_rows(lengths, 10)
        for r in np.unique(row):  # windows of a row do not overlap and fit
            o, n = off[row == r], lengths[row == r]
            order = np.argsort(o)
            assert (o[order][1:] >= (o + n)[order][:-1]).all() and (o + n).max() <= 10
        assert row.max() + 1 <= -(-2 * lengths.sum() // 10) + 1  # FFD uses at most ~twice the minimum rows


@pytest.mark.parametrize("name,kw", [("sasrec", {}), ("core", {}), ("core", {"dnn_type": "ave"}), ("dr4sr_gnn", {})])
def test_packed_outputs_equal_unpacked_windows(name, kw):
    """Every real position's output of ``forward_packed`` equals ``forward_all`` on its window alone."""
    from recsift.models.registry import build_model

    store = _store(n_users=60, lo=2, hi=9)
    ts = TrainingSet(SequenceSamples.all_prefixes(store))
    torch.manual_seed(0)
    model = build_model(name, n_items=store.n_items, max_len=10, **kw).eval()
    if hasattr(model, "prepare_data"):
        model.prepare_data(ts)
    plain = AllPrefixBatcher(ts, 10, batch_size=64)
    packed = AllPrefixBatcher(ts, 10, batch_size=64, pack=True)
    n_rows = [0, 0]
    for a, b in zip(plain.batches(np.random.default_rng(3)), packed.batches(np.random.default_rng(3))):
        np.testing.assert_array_equal(a.sample_idx.numpy(), b.sample_idx.numpy())
        with torch.no_grad():
            ha = model.forward_all(a.seq, a.lengths)[a.rows, a.cols]
            hb = model.forward_packed(b.seq, b.positions, b.segments)[b.rows, b.cols]
        torch.testing.assert_close(hb, ha, rtol=1e-5, atol=1e-5)
        n_rows[0] += a.seq.numel()
        n_rows[1] += b.seq.numel()
    assert n_rows[1] < 0.8 * n_rows[0]  # short sessions: packing removes padding


def test_packed_training_matches_unpacked_without_dropout():
    """Same batches, same updates: without dropout a packed and an unpacked SASRec run give the
    same per-epoch losses and validation metrics (to float rounding)."""
    from recsift.models.registry import build_model

    store = _store(n_users=80, n_items=25, lo=3, hi=9)
    ts = TrainingSet(SequenceSamples.all_prefixes(store))
    valid = EvalCases.from_lists(np.arange(10), [list(store.items[store.indptr[u]: store.indptr[u + 1]][:-1])
                                                 for u in range(10)],
                                 [[int(store.items[store.indptr[u + 1] - 1])] for u in range(10)], 25)
    runs = {}
    for pack in (False, True):
        torch.manual_seed(0)
        model = build_model("sasrec", n_items=25, max_len=10, hidden_dropout_prob=0.0, attn_dropout_prob=0.0)
        cfg = TrainConfig(epochs=3, batch_size=32, max_len=10, loss="bce", patience=None, seed=0, pack=pack,
                          valid_metric="mrr@5", metrics=("mrr@5",))
        runs[pack] = SequenceTrainer(model, cfg).fit(ts, valid, mask_history=False)
    for a, b in zip(runs[False].epochs, runs[True].epochs):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["valid"]["mrr@5"] == pytest.approx(a["valid"]["mrr@5"], abs=1e-6)


def test_pack_needs_a_packable_model_in_the_all_prefix_layout():
    from recsift.errors import ConfigError

    ts = TrainingSet(SequenceSamples.all_prefixes(_store()))
    for model, layout in ((TinyGRU(30), "all-prefix"), (TinyGRU(30), "prefix")):
        with pytest.raises(ConfigError, match="pack"):
            SequenceTrainer(model, TrainConfig(pack=True, layout=layout))._prepare(ts)


def test_trainer_learns_and_restores_best_epoch():
    # deterministic successor: item i -> i + 1
    seqs = [list(range(s, s + 6)) for s in range(1, 20)]
    store = SequenceStore.from_lists(seqs, 25)
    ts = TrainingSet(SequenceSamples.all_prefixes(store))
    valid = EvalCases.from_lists(np.arange(5), [[3, 4], [7, 8], [10, 11], [12, 13], [2, 3]], [[5], [9], [12], [14], [4]], 25)
    torch.manual_seed(0)
    model = TinyGRU(25)
    tr = SequenceTrainer(model, TrainConfig(epochs=60, batch_size=32, lr=0.02, patience=5, valid_metric="mrr@5",
                                            metrics=("hit@1", "mrr@5"), seed=0))
    hist = tr.fit(ts, valid, mask_history=False)
    assert hist.best_valid > 0.8
    res = tr.evaluate(valid, mask_history=False)
    assert res.means["mrr@5"] == pytest.approx(hist.best_valid)  # best state restored
    assert all("train_seconds" in e for e in hist.epochs)



def test_patience_counts_validations_not_epochs():
    # a learning rate below float32 resolution: the model never changes, so only the first
    # validation improves; with eval_every=2 and patience=2 the validations after epochs 1, 3, 5
    # leave 2 without improvement, and training stops after epoch 5 (6 epochs, not 3)
    seqs = [list(range(s, s + 6)) for s in range(1, 20)]
    store = SequenceStore.from_lists(seqs, 25)
    ts = TrainingSet(SequenceSamples.all_prefixes(store))
    valid = EvalCases.from_lists(np.arange(2), [[3, 4], [7, 8]], [[5], [9]], 25)
    torch.manual_seed(0)
    tr = SequenceTrainer(TinyGRU(25), TrainConfig(epochs=20, batch_size=32, lr=1e-15, patience=2, eval_every=2,
                                                  valid_metric="mrr@5", metrics=("mrr@5",), seed=0))
    hist = tr.fit(ts, valid, mask_history=False)
    assert hist.stopped_early and len(hist.epochs) == 6 and hist.best_epoch == 1
    assert ["valid" in e for e in hist.epochs] == [False, True] * 3

def test_adam_is_fused_on_cpu_and_matches_the_default_update():
    from recsift.train.optim import adam, fused_supported

    g = torch.Generator().manual_seed(0)
    start = [torch.randn(300, 16, generator=g), torch.randn(16, generator=g)]
    ours = [t.clone().requires_grad_() for t in start]
    ref = [t.clone().requires_grad_() for t in start]
    opt, opt_ref = adam(ours, lr=1e-2, weight_decay=1e-3), torch.optim.Adam(ref, lr=1e-2, weight_decay=1e-3)
    assert opt.defaults["fused"] is True and opt_ref.defaults["fused"] is None
    for _ in range(50):
        grads = [torch.randn(t.shape, generator=g) for t in start]
        for a, b, gr in zip(ours, ref, grads):
            a.grad, b.grad = gr.clone(), gr.clone()
        opt.step()
        opt_ref.step()
    for a, b, s in zip(ours, ref, start):
        assert (a - s).abs().max() > 0.1  # it moved
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    # integer or sparse parameters are not fused: torch's default Adam is used
    assert not fused_supported([torch.zeros(3, dtype=torch.long)])
    assert not fused_supported([torch.zeros(3).to_sparse()])
    assert adam([torch.zeros(3, requires_grad=True)], lr=1.0, foreach=True).defaults["fused"] is None


def test_trainer_builds_fused_adam():
    trainer = SequenceTrainer(nn.Linear(2, 2), TrainConfig(epochs=1))
    assert trainer.optimizer.defaults["fused"] is True


class TinyDropGRU(TinyGRU):
    """TinyGRU with dropout, so that training draws from torch's global generator."""

    def __init__(self, n_items: int, max_len: int = 50, embedding_size: int = 16) -> None:
        super().__init__(n_items, max_len, embedding_size)
        self.drop = nn.Dropout(0.3)

    def forward_all(self, seq, lengths):
        return self.gru(self.drop(self.item_embedding(seq)))[0]


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_an_interrupted_fit_resumes_from_its_checkpoint_to_the_same_result(tmp_path, monkeypatch, loss):
    from recsift.errors import ConfigError

    store = _store(seed=3, n_users=60, n_items=30)
    ts = TrainingSet(SequenceSamples.all_prefixes(store))
    ts = TrainingSet(ts.data, weights=np.linspace(0.5, 1.5, len(ts)))  # weights are part of the run
    valid = EvalCases.from_lists(np.arange(4), [[1, 2], [3, 4], [5, 6], [7, 8]], [[3], [5], [7], [9]], 30)
    cfg = TrainConfig(epochs=6, batch_size=64, lr=0.01, patience=3, valid_metric="mrr@5", metrics=("mrr@5",),
                      loss=loss, layout="prefix", seed=1)

    def run(ckpt=None, stop_at=None):
        torch.manual_seed(0)
        tr = SequenceTrainer(TinyDropGRU(30), cfg)
        rec = DynamicsRecorder(len(ts), top_k=5)
        if stop_at is not None:
            real = tr._train_epoch

            def epoch(e, r):
                if e == stop_at:
                    raise _Interrupt
                return real(e, r)
            monkeypatch.setattr(tr, "_train_epoch", epoch)
        hist = tr.fit(ts, valid, mask_history=False, recorder=rec, checkpoint=ckpt)
        return tr.model.state_dict(), hist, rec

    ref_state, ref_hist, ref_rec = run()
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(_Interrupt):
        run(ckpt, stop_at=3)
    assert ckpt.exists()  # epochs 0-2 are in it
    state, hist, rec = run(ckpt)
    assert not ckpt.exists()  # removed once the run is finished
    assert [e["train_loss"] for e in hist.epochs] == [e["train_loss"] for e in ref_hist.epochs]
    assert [e["valid"] for e in hist.epochs] == [e["valid"] for e in ref_hist.epochs]
    assert (hist.best_epoch, hist.best_valid) == (ref_hist.best_epoch, ref_hist.best_valid)
    for k in ref_state:
        assert torch.equal(state[k], ref_state[k]), k
    for k in ref_rec.state:
        np.testing.assert_array_equal(rec.state[k], ref_rec.state[k], err_msg=k)
    assert rec.epochs_seen == ref_rec.epochs_seen

    # a checkpoint of another run is refused, not resumed
    with pytest.raises(_Interrupt):
        run(ckpt, stop_at=2)
    cfg = cfg.model_copy(update={"lr": 0.02})
    with pytest.raises(ConfigError, match="another run"):
        run(ckpt)


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "narm", "srgnn", "gcsan", "core", "fmlp", "dr4sr_gnn"])
def test_length_sorted_scoring_equals_one_encoder_call(name):
    """`SequenceTrainer.score` encodes histories sorted by length, a few cases per call, each call
    trimmed to its longest history: the scores equal one call over the whole (padded) chunk, in
    the cases' own order. Histories longer than max_len (cut to the last 10) and empty ones too."""
    from recsift.models.registry import build_model

    rng = np.random.default_rng(5)
    n_items = 30
    hists = [list(rng.integers(1, n_items + 1, n)) for n in rng.integers(0, 15, 40)]
    cases = EvalCases.from_lists(np.arange(40), hists, [[1]] * 40, n_items=n_items)
    torch.manual_seed(0)
    model = build_model(name, n_items=n_items, max_len=10).eval()
    if hasattr(model, "prepare_data"):
        model.prepare_data(TrainingSet(SequenceSamples.all_prefixes(_store(n_items=n_items))))
    tr = SequenceTrainer(model, TrainConfig(max_len=10))
    seq = torch.from_numpy(cases.padded_histories(10, pad_left=model.pad_left))
    lengths = torch.from_numpy(np.clip(cases.hist_lengths, 1, 10))
    with torch.no_grad():
        whole = model.logits(model(seq, lengths))  # one call, full max_len window, cases in order
        tr.eval_rows = 3
        sorted_calls = tr.score(cases)
    assert whole.shape == (40, n_items + 1) and not whole.isnan().any()  # empty histories score too
    torch.testing.assert_close(sorted_calls, whole, rtol=1e-5, atol=1e-5)
