"""Recommendation models. Each registers itself by name (see `list_models`)."""
from . import baselines, bpr, core, dr4sr_gnn, ease, fmlp, gcsan, gru4rec, narm, neumf, sasrec, srgnn  # noqa: F401  (register themselves)
from .registry import MODELS, build_model, get_model_class, list_models, register_model

__all__ = ["MODELS", "build_model", "get_model_class", "list_models", "register_model"]
