"""Data layer: interactions, filters, splits, samples, matrices, loaders and the dataset registry.

Imports nothing of recsift but `errors` (and its own modules).
"""
from .api import dataset_info, load, load_split
from .budget import Budget
from .cases import EvalCases
from .filtering import k_core, min_user_interactions
from .interactions import Interactions
from .matrix import InteractionMatrix
from .registry import DATASETS, list_datasets, register_dataset
from .sequences import SequenceSamples, SequenceStore
from .splits import SplitData, index_split, leave_one_out, ratio_split, session_split
from .training_set import TrainingSet

__all__ = [
    "Budget", "DATASETS", "EvalCases", "InteractionMatrix", "Interactions", "SequenceSamples", "SequenceStore",
    "SplitData", "TrainingSet", "dataset_info", "index_split", "k_core", "leave_one_out", "list_datasets", "load",
    "load_split", "min_user_interactions", "ratio_split", "register_dataset", "session_split",
]
