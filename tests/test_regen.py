"""DR4SR / DR4SR+ (recsift.regen) and DR4SR's GNN backbone.

Pattern mining on a hand-worked example and against brute force; batched hybrid decoding equal
to one-at-a-time and to an independent step-by-step decoder at gamma = 0 / 1; the Neumann
hyper-gradient against the exact implicit gradient of a quadratic bi-level problem; both
curators through `curate`; a regenerated set saved and loaded back; the GNN backbone's graph
and that it beats popularity on synthetic sessions.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from recsift.curators import CurationContext, curate, load_curated, save_curation
from recsift.data import leave_one_out
from recsift.data.synthetic import generate
from recsift.errors import ConfigError, DataFormatError
from recsift.regen import (RegenConfig, Regenerator, hypergradient, mine_patterns, neumann_inverse_hvp, pretrain,
                           regenerate, source_tokens, target_tokens)
from recsift.train import TrainConfig, train_model


def csr(seqs):
    lens = [len(s) for s in seqs]
    return np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), np.concatenate([np.array(s) for s in seqs])


# A = 1 2 3, B = 1 2 4, C = 2 3, D = 1 5 5 2
HAND = [[1, 2, 3], [1, 2, 4], [2, 3], [1, 5, 5, 2]]


def test_mining_hand_example_exact_patterns_and_counts():
    ind, it = csr(HAND)
    # window 3: A {12,13,23,123}, B {12,14,24,124}, C {23}, D {15,155,55,52,552}; (1,2) in D spans 4
    allp = mine_patterns(ind, it, window=3, min_support=1).as_dict()
    assert allp == {(1, 2): 2, (1, 3): 1, (2, 3): 2, (1, 2, 3): 1, (1, 4): 1, (2, 4): 1, (1, 2, 4): 1,
                    (1, 5): 1, (1, 5, 5): 1, (5, 5): 1, (5, 2): 1, (5, 5, 2): 1}
    m = mine_patterns(ind, it, window=3, min_support=2)
    assert m.as_dict() == {(1, 2): 2, (2, 3): 2}
    pairs = {(int(s), tuple(m.pattern(p))) for s, p in zip(m.pair_seq, m.pair_pattern)}
    assert pairs == {(0, (1, 2)), (0, (2, 3)), (1, (1, 2)), (2, (2, 3))}
    # a wider window reaches D's (1, 2); a repeated occurrence counts once per sequence
    assert mine_patterns(ind, it, window=4, min_support=2).as_dict() == {(1, 2): 3, (2, 3): 2}
    twice, _ = csr([[1, 2, 1, 2], [9, 9]])
    assert mine_patterns(twice, np.array([1, 2, 1, 2, 9, 9]), window=2, min_support=2).as_dict() == {}
    capped = mine_patterns(ind, it, window=3, min_support=2, max_per_seq=1)
    assert np.bincount(capped.pair_seq).tolist() == [1, 1, 1]
    with pytest.raises(ConfigError):
        mine_patterns(ind, it, window=1)


def brute_force(seqs, window, min_support):
    support = {}
    for s in seqs:
        found = set()
        for i in range(len(s)):
            rest = range(i + 1, min(i + window, len(s)))
            for r in range(1, window):
                for c in itertools.combinations(rest, r):
                    found.add((s[i], *[s[j] for j in c]))
        for p in found:
            support[p] = support.get(p, 0) + 1
    return {p: n for p, n in support.items() if n >= min_support}


def test_mining_matches_brute_force_on_random_sequences():
    rng = np.random.default_rng(3)
    seqs = [rng.integers(1, 7, rng.integers(1, 9)).tolist() for _ in range(40)]
    ind, it = csr(seqs)
    for window, beta in [(2, 2), (3, 2), (5, 3)]:
        m = mine_patterns(ind, it, window=window, min_support=beta, max_per_seq=1000)
        assert m.as_dict() == brute_force(seqs, window, beta)
        # every pair's pattern occurs in its sequence (in order)
        for s, p in zip(m.pair_seq, m.pair_pattern):
            it_ = iter(seqs[s])
            assert all(x in it_ for x in m.pattern(p))


N_ITEMS = 40


def tiny_regenerator(seed=0, k=3, n_items=N_ITEMS):
    torch.manual_seed(seed)
    return Regenerator(n_items, RegenConfig(k_memories=k, max_src=12, epochs=2, batch_size=16, dropout=0.1))


def random_csr(n, seed=0, n_items=N_ITEMS):
    rng = np.random.default_rng(seed)
    return csr([rng.choice(np.arange(1, n_items + 1), rng.integers(2, 9), replace=False).tolist() for _ in range(n)])


def test_pretraining_learns_a_copy_rule():
    """Target = (first, third) item of the source: learnable, so the restricted loss must fall."""
    ind, it = random_csr(96, seed=5)
    ind3 = np.flatnonzero(np.diff(ind) >= 3)
    pats = [[it[ind[i]], it[ind[i] + 2]] for i in ind3]
    pind, pit = csr(pats)
    src = source_tokens(ind, it, ind3, 12, N_ITEMS)
    tgt = target_tokens(pind, pit, np.arange(len(pats)), N_ITEMS)
    assert (src[:, 0] == N_ITEMS + 1).all() and ((src == N_ITEMS + 2).sum(1) == 1).all()
    assert (tgt[:, 1:3] == np.array(pats)).all() and (tgt[:, 3] == N_ITEMS + 2).all()
    torch.manual_seed(0)
    model = Regenerator(N_ITEMS, RegenConfig(k_memories=3, max_src=12, epochs=60, batch_size=16, dropout=0.0,
                                             lr=3e-3))
    hist = pretrain(model, src, tgt, seed=0)
    assert hist[-1]["recon"] < 0.2 * hist[0]["recon"], [round(h["recon"], 3) for h in hist]
    assert float(model.tau) < 1.0  # the Gumbel temperature decays per training call


def test_batched_decoding_equals_one_at_a_time():
    ind, it = random_csr(13, seed=1)
    model = tiny_regenerator(seed=1)
    outs = [regenerate(model, ind, it, gamma=0.5, max_steps=6, batch_size=bs, seed=4) for bs in (1, 4, 13)]
    for o in outs[1:]:
        np.testing.assert_array_equal(o["indptr"], outs[0]["indptr"])
        np.testing.assert_array_equal(o["items"], outs[0]["items"])
    assert len(outs[0]["source"]) == 13 * 3
    # a sub-range of rows decodes the same as inside the full run (mode draws keyed by row)
    part = regenerate(model, ind, it, rows=np.arange(5, 9), gamma=0.5, max_steps=6, batch_size=2, seed=4)
    full_rows = [outs[0]["items"][outs[0]["indptr"][j]: outs[0]["indptr"][j + 1]].tolist() for j in range(15, 27)]
    assert [part["items"][part["indptr"][j]: part["indptr"][j + 1]].tolist() for j in range(12)] == full_rows


def reference_decode(model, seq, k, gamma_mode, max_steps):
    """One sequence, one memory, step by step: 'r' restrictive or 'g' generative at every step."""
    src = torch.tensor(source_tokens(*csr([seq]), np.array([0]), model.cfg.max_src, model.n_items))
    src = src[:, : len(seq) + 2]
    with torch.no_grad():
        mem = model.encode(src)[:, k]
        toks, out = [model.sos], []
        for _ in range(max_steps):
            h = model.decode(torch.tensor([toks]), mem, src == 0)[0, -1]
            logits = h @ model.embedding.weight.t()
            allowed = torch.ones_like(logits, dtype=torch.bool)
            allowed[[0, model.sos, *out]] = False
            if gamma_mode == "r":
                keep = torch.zeros_like(allowed)
                keep[[*seq, model.eos]] = True
                allowed &= keep
            nxt = int(logits.masked_fill(~allowed, float("-inf")).argmax())
            if nxt == model.eos:
                break
            out.append(nxt)
            toks.append(nxt)
    return out


def test_gamma_extremes_restrictive_copies_and_generative_is_free():
    ind, it = random_csr(8, seed=2)
    model = tiny_regenerator(seed=2)
    model.eval()
    seqs = [it[ind[i]: ind[i + 1]].tolist() for i in range(8)]
    for gamma, mode in [(0.0, "r"), (1.0, "g")]:
        out = regenerate(model, ind, it, gamma=gamma, max_steps=7, batch_size=3, seed=0)
        got = [out["items"][out["indptr"][j]: out["indptr"][j + 1]].tolist() for j in range(len(out["source"]))]
        want = [reference_decode(model, seqs[i], k, mode, 7) for i in range(8) for k in range(model.k)]
        assert got == want
        for g in got:
            assert len(set(g)) == len(g)  # no repeats
        if mode == "r":
            assert all(set(g) <= set(seqs[i // model.k]) for i, g in enumerate(got))
        else:  # an untrained model over 40 items mostly picks items outside a short source
            assert any(not set(g) <= set(seqs[i // model.k]) for i, g in enumerate(got))
    # restrictive_steps forces the first steps to copy even at gamma = 1
    out = regenerate(model, ind, it, gamma=1.0, max_steps=7, restrictive_steps=1, seed=0)
    rows = [j for j in range(len(out["source"])) if out["indptr"][j + 1] > out["indptr"][j]]
    assert rows and all(out["items"][out["indptr"][j]] in seqs[out["source"][j]] for j in rows)
    with pytest.raises(ConfigError):
        regenerate(model, ind, it, gamma=1.5)


def test_neumann_hypergradient_matches_exact_inverse_hessian_on_a_quadratic():
    """L_in(t, f) = 1/2 t'At - t'Bf  (t* = A^-1 B f), L_out(t) = 1/2 |t - c|^2.
    Exact: dL_out(t*(f))/df = B' A^-1 (t* - c); the Neumann estimate times alpha converges to it."""
    g = torch.Generator().manual_seed(0)
    n, m = 5, 3
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    a = q @ torch.diag(torch.linspace(0.5, 2.0, n, dtype=torch.float64)) @ q.t()
    b = torch.randn(n, m, generator=g, dtype=torch.float64)
    c = torch.randn(n, generator=g, dtype=torch.float64)
    phi = torch.randn(m, generator=g, dtype=torch.float64, requires_grad=True)
    theta_star = torch.linalg.solve(a, b @ phi.detach())
    theta = theta_star.clone().requires_grad_(True)
    exact = b.t() @ torch.linalg.solve(a, theta_star - c)

    def losses():
        return 0.5 * theta @ a @ theta - theta @ (b @ phi), 0.5 * ((theta - c) ** 2).sum()

    alpha = 0.4
    # J = 3 (the DR4SR default) equals the closed-form truncated series
    l_in, l_out = losses()
    hg3 = hypergradient(l_in, l_out, [theta], [phi], alpha=alpha, terms=3)[0]
    step = torch.eye(n, dtype=torch.float64) - alpha * a
    series = sum(torch.linalg.matrix_power(step, j) for j in range(4))
    torch.testing.assert_close(hg3, b.t() @ series @ (theta_star - c))
    # many terms: alpha * estimate -> exact implicit gradient (and 3 terms are still far from it)
    l_in, l_out = losses()
    hg = hypergradient(l_in, l_out, [theta], [phi], alpha=alpha, terms=200)[0]
    torch.testing.assert_close(alpha * hg, exact, rtol=1e-6, atol=1e-8)
    assert not torch.allclose(alpha * hg3, exact, rtol=1e-2)
    p = neumann_inverse_hvp(lambda x: [a @ x[0]], [c], alpha=alpha, terms=200)
    torch.testing.assert_close(alpha * p[0], torch.linalg.solve(a, c))


@pytest.fixture(scope="module")
def small_split():
    return leave_one_out(generate(160, 40, seed=0, mean_len=8, max_len=20).interactions)


REGEN = dict(epochs=2, k_memories=2, max_steps=8)


def test_dr4sr_curator_returns_regenerated_sequences(small_split):
    ts = small_split.training_set()
    ctx = CurationContext(split=small_split, seed=0, max_len=20)
    out, rep = curate(ts, "dr4sr", None, ctx, **REGEN)
    seg = rep.extra["sequences_per_segment"]
    assert seg["original"] == small_split.n_users and seg["pattern"] > 0 and seg["regenerated"] > 0
    assert rep.extra["regenerated"] and not rep.kept.any() and len(out) == rep.extra["output_samples"] > len(ts)
    st = out.data.store
    # the original sequences come first, unchanged; every sequence has >= 2 items
    orig = ts.data.store
    np.testing.assert_array_equal(st.items[: len(orig.items)], orig.items)
    assert (st.lengths >= 2).all() and st.n_items == orig.n_items
    assert (out.weights == 1).all()
    doubled, rep2 = curate(ts, "dr4sr", None, ctx, original_copies=2, include_patterns=False,
                           include_regenerated=False)
    assert len(doubled) == 2 * len(ts) and "n_patterns" not in rep2.extra
    with pytest.raises(ConfigError):
        curate(ts, "dr4sr", 0.5, ctx)
    with pytest.raises(ConfigError):
        curate(ts, "dr4sr", None, ctx, gama=0.1)


def test_dr4sr_regenerated_set_cached_on_disk(small_split, tmp_path, monkeypatch):
    """With ``cache_dir`` the regenerated set is saved once and read back by a fresh context
    (no pre-training the second time); other settings or another seed regenerate."""
    import recsift.regen.curator as rc

    from recsift.curators.base import cached_cost_seconds

    ts = small_split.training_set()
    ctx1 = CurationContext(split=small_split, seed=0, max_len=20, cache_dir=tmp_path)
    first, rep1 = curate(ts, "dr4sr", None, ctx1, **REGEN)
    assert cached_cost_seconds(ctx1) == 0  # produced here: already in this curation's wall time
    assert len(list(tmp_path.glob("regen-*/info.json"))) == 1 and not rep1.extra.get("cached")
    calls, real = [], rc.pretrain
    monkeypatch.setattr(rc, "pretrain", lambda *a, **k: calls.append(1) or real(*a, **k))
    ctx2 = CurationContext(split=small_split, seed=0, max_len=20, cache_dir=tmp_path)
    again, rep2 = curate(ts, "dr4sr", None, ctx2, **REGEN)
    assert not calls and rep2.extra["cached"]
    # the seconds it took to produce are kept: the runner adds them to the row's curation cost
    assert cached_cost_seconds(ctx2) == rep2.extra["seconds"] == rep1.extra["seconds"] > 0
    np.testing.assert_array_equal(again.data.store.items, first.data.store.items)
    np.testing.assert_array_equal(again.data.store.indptr, first.data.store.indptr)
    assert rep2.extra["sequences_per_segment"] == rep1.extra["sequences_per_segment"]
    curate(ts, "dr4sr", None, CurationContext(split=small_split, seed=1, max_len=20, cache_dir=tmp_path), **REGEN)
    assert calls and len(list(tmp_path.glob("regen-*/info.json"))) == 2


def test_pretrained_regenerator_reused_across_gamma_and_copies(small_split, tmp_path, monkeypatch):
    """Regenerations that differ only in inference (gamma) or assembly (copies of the original
    data) read the pre-trained regenerator back instead of pre-training again, and give the same
    set as a regeneration that pre-trained from scratch; its seconds count in the from-scratch cost."""
    import recsift.regen.curator as rc

    from recsift.curators.base import cached_cost_seconds

    ts = small_split.training_set()
    calls, real = [], rc.pretrain
    monkeypatch.setattr(rc, "pretrain", lambda *a, **k: calls.append(1) or real(*a, **k))
    ctx = CurationContext(split=small_split, seed=0, max_len=20, cache_dir=tmp_path)
    _, rep1 = curate(ts, "dr4sr", None, ctx, **REGEN)
    assert len(calls) == 1 and not rep1.extra["pretrain_cached"]
    ctx2 = CurationContext(split=small_split, seed=0, max_len=20, cache_dir=tmp_path)
    hot, rep2 = curate(ts, "dr4sr", None, ctx2, **{**REGEN, "gamma": 0.9, "original_copies": 2})
    assert len(calls) == 1 and rep2.extra["pretrain_cached"] and not rep2.extra.get("cached")
    assert rep2.extra["pretrain_seconds"] == rep1.extra["pretrain_seconds"]
    assert cached_cost_seconds(ctx2) == pytest.approx(rep1.extra["pretrain_seconds"])
    assert rep2.extra["seconds"] >= rep1.extra["pretrain_seconds"]
    assert len(list(tmp_path.glob("regenerator-*/weights.npz"))) == 1
    # the same settings without a cache pre-train from scratch: same regenerated sequences
    cold, _ = curate(ts, "dr4sr", None, CurationContext(split=small_split, seed=0, max_len=20),
                     **{**REGEN, "gamma": 0.9, "original_copies": 2})
    assert len(calls) == 2
    np.testing.assert_array_equal(hot.data.store.items, cold.data.store.items)
    np.testing.assert_array_equal(hot.data.store.indptr, cold.data.store.indptr)
    # another pre-training setting trains its own regenerator
    curate(ts, "dr4sr", None, ctx2, **{**REGEN, "k_memories": 3})
    assert len(calls) == 3 and len(list(tmp_path.glob("regenerator-*/weights.npz"))) == 2


def test_dr4sr_plus_passes_its_temperature_to_the_personalizer(small_split, monkeypatch):
    import recsift.regen.curator as rc

    seen, real = [], rc.train_bilevel
    monkeypatch.setattr(rc, "train_bilevel", lambda *a, **k: seen.append(a[4].tau_init) or real(*a, **k))
    ts = small_split.training_set()
    ctx = CurationContext(split=small_split, seed=0, max_len=20)
    plus = dict(target="sasrec", bilevel_epochs=2, warmup_epochs=1, interval=3, **REGEN)
    curate(ts, "dr4sr_plus", None, ctx, **plus)
    curate(ts, "dr4sr_plus", None, ctx, tau_init=1.0, **plus)
    assert seen == [10.0, 1.0]


def test_dr4sr_plus_weights_cached_on_disk(small_split, tmp_path, monkeypatch):
    """With ``cache_dir`` DR4SR+'s weights are saved next to the regenerated set and read back by a
    fresh context without bi-level training; another target model trains its own."""
    import recsift.regen.curator as rc

    from recsift.curators.base import cached_cost_seconds

    ts = small_split.training_set()
    plus = dict(target="sasrec", bilevel_epochs=2, warmup_epochs=1, interval=3, **REGEN)
    ctx1 = CurationContext(split=small_split, seed=0, max_len=20, cache_dir=tmp_path)
    first, rep1 = curate(ts, "dr4sr_plus", None, ctx1, **plus)
    assert not rep1.extra["weights_cached"] and len(list(tmp_path.glob("regen-*/plus-*/info.json"))) == 1
    calls, real = [], rc.train_bilevel
    monkeypatch.setattr(rc, "train_bilevel", lambda *a, **k: calls.append(1) or real(*a, **k))
    ctx2 = CurationContext(split=small_split, seed=0, max_len=20, cache_dir=tmp_path)
    again, rep2 = curate(ts, "dr4sr_plus", None, ctx2, **plus)
    assert not calls and rep2.extra["weights_cached"] and rep2.extra["cached"]
    np.testing.assert_array_equal(again.weights, first.weights)
    assert rep2.extra["bilevel_history"] == rep1.extra["bilevel_history"]
    # regeneration + personalizer seconds are kept: the runner adds them to the row's curation cost
    assert cached_cost_seconds(ctx2) == pytest.approx(rep1.extra["seconds"] + rep1.extra["bilevel_seconds"])
    curate(ts, "dr4sr_plus", None, ctx2, **{**plus, "target": "gru4rec"})
    assert calls and len(list(tmp_path.glob("regen-*/plus-*/info.json"))) == 2


def test_dr4sr_plus_weights_and_save_load_roundtrip(small_split, tmp_path):
    ts = small_split.training_set()
    ctx = CurationContext(split=small_split, seed=0, max_len=20)
    out, rep = curate(ts, "dr4sr_plus", None, ctx, target="sasrec", bilevel_epochs=3, warmup_epochs=1, interval=3,
                      **REGEN)
    hist = rep.extra["bilevel_history"]
    assert [h["bilevel"] for h in hist] == [False, True, True] and sum(h["outer_steps"] for h in hist) > 0
    assert all(h["peak_rss_mb"] > 0 for h in hist)  # each epoch's own peak: the cost table's memory per phase
    w = out.weights
    plain, _ = curate(ts, "dr4sr", None, ctx, **REGEN)  # same regenerated data (memoised in ctx)
    assert len(w) == len(plain)
    assert (w > 0).all() and (w <= 1).all() and w.std() > 0
    h = rep.extra["weight_histogram"]  # the learnt weights (fixed pattern samples excluded), for plots
    learnt = w[w != 1]
    assert sum(h["counts"]) == len(learnt) and len(h["edges"]) == len(h["counts"]) + 1
    assert h["edges"][0] == pytest.approx(learnt.min(), abs=1e-6) and h["edges"][-1] == pytest.approx(learnt.max(), abs=1e-6)
    assert h["quantiles"]["0.5"] == pytest.approx(float(np.median(learnt)), abs=1e-4)
    # save and load back: same sequences, samples and weights
    save_curation(tmp_path / "c", ts, rep, dataset=small_split.name, protocol=small_split.protocol, curated=out)
    back, meta = load_curated(tmp_path / "c", small_split)
    assert meta["regenerated"] and meta["format"] == 2
    np.testing.assert_array_equal(back.data.store.items, out.data.store.items)
    np.testing.assert_array_equal(back.data.pos, out.data.pos)
    np.testing.assert_array_equal(back.weights, out.weights)
    with pytest.raises(DataFormatError):
        save_curation(tmp_path / "d", ts, rep, dataset=small_split.name, protocol=small_split.protocol)
    # the kept-mask format still round-trips
    kept, rep3 = curate(ts, "random", 0.5, ctx)
    save_curation(tmp_path / "r", ts, rep3, dataset=small_split.name, protocol=small_split.protocol)
    back3, meta3 = load_curated(tmp_path / "r", small_split)
    assert meta3["format"] == 1 and not meta3["regenerated"]
    np.testing.assert_array_equal(back3.data.sample_id, kept.data.sample_id)


def test_regenerator_pretraining_resumes_after_an_interruption(tmp_path, monkeypatch):
    """An interrupted pre-training continues from its per-epoch checkpoint and ends with the same weights
    and history as an uninterrupted one; the checkpoint is removed at the end; another run's is refused."""
    from recsift.errors import ConfigError
    from recsift.regen import regenerator as rg

    src = np.array([[6, 1, 2, 3, 7, 0], [6, 2, 3, 4, 7, 0], [6, 1, 4, 5, 3, 7], [6, 5, 4, 3, 7, 0]])
    tgt = np.array([[6, 1, 3, 7], [6, 2, 4, 7], [6, 4, 5, 7], [6, 5, 3, 7]])
    cfg = rg.RegenConfig(epochs=3, max_src=6, batch_size=2)

    def model(init_seed):
        torch.manual_seed(init_seed)
        return rg.Regenerator(5, cfg)

    whole = model(0)
    want = rg.pretrain(whole, src, tgt, seed=3)
    ckpt = tmp_path / "pre.pt"
    real, calls = rg.length_batches, []

    def interrupted(*a, **k):  # the third epoch's batches are never drawn
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(rg, "length_batches", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rg.pretrain(model(0), src, tgt, seed=3, checkpoint=ckpt, fingerprint="k")
    monkeypatch.setattr(rg, "length_batches", real)
    assert ckpt.is_file()
    with pytest.raises(ConfigError, match="belongs to another run"):
        rg.pretrain(model(0), src, tgt, seed=3, checkpoint=ckpt, fingerprint="other")
    resumed = model(1)  # other initial weights: the checkpoint's replace them
    got = rg.pretrain(resumed, src, tgt, seed=3, checkpoint=ckpt, fingerprint="k")
    assert [h["loss"] for h in got] == pytest.approx([h["loss"] for h in want], abs=1e-6)
    for (k, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, msg=k)
    assert not ckpt.exists()


def test_gnn_graph_hand_example():
    from recsift.models.dr4sr_gnn import transition_graph

    a = transition_graph(*csr([[1, 2, 3], [3, 1]]), 3, window=2).to_dense()
    # raw: 1->2 (1), 1->3 (1/2), 2->3 (1), 3->1 (1); symmetrised + I, rows / neighbour count
    want = torch.tensor([[0, 0, 0, 0], [0, 1, 1, 1.5], [0, 1, 1, 1], [0, 1.5, 1, 1]])
    want = want / torch.tensor([1, 3, 3, 3.0])[:, None]
    torch.testing.assert_close(a, want)


def test_gnn_graph_row_plus_col_norm_is_the_released_codes():
    from recsift.errors import ConfigError
    from recsift.models.dr4sr_gnn import transition_graph
    from recsift.models.registry import build_model

    a = transition_graph(*csr([[1, 2, 3], [3, 4]]), 4, window=2, norm="row+col").to_dense()
    # S = raw + raw^T + I with raw 1->2 (1), 1->3 (1/2), 2->3 (1), 3->4 (1); neighbours 3, 3, 4, 2
    s = torch.tensor([[0, 0, 0, 0, 0], [0, 1, 1, .5, 0], [0, 1, 1, 1, 0], [0, .5, 1, 1, 1], [0, 0, 0, 1, 1.]])
    inv = 1 / torch.tensor([1, 3, 3, 4, 2.])
    torch.testing.assert_close(a, s * inv[:, None] + s * inv[None, :])
    assert a[3, 4] == pytest.approx(0.75) and a[1, 3] == pytest.approx(0.5 * (1 / 3 + 1 / 4))
    # row_sum: rows divided by their weight sums (row-stochastic); repeating the data leaves its rows summing
    # to 1, where the neighbour-count normalisation's rows grow with the repetition
    r = transition_graph(*csr([[1, 2, 3], [3, 4]]), 4, window=2, norm="row_sum").to_dense()
    torch.testing.assert_close(r, s / s.sum(1).clamp_min(1e-12)[:, None])
    seqs3 = [[1, 2, 3], [3, 4]] * 3
    torch.testing.assert_close(transition_graph(*csr(seqs3), 4, norm="row_sum").to_dense().sum(1),
                               torch.tensor([0, 1, 1, 1, 1.]))
    once, thrice = (transition_graph(*csr(q), 4).to_dense().sum(1) for q in ([[1, 2, 3], [3, 4]], seqs3))
    assert (thrice[1:] > once[1:]).all()
    with pytest.raises(ConfigError, match="graph_norm='sym' is not one of"):
        build_model("dr4sr_gnn", n_items=4, graph_norm="sym")


def test_gnn_backbone_trains_on_synthetic_and_beats_popularity():
    split = leave_one_out(generate(400, 60, seed=1).interactions)
    cfg = TrainConfig(epochs=12, batch_size=128, lr=3e-3, seed=0, patience=None, max_len=20,
                      metrics=("recall@10", "ndcg@10"), valid_metric="ndcg@10")
    gnn = train_model(split, "dr4sr_gnn", cfg, model_params={"hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2})
    assert gnn.model.graph is not None
    pop = train_model(split, "pop", cfg)
    assert gnn.test["recall@10"] > pop.test["recall@10"] + 0.05, (gnn.test, pop.test)


def test_dr4sr_plus_end_to_end_ablation_with_gnn_target(small_split):
    from recsift.regen import BilevelConfig, regenerate_dataset, train_bilevel
    from recsift.models.registry import build_model

    ts = small_split.training_set()
    ctx = CurationContext(split=small_split, seed=0, max_len=20)
    reg = regenerate_dataset(ts, ctx, **REGEN)
    net = build_model("dr4sr_gnn", n_items=small_split.n_items, max_len=20)
    cfg = BilevelConfig(epochs=2, warmup_epochs=1, interval=2, end_to_end=True,
                        train=TrainConfig(batch_size=64, loss="bce", patience=None, max_len=20, seed=0))
    res = train_bilevel(net, reg.train_set, ts, reg.sample_segment == 1, cfg)
    assert sum(h["outer_steps"] for h in res.history) == 0  # end to end: no implicit step
    # the item graph was built from the regenerated sequences (more edges than the original data gives)
    net_orig = build_model("dr4sr_gnn", n_items=small_split.n_items, max_len=20)
    net_orig.prepare_data(ts)
    assert net.graph._nnz() > net_orig.graph._nnz()


def test_gnn_cpu_product_matches_torch_sparse_in_value_gradient_and_second_order():
    """The scipy CSR product used on CPU gives the torch.sparse product's propagation, gradient, and
    Hessian-vector product (DR4SR+'s implicit hyper-gradient differentiates twice)."""
    from recsift.models.registry import build_model

    split = leave_one_out(generate(200, 40, seed=3).interactions)
    net = build_model("dr4sr_gnn", n_items=split.n_items, max_len=20)
    net.prepare_data(split.training_set())
    w = net.item_embedding.weight
    v = torch.randn_like(w)

    def grads(use_csr: bool):
        saved = net._csr
        net._csr = saved if use_csr else None
        net._table = None
        try:
            out = net.propagated()
            loss = (out ** 2).sum() * (out.sum() ** 2)  # not quadratic: the second derivative depends on w
            (g,) = torch.autograd.grad(loss, w, create_graph=True)
            (hv,) = torch.autograd.grad((g * v).sum(), w)
            return out.detach(), g.detach(), hv
        finally:
            net._csr, net._table = saved, None

    for got, want in zip(grads(True), grads(False)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_dr4sr_plus_bilevel_with_gnn_target_takes_implicit_steps(small_split):
    """The implicit hyper-gradient (second-order, through the GNN's graph product on CPU) runs and gives the
    personalizer a finite, non-zero hyper-gradient."""
    from recsift.models.registry import build_model
    from recsift.regen import BilevelConfig, regenerate_dataset, train_bilevel

    ts = small_split.training_set()
    reg = regenerate_dataset(ts, CurationContext(split=small_split, seed=0, max_len=20), **REGEN)
    net = build_model("dr4sr_gnn", n_items=small_split.n_items, max_len=20)
    cfg = BilevelConfig(epochs=2, warmup_epochs=1, interval=2,
                        train=TrainConfig(batch_size=64, loss="bce", patience=None, max_len=20, seed=0))
    res = train_bilevel(net, reg.train_set, ts, reg.sample_segment == 1, cfg)
    assert net._csr is not None and sum(h["outer_steps"] for h in res.history) > 0
    norms = [h["hypergrad_norm"] for h in res.history if h["outer_steps"]]
    assert norms and all(np.isfinite(norms)) and max(norms) > 0
    assert all(torch.isfinite(p).all() for p in res.personalizer.parameters())
