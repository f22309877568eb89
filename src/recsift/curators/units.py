"""Selection units (a prefix sample, or a whole session/user) and their item sets."""
from __future__ import annotations

import numpy as np

from ..data import InteractionMatrix, SequenceSamples, TrainingSet
from ..errors import ConfigError
from ..selection.graphs import segment_positions

UNITS = ("sample", "user")


def unit_index(train_set: TrainingSet, unit: str) -> tuple[np.ndarray, int]:
    """Compact unit id (0..n_units-1) of every sample, and the number of units."""
    if unit not in UNITS:
        raise ConfigError(f"unknown selection unit {unit!r}; use one of {', '.join(UNITS)}")
    n = len(train_set)
    if unit == "sample":
        return np.arange(n, dtype=np.int64), n
    owner = train_set.data.user if isinstance(train_set.data, SequenceSamples) else train_set.data.coo_pairs()[0]
    uniq, inv = np.unique(owner, return_inverse=True)
    return inv.astype(np.int64), len(uniq)


def sample_targets(train_set: TrainingSet) -> np.ndarray:
    """Target item of every sample (prefix sample: the next item; stored interaction: its item)."""
    d = train_set.data
    return d.targets if isinstance(d, SequenceSamples) else d.coo_pairs()[1]


def target_popularity(items: np.ndarray) -> np.ndarray:
    """For each sample's target item ``items[i]``: how many samples have that target."""
    return np.bincount(items)[items]


def popularity_tail(pop: np.ndarray, share: float = 0.2) -> np.ndarray:
    """Samples whose target is in the long tail: popularity (`target_popularity`) at or below the
    ``share`` quantile of the samples' popularities."""
    return pop <= np.quantile(pop, share)


def unit_mean(values: np.ndarray, unit_of: np.ndarray, n_units: int) -> np.ndarray:
    """Mean of per-sample ``values`` over each unit's samples."""
    if len(unit_of) == n_units:
        return np.asarray(values, np.float64)
    return np.bincount(unit_of, weights=values, minlength=n_units) / np.maximum(np.bincount(unit_of, minlength=n_units), 1)


def unit_mean_rows(values: np.ndarray, unit_of: np.ndarray, n_units: int) -> np.ndarray:
    """Row-mean of ``[n_samples, d]`` values per unit (embeddings of whole sessions)."""
    if len(unit_of) == n_units:
        return values
    out = np.zeros((n_units, values.shape[1]), np.float64)
    np.add.at(out, unit_of, values)
    return (out / np.maximum(np.bincount(unit_of, minlength=n_units), 1)[:, None]).astype(np.float32)


def unit_items(train_set: TrainingSet, unit_of: np.ndarray, n_units: int, *, max_len: int = 50,
               chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr, items)`` of each unit's items.

    A prefix sample's items are its last ``max_len`` prefix items plus its target (what the
    model sees); a user's are its training sequence up to its last selected target. For an
    interaction matrix a sample is one (user, item) pair, a user all its items.
    """
    data = train_set.data
    if isinstance(data, InteractionMatrix):
        users, items = data.coo_pairs()
        order = np.argsort(unit_of, kind="stable")
        counts = np.bincount(unit_of, minlength=n_units)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), items[order].astype(np.int64)
    s: SequenceSamples = data
    starts = s.store.indptr[s.user]
    if len(unit_of) == n_units:  # one unit per sample: window of prefix + target
        parts, lens = [], []
        for lo in range(0, len(s), chunk):
            w = s.store.windows(starts[lo:lo + chunk], s.pos[lo:lo + chunk] + 1, max_len + 1)
            nz = w != 0
            lens.append(nz.sum(1))
            parts.append(w[nz])
        lens_a = np.concatenate(lens) if lens else np.zeros(0, np.int64)
        items = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return np.concatenate([[0], np.cumsum(lens_a)]).astype(np.int64), items.astype(np.int64)
    lo = np.full(n_units, np.iinfo(np.int64).max, np.int64)
    hi = np.zeros(n_units, np.int64)
    np.minimum.at(lo, unit_of, starts)
    np.maximum.at(hi, unit_of, s.pos + 1)
    lens_u = hi - lo
    indptr = np.concatenate([[0], np.cumsum(lens_u)]).astype(np.int64)
    return indptr, s.store.items[segment_positions(lo, lens_u)].astype(np.int64)
