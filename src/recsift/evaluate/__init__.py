"""Full-ranking evaluation: pessimistic target ranks, top-K metrics, chunked evaluator.

Typical use::

    from recsift.evaluate import evaluate
    result = evaluate(model_score_fn, test_cases, ["recall@20", "mrr@20"], mask_history=False)
    result.means, result.per_case["recall@20"]

This package imports only numpy, torch, scipy and ``recsift.data`` / ``recsift.errors``.
"""
from __future__ import annotations

from .auc import AUCResult, sample_negatives, sampled_auc
from .evaluator import EvalResult, default_batch_size, evaluate
from .metrics import (
    MetricSpec,
    ParsedMetric,
    compute_metric,
    get_metric,
    list_metrics,
    parse_metric,
    propensity_weights,
    register_metric,
)
from .ranking import INVALID_RANK, target_ranks

__all__ = [
    "AUCResult",
    "INVALID_RANK",
    "EvalResult",
    "MetricSpec",
    "ParsedMetric",
    "compute_metric",
    "default_batch_size",
    "evaluate",
    "get_metric",
    "list_metrics",
    "parse_metric",
    "propensity_weights",
    "register_metric",
    "sample_negatives",
    "sampled_auc",
    "target_ranks",
]
