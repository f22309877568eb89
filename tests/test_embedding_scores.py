"""Embedding scores: k-means, moderate (Xia et al. 2023), prototype (Sorscher et al. 2022)."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

from recsift.errors import ConfigError, DataFormatError
from recsift.scoring import embedding
from recsift.scoring.embedding import kmeans, moderate_scores, prototype_scores


def test_docstring_examples_run():
    failed, _ = doctest.testmod(embedding, extraglobs={"np": np})
    assert failed == 0


def test_kmeans_recovers_planted_clusters():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0, 0], [20, 0, 0], [0, 20, 0], [0, 0, 20], [20, 20, 20]], dtype=np.float32)
    truth = np.repeat(np.arange(5), 200)
    x = centers[truth] + rng.normal(scale=0.5, size=(1000, 3)).astype(np.float32)
    c, labels = kmeans(x, 5, rng=np.random.default_rng(1), batch_size=128)
    assert c.dtype == np.float32 and c.shape == (5, 3) and labels.dtype == np.int64
    # one label per planted cluster, and a bijection between them
    mapping = {t: set(labels[truth == t].tolist()) for t in range(5)}
    assert all(len(v) == 1 for v in mapping.values())
    assert len(set.union(*mapping.values())) == 5
    for t in range(5):
        np.testing.assert_allclose(c[labels[truth == t][0]], x[truth == t].mean(0), atol=1e-4)


def test_kmeans_reseeds_empty_clusters():
    # 3 distinct points, 3 clusters, many duplicates: every cluster must end up used
    x = np.array([[0.0], [0.0], [0.0], [0.0], [5.0], [9.0]])
    c, labels = kmeans(x, 3, rng=np.random.default_rng(0))
    assert sorted(c.ravel().tolist()) == [0.0, 5.0, 9.0]
    assert np.bincount(labels, minlength=3).min() >= 1
    with pytest.raises(ConfigError, match=r"k=7 clusters must be an integer in \[1, 6\]"):
        kmeans(x, 7, rng=np.random.default_rng(0))
    with pytest.raises(DataFormatError, match="NaN/inf"):
        kmeans(np.array([[np.nan], [1.0]]), 1, rng=np.random.default_rng(0))


def test_kmeans_empty_cluster_moves_to_the_farthest_point():
    x = np.array([[0.0], [1.0], [10.0]], dtype=np.float32)
    labels = embedding.torch.tensor([0, 0, 0])
    dist = embedding.torch.tensor([0.25, 0.25, 90.25])  # squared distances to centroid 0 (at 0.5)
    old = embedding.torch.tensor([[0.5], [100.0]])
    new = embedding._update_centroids(embedding.torch.from_numpy(x), labels, dist, old, batch_size=2)
    assert new.ravel().tolist() == [pytest.approx(11 / 3), 10.0]


def test_moderate_scores_per_cluster():
    # cluster 0: 1-d points 0, 1, 2, 4, 8 → median 2, distances 2, 1, 0, 2, 6, median distance 2
    # cluster 1: 2-d points (0,0), (3,4), (6,8) → median (3,4), distances 5, 0, 5, median 5
    emb = np.array([[0, 0], [1, 0], [2, 0], [4, 0], [8, 0], [0, 100], [3, 104], [6, 108]], dtype=np.float32)
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    s = moderate_scores(emb, labels)
    np.testing.assert_allclose(s, [0, 1, 2, 0, 4, 0, 5, 0], atol=1e-5)
    # keeping the lowest keeps the middle band of each cluster
    assert np.argsort(s[:5], kind="stable")[:2].tolist() == [0, 3]
    with pytest.raises(DataFormatError, match="labels must be 8 integer cluster ids"):
        moderate_scores(emb, labels[:3])


def test_prototype_scores_worked_example():
    # cluster A: unit vectors u1 = u2 = (1, 0), u3 = (1, 0.3)/sqrt(1.09) = (0.957826, 0.287348)
    #   centroid c = (0.985942, 0.095783), |c| = sqrt(0.972082 + 0.009174) = 0.990584
    #   cos(u1, c) = 0.985942/0.990584 = 0.995314 → 0.004686
    #   cos(u3, c) = (0.944361 + 0.027523)/0.990584 = 0.981122 → 0.018878
    # cluster B: (0,2) and (0,5) normalise to the same point → 0
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.3], [0.0, 2.0], [0.0, 5.0]])
    s = prototype_scores(emb, 2, rng=np.random.default_rng(0))
    np.testing.assert_allclose(s, [0.004686, 0.004686, 0.018878, 0, 0], atol=2e-6)
    assert s.dtype == np.float32
