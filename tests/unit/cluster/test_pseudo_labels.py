"""Pseudo-labels: DBSCAN on a sparse precomputed distance, relabelling, record <-> label mapping, stats."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from reidkit.cluster.pseudo_labels import (
    cluster_means,
    cluster_stats,
    dbscan_labels,
    pseudo_label_records,
    pseudo_labels,
    relabel,
)
from reidkit.types import Record

# 10 samples: group A = {0, 2, 4, 6} (true id 7), group B = {1, 3, 5, 8, 9} (true id 3), 7 is an outlier
GROUPS = {"A": [0, 2, 4, 6], "B": [1, 3, 5, 8, 9]}
TRUE = np.array([7, 3, 7, 3, 7, 3, 7, 5, 3, 3])


def _sparse_dist(within: float = 0.2) -> sp.csr_matrix:
    """Distance `within` inside a group (stored explicitly, zeros included); nothing stored across groups."""
    rows, cols, vals = [], [], []
    for members in GROUPS.values():
        for i in members:
            for j in members:
                rows.append(i)
                cols.append(j)
                vals.append(0.0 if i == j else within)
    return sp.csr_matrix((vals, (rows, cols)), shape=(10, 10))


def _records() -> list[Record]:
    return [Record(path=f"img_{i}.jpg", pid=int(TRUE[i]), camid=i % 3) for i in range(10)]


def test_relabel_sorted_and_outliers_stay_negative():
    assert relabel([5, -1, 2, 5, 9, -3]).tolist() == [1, -1, 0, 1, 2, -1]
    assert relabel([]).tolist() == []


@pytest.mark.parametrize("within", [0.2, 0.0])  # 0.0: explicitly stored zeros must still count as neighbours
def test_dbscan_on_sparse_distances_finds_the_groups_and_the_outlier(within):
    labels = dbscan_labels(_sparse_dist(within), eps=0.5, min_samples=4)
    a, b = labels[GROUPS["A"]], labels[GROUPS["B"]]
    assert len(set(a.tolist())) == 1 and len(set(b.tolist())) == 1 and a[0] != b[0]
    assert labels[7] == -1
    assert sorted({int(a[0]), int(b[0])}) == [0, 1]  # relabelled to 0..C-1


def test_dense_and_sparse_distances_agree():
    sparse = _sparse_dist()
    dense = sparse.toarray()
    dense[sparse.toarray() == 0] = 1.0  # absent = far
    np.fill_diagonal(dense, 0.0)
    assert dbscan_labels(dense, eps=0.5, min_samples=4).tolist() == dbscan_labels(sparse, 0.5, 4).tolist()


def test_min_samples_counts_the_point_itself():
    # group A has 4 members: each has 4 neighbours within eps including itself -> a cluster at 4, not at 5
    labels = dbscan_labels(_sparse_dist(), eps=0.5, min_samples=5)
    assert (labels[GROUPS["A"]] == -1).all() and (labels[GROUPS["B"]] == 0).all()


def test_relabelled_records_drop_outliers_and_keep_the_mapping():
    recs = _records()
    labels = dbscan_labels(_sparse_dist(), eps=0.5, min_samples=4)
    out = pseudo_label_records(recs, labels)
    assert [r.path for r in out] == [f"img_{i}.jpg" for i in range(10) if i != 7]
    by_path = {r.path: r for r in out}
    for i in range(10):
        if i == 7:
            continue
        r = by_path[f"img_{i}.jpg"]
        assert r.pid == labels[i] and r.camid == recs[i].camid  # same camera, pid = pseudo-label
    # records of one true identity share a pseudo-label, different identities do not
    pid_of = {int(TRUE[i]): by_path[f"img_{i}.jpg"].pid for i in range(10) if i != 7}
    assert len(set(pid_of.values())) == 2


def test_cluster_stats_counts_and_agreement():
    labels = dbscan_labels(_sparse_dist(), eps=0.5, min_samples=4)
    st = cluster_stats(labels, TRUE)
    assert st["clusters"] == 2 and st["outliers"] == 1 and st["mean_cluster_size"] == pytest.approx(4.5)
    # the outlier is alone in its true identity (5), so as a singleton it is right: a perfect clustering
    assert st["ari"] == pytest.approx(1.0) and st["nmi"] == pytest.approx(1.0)
    # merging everything is no better than chance
    merged = cluster_stats(np.zeros(10, dtype=np.int64), TRUE)
    assert merged["ari"] == pytest.approx(0.0) and merged["clusters"] == 1
    # renaming the clusters does not change the agreement
    assert cluster_stats(np.where(labels >= 0, 1 - labels, -1), TRUE)["ari"] == pytest.approx(1.0)
    assert "ari" not in cluster_stats(labels)


def test_cluster_means_hand_worked():
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0], [9.0, 9.0]])
    means = cluster_means(feats, np.array([0, 0, 1, -1]))
    s = 1 / np.sqrt(2)
    assert np.allclose(means, [[s, s], [0.6, 0.8]]) and means.dtype == np.float32
    with pytest.raises(ValueError, match="without gaps"):
        cluster_means(feats, np.array([0, 2, 2, -1]))


def test_pseudo_labels_round():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(10, 3)).astype(np.float32)
    res = pseudo_labels(feats, _sparse_dist(), _records(), eps=0.5, min_samples=4, true_pids=TRUE)
    assert len(res.records) == 9 and res.centroids.shape == (2, 3)
    for c in range(2):
        m = feats[res.labels == c].mean(0)
        assert np.allclose(res.centroids[c], m / np.linalg.norm(m), atol=1e-6)
    assert res.stats["ari"] == pytest.approx(1.0)


def test_bad_distance_matrices_raise():
    with pytest.raises(ValueError, match="square"):
        dbscan_labels(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=">= 0"):
        dbscan_labels(-np.ones((3, 3)))
    with pytest.raises(ValueError, match="records"):
        pseudo_label_records(_records(), np.zeros(3))
