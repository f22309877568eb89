"""Score registry: every data-importance score is registered by name with its direction.

A score is ``f(inputs) -> np.ndarray[n_units]`` where ``inputs`` is a `ScoreInputs`. Each score
declares what it needs (training ``dynamics``, final-model ``outputs``, ``embeddings``) and which
end is *hard* — the samples a pruning method by that score treats as important: ``"high"`` for
loss, EL2N, GraNd, forgetting, entropy, variance; ``"low"`` for AUM, confidence, margin.
Values are returned as the paper defines them (AUM stays signed); `oriented` flips them so that
higher always means harder.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, unknown_name


@dataclass(frozen=True)
class ScoreInputs:
    """What scores are computed from; each field is optional, a score names what it needs.

    dynamics : the state of a ``DynamicsRecorder`` (``recorder.state``: per-sample running
        sums, last values, forgetting counts …) plus ``epochs`` = epochs recorded.
    outputs : per-sample values of the final model in eval mode (``loss``, ``p_target``,
        ``entropy``, ``margin``), e.g. from ``recsift.train.sample_outputs``.
    embeddings : ``[n, d]`` float32 sample representations (penultimate layer).
    """

    dynamics: Mapping[str, np.ndarray] | None = None
    outputs: Mapping[str, np.ndarray] | None = None
    embeddings: np.ndarray | None = None
    epochs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_recorder(cls, recorder: Any, **kw: Any) -> ScoreInputs:
        """From a ``DynamicsRecorder`` (duck-typed: ``.state`` and ``.epochs_seen``)."""
        return cls(dynamics=recorder.state, epochs=int(recorder.epochs_seen), **kw)

    def need(self, what: str, score: str) -> Any:
        value = getattr(self, what)
        if value is None:
            hint = {"dynamics": "train a probe model with a DynamicsRecorder",
                    "outputs": "run sample_outputs(model, train_set) on the trained probe",
                    "embeddings": "compute sample embeddings with sample_outputs(..., embeddings=True)"}[what]
            raise ConfigError(f"score {score!r} needs {what}: {hint}")
        return value


@dataclass(frozen=True)
class ScoreSpec:
    name: str
    fn: Callable[..., np.ndarray]
    needs: str  # "dynamics" | "outputs" | "embeddings"
    hard: str  # "high" | "low"
    doc: str


SCORES: dict[str, ScoreSpec] = {}


def register_score(name: str, *, needs: str, hard: str) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Decorator registering ``fn(data, **params) -> scores`` where ``data`` is the needed input."""
    if hard not in ("high", "low") or needs not in ("dynamics", "outputs", "embeddings"):
        raise ValueError(f"bad registration of score {name!r}")

    def deco(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        if name in SCORES:
            raise ValueError(f"score {name!r} registered twice")
        SCORES[name] = ScoreSpec(name, fn, needs, hard, " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split()))
        return fn

    return deco


def get_score(name: str) -> ScoreSpec:
    try:
        return SCORES[name]
    except KeyError:
        raise unknown_name("score", name, SCORES) from None


def list_scores() -> list[str]:
    return sorted(SCORES)


def compute_score(name: str, inputs: ScoreInputs, **params: Any) -> np.ndarray:
    """Score ``name`` of every sample (float64), checked finite."""
    spec = get_score(name)
    data = inputs.need(spec.needs, name)
    if spec.needs == "dynamics":
        s = spec.fn(data, epochs=inputs.epochs, **params)
    else:
        s = spec.fn(data, **params)
    s = np.asarray(s, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise ConfigError(f"score {name!r} produced {int((~np.isfinite(s)).sum())} non-finite values; "
                          "was every sample seen in training?")
    return s


def oriented(scores: np.ndarray, hard: str) -> np.ndarray:
    """Scores flipped so that higher = harder (``hard`` is the score's direction)."""
    return np.asarray(scores, np.float64) if hard == "high" else -np.asarray(scores, np.float64)


def rank_normalise(scores: np.ndarray, hard: str = "high") -> np.ndarray:
    """Ranks mapped to (0, 1], hardest = 1 (ties share their mean rank): comparable across
    models, and non-negative as D2's message passing needs."""
    from scipy.stats import rankdata

    s = oriented(scores, hard)
    return rankdata(s, method="average") / len(s)
