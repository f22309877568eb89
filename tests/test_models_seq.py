"""Contract and exactness tests of the neural sequential models.

GRU4Rec, NARM, SASRec, CORE (RecBole 1.2.1 architectures) and FMLP-Rec. Every model: output
shapes, padding invariance, gradients, RecBole's parameter counts and a tiny overfitting
run; causal models also: ``forward_all`` equals ``forward`` on every prefix (the all-prefix
training layout relies on it).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recsift.errors import ConfigError
from recsift.models import core, fmlp, gru4rec, layers, narm, sasrec  # noqa: F401  (register the models)
from recsift.models.registry import build_model, get_model_class

N_ITEMS = 100
MAX_LEN = 20
NAMES = ["gru4rec", "narm", "sasrec", "core", "fmlp"]
CAUSAL = ["gru4rec", "narm", "sasrec", "core"]
# (name, constructor overrides): CORE's "ave" encoder is a second code path
VARIANTS = [(n, {}) for n in NAMES] + [("core", {"dnn_type": "ave"})]
VARIANT_IDS = [n if not kw else f"{n}-{'-'.join(map(str, kw.values()))}" for n, kw in VARIANTS]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tensors here are tiny: one thread avoids OpenMP hand-offs, which under a loaded
    machine made these tests 10-50x slower with two threads."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make(name: str, n_items: int = N_ITEMS, max_len: int = MAX_LEN, seed: int = 0, **kw):
    torch.manual_seed(seed)
    return build_model(name, n_items=n_items, max_len=max_len, **kw)


def pad(rows: list[list[int]], width: int, left: bool) -> torch.Tensor:
    out = torch.zeros(len(rows), width, dtype=torch.long)
    for b, r in enumerate(rows):
        if left:
            out[b, width - len(r):] = torch.tensor(r)
        else:
            out[b, : len(r)] = torch.tensor(r)
    return out


def random_rows(lengths: list[int], seed: int = 0, n_items: int = N_ITEMS) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, n_items + 1, size=n).tolist() for n in lengths]


def test_registry_and_class_attributes():
    expect = {"gru4rec": (True, False), "narm": (True, False), "sasrec": (True, False),
              "core": (True, False), "fmlp": (False, True)}
    for name, (causal, left) in expect.items():
        cls = get_model_class(name)
        assert cls.name == name
        assert (cls.causal, cls.pad_left) == (causal, left)
        assert cls.paper
        # hyper-parameters round-trip through the registry
        m = build_model(name, n_items=7, **cls.hparams())
        assert m.n_items == 7 and m.max_len == 50


@pytest.mark.parametrize("name,kw", VARIANTS, ids=VARIANT_IDS)
def test_shapes(name, kw):
    m = make(name, **kw)
    lengths = [MAX_LEN, 5, 1]
    seq = pad(random_rows(lengths), MAX_LEN, m.pad_left)
    lt = torch.tensor(lengths)
    h = m(seq, lt)
    assert h.shape == (3, 64) and h.dtype == torch.float32
    assert m.logits(h).shape == (3, N_ITEMS + 1)
    assert m.output_embedding().shape == (N_ITEMS + 1, 64)
    assert m.grand_scale(h).shape == (3,)
    if m.causal:
        assert m.forward_all(seq, lt).shape == (3, MAX_LEN, 64)
    else:
        with pytest.raises(NotImplementedError):
            m.forward_all(seq, lt)


@pytest.mark.parametrize("name,kw", VARIANTS, ids=VARIANT_IDS)
def test_padding_invariance(name, kw):
    """A row's representation is the same in a mixed-length batch, alone, and with extra padding."""
    m = make(name, **kw).eval()
    lengths = [MAX_LEN, 9, 4, 1]
    rows = random_rows(lengths, seed=1)
    with torch.no_grad():
        batch = m(pad(rows, MAX_LEN, m.pad_left), torch.tensor(lengths))
        for b, r in enumerate(rows):
            alone = m(pad([r], len(r), m.pad_left), torch.tensor([len(r)]))
            torch.testing.assert_close(batch[b], alone[0], atol=1e-5, rtol=1e-5)
            if len(r) < MAX_LEN:  # a narrower batch of rows that fit
                short = m(pad([r, r[:1]], len(r) + 1, m.pad_left), torch.tensor([len(r), 1]))
                torch.testing.assert_close(batch[b], short[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,kw", [v for v in VARIANTS if v[0] in CAUSAL],
                         ids=[i for i, v in zip(VARIANT_IDS, VARIANTS) if v[0] in CAUSAL])
def test_forward_all_equals_forward_on_every_prefix(name, kw):
    m = make(name, **kw).eval()
    lengths = [MAX_LEN, 11, 3, 1]
    rows = random_rows(lengths, seed=2)
    seq = pad(rows, MAX_LEN, left=False)
    with torch.no_grad():
        allp = m.forward_all(seq, torch.tensor(lengths))
        for b, r in enumerate(rows):
            prefixes = pad([r[: j + 1] for j in range(len(r))], MAX_LEN, left=False)
            each = m(prefixes, torch.arange(1, len(r) + 1))
            torch.testing.assert_close(allp[b, : len(r)], each, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,kw", VARIANTS, ids=VARIANT_IDS)
def test_gradients_reach_every_parameter(name, kw):
    m = make(name, **kw).train()
    lengths = [MAX_LEN, 6, 2]
    seq = pad(random_rows(lengths, seed=3), MAX_LEN, m.pad_left)
    targets = torch.tensor([3, 4, 5])
    logits = m.logits(m(seq, torch.tensor(lengths)))
    F.cross_entropy(logits[:, 1:], targets - 1).backward()  # column 0 (padding) excluded, as the trainer does
    grad = m.item_embedding.weight.grad
    used = torch.unique(torch.cat([seq[seq > 0], targets]))
    assert grad is not None and torch.isfinite(grad).all()
    assert (grad[used].abs().sum(1) > 0).all()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_parameter_counts_match_recbole():
    """Counts of RecBole 1.2.1's architectures (RecBole's n_items includes the padding row)."""
    n, d, L = N_ITEMS, 64, 50
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    emb = (n + 1) * d
    # GRU4Rec: embedding, bias-free GRU 64->128 (3 gates), dense 128->64 with bias
    h = 128
    assert count(make("gru4rec", max_len=L)) == emb + 3 * h * d + 3 * h * h + (h * d + d)
    assert count(make("gru4rec", max_len=L)) == 88448
    # NARM: embedding, GRU, A1, A2 (128x128), v (128), B (256->64), no biases
    assert count(make("narm", max_len=L)) == emb + 3 * h * d + 3 * h * h + 2 * h * h + h + 2 * h * d
    # SASRec: item + position embedding, LayerNorm, 2 x (4 attention Linear + LN + FFN 64-256-64 + LN)
    inner = 256
    block = 4 * (d * d + d) + 2 * d + (d * inner + inner) + (inner * d + d) + 2 * d
    assert count(make("sasrec", max_len=L)) == emb + L * d + 2 * d + 2 * block
    assert count(make("sasrec", max_len=L)) == 109760
    # CORE: SASRec's encoder without... plus Linear(64, 1); "ave" has only the item table
    assert count(make("core", max_len=L)) == emb + L * d + 2 * d + 2 * block + (d + 1)
    assert count(make("core", max_len=L, dnn_type="ave")) == emb
    # FMLP-Rec: embeddings, LayerNorm, 2 x (complex filter [26, 64, 2] + LN + FFN 64-256-64 + LN)
    fblock = (L // 2 + 1) * d * 2 + 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * d
    assert count(make("fmlp", max_len=L)) == emb + L * d + 2 * d + 2 * fblock


def test_initialisation_follows_the_references():
    m = make("sasrec", max_len=50)
    w = m.trm_encoder.layer[0]["attention"].query.weight
    assert abs(w.std().item() - 0.02) < 0.003
    assert m.trm_encoder.layer[0]["attention"].query.bias.abs().max() == 0
    assert torch.equal(m.LayerNorm.weight, torch.ones(64))
    c = make("core", max_len=50)
    for p in c.parameters():  # RecBole's CORE re-draws every parameter from U(-1/8, 1/8)
        assert p.abs().max() <= 1 / 8 + 1e-7
    f = make("fmlp", max_len=50)
    assert torch.equal(f.layer[0]["filterlayer"].complex_weight, f.layer[1]["filterlayer"].complex_weight)
    g = make("gru4rec", max_len=50)
    bound = (6 / (128 + 3 * 128)) ** 0.5  # xavier_uniform on the stacked [3*128, 128] hidden weights
    assert g.gru_layers.weight_hh_l0.abs().max() <= bound + 1e-6


def test_fmlp_filter_equals_fft_form():
    m = make("fmlp").eval()
    layer = m.layer[0]["filterlayer"]
    with torch.no_grad():
        layer.complex_weight.normal_()  # a non-trivial filter
        x = torch.randn(5, MAX_LEN, 64)
        want = layer.LayerNorm(layer.filter_fft(x) + x)
        torch.testing.assert_close(layer(x), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_fmlp_forward_computes_only_the_last_position_of_the_last_block(n_layers):
    m = make("fmlp", n_layers=n_layers).eval()
    with torch.no_grad():
        for blk in m.layer:
            blk["filterlayer"].complex_weight.normal_()
    seq = pad(random_rows([7, 2, MAX_LEN]), MAX_LEN, left=True)
    lengths = torch.tensor([7, 2, MAX_LEN])
    torch.testing.assert_close(m(seq, lengths), m.encode(seq)[:, -1], atol=1e-5, rtol=1e-5)
    short = seq[:2, -7:]  # shorter than max_len: padded inside the model
    torch.testing.assert_close(m(short, lengths[:2]), m.encode(seq[:2])[:, -1], atol=1e-5, rtol=1e-5)


def test_core_cosine_logits_and_item_dropout():
    m = make("core").eval()
    seq = pad(random_rows([6, 3]), MAX_LEN, left=False)
    lengths = torch.tensor([6, 3])
    h = m(seq, lengths)
    torch.testing.assert_close(h.norm(dim=-1), torch.ones(2))
    z = m.logits(h)
    want = h @ F.normalize(m.item_embedding.weight, dim=-1).t() / 0.07
    torch.testing.assert_close(z, want)
    assert z.abs().max() <= 1 / 0.07 + 1e-4
    torch.testing.assert_close(m.grand_scale(h), torch.full((2,), 1 / 0.07))
    assert torch.equal(m.logits(h), z)  # no item dropout at evaluation
    m.train()
    torch.manual_seed(5)
    assert not torch.allclose(m.logits(h), m.logits(h))  # item dropout while training
    # "ave": the session is the mean of the (normalised) item embeddings
    a = make("core", dnn_type="ave").eval()
    mean = a.item_embedding(seq[1, :3]).mean(0)
    torch.testing.assert_close(a(seq, lengths)[1], F.normalize(mean, dim=0))


@pytest.mark.parametrize("name", ["sasrec", "core", "fmlp"])
def test_longer_than_max_len_is_a_config_error(name):
    m = make(name)
    with pytest.raises(ConfigError, match="max_len"):
        m(torch.ones(2, MAX_LEN + 1, dtype=torch.long), torch.tensor([MAX_LEN + 1] * 2))


@pytest.mark.parametrize("name", NAMES)
def test_overfits_a_tiny_deterministic_task(name):
    """30 fixed sequences over 20 items; the next item is the sequence's first item."""
    rng = np.random.default_rng(0)
    n_items, n = 20, 30
    lengths = rng.integers(3, 11, size=n)
    rows = [rng.permutation(np.arange(1, n_items + 1))[:k].tolist() for k in lengths]
    targets = torch.tensor([r[0] for r in rows])
    m = make(name, n_items=n_items, max_len=10, seed=0)
    seq, lt = pad(rows, 10, m.pad_left), torch.tensor(lengths)
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    m.train()
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(m.logits(m(seq, lt))[:, 1:], targets - 1).backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        acc = (m.logits(m(seq, lt))[:, 1:].argmax(1) + 1 == targets).float().mean().item()
    assert acc > 0.9, f"{name}: training accuracy {acc:.2f}"


def test_fast_dropout_matches_dropout_semantics():
    torch.manual_seed(0)
    x = torch.ones(300_000, requires_grad=True)
    for p in (0.2, 0.5):
        y = layers.dropout(x, p, True)
        kept = y > 0
        assert abs(kept.float().mean().item() - (1 - p)) < 5e-3
        assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)), rtol=1e-4)
        (g,) = torch.autograd.grad(y.sum(), x)
        assert torch.equal(g, y.detach())  # d(x * mask)/dx = mask
    assert layers.dropout(x, 0.5, False) is x
    with pytest.raises(ConfigError):
        layers.Dropout(1.5)


def test_use_fast_dropout_swaps_torch_transformer_dropouts():
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, 0.3, batch_first=True)
    ref = copy.deepcopy(layer).eval()
    layers.use_fast_dropout(layer)
    drops = [m for m in layer.modules() if isinstance(m, (torch.nn.Dropout, layers.Dropout))]
    assert len(drops) == 3 and all(type(m) is layers.Dropout and m.p == 0.3 for m in drops)
    x = torch.randn(4, 5, 16)
    torch.testing.assert_close(layer.eval()(x), ref(x))  # eval: no dropout either way
    torch.manual_seed(0)
    assert not torch.allclose(layer.train()(x), ref(x))  # training: masks applied


@pytest.mark.parametrize("name", ["sasrec", "core"])
def test_attention_training_path_equals_fused_path(name):
    """Training mode uses the explicit score/softmax/dropout chain, eval the fused kernel."""
    kw = dict(hidden_dropout_prob=0.0, attn_dropout_prob=1e-9)  # p rounds to 0: every key kept
    if name == "core":
        kw.update(sess_dropout=0.0)
    m = make(name, **kw)
    lengths = [MAX_LEN, 7, 1]
    seq, lt = pad(random_rows(lengths, seed=4), MAX_LEN, left=False), torch.tensor(lengths)
    with torch.no_grad():
        train_out = (m.train()(seq, lt), m.forward_all(seq, lt))
        eval_out = (m.eval()(seq, lt), m.forward_all(seq, lt))
    torch.testing.assert_close(train_out[0], eval_out[0], atol=1e-5, rtol=1e-5)
    for b, n in enumerate(lengths):
        torch.testing.assert_close(train_out[1][b, :n], eval_out[1][b, :n], atol=1e-5, rtol=1e-5)
