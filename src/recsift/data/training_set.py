"""`TrainingSet`: what a curator takes and returns: samples or a matrix, plus weights."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataFormatError
from .matrix import InteractionMatrix
from .sequences import SequenceSamples


@dataclass(frozen=True)
class TrainingSet:
    """Training data plus one float32 weight per unit of ``data`` and its provenance.

    For `SequenceSamples` a unit is a prefix sample; for `InteractionMatrix` it is a stored
    interaction (in CSR order). Weights default to 1.
    """

    data: SequenceSamples | InteractionMatrix
    weights: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        w = np.ones(len(self.data), dtype=np.float32) if self.weights is None else np.asarray(self.weights, np.float32)
        if w.shape != (len(self.data),):
            raise DataFormatError(f"weights have shape {w.shape}, expected ({len(self.data)},): one weight per sample")
        if not np.all(np.isfinite(w)) or (w < 0).any():
            raise DataFormatError("weights must be finite and >= 0")
        object.__setattr__(self, "weights", w)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def kind(self) -> str:
        return "sequence" if isinstance(self.data, SequenceSamples) else "matrix"

    @property
    def n_items(self) -> int:
        """Size of the item id space (ids 1..n_items) the data is expressed in."""
        return self.data.store.n_items if isinstance(self.data, SequenceSamples) else self.data.n_items

    def require_samples(self, action: str) -> TrainingSet:
        """``self``, or one clear error when it holds no training samples (``action``: what needed them)."""
        if len(self) == 0:
            need = ("a next-item sample from 4 interactions on: 2 to train" if self.kind == "sequence" else
                    "a training interaction from 3 on: 1 to train")
            raise DataFormatError(f"the training set is empty, so there is nothing to {action}: the split left no "
                                  f"training data (under leave-one-out a user gives {need}, 1 to validate, 1 to "
                                  "test); use more data or another split")
        return self

    def subset(self, idx: np.ndarray, **provenance: Any) -> TrainingSet:
        """Units at ``idx`` (ints or mask), weights carried along, provenance extended."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return TrainingSet(self.data.subset(idx), self.weights[idx], {**self.provenance, **provenance})
