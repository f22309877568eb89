"""Pessimistic target ranks and the chunked full / sampled ranking evaluator."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from recsift.data.cases import EvalCases
from recsift.errors import ConfigError, DataFormatError, UnknownNameError
from recsift.evaluate import (
    INVALID_RANK,
    EvalResult,
    default_batch_size,
    evaluate,
    propensity_weights,
    target_ranks,
)

# ----------------------------------------------------------------------------- ranks


def _brute_ranks(scores: np.ndarray, targets: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Reference: items above, then tied non-targets, then tied targets in target order."""
    out = np.full(targets.shape, INVALID_RANK, dtype=np.int64)
    for b in range(scores.shape[0]):
        tset = {int(c) for c, v in zip(targets[b], valid[b]) if v}
        for j in range(targets.shape[1]):
            if not valid[b, j]:
                continue
            s = scores[b, targets[b, j]]
            above = int((scores[b] > s).sum())
            tied_other = sum(1 for c in np.flatnonzero(scores[b] == s) if int(c) not in tset)
            tied_targets_before = sum(1 for k in range(j + 1) if valid[b, k] and scores[b, targets[b, k]] == s)
            out[b, j] = above + tied_other + tied_targets_before
    return out


def _tied_problem(seed: int, t: int, n: int = 30, b: int = 25):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(b, n)).astype(np.float32)  # many ties
    scores[rng.random((b, n)) < 0.1] = -np.inf
    targets = np.stack([rng.choice(n, size=t, replace=False) for _ in range(b)])
    valid = np.ones((b, t), dtype=bool)
    if t > 1:
        lens = rng.integers(1, t + 1, size=b)
        valid = np.arange(t)[None, :] < lens[:, None]
        valid[0] = rng.random(t) < 0.5  # a non-prefix validity pattern too
        valid[0, 0] = True
    return scores, targets, valid


@pytest.mark.parametrize("t", [1, 2, 4, 5, 12])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_methods_agree_with_brute_force(t: int, seed: int) -> None:
    scores, targets, valid = _tied_problem(seed, t)
    expected = _brute_ranks(scores, targets, valid)
    for method in ("auto", "compare", "bucket"):
        got = target_ranks(torch.from_numpy(scores), torch.from_numpy(targets), torch.from_numpy(valid),
                           method=method).numpy()
        np.testing.assert_array_equal(got, expected, err_msg=method)


@pytest.mark.parametrize("t", [1, 3])
def test_blocked_comparison_counts(monkeypatch, t: int) -> None:
    """The compare path counts in row blocks: blocks smaller than the chunk give the same ranks."""
    from recsift.evaluate import ranking

    monkeypatch.setattr(ranking, "_COMPARE_BLOCK_ELEMENTS", 64)  # 2 rows of 30 per block, last one short
    scores, targets, valid = _tied_problem(7, t)
    got = target_ranks(torch.from_numpy(scores), torch.from_numpy(targets), torch.from_numpy(valid), method="compare")
    np.testing.assert_array_equal(got.numpy(), _brute_ranks(scores, targets, valid))


def test_ranks_are_a_permutation_with_ties() -> None:
    # every item is a target of its row and all scores tie: ranks must be 1..N in target order
    n = 6
    scores = torch.zeros((2, n))
    targets = torch.tensor([[3, 1, 0, 5, 4, 2], [0, 1, 2, 3, 4, 5]])
    valid = torch.ones((2, n), dtype=torch.bool)
    for method in ("compare", "bucket"):
        r = target_ranks(scores, targets, valid, method=method)
        assert r.tolist() == [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]]


def test_ranks_hand_worked_ties() -> None:
    s = torch.tensor([[0.1, 0.5, 0.5, 0.5, 0.9]])
    one = torch.tensor([[True]])
    # target col 2 ties with cols 1 and 3 (non-targets): after both, after col 4 -> rank 4
    assert target_ranks(s, torch.tensor([[2]]), one).tolist() == [[4]]
    # targets 1 and 2 tie with non-target col 3: col 3 first, then targets in order
    two = torch.tensor([[True, True]])
    for method in ("compare", "bucket"):
        assert target_ranks(s, torch.tensor([[2, 1]]), two, method=method).tolist() == [[3, 4]]
        assert target_ranks(s, torch.tensor([[4, 0]]), two, method=method).tolist() == [[1, 5]]
    # an invalid slot gets INVALID_RANK and does not influence the others, whatever it holds
    r = target_ranks(s, torch.tensor([[2, 99]]), torch.tensor([[True, False]]))
    assert r.tolist() == [[4, INVALID_RANK]]


def test_float64_scores_no_spurious_ties() -> None:
    # 1 + 1e-12 and 1 are distinct in float64 but equal in float32: ranking must keep float64
    s = torch.tensor([[1.0, 1.0 + 1e-12, 0.0]], dtype=torch.float64)
    assert target_ranks(s, torch.tensor([[1]]), torch.tensor([[True]])).tolist() == [[1]]


# ----------------------------------------------------------------------------- evaluate


def _fixed_scores(cases: EvalCases, table: np.ndarray):
    """score_fn that looks up a fixed [n_users, n_items + 1] table by user."""
    return lambda batch: table[batch.user]


def test_evaluate_hand_worked_ties_and_padding() -> None:
    # 5 items; column 0 (padding) gets the best score and must never rank
    row = np.array([100.0, 0.9, 0.5, 0.5, 0.5, 0.1], dtype=np.float32)
    cases = EvalCases.from_lists([0, 1], [[], [1]], [[3], [2, 3]], n_items=5)
    res = evaluate(lambda b: np.tile(row, (len(b), 1)), cases, ["mrr@10", "hit@3", "hit@4", "recall@3", "ndcg@4"])
    # case 0: item 3 ties items 2 and 4 -> after both and after item 1 -> rank 4
    # case 1: targets 2, 3 tie non-target 4 -> item 4 at rank 2, target 2 rank 3, target 3 rank 4
    assert res.per_case["mrr@10"].tolist() == [0.25, 1 / 3]
    assert res.per_case["hit@3"].tolist() == [0.0, 1.0]
    assert res.per_case["hit@4"].tolist() == [1.0, 1.0]
    assert res.per_case["recall@3"].tolist() == [0.0, 0.5]
    ideal2 = 1 + 1 / math.log2(3)
    np.testing.assert_allclose(res.per_case["ndcg@4"],
                               [1 / math.log2(5), (1 / math.log2(4) + 1 / math.log2(5)) / ideal2])
    assert res.means["hit@3"] == 0.5
    assert res.n_cases == 2 and res.users.tolist() == [0, 1]
    assert res.protocol["ranking"] == "full" and res.protocol["ties"] == "pessimistic"


def test_constant_model_gets_no_credit() -> None:
    cases = EvalCases.from_lists([0, 1, 2], [[], [], []], [[1], [2], [5]], n_items=5)
    res = evaluate(lambda b: np.zeros((len(b), 6), dtype=np.float32), cases, ["mrr@5", "hit@4"])
    assert res.per_case["mrr@5"].tolist() == [0.2, 0.2, 0.2]  # every target ranks last (5)
    assert res.means["hit@4"] == 0.0


def test_mask_history() -> None:
    row = np.array([0.0, 0.9, 0.5, 0.5, 0.8, 0.1], dtype=np.float32)
    # case 0: history {1, 4} masked -> target 3 ranks after item 2 only -> 2 (unmasked: 4)
    # case 1: target 5 is in the history -> -inf, ties with masked item 1 -> ranks last (5)
    cases = EvalCases.from_lists([0, 1], [[1, 4], [5, 1]], [[3], [5]], n_items=5)
    table = np.tile(row, (2, 1))
    before = table.copy()
    res = evaluate(_fixed_scores(cases, table), cases, ["mrr@5"], mask_history=True)
    assert res.per_case["mrr@5"].tolist() == [0.5, 0.2]
    assert res.protocol["mask_history"] is True
    np.testing.assert_array_equal(table, before)  # the model's scores are not modified
    res = evaluate(_fixed_scores(cases, table), cases, ["mrr@5"], mask_history=False)
    assert res.per_case["mrr@5"].tolist() == [0.25, 0.2]


def test_mask_history_leaves_torch_scores_as_they_were() -> None:
    """History masking writes -inf into a contiguous score tensor in place and restores it; a
    non-contiguous one (an expanded row) is copied. Both rank as the copied table does."""
    row = torch.tensor([0.0, 0.9, 0.5, 0.5, 0.8, 0.1])
    cases = EvalCases.from_lists([0, 1, 2], [[1, 4], [5, 1, 1], []], [[3], [5], [2]], n_items=5)
    table = row.repeat(3, 1)
    before = table.clone()
    expected = [0.5, 0.2, 0.25]  # case 2 masks nothing: items 1, 4 and (pessimistic tie) 3 rank above item 2
    res = evaluate(lambda b: table[b.user.min(): b.user.max() + 1], cases, ["mrr@5"], mask_history=True, batch_size=2)
    assert res.per_case["mrr@5"].tolist() == pytest.approx(expected)
    torch.testing.assert_close(table, before, rtol=0, atol=0)
    res = evaluate(lambda b: row.expand(len(b), -1), cases, ["mrr@5"], mask_history=True)
    assert res.per_case["mrr@5"].tolist() == pytest.approx(expected)
    torch.testing.assert_close(row, before[0], rtol=0, atol=0)


def test_sampled_candidates_hand_worked() -> None:
    row = np.array([9.0, 0.9, 0.5, 0.5, 0.8, 0.1], dtype=np.float32)
    cases = EvalCases.from_lists([0, 1, 2], [[], [], [4]], [[3], [3, 1], [3]], n_items=5)
    cand = np.array([[3, 1, 5], [3, 2, 5], [3, 4, 1]])
    cases = replace(cases, candidates=cand)
    res = evaluate(lambda b: np.tile(row, (len(b), 1)), cases, ["mrr@3", "hit@1"])
    # case 0: 3 (0.5) vs 1 (0.9), 5 (0.1) -> rank 2
    # case 1: 3 ties candidate 2 -> pessimistic rank 2; target 1 is not a candidate: ignored
    # case 2: 3 vs 4 (0.8), 1 (0.9) -> rank 3
    assert res.per_case["mrr@3"].tolist() == [0.5, 0.5, 1 / 3]
    assert res.means["hit@1"] == 0.0
    assert res.protocol["ranking"].startswith("sampled (3 candidates")
    # masking history inside the candidates: item 4 of case 2 drops below -> rank 2
    res = evaluate(lambda b: np.tile(row, (len(b), 1)), cases, ["mrr@3"], mask_history=True)
    assert res.per_case["mrr@3"].tolist() == [0.5, 0.5, 0.5]


def test_sampled_candidates_match_manual_ranking() -> None:
    rng = np.random.default_rng(3)
    n_users, n_items = 12, 150
    table = rng.random((n_users, n_items + 1)).astype(np.float32)
    hist = [rng.choice(np.arange(1, n_items + 1), size=5, replace=False) for _ in range(n_users)]
    tgt = [[int(rng.integers(1, n_items + 1))] for _ in range(n_users)]
    cases = EvalCases.from_lists(np.arange(n_users), hist, tgt, n_items)
    cases = cases.with_sampled_candidates(99, np.random.default_rng(0))
    res = evaluate(_fixed_scores(cases, table), cases, ["mrr@100"], batch_size=5)
    expected = [1.0 / (1 + int((table[u, cases.candidates[u, 1:]] > table[u, cases.candidates[u, 0]]).sum()))
                for u in range(n_users)]
    np.testing.assert_allclose(res.per_case["mrr@100"], expected)


def _random_cases(seed: int, n_cases: int = 45, n_users: int = 20, n_items: int = 60):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n_cases)
    hist = [rng.integers(1, n_items + 1, size=int(rng.integers(0, 8))) for _ in range(n_cases)]
    tgt = [rng.choice(np.arange(1, n_items + 1), size=int(rng.integers(1, 7)), replace=False)
           for _ in range(n_cases)]
    cases = EvalCases.from_lists(users, hist, tgt, n_items)
    table = np.round(rng.random((n_users, n_items + 1)), 1).astype(np.float32)  # ties
    return cases, table


@pytest.mark.parametrize("mask_history", [False, True])
def test_chunking_does_not_change_results(mask_history: bool) -> None:
    cases, table = _random_cases(0)
    metrics = ["recall@5", "ndcg@10", "mrr@10", "precision@3", "f1@5", "hit@1", "recall_norm@5", "psp@5"]
    w = propensity_weights(np.arange(cases.n_items + 1), 1000)
    results = [evaluate(_fixed_scores(cases, table), cases, metrics, mask_history=mask_history,
                        batch_size=bs, item_weights=w) for bs in (1, 7, None)]
    for r in results[1:]:
        assert r.per_case.keys() == results[0].per_case.keys()
        for k in metrics:
            np.testing.assert_array_equal(r.per_case[k], results[0].per_case[k], err_msg=k)
    # not a degenerate problem
    assert 0.0 < results[0].means["recall@5"] < 1.0


def test_full_ranking_matches_brute_force_per_case() -> None:
    cases, table = _random_cases(1)
    res = evaluate(_fixed_scores(cases, table), cases, ["recall@10", "mrr@60"], mask_history=True, batch_size=4)
    for i in range(len(cases)):
        s = table[cases.user[i], 1:].copy()
        s[cases.history(i)[cases.history(i) > 0] - 1] = -np.inf
        tg = cases.targets(i) - 1
        ranks = _brute_ranks(s[None, :], tg[None, :], np.ones((1, len(tg)), bool))[0]
        assert res.per_case["recall@10"][i] == pytest.approx((ranks <= 10).mean())
        assert res.per_case["mrr@60"][i] == pytest.approx(1.0 / ranks.min())


def test_torch_and_float64_outputs_and_batch_arguments() -> None:
    cases, table = _random_cases(2)
    seen: list[int] = []

    def torch_fn(batch: EvalCases) -> torch.Tensor:
        seen.append(len(batch))
        return torch.from_numpy(table[batch.user]).requires_grad_(False)

    a = evaluate(torch_fn, cases, ["ndcg@10"], batch_size=10)
    b = evaluate(lambda batch: table[batch.user].astype(np.float64), cases, ["ndcg@10"])
    np.testing.assert_allclose(a.per_case["ndcg@10"], b.per_case["ndcg@10"])
    assert seen == [10, 10, 10, 10, 5]


def test_psp_through_evaluate() -> None:
    # n_items = 4, weights w = [_, 4, 3, 2, 1]; targets {1, 2, 3}; model ranks 3, 4, 1, 2
    row = np.array([0.0, 0.2, 0.1, 0.9, 0.8])
    cases = EvalCases.from_lists([0], [[]], [[1, 2, 3]], n_items=4)
    w = np.array([0.0, 4.0, 3.0, 2.0, 1.0])
    res = evaluate(lambda b: row[None, :], cases, ["psp@2", "psp_orig@2", "psp@3"], item_weights=w)
    # top-2 = {3, 4}: hit 3 (w=2); ideal top-2 target weights 4 + 3 = 7
    assert res.means["psp@2"] == pytest.approx(2 / 7)
    assert res.means["psp_orig@2"] == pytest.approx(1 / 7)
    # top-3 = {3, 4, 1}: hits 3 + 1 -> 6 / 9
    assert res.means["psp@3"] == pytest.approx(6 / 9)


def test_mean_over_users_and_to_dict() -> None:
    row = np.array([0.0, 0.9, 0.5, 0.1], dtype=np.float32)
    # user 5 has two cases (hit, miss at K=1), user 8 one (hit)
    cases = EvalCases.from_lists([5, 5, 8], [[], [], []], [[1], [3], [1]], n_items=3)
    res = evaluate(lambda b: np.tile(row, (len(b), 1)), cases, ["hit@1"])
    assert res.means["hit@1"] == pytest.approx(2 / 3)
    assert res.mean_over_users()["hit@1"] == pytest.approx(0.75)
    d = res.to_dict()
    assert d["means"] == {"hit@1": pytest.approx(2 / 3)} and d["n_cases"] == 3 and d["n_users"] == 2
    assert "per_case" not in d
    assert res.to_dict(per_case=True)["per_case"]["hit@1"] == [1.0, 0.0, 1.0]
    assert isinstance(res, EvalResult)


def test_metric_keys_are_canonical_and_deduplicated() -> None:
    cases = EvalCases.from_lists([0], [[]], [[1]], n_items=3)
    res = evaluate(lambda b: np.ones((1, 4)), cases, ["NDCG@10", "ndcg@10", "recall@5"])
    assert list(res.per_case) == ["ndcg@10", "recall@5"]


def test_default_batch_size() -> None:
    assert default_batch_size(12101, 22000) == 256 * 2**20 // (4 * 12102)
    assert default_batch_size(100, 7) == 7
    assert default_batch_size(10**9, 5) == 1


# ----------------------------------------------------------------------------- errors


def test_wrong_score_shape() -> None:
    cases = EvalCases.from_lists([0, 1], [[], []], [[1], [2]], n_items=3)
    with pytest.raises(DataFormatError, match=r"shape \(2, 3\), expected \(2, 4\)"):
        evaluate(lambda b: np.zeros((len(b), 3)), cases)
    with pytest.raises(DataFormatError, match="numpy array or torch tensor"):
        evaluate(lambda b: [[0.0] * 4] * len(b), cases)


def test_unknown_metric_lists_known() -> None:
    cases = EvalCases.from_lists([0], [[]], [[1]], n_items=3)
    with pytest.raises(UnknownNameError, match="Known metrics: f1, hit, mrr, ndcg"):
        evaluate(lambda b: np.zeros((1, 4)), cases, ["recal@10"])
    with pytest.raises(ConfigError, match="<metric>@<K>"):
        evaluate(lambda b: np.zeros((1, 4)), cases, ["recall"])


def test_nan_scores_psp_weights_and_bad_items() -> None:
    cases = EvalCases.from_lists([0], [[]], [[1]], n_items=3)
    with pytest.raises(DataFormatError, match="NaN"):
        evaluate(lambda b: np.array([[0.0, np.nan, 0.0, 0.0]]), cases)
    with pytest.raises(DataFormatError, match="NaN"):  # beside both infinities (their row sum is NaN too)
        evaluate(lambda b: np.array([[0.0, np.inf, -np.inf, np.nan]]), cases)
    res = evaluate(lambda b: np.array([[0.0, -np.inf, np.inf, 1.0]]), cases, ["mrr@3"])  # no NaN: ranked
    assert res.per_case["mrr@3"].tolist() == [1 / 3]
    with pytest.raises(ConfigError, match="item weights"):
        evaluate(lambda b: np.zeros((1, 4)), cases, ["psp@5"])
    with pytest.raises(DataFormatError, match=r"item_weights has shape \(3,\)"):
        evaluate(lambda b: np.zeros((1, 4)), cases, ["psp@5"], item_weights=np.ones(3))
    bad = EvalCases.from_lists([0], [[]], [[4]], n_items=3)
    with pytest.raises(DataFormatError, match=r"1\.\.3"):
        evaluate(lambda b: np.zeros((1, 4)), bad)
    with pytest.raises(ConfigError, match="batch_size"):
        evaluate(lambda b: np.zeros((1, 4)), cases, batch_size=0)
