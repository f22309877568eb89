"""Selectors: turn per-unit scores (or nothing, for random) into the kept indices.

Array in, array out: every selector returns sorted int64 unit indices. Data graphs for D²
live in :mod:`recsift.selection.graphs`.
"""
from .ccs import after_cutoff, ccs_budgets, ccs_strata, hard_cutoff, select_ccs
from .coverage import item_coverage, select_with_prefix
from .d2 import d2_sampler, d2_within, forward_message_pass, select_d2
from .graphs import DataGraph, item_sets, knn_graph, session_graph
from .random import select_random
from .topk import select_top

__all__ = [
    "DataGraph",
    "after_cutoff",
    "ccs_budgets",
    "ccs_strata",
    "d2_sampler",
    "d2_within",
    "forward_message_pass",
    "hard_cutoff",
    "item_coverage",
    "item_sets",
    "knn_graph",
    "select_ccs",
    "select_d2",
    "select_random",
    "select_top",
    "select_with_prefix",
    "session_graph",
]
