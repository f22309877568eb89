"""Sampled AUC (∞-AE protocol): negatives are distinct and legal; values match a brute-force oracle."""
import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from recsift.data.cases import EvalCases
from recsift.errors import ConfigError, DataFormatError
from recsift.evaluate import sample_negatives, sampled_auc


def _cases(rng, n_cases=40, n_items=120):
    hist = [rng.choice(np.arange(1, n_items + 1), size=rng.integers(0, 30), replace=False) for _ in range(n_cases)]
    tgt = [rng.choice(np.setdiff1d(np.arange(1, n_items + 1), h), size=rng.integers(1, 5), replace=False) for h in hist]
    return EvalCases.from_lists(np.arange(n_cases), hist, tgt, n_items=n_items)


def test_negatives_are_distinct_and_outside_history_and_targets():
    cases = _cases(np.random.default_rng(0))
    neg = sample_negatives(cases, 50, seed=3)
    assert neg.shape == (len(cases), 50)
    for i in range(len(cases)):
        assert len(set(neg[i])) == 50
        forbidden = set(cases.targets(i)) | set(cases.hist_items[cases.hist_indptr[i]:cases.hist_indptr[i + 1]])
        assert not forbidden & set(neg[i])
        assert neg[i].min() >= 1 and neg[i].max() <= cases.n_items
    assert np.array_equal(neg, sample_negatives(cases, 50, seed=3))  # fixed once per seed


def test_auc_matches_mann_whitney_oracle_with_ties():
    rng = np.random.default_rng(1)
    cases = _cases(rng)
    scores = rng.integers(0, 6, size=(len(cases), cases.n_items + 1)).astype(np.float32)  # many ties
    res = sampled_auc(lambda b: scores[b.user], cases, 50, seed=2, batch_size=7)
    for i in range(len(cases)):
        t = scores[i, cases.targets(i)]
        n = scores[i, res.negatives[i]]
        u = mannwhitneyu(t, n).statistic  # counts ties as one half
        assert res.per_case[i] == pytest.approx(u / (len(t) * len(n)))


def test_perfect_and_reversed_scores():
    cases = EvalCases.from_lists([0, 1], [[1], []], [[2, 3], [4]], n_items=10)
    s = np.zeros((2, 11), np.float32)
    s[0, [2, 3]] = 5.0
    s[1, 4] = -5.0
    res = sampled_auc(lambda b: s[b.user], cases, 5, seed=0)
    assert res.per_case.tolist() == [1.0, 0.0]


def test_bad_inputs():
    cases = EvalCases.from_lists([0], [[1, 2, 3]], [[4]], n_items=6)
    with pytest.raises(DataFormatError, match="negatives"):
        sample_negatives(cases, 3)
    with pytest.raises(ConfigError, match="n_negatives"):
        sample_negatives(cases, 0)
