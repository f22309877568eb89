"""Embedding-geometry scores: k-means, "moderate" (Xia et al., ICLR 2023) and "prototype"
(Sorscher et al., NeurIPS 2022) data-importance scores (ALGORITHMS §5.3).

Array in, array out: embeddings are an ``(N, d)`` float array (e.g. CORE session
representations); nothing here imports a model.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError, DataFormatError


def as_embeddings(x: np.ndarray, name: str = "embeddings") -> np.ndarray:
    """``x`` (numpy or torch) as a C-contiguous float32 ``(N, d)`` array with finite values."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] == 0:
        raise DataFormatError(f"{name} must be a non-empty 2-D array (units × dims), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataFormatError(f"{name} contain NaN/inf; fix the model outputs first")
    return a


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (for cosine distances); zero rows raise."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise DataFormatError(
            f"{int((norms == 0).sum())} embedding row(s) have zero norm, where cosine distance is undefined; "
            "drop them (a kNN graph can use metric='euclidean' instead)"
        )
    return x / norms


def _nearest(x: torch.Tensor, c: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of and squared distance to the nearest centroid, ``batch_size`` rows at a time."""
    c_sq = (c * c).sum(1)
    labels = torch.empty(x.shape[0], dtype=torch.int64)
    dist = torch.empty(x.shape[0], dtype=torch.float32)
    for a in range(0, x.shape[0], batch_size):
        xb = x[a : a + batch_size]
        d2 = torch.addmm(c_sq[None, :], xb, c.T, alpha=-2.0)
        best, idx = d2.min(dim=1)
        labels[a : a + batch_size] = idx
        dist[a : a + batch_size] = (best + (xb * xb).sum(1)).clamp_(min=0)
    return labels, dist


def _kmeanspp(x: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    """k-means++ seeding (D² sampling) on the rows of ``x``."""
    n = x.shape[0]
    centers = [int(rng.integers(n))]
    d2 = ((x - x[centers[0]]) ** 2).sum(1).double()
    for _ in range(1, k):
        total = float(d2.sum())
        if total <= 0:  # fewer distinct points than k: any unused point will do
            nxt = int(rng.choice(np.setdiff1d(np.arange(n), centers)))
        else:
            nxt = int(np.searchsorted(np.cumsum(d2.numpy()), rng.random() * total, side="right").clip(max=n - 1))
        centers.append(nxt)
        d2 = torch.minimum(d2, ((x - x[nxt]) ** 2).sum(1).double())
    return x[centers].clone()


def kmeans(
    x: np.ndarray,
    k: int,
    *,
    n_iter: int = 20,
    rng: np.random.Generator,
    batch_size: int = 65536,
    init_sample: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding; returns ``(centroids [k, d] float32, labels [N] int64)``.

    Seeding runs on a random sample of ``init_sample`` rows (default ``max(10_000, 50·k)``,
    at most N). Distances are computed in ``batch_size``-row torch blocks in float32;
    sums are accumulated in float64. An empty cluster is re-seeded at the points farthest
    from their centroids. Stops early when no label changes.

    Example
    -------
    >>> pts = np.array([[0.0, 0], [0, 1], [10, 0], [10, 1]])
    >>> c, lab = kmeans(pts, 2, rng=np.random.default_rng(0))
    >>> sorted(c.round(1).tolist()), bool(lab[0] == lab[1] != lab[2] == lab[3])
    ([[0.0, 0.5], [10.0, 0.5]], True)
    """
    a = as_embeddings(x)
    n = a.shape[0]
    if int(k) != k or not 1 <= k <= n:
        raise ConfigError(f"k={k} clusters must be an integer in [1, {n}] (the number of points)")
    xt = torch.from_numpy(a)
    m = min(n, init_sample or max(10_000, 50 * k))
    sample = xt[np.sort(rng.choice(n, size=m, replace=False))] if m < n else xt
    centroids = _kmeanspp(sample, k, rng)
    labels = torch.full((n,), -1, dtype=torch.int64)
    for _ in range(max(1, n_iter)):
        new_labels, dist = _nearest(xt, centroids, batch_size)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
        centroids = _update_centroids(xt, labels, dist, centroids, batch_size)
    return centroids.numpy(), labels.numpy()


def _update_centroids(
    x: torch.Tensor, labels: torch.Tensor, dist: torch.Tensor, old: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """Cluster means; empty clusters move to the points farthest from their own centroid."""
    k, d = old.shape
    sums = torch.zeros(k, d, dtype=torch.float64)
    for a in range(0, x.shape[0], batch_size):
        part = torch.zeros(k, d, dtype=torch.float32).index_add_(0, labels[a : a + batch_size], x[a : a + batch_size])
        sums += part.double()
    counts = torch.bincount(labels, minlength=k)
    new = (sums / counts.clamp(min=1)[:, None]).float()
    empty = torch.nonzero(counts == 0).squeeze(1)
    if empty.numel():
        far = torch.topk(dist, int(empty.numel())).indices
        new[empty] = x[far]
    return new


def moderate_scores(emb: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Moderate-coreset score (Xia et al. 2023): ``|d_i − median(d)|`` where ``d_i`` is the
    Euclidean distance of unit ``i`` to the coordinate-wise median embedding of its cluster
    (``labels``; all units form one cluster when ``None``) and ``median(d)`` is taken over the
    same cluster.

    LOW = moderate: keeping the lowest scores (``select_top(..., keep="low")``) keeps the
    middle band of distances, dropping both the easiest (near the centre) and the hardest
    (far out). (The D²/CCS helper the seed borrows keeps the two extreme tails instead.)

    Example
    -------
    >>> emb = np.array([[0.0], [1.0], [2.0], [4.0], [8.0]])  # median 2 → distances 2,1,0,2,6
    >>> moderate_scores(emb).tolist()                          # median distance 2
    [0.0, 1.0, 2.0, 0.0, 4.0]
    """
    a = as_embeddings(emb)
    groups = _groups(labels, a.shape[0])
    out = np.empty(a.shape[0], dtype=np.float32)
    for idx in groups:
        d = np.linalg.norm(a[idx] - np.median(a[idx], axis=0), axis=1)
        out[idx] = np.abs(d - np.median(d))
    return out


def _groups(labels: np.ndarray | None, n: int) -> list[np.ndarray]:
    """Unit indices of every cluster (one group of all units when ``labels`` is None)."""
    if labels is None:
        return [np.arange(n)]
    lab = np.asarray(labels)
    if lab.shape != (n,) or not np.issubdtype(lab.dtype, np.integer):
        raise DataFormatError(f"labels must be {n} integer cluster ids (one per embedding row), got shape {lab.shape}")
    order = np.argsort(lab, kind="stable")
    cuts = np.flatnonzero(np.diff(lab[order])) + 1
    return np.split(order, cuts)


def prototype_scores(
    emb: np.ndarray, n_clusters: int, *, rng: np.random.Generator, n_iter: int = 20
) -> np.ndarray:
    """Self-supervised prototype score (Sorscher et al. 2022): k-means on the L2-normalised
    embeddings, then the cosine distance ``1 − cos(e_i, c_{label_i})`` to the unit's own centroid.

    HIGH = far from its prototype = "hard"; the paper (and the seed) keeps the highest scores
    when data is plentiful (``select_top(..., keep="high")``, or per cluster).

    Example
    -------
    >>> emb = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.3], [0.0, 2.0], [0.0, 5.0]])
    >>> s = prototype_scores(emb, 2, rng=np.random.default_rng(0))
    >>> np.round(s.astype(float), 3).tolist()  # the tilted (1, 0.3) is the far one of its cluster
    [0.005, 0.005, 0.019, 0.0, 0.0]
    """
    unit = unit_rows(as_embeddings(emb))
    centroids, labels = kmeans(unit, n_clusters, n_iter=n_iter, rng=rng)
    c = centroids[labels]
    cos = np.einsum("ij,ij->i", unit, c) / np.maximum(np.linalg.norm(c, axis=1), 1e-12)
    return (1.0 - cos).astype(np.float32)
