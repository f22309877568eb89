"""Top-K ranking metrics as pure functions of target ranks, and their registry.

Every metric takes the 1-based ranks of each case's targets (``[B, T]``, padding slots
holding a rank larger than any K, e.g. :data:`~recsift.evaluate.ranking.INVALID_RANK`),
the number of real targets per case (``[B]``; the real targets are the first
``n_targets`` slots of a row), the cut-off ``K`` and, for propensity metrics, per-target
weights (``[B, T]``). It returns one float64 per case. Metrics are named ``"<name>@<K>"``
in configs and results, e.g. ``"ndcg@10"``.

Definitions (``H`` = targets ranked in the top K, ``T`` = the case's targets,
``m = min(K, |T|)``):

========================  ===========================================================
``recall@K``              ``|H| / |T|``
``hit@K``                 ``1[|H| > 0]`` (= recall for one target)
``recall_norm@K``         ``|H| / m`` (the "HR@K" of the ∞-AE / Distill-CF papers)
``precision@K``           ``|H| / K``
``f1@K``                  ``2 P R / (P + R)``, 0 when both are 0
``ndcg@K``                binary-gain DCG ``Σ_{h∈H} 1/log2(rank_h + 1)`` over the ideal
                          DCG of ``m`` positives (Järvelin & Kekäläinen)
``mrr@K``                 ``1 / min rank`` if that rank is ``<= K``, else 0
``psp@K``                 ``Σ_{h∈H} w_h`` over the sum of the ``m`` largest target
                          weights: propensity-scaled precision (Jain et al., 2016),
                          normalised so a perfect ranking scores 1
``psp_orig@K``            ``psp@K / m``: the ∞-AE reference code's variant, which divides
                          the hit sum by ``m`` but not the ideal sum (see
                          ``reference/ALGORITHMS.md`` §9); reported only to compare with
                          published numbers
========================  ===========================================================

When not to use: these are per-case *top-K* metrics; AUC-style metrics over sampled
negatives need scores, not ranks.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, unknown_name

__all__ = [
    "MetricFn",
    "MetricSpec",
    "ParsedMetric",
    "compute_metric",
    "get_metric",
    "list_metrics",
    "parse_metric",
    "propensity_weights",
    "register_metric",
]

MetricFn = Callable[[np.ndarray, np.ndarray, int, "np.ndarray | None"], np.ndarray]


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric.

    Attributes
    ----------
    name : str
        Registry name without the cut-off, e.g. ``"ndcg"``.
    fn : MetricFn
        ``fn(ranks, n_targets, k, weights) -> float64 [B]``.
    needs_weights : bool
        Whether ``fn`` needs per-target item weights (propensity metrics).
    """

    name: str
    fn: MetricFn
    needs_weights: bool = False


_REGISTRY: dict[str, MetricSpec] = {}


def register_metric(name: str, *, needs_weights: bool = False) -> Callable[[MetricFn], MetricFn]:
    """Register a metric function under ``name`` (decorator).

    Parameters
    ----------
    name : str
        Lower-case name without ``@K``; must not be registered already.
    needs_weights : bool, default False
        True if the metric uses per-target item weights.

    Returns
    -------
    Callable
        The decorator; it returns the function unchanged.

    Examples
    --------
    >>> @register_metric("first_rank")  # doctest: +SKIP
    ... def first_rank(ranks, n_targets, k, weights=None):
    ...     return np.minimum(ranks.min(axis=1), k + 1).astype(np.float64)
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ConfigError(f"metric name {name!r} must be lower-case letters, digits and '_'")

    def deco(fn: MetricFn) -> MetricFn:
        if name in _REGISTRY:
            raise ConfigError(f"metric {name!r} is already registered; choose another name")
        _REGISTRY[name] = MetricSpec(name=name, fn=fn, needs_weights=needs_weights)
        return fn

    return deco


def list_metrics() -> list[str]:
    """Sorted names of the registered metrics (without ``@K``).

    Examples
    --------
    >>> "ndcg" in list_metrics()
    True
    """
    return sorted(_REGISTRY)


def get_metric(name: str) -> MetricSpec:
    """The registered metric ``name`` (without ``@K``); unknown names list the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown_name("metric", name, _REGISTRY) from None


class ParsedMetric(NamedTuple):
    """A metric name split into its registry name and cut-off."""

    name: str
    k: int

    @property
    def key(self) -> str:
        """Canonical ``"<name>@<K>"`` label used as the key in results."""
        return f"{self.name}@{self.k}"


_FORM = "'<metric>@<K>' with an integer K >= 1, e.g. 'ndcg@10'"


def parse_metric(text: str) -> ParsedMetric:
    """Parse ``"ndcg@10"`` into ``ParsedMetric("ndcg", 10)`` and check the name exists.

    Names are case-insensitive (``"NDCG@10"`` works) and canonicalised to lower case.

    Raises
    ------
    ConfigError
        If the text is not of the form ``<metric>@<K>`` with an integer ``K >= 1``.
    UnknownNameError
        If the metric is not registered (the message lists the known metrics).

    Examples
    --------
    >>> parse_metric("NDCG@10")
    ParsedMetric(name='ndcg', k=10)
    """
    if not isinstance(text, str) or "@" not in text:
        raise ConfigError(f"metric {text!r} has no cut-off; write it as {_FORM}")
    base, _, k_text = text.strip().rpartition("@")
    base = base.strip().lower()
    try:
        k = int(k_text.strip())
    except ValueError:
        raise ConfigError(f"metric {text!r} has a non-integer cut-off; write it as {_FORM}") from None
    if k < 1:
        raise ConfigError(f"metric {text!r} has cut-off K={k}; write it as {_FORM}")
    get_metric(base)
    return ParsedMetric(base, k)


def compute_metric(metric: str | ParsedMetric, ranks: np.ndarray, n_targets: np.ndarray,
                   weights: np.ndarray | None = None) -> np.ndarray:
    """Per-case values of ``metric`` (e.g. ``"ndcg@10"``) for a block of ranks.

    Parameters
    ----------
    metric : str or ParsedMetric
        The metric with its cut-off.
    ranks : np.ndarray
        int64 ``[B, T]`` 1-based ranks; padding slots hold a rank larger than K.
    n_targets : np.ndarray
        int ``[B]``; the real targets are the first ``n_targets`` slots of each row.
    weights : np.ndarray, optional
        float ``[B, T]`` per-target weights; required by propensity metrics.

    Returns
    -------
    np.ndarray
        float64 ``[B]``.

    Examples
    --------
    >>> compute_metric("recall@2", np.array([[1, 3]]), np.array([2]))
    array([0.5])
    """
    parsed = metric if isinstance(metric, ParsedMetric) else parse_metric(metric)
    spec = get_metric(parsed.name)
    if spec.needs_weights and weights is None:
        raise ConfigError(f"metric {parsed.key!r} needs item weights; pass item_weights="
                          "propensity_weights(train_item_counts, n_interactions)")
    ranks = np.asarray(ranks)
    n_targets = np.asarray(n_targets, dtype=np.int64)
    if ranks.ndim != 2 or n_targets.shape != (ranks.shape[0],):
        raise ConfigError(f"compute_metric: expected ranks [B, T] and n_targets [B], got "
                          f"{ranks.shape} and {n_targets.shape}")
    out = spec.fn(ranks, n_targets, parsed.k, weights)
    return np.asarray(out, dtype=np.float64)


def propensity_weights(train_item_counts: np.ndarray, n_interactions: int, A: float = 0.55,
                       B: float = 1.5) -> np.ndarray:
    """Inverse-propensity item weights of Jain et al. (2016), as used by ∞-AE's PSP@K.

    ``w_i = 1 + C (n_i + B)^(-A)`` with ``C = (ln N - 1)(B + 1)^A``: rare items weigh more.

    Parameters
    ----------
    train_item_counts : np.ndarray
        ``n_i``, training interactions per item; index it like the score columns
        (length ``n_items + 1``, entry 0 = padding, whose weight is never used).
    n_interactions : int
        ``N``, the number of training interactions.
    A, B : float
        The propensity model's constants (defaults from the paper: 0.55, 1.5).

    Returns
    -------
    np.ndarray
        float64 weights, same shape as ``train_item_counts``.

    Examples
    --------
    >>> w = propensity_weights(np.array([0, 10, 1000]), 1010)
    >>> bool(w[1] > w[2] > 1.0)
    True
    """
    n = np.asarray(train_item_counts, dtype=np.float64)
    if n_interactions <= 0:
        raise ConfigError(f"propensity_weights: n_interactions must be positive, got {n_interactions}")
    c = (np.log(n_interactions) - 1.0) * (B + 1.0) ** A
    return 1.0 + c * (n + B) ** (-A)


# ---------------------------------------------------------------------------------------
# Built-in metrics


def _hits(ranks: np.ndarray, k: int) -> np.ndarray:
    return (ranks <= k).sum(axis=1).astype(np.float64)


def _m(n_targets: np.ndarray, k: int) -> np.ndarray:
    return np.minimum(n_targets, k)


@register_metric("recall")
def recall(ranks: np.ndarray, n_targets: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Fraction of the case's targets ranked in the top K."""
    return _hits(ranks, k) / n_targets


@register_metric("hit")
def hit(ranks: np.ndarray, n_targets: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """1 if any target is ranked in the top K (ranx's ``hit_rate``)."""
    return (ranks <= k).any(axis=1).astype(np.float64)


@register_metric("recall_norm")
def recall_norm(ranks: np.ndarray, n_targets: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Hits over ``min(K, |T|)``: the ∞-AE papers' "HR@K"."""
    return _hits(ranks, k) / _m(n_targets, k)


@register_metric("precision")
def precision(ranks: np.ndarray, n_targets: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Hits over K."""
    return _hits(ranks, k) / k


@register_metric("f1")
def f1(ranks: np.ndarray, n_targets: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Harmonic mean of precision@K and recall@K (0 when both are 0)."""
    h = _hits(ranks, k)
    p, r = h / k, h / n_targets
    denom = p + r
    return np.divide(2.0 * p * r, denom, out=np.zeros_like(denom), where=denom > 0)


@register_metric("ndcg")
def ndcg(ranks: np.ndarray, n_targets: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Binary-gain nDCG with the ideal DCG over ``min(K, |T|)`` positives."""
    disc = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))  # discount of ranks 1..K
    in_top = ranks <= k
    gains = np.where(in_top, disc[np.where(in_top, ranks, 1) - 1], 0.0)
    idcg = np.cumsum(disc)[_m(n_targets, k) - 1]
    return gains.sum(axis=1) / idcg


@register_metric("mrr")
def mrr(ranks: np.ndarray, n_targets: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Reciprocal of the best target rank, 0 if it is beyond K."""
    best = ranks.min(axis=1)
    return np.where(best <= k, 1.0 / np.minimum(best, k).astype(np.float64), 0.0)


def _psp_parts(ranks: np.ndarray, n_targets: np.ndarray, k: int,
               weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if weights is None:
        raise ConfigError("psp metrics need per-target weights")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != ranks.shape:
        raise ConfigError(f"psp: weights {w.shape} must match ranks {ranks.shape}")
    real = np.arange(ranks.shape[1])[None, :] < n_targets[:, None]
    w = np.where(real, w, 0.0)
    hit_sum = np.where(real & (ranks <= k), w, 0.0).sum(axis=1)
    top = -np.sort(-w, axis=1)[:, :k]  # largest weights first; padding slots are 0
    ideal = top.sum(axis=1)
    return hit_sum, ideal


@register_metric("psp", needs_weights=True)
def psp(ranks: np.ndarray, n_targets: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Propensity-scaled precision, normalised by the ideal ranking (1 = perfect)."""
    hit_sum, ideal = _psp_parts(ranks, n_targets, k, weights)
    return np.divide(hit_sum, ideal, out=np.zeros_like(ideal), where=ideal > 0)


@register_metric("psp_orig", needs_weights=True)
def psp_orig(ranks: np.ndarray, n_targets: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """∞-AE reference-code PSP: the hit sum divided by ``min(K, |T|)``, the ideal sum not."""
    return psp(ranks, n_targets, k, weights) / _m(n_targets, k)
