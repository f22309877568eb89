"""Shared by the ∞-AE / Distill-CF bench scripts: test metrics (×100, the ∞-AE protocol) and
mean ± std over runs."""
from __future__ import annotations

import statistics
from typing import Any

METRICS = ["ndcg@10", "recall_norm@10", "psp@10", "ndcg@100", "recall_norm@100", "psp@100"]


class Protocol:
    """The test side of one split: propensity weights and the fixed 50 AUC negatives per case."""

    def __init__(self, split, *, auc_seed: int = 0) -> None:
        import numpy as np

        from recsift.evaluate import propensity_weights, sample_negatives

        self.split = split
        self.weights = propensity_weights(np.bincount(split.train.item, minlength=split.n_items + 1),
                                          len(split.train))
        self.negatives = sample_negatives(split.test, 50, seed=auc_seed)

    def test(self, model) -> dict[str, float]:
        from recsift.evaluate import evaluate, sampled_auc

        res = evaluate(model.score, self.split.test, METRICS, mask_history=True, item_weights=self.weights)
        out = {k: 100 * v for k, v in res.means.items()}
        out["auc"] = 100 * sampled_auc(model.score, self.split.test, negatives=self.negatives).mean
        return out


def mean_std(tests: list[dict[str, float]]) -> dict[str, Any]:
    keys = tests[0].keys() if tests else []
    return {"mean": {k: statistics.mean(t[k] for t in tests) for k in keys},
            "std": {k: (statistics.stdev(t[k] for t in tests) if len(tests) > 1 else 0.0) for k in keys}}
