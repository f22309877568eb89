"""Mixture-of-experts data scoring: a noisy top-k gate over frozen experts (ALGORITHMS.md §6)."""
from .experts import FEATURES, Expert, ExpertOutputs, aligned_logits, data_statistics, expert_outputs, train_experts
from .gate import MoEGate, NoisyTopKGate, cv_squared
from .mixture import WEIGHTINGS, GateFit, fit_gate, fixed_weights, mixture_scores

__all__ = ["FEATURES", "WEIGHTINGS", "Expert", "ExpertOutputs", "GateFit", "MoEGate", "NoisyTopKGate",
           "aligned_logits", "cv_squared", "data_statistics", "expert_outputs", "fit_gate", "fixed_weights",
           "mixture_scores", "train_experts"]
