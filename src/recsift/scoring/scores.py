"""The built-in scores (ALGORITHMS.md §2.2), each a pure function of recorded arrays.

Dynamics come from a ``DynamicsRecorder`` state (train-mode logits of every training step,
before the optimizer step — what CCS and the dataPruning4Rec seed log). Where the papers and
the reference code disagree we follow the paper and expose the code's variant as a parameter:

* ``el2n``: ``||p - e_y||`` summed over the first ``early_epochs`` epochs of one run (CCS;
  Paul et al. average an early epoch over 10 runs). ``window="all"`` sums all epochs (seed).
* ``forgetting``: count of correct -> incorrect transitions with correct = target in the top
  ``K`` (recorder ``top_k``, 20 like the seed). Samples never learned rank as the most
  forgettable (``epochs + 1``, Toneva et al.); ``never_learned="zero"`` gives CCS's 0.
* ``aum``: mean margin of the *logits* ``z_y - max_{j!=y} z_j`` (Pleiss et al.);
  ``on="prob"`` uses probabilities like CCS/D2/the seed (a mean instead of their sum ranks
  identically when every sample was seen equally often).
* ``variance``: std over epochs of the target probability (dataset cartography), without the
  seed's spurious ``exp``.
* ``grand``: last-layer gradient norm ``||p - e_y|| * ||h||`` summed over the early epochs of one
  run like EL2N (Paul et al. score near initialisation; DeepCore averages 10 runs), ``window="all"``
  averages all epochs.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .registry import register_score

State = Mapping[str, np.ndarray]


def _seen(d: State) -> np.ndarray:
    return np.maximum(d["n_seen"], 1).astype(np.float64)


def _mean(d: State, key: str) -> np.ndarray:
    return d[f"{key}_sum"] / _seen(d)


def _std(d: State, key: str) -> np.ndarray:
    m = _mean(d, key)
    return np.sqrt(np.maximum(d[f"{key}_sqsum"] / _seen(d) - m * m, 0.0))


@register_score("loss_mean", needs="dynamics", hard="high")
def loss_mean(d: State, epochs: int = 0) -> np.ndarray:
    """Cross-entropy -log p_y averaged over the training epochs."""
    return _mean(d, "loss")


@register_score("loss_last", needs="dynamics", hard="high")
def loss_last(d: State, epochs: int = 0) -> np.ndarray:
    """Cross-entropy at the last epoch's training step (train mode)."""
    return d["loss_last"].astype(np.float64)


@register_score("loss_variance", needs="dynamics", hard="high")
def loss_variance(d: State, epochs: int = 0) -> np.ndarray:
    """Variance of the loss across epochs."""
    return _std(d, "loss") ** 2


@register_score("variance", needs="dynamics", hard="high")
def variance(d: State, epochs: int = 0) -> np.ndarray:
    """Std over epochs of the target probability p_y (dataset cartography's variability)."""
    return _std(d, "p_target")


@register_score("confidence", needs="dynamics", hard="low")
def confidence(d: State, epochs: int = 0) -> np.ndarray:
    """Target probability p_y averaged over epochs."""
    return _mean(d, "p_target")


@register_score("el2n", needs="dynamics", hard="high")
def el2n(d: State, epochs: int = 0, window: str | int = "early") -> np.ndarray:
    """Error L2 norm ||softmax(z) - e_y||: summed over the early epochs (CCS), all epochs, or one epoch."""
    if window == "early":
        return d["el2n_early_sum"].astype(np.float64)
    if window == "all":
        return d["el2n_sum"].astype(np.float64)
    key = f"el2n_epoch{int(window)}"
    if key not in d:
        from ..errors import ConfigError

        raise ConfigError(f"el2n at epoch {window} was not recorded; pass snapshot_epochs=({window},) to the recorder")
    return d[key].astype(np.float64)


@register_score("grand", needs="dynamics", hard="high")
def grand(d: State, epochs: int = 0, window: str = "early") -> np.ndarray:
    """Last-layer gradient norm ||p - e_y|| * ||dz/dE||, summed over the early epochs (or all)."""
    if window == "early" and "grand_early_sum" in d:
        return d["grand_early_sum"].astype(np.float64)
    return _mean(d, "grand")


@register_score("forgetting", needs="dynamics", hard="high")
def forgetting(d: State, epochs: int = 0, never_learned: str = "max") -> np.ndarray:
    """Forgetting events (top-K correct -> incorrect); never-learned samples rank highest."""
    f = d["forgetting"].astype(np.float64)
    if never_learned == "max":
        f = np.where(d["first_learned"] < 0, max(int(epochs), int(f.max(initial=0))) + 1, f)
    elif never_learned != "zero":
        from ..errors import ConfigError

        raise ConfigError(f"never_learned={never_learned!r}: use 'max' (Toneva et al.) or 'zero' (CCS)")
    return f


@register_score("correctness", needs="dynamics", hard="low")
def correctness(d: State, epochs: int = 0) -> np.ndarray:
    """Epochs in which the target was in the top K."""
    return d["n_correct"].astype(np.float64)


@register_score("aum", needs="dynamics", hard="low")
def aum(d: State, epochs: int = 0, on: str = "logit") -> np.ndarray:
    """Area under the margin: mean over epochs of z_y - max_{j != y} z_j (or of probabilities)."""
    if on not in ("logit", "prob"):
        from ..errors import ConfigError

        raise ConfigError(f"aum on={on!r}: use 'logit' (Pleiss et al.) or 'prob' (CCS)")
    return _mean(d, f"aum_{on}")


@register_score("entropy_mean", needs="dynamics", hard="high")
def entropy_mean(d: State, epochs: int = 0) -> np.ndarray:
    """Predictive entropy averaged over epochs."""
    return _mean(d, "entropy")


@register_score("margin_mean", needs="dynamics", hard="low")
def margin_mean(d: State, epochs: int = 0) -> np.ndarray:
    """Target-free margin p_(1) - p_(2) averaged over epochs."""
    return _mean(d, "margin")


# -- final model, eval mode ----------------------------------------------------------------
@register_score("loss", needs="outputs", hard="high")
def loss(o: State) -> np.ndarray:
    """Cross-entropy of the final model (eval mode), as the seed's post-training metric."""
    return np.asarray(o["loss"], np.float64)


@register_score("entropy", needs="outputs", hard="high")
def entropy(o: State) -> np.ndarray:
    """Predictive entropy of the final model (Coleman et al. 2020)."""
    return np.asarray(o["entropy"], np.float64)


@register_score("margin", needs="outputs", hard="low")
def margin(o: State) -> np.ndarray:
    """Uncertainty margin p_(1) - p_(2) of the final model (Coleman et al. 2020; target-free)."""
    return np.asarray(o["margin"], np.float64)


# -- embeddings ----------------------------------------------------------------------------
@register_score("moderate", needs="embeddings", hard="high")
def moderate(emb: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Moderate coreset (Xia et al. 2023): |distance to the median embedding - median distance|.

    Low = moderate; the ``moderate`` curator keeps the lowest (the middle band)."""
    from .embedding import moderate_scores

    return moderate_scores(emb, labels)


@register_score("prototype", needs="embeddings", hard="high")
def prototype(emb: np.ndarray, n_clusters: int = 100, seed: int = 0) -> np.ndarray:
    """Prototypicality (Sorscher et al. 2022): cosine distance to the own k-means centroid; high = hard."""
    from .embedding import prototype_scores

    return prototype_scores(emb, min(n_clusters, len(emb)), rng=np.random.default_rng(seed))
