"""SR-GNN / GCSAN and the batched session-graph builder."""
from __future__ import annotations

import pytest
import torch

from recsift.errors import ConfigError
from recsift.models.gcsan import GCSAN
from recsift.models.registry import get_model_class
from recsift.models.session_graph import build_session_graph
from recsift.models.srgnn import SRGNN

MODELS = [SRGNN, GCSAN]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny batches: one thread avoids OpenMP spin-wait overhead (10x slower on a busy 2-core box)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def reference_graph(row: list[int], n: int):
    """Per-sample graph written the slow, obvious way (RecBole 1.2.1's ``_get_slice`` semantics)."""
    nodes = sorted(set(row))  # includes item 0 when the row is padded
    alias = [nodes.index(x) for x in row]
    edge = [[0.0] * n for _ in range(n)]
    for i in range(len(row) - 1):
        if row[i + 1] == 0:
            break
        edge[alias[i]][alias[i + 1]] = 1.0
    indeg = [sum(edge[u][v] for u in range(n)) or 1.0 for v in range(n)]
    outdeg = [sum(edge[u]) or 1.0 for u in range(n)]
    a_in = [[edge[j][i] / indeg[i] for j in range(n)] for i in range(n)]
    a_out = [[edge[i][j] / outdeg[i] for j in range(n)] for i in range(n)]
    items = nodes + [0] * (n - len(nodes))
    return alias, items, a_in, a_out


def random_batch(seed: int, b: int = 64, length: int = 15, n_items: int = 6):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (b,), generator=g)
    lengths[0], lengths[1] = length, 1  # one full row, one single click
    seq = torch.randint(1, n_items + 1, (b, length), generator=g)
    seq[torch.arange(length)[None, :] >= lengths[:, None]] = 0
    return seq, lengths


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_graph_builder_matches_per_sample_reference(seed):
    seq, _ = random_batch(seed)
    length = seq.size(1)
    g = build_session_graph(seq, n_nodes=length)
    for b, row in enumerate(seq.tolist()):
        alias, items, a_in, a_out = reference_graph(row, length)
        assert g.alias[b].tolist() == alias
        assert g.items[b].tolist() == items
        assert g.n_nodes[b].item() == len(set(row))
        # exact equality: 1/k computed in float32 is the correctly rounded value either way
        assert torch.equal(g.a_in[b], torch.tensor(a_in))
        assert torch.equal(g.a_out[b], torch.tensor(a_out))


def test_graph_builder_trims_node_axis_to_batch_max():
    seq, _ = random_batch(3)
    full = build_session_graph(seq, n_nodes=seq.size(1))
    g = build_session_graph(seq)
    n = g.items.size(1)
    assert n == int(full.n_nodes.max()) < seq.size(1)
    assert torch.equal(g.alias, full.alias)
    assert torch.equal(g.items, full.items[:, :n])
    assert torch.equal(g.a_in, full.a_in[:, :n, :n])
    assert torch.equal(g.a_out, full.a_out[:, :n, :n])
    assert not full.a_in[:, n:].any() and not full.a_out[:, :, n:].any()
    with pytest.raises(ValueError):
        build_session_graph(seq, n_nodes=n - 1)


def test_graph_builder_recbole_docstring_example():
    # session 1, 2, 3, 2, 4 (RecBole SRGNN docstring): nodes 1..4 -> 0..3, no padding node
    g = build_session_graph(torch.tensor([[1, 2, 3, 2, 4]]))
    h = 0.5
    assert g.items.tolist() == [[1, 2, 3, 4]]
    assert g.alias.tolist() == [[0, 1, 2, 1, 3]]
    assert g.a_out[0].tolist() == [[0, 1, 0, 0], [0, 0, h, h], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert g.a_in[0].tolist() == [[0, 0, 0, 0], [h, 0, h, 0], [0, 1, 0, 0], [0, 1, 0, 0]]


def test_graph_builder_repeats_and_self_loops():
    # 7 7 3 7 3 0 0: edges 7->7, 7->3 (twice, counted once), 3->7; nodes [0, 3, 7]
    g = build_session_graph(torch.tensor([[7, 7, 3, 7, 3, 0, 0]]))
    assert g.items.tolist() == [[0, 3, 7]]
    assert g.alias.tolist() == [[2, 2, 1, 2, 1, 0, 0]]
    assert g.a_out[0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0.5, 0.5]]
    assert g.a_in[0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0.5, 0.5]]


@pytest.mark.parametrize("node_bias", [True, False])
def test_packed_gnn_step_equals_recbole_dense_cell(node_bias):
    """The packed edge-list cell (addmm per gate) computes RecBole 1.2.1's ``GNNCell`` on the padded
    dense graph: ``A_in``/``A_out`` products, concatenation, chunked GRU gates."""
    import torch.nn.functional as F

    from recsift.models.session_graph import GatedGraphStep, gather_nodes

    torch.manual_seed(0)
    seq, _ = random_batch(4, b=32, length=12, n_items=9)
    g = build_session_graph(seq)
    step = GatedGraphStep(8, step=2, node_bias=node_bias)
    emb = torch.nn.Embedding(10, 8)
    hidden = emb(g.items)  # [B, N, d], RecBole's padded node states
    for _ in range(2):
        x_in = torch.matmul(g.a_in, step.linear_edge_in(hidden))
        x_out = torch.matmul(g.a_out, step.linear_edge_out(hidden))
        if node_bias:
            x_in, x_out = x_in + step.b_iah, x_out + step.b_ioh
        gi = F.linear(torch.cat([x_in, x_out], 2), step.w_ih, step.b_ih)
        gh = F.linear(hidden, step.w_hh, step.b_hh)
        i_r, i_i, i_n = gi.chunk(3, 2)
        h_r, h_i, h_n = gh.chunk(3, 2)
        reset, inp = torch.sigmoid(i_r + h_r), torch.sigmoid(i_i + h_i)
        hidden = (1 - inp) * hidden + inp * torch.tanh(i_n + reset * h_n)
    want = hidden.gather(1, g.alias.unsqueeze(-1).expand(-1, -1, 8))
    got = gather_nodes(step(g, emb(g.node_items)), g)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert g.node_items.numel() == int(g.n_nodes.sum()) < g.items.numel()  # padding slots are not computed


@pytest.mark.parametrize("cls", MODELS)
def test_registered_and_shapes(cls):
    assert get_model_class(cls.name) is cls
    assert not cls.causal and not cls.pad_left
    model = cls(n_items=20, max_len=15)
    seq, lengths = random_batch(0, b=8, n_items=20)
    h = model(seq, lengths)
    assert h.shape == (8, 64) and torch.isfinite(h).all()
    assert model.logits(h).shape == (8, 21)


def test_gcsan_defaults_follow_recbole_yaml():
    hp = GCSAN.hparams()
    assert (hp["n_layers"], hp["n_heads"], hp["inner_size"], hp["step"]) == (2, 2, 256, 1)
    assert (hp["hidden_dropout_prob"], hp["attn_dropout_prob"], hp["weight"], hp["reg_weight"]) == (0.5, 0.5, 0.6, 5e-5)
    assert SRGNN.hparams() == {"max_len": 50, "embedding_size": 64, "step": 1}


@pytest.mark.parametrize("cls", MODELS)
def test_padding_invariance(cls):
    torch.manual_seed(0)
    model = cls(n_items=20).eval()
    seq, lengths = random_batch(5, b=16, length=20, n_items=20)
    with torch.no_grad():
        batch = model(seq, lengths)
        for i in range(len(seq)):
            n = int(lengths[i])
            alone = model(seq[i : i + 1, :n], lengths[i : i + 1])
            torch.testing.assert_close(alone[0], batch[i], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", MODELS)
def test_gradients_reach_item_embedding(cls):
    torch.manual_seed(0)
    model = cls(n_items=20).train()
    seq, lengths = random_batch(1, b=8, n_items=20)
    h = model(seq, lengths)
    loss = torch.nn.functional.cross_entropy(model.logits(h)[:, 1:], torch.arange(8) % 20)
    loss.backward()
    grad = model.item_embedding.weight.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad[seq.unique()[1:]].abs().sum(1).gt(0).all()
    assert all(p.grad is not None for p in model.parameters())


def test_gcsan_extra_loss_is_recbole_emb_loss():
    model = GCSAN(n_items=20, reg_weight=1e-3)
    e = model.item_embedding.weight
    expected = 1e-3 * e.detach().pow(2).sum().sqrt() / 21
    loss = model.extra_loss()
    assert loss.dim() == 0
    torch.testing.assert_close(loss.detach(), expected)
    loss.backward()
    assert e.grad is not None and e.grad.abs().sum() > 0


@pytest.mark.parametrize("bad", [{"weight": 1.5}, {"n_heads": 3}, {"hidden_act": "nope"}, {"step": 0}])
def test_gcsan_rejects_bad_config(bad):
    with pytest.raises(ConfigError):
        GCSAN(n_items=20, **bad)


@pytest.mark.parametrize("cls", MODELS)
def test_overfits_tiny_dataset(cls):
    """30 fixed sessions over 20 items, next item a deterministic function of the session."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(42)
    n_items, n, length = 20, 30, 8
    lengths = torch.randint(2, length + 1, (n,), generator=g)
    seq = torch.randint(1, n_items + 1, (n, length), generator=g)
    seq[torch.arange(length)[None, :] >= lengths[:, None]] = 0
    last = seq.gather(1, (lengths - 1).view(-1, 1)).squeeze(1)
    target = (3 * last + 7 * seq[:, 0] + lengths) % n_items + 1
    model = cls(n_items=n_items)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        model.train()
        opt.zero_grad()
        logits = model.logits(model(seq, lengths))[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits, target - 1)
        if hasattr(model, "extra_loss"):
            loss = loss + model.extra_loss()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model.logits(model(seq, lengths))[:, 1:].argmax(1) + 1
    assert (pred == target).float().mean() > 0.9
