"""Per-sample data-importance scores: pure functions of recorded dynamics, final-model outputs or
embeddings, registered by name (see `list_scores`). Imports neither models nor train."""
from . import scores as _scores  # noqa: F401  (registers the built-in scores)
from .registry import (SCORES, ScoreInputs, ScoreSpec, compute_score, get_score, list_scores, oriented,
                       rank_normalise, register_score)

__all__ = ["SCORES", "ScoreInputs", "ScoreSpec", "compute_score", "get_score", "list_scores", "oriented",
           "rank_normalise", "register_score"]
