"""`InteractionMatrix`: a binary (or weighted) user x item CSR matrix for CF methods.

Columns are internal item ids, so column 0 (padding) is always empty and the matrix has
``n_items + 1`` columns: the same ids as sequences and score arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class InteractionMatrix:
    """User x item matrix (float32 CSR, ``n_items + 1`` columns, column 0 empty)."""

    csr: sp.csr_matrix

    @classmethod
    def from_pairs(
        cls, user: np.ndarray, item: np.ndarray, n_users: int, n_items: int, values: np.ndarray | None = None,
        *, binary: bool = True,
    ) -> InteractionMatrix:
        vals = np.ones(len(user), dtype=np.float32) if values is None else np.asarray(values, dtype=np.float32)
        m = sp.csr_matrix((vals, (np.asarray(user), np.asarray(item))), shape=(n_users, n_items + 1), dtype=np.float32)
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        m.sort_indices()
        return cls(m)

    @property
    def n_users(self) -> int:
        return self.csr.shape[0]

    @property
    def n_items(self) -> int:
        return self.csr.shape[1] - 1

    def __len__(self) -> int:
        """Number of stored interactions (the unit of interaction-level budgets)."""
        return int(self.csr.nnz)

    def coo_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) of every stored interaction, in CSR order."""
        users = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.csr.indptr))
        return users, self.csr.indices.astype(np.int64)

    def subset(self, idx: np.ndarray) -> InteractionMatrix:
        """Keep the stored interactions at CSR positions ``idx`` (ints or boolean mask)."""
        idx = np.asarray(idx)
        keep = np.zeros(self.csr.nnz, dtype=bool)
        keep[idx] = True
        u, i = self.coo_pairs()
        return InteractionMatrix.from_pairs(u[keep], i[keep], self.n_users, self.n_items, self.csr.data[keep], binary=False)

    def subset_users(self, users: np.ndarray) -> InteractionMatrix:
        """Zero the rows of users not in ``users`` (shape and ids stay the same)."""
        keep = np.zeros(self.n_users, dtype=np.float32)
        keep[np.asarray(users, dtype=np.int64)] = 1.0
        m = sp.diags(keep) @ self.csr
        m.eliminate_zeros()
        return InteractionMatrix(m.tocsr())
