"""Metric definitions: agreement with ranx, hand-worked values, registry and parsing."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from recsift.errors import ConfigError, UnknownNameError
from recsift.evaluate import (
    INVALID_RANK,
    compute_metric,
    list_metrics,
    parse_metric,
    propensity_weights,
    register_metric,
    target_ranks,
)
from recsift.evaluate.metrics import ParsedMetric


def _random_problem(seed: int, n_cases: int = 40, n_items: int = 200, max_targets: int = 20):
    """Random float scores (no ties) and 1..max_targets distinct targets per case."""
    rng = np.random.default_rng(seed)
    scores = rng.random((n_cases, n_items + 1))
    targets = [rng.choice(np.arange(1, n_items + 1), size=int(rng.integers(1, max_targets + 1)), replace=False)
               for _ in range(n_cases)]
    return scores, targets


def _our_ranks(scores: np.ndarray, targets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(t) for t in targets)
    tgt = np.zeros((len(targets), width), dtype=np.int64)
    valid = np.zeros((len(targets), width), dtype=bool)
    for i, t in enumerate(targets):
        tgt[i, : len(t)] = t - 1  # column indices into scores[:, 1:]
        valid[i, : len(t)] = True
    ranks = target_ranks(torch.from_numpy(scores[:, 1:]), torch.from_numpy(tgt), torch.from_numpy(valid))
    return ranks.numpy(), np.array([len(t) for t in targets])


RANX_NAMES = {"recall": "recall", "hit": "hit_rate", "ndcg": "ndcg", "mrr": "mrr",
              "precision": "precision", "f1": "f1"}


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_match_ranx(seed: int) -> None:
    ranx = pytest.importorskip("ranx")
    scores, targets = _random_problem(seed)
    ranks, n_t = _our_ranks(scores, targets)
    qids = [f"q{i:03d}" for i in range(len(targets))]
    qrels = ranx.Qrels({q: {f"d{j}": 1 for j in t.tolist()} for q, t in zip(qids, targets)})
    run = ranx.Run({q: {f"d{j}": float(scores[i, j]) for j in range(1, scores.shape[1])}
                    for i, q in enumerate(qids)})
    names = [f"{r}@{k}" for r in RANX_NAMES.values() for k in (1, 5, 10, 20)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba type-safety warnings inside ranx
        ranx.evaluate(qrels, run, names, return_mean=False)
    checked = 0
    for ours, theirs in RANX_NAMES.items():
        for k in (1, 5, 10, 20):
            expected = np.array([run.scores[f"{theirs}@{k}"][q] for q in qids])
            got = compute_metric(f"{ours}@{k}", ranks, n_t)
            np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=f"{ours}@{k}")
            checked += 1
    assert checked == 24
    # the problem is not degenerate: some cases hit, some miss at K=10
    rec = compute_metric("recall@10", ranks, n_t)
    assert 0 < (rec > 0).sum() < len(rec)


def test_hand_worked_single_and_multi_target() -> None:
    # case 0: one target at rank 3; case 1: targets at ranks 1 and 4 (+ a padding slot)
    ranks = np.array([[3, INVALID_RANK], [1, 4]])
    n_t = np.array([1, 2])
    k = 3
    np.testing.assert_allclose(compute_metric("recall@3", ranks, n_t), [1.0, 0.5])
    np.testing.assert_allclose(compute_metric("hit@3", ranks, n_t), [1.0, 1.0])
    np.testing.assert_allclose(compute_metric("precision@3", ranks, n_t), [1 / 3, 1 / 3])
    np.testing.assert_allclose(compute_metric("mrr@3", ranks, n_t), [1 / 3, 1.0])
    np.testing.assert_allclose(compute_metric("mrr@2", ranks, n_t), [0.0, 1.0])
    np.testing.assert_allclose(compute_metric("recall_norm@3", ranks, n_t), [1.0, 0.5])
    np.testing.assert_allclose(compute_metric("recall_norm@1", ranks, n_t), [0.0, 1.0])
    # f1: case 0: P=1/3, R=1 -> 0.5; case 1: P=1/3, R=1/2 -> 0.4
    np.testing.assert_allclose(compute_metric(f"f1@{k}", ranks, n_t), [0.5, 0.4])
    # ndcg: case 0: (1/log2 4) / 1 = 0.5; case 1: 1 / (1 + 1/log2 3)
    np.testing.assert_allclose(compute_metric("ndcg@3", ranks, n_t),
                               [0.5, 1.0 / (1.0 + 1.0 / math.log2(3))])
    # ndcg with K=5 also counts rank 4 of case 1: (1 + 1/log2 5) / (1 + 1/log2 3)
    np.testing.assert_allclose(compute_metric("ndcg@5", ranks, n_t)[1],
                               (1.0 + 1.0 / math.log2(5)) / (1.0 + 1.0 / math.log2(3)))


def test_f1_is_zero_without_hits() -> None:
    got = compute_metric("f1@2", np.array([[5, 9]]), np.array([2]))
    assert got.tolist() == [0.0]


def test_recall_norm_is_infinite_ae_hr() -> None:
    # 30 targets, 7 of them in the top 10: recall = 7/30, HR (recall_norm) = 7/10
    ranks = np.concatenate([np.arange(1, 8), np.arange(100, 123)])[None, :]
    n_t = np.array([30])
    assert compute_metric("recall@10", ranks, n_t)[0] == pytest.approx(7 / 30)
    assert compute_metric("recall_norm@10", ranks, n_t)[0] == pytest.approx(0.7)


def test_psp_hand_worked() -> None:
    # Targets (weights) A=3 (rank 1), B=1 (rank 5), C=2 (rank 2), K=2 -> m = min(2, 3) = 2.
    ranks = np.array([[1, 5, 2]])
    w = np.array([[3.0, 1.0, 2.0]])
    n_t = np.array([3])
    # hits: A and C -> 5; ideal: the two largest weights 3 + 2 = 5
    assert compute_metric("psp@2", ranks, n_t, w)[0] == pytest.approx(1.0)
    assert compute_metric("psp_orig@2", ranks, n_t, w)[0] == pytest.approx(0.5)
    # K=1: hit A (3); ideal = 3 -> 1.0; orig divides the hit sum by min(1, 3) = 1
    assert compute_metric("psp@1", ranks, n_t, w)[0] == pytest.approx(1.0)
    assert compute_metric("psp_orig@1", ranks, n_t, w)[0] == pytest.approx(1.0)
    # swap: only B (weight 1) and C (2) hit at K=2 -> 3 / 5; orig (3 / 2) / 5
    ranks2 = np.array([[7, 1, 2]])
    assert compute_metric("psp@2", ranks2, n_t, w)[0] == pytest.approx(0.6)
    assert compute_metric("psp_orig@2", ranks2, n_t, w)[0] == pytest.approx(0.3)
    # K=5 > |T|: ideal over all 3 targets = 6; hits B, C = 3 (A at rank 7 misses) -> 0.5;
    # orig divides the hit sum by min(5, 3) = 3 -> 0.5 / 3
    assert compute_metric("psp@5", ranks2, n_t, w)[0] == pytest.approx(0.5)
    assert compute_metric("psp_orig@5", ranks2, n_t, w)[0] == pytest.approx(0.5 / 3)
    assert compute_metric("psp@10", ranks2, n_t, w)[0] == pytest.approx(1.0)


def test_psp_ignores_padding_slots() -> None:
    ranks = np.array([[2, INVALID_RANK]])
    w = np.array([[2.0, 100.0]])  # padding slot weight must not enter the ideal
    assert compute_metric("psp@5", ranks, np.array([1]), w)[0] == pytest.approx(1.0)


def test_psp_needs_weights() -> None:
    with pytest.raises(ConfigError, match="item weights"):
        compute_metric("psp@5", np.array([[1]]), np.array([1]))


def test_propensity_weights_formula() -> None:
    counts = np.array([0, 1, 10, 1000])
    n_inter, a, b = 5000, 0.55, 1.5
    c = (math.log(n_inter) - 1) * (b + 1) ** a
    expected = [1 + c * (n + b) ** (-a) for n in counts]
    np.testing.assert_allclose(propensity_weights(counts, n_inter), expected)
    w = propensity_weights(counts, n_inter)
    assert np.all(np.diff(w) < 0)  # rarer items weigh more
    # A=1, B=0: w = 1 + (ln N - 1) / n
    np.testing.assert_allclose(propensity_weights(np.array([10]), n_inter, A=1.0, B=0.0),
                               [1 + (math.log(n_inter) - 1) / 10])


def test_parse_metric() -> None:
    assert parse_metric("ndcg@10") == ParsedMetric("ndcg", 10)
    assert parse_metric("NDCG@10").key == "ndcg@10"
    assert parse_metric("recall_norm@100") == ParsedMetric("recall_norm", 100)
    for bad in ["ndcg", "ndcg@0", "ndcg@-1", "ndcg@ten", "ndcg@"]:
        with pytest.raises(ConfigError, match=r"<metric>@<K>"):
            parse_metric(bad)


def test_unknown_metric_lists_known() -> None:
    with pytest.raises(UnknownNameError) as err:
        parse_metric("ndgc@10")
    msg = str(err.value)
    assert "ndgc" in msg and "Did you mean 'ndcg'" in msg
    for name in ["recall", "hit", "ndcg", "mrr", "precision", "f1", "psp", "psp_orig", "recall_norm"]:
        assert name in msg


def test_registry() -> None:
    assert {"recall", "hit", "recall_norm", "ndcg", "mrr", "precision", "f1", "psp",
            "psp_orig"} <= set(list_metrics())
    assert list_metrics() == sorted(list_metrics())
    with pytest.raises(ConfigError, match="already registered"):
        register_metric("ndcg")(lambda ranks, n_targets, k, weights=None: ranks[:, 0] * 0.0)
    with pytest.raises(ConfigError, match="lower-case"):
        register_metric("Bad@Name")
