"""Pseudo-labels for unsupervised ReID: DBSCAN on a precomputed (sparse Jaccard) distance, relabelling to
0..C-1 with outliers as -1, cluster statistics (ARI/NMI against true labels when known), and the relabelled
training records and cluster centroids that Cluster-Contrast trains on."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from reidkit.types import Record

log = logging.getLogger(__name__)


def dbscan_labels(
    dist: sp.spmatrix | sp.sparray | np.ndarray, eps: float = 0.6, min_samples: int = 4
) -> np.ndarray:
    """DBSCAN on a precomputed distance matrix [N, N] -> labels [N] relabelled 0..C-1, outliers -1.

    A sparse matrix lists the candidate neighbours only (absent entries count as "far"; stored zeros count as
    distance 0); the point itself always counts towards `min_samples`, as in sklearn.
    """
    from sklearn.cluster import DBSCAN

    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"dbscan_labels: expected a square distance matrix [N, N], got shape {dist.shape}")
    if eps <= 0 or min_samples < 1:
        raise ValueError(f"dbscan_labels: need eps > 0 and min_samples >= 1, got eps={eps}, {min_samples}")
    values = dist.data if sp.issparse(dist) else np.asarray(dist)
    if values.size and (not np.all(np.isfinite(values)) or values.min() < 0):
        raise ValueError("dbscan_labels: distances must be finite and >= 0")
    if dist.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    x = sp.csr_matrix(dist) if sp.issparse(dist) else np.asarray(dist, dtype=np.float64)
    raw = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(x)
    return relabel(raw)


def relabel(labels: np.ndarray | Sequence[int]) -> np.ndarray:
    """Map the non-negative labels to 0..C-1 in sorted order; negative labels (outliers) become -1."""
    labels = np.asarray(labels, dtype=np.int64)  # [N]
    out = np.full(labels.shape, -1, dtype=np.int64)
    keep = labels >= 0
    _, out[keep] = np.unique(labels[keep], return_inverse=True)
    return out


def cluster_stats(labels: np.ndarray, true_pids: np.ndarray | None = None) -> dict[str, float]:
    """Clusters, outliers and mean cluster size; with true labels, ARI and NMI against them.

    ARI/NMI are taken over all samples with each outlier as a cluster of its own (so discarding samples is
    not rewarded), plus `ari_clustered` over the clustered samples only.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.asarray(labels, dtype=np.int64)
    n_clusters = int(labels.max()) + 1 if (labels >= 0).any() else 0
    n_out = int((labels < 0).sum())
    stats: dict[str, float] = {
        "clusters": n_clusters,
        "outliers": n_out,
        "outlier_frac": n_out / max(len(labels), 1),
        "mean_cluster_size": (len(labels) - n_out) / max(n_clusters, 1),
    }
    if true_pids is not None:
        true_pids = np.asarray(true_pids)
        if true_pids.shape != labels.shape:
            raise ValueError(f"cluster_stats: true_pids has shape {true_pids.shape}, labels {labels.shape}")
        singleton = np.where(labels >= 0, labels, n_clusters + np.arange(len(labels)))
        stats["ari"] = float(adjusted_rand_score(true_pids, singleton))
        stats["nmi"] = float(normalized_mutual_info_score(true_pids, singleton))
        keep = labels >= 0
        stats["ari_clustered"] = (
            float(adjusted_rand_score(true_pids[keep], labels[keep])) if keep.any() else 0.0
        )
    return stats


def pseudo_label_records(records: Sequence[Record], labels: np.ndarray) -> list[Record]:
    """Records with pid replaced by their pseudo-label (same path, camera, text), outliers (-1) left out."""
    labels = np.asarray(labels)
    if labels.shape != (len(records),):
        raise ValueError(f"pseudo_label_records: {len(records)} records but labels of shape {labels.shape}")
    return [
        dataclasses.replace(r, pid=int(y)) for r, y in zip(records, labels.tolist(), strict=True) if y >= 0
    ]


def cluster_means(feats: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """L2-normalised mean feature of every cluster 0..C-1: [C, D] float32 (outliers ignored)."""
    feats = np.asarray(feats, dtype=np.float64)  # [N, D]
    labels = np.asarray(labels, dtype=np.int64)
    if feats.ndim != 2 or labels.shape != (feats.shape[0],):
        raise ValueError(
            f"cluster_means: expected feats [N, D] and labels [N], got {feats.shape}, {labels.shape}"
        )
    keep = labels >= 0
    n_clusters = int(labels.max()) + 1 if keep.any() else 0
    sums = np.zeros((n_clusters, feats.shape[1]))
    np.add.at(sums, labels[keep], feats[keep])
    counts = np.bincount(labels[keep], minlength=n_clusters)
    if n_clusters and (counts == 0).any():
        raise ValueError(
            f"cluster_means: labels must be 0..C-1 without gaps; empty: {np.flatnonzero(counts == 0)}"
        )
    means = sums / np.maximum(counts, 1)[:, None]
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return (means / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclasses.dataclass
class PseudoLabels:
    """One clustering round: labels per input sample, the relabelled records, centroids and statistics."""

    labels: np.ndarray  # [N] 0..C-1, -1 = outlier, in the order of the input records
    records: list[Record]  # the clustered records with pid = pseudo-label (outliers left out)
    centroids: np.ndarray  # [C, D] float32, L2-normalised cluster means
    stats: dict[str, float]


def pseudo_labels(
    features: np.ndarray,
    dist: sp.spmatrix | sp.sparray | np.ndarray,
    records: Sequence[Record],
    *,
    eps: float = 0.6,
    min_samples: int = 4,
    true_pids: np.ndarray | None = None,
) -> PseudoLabels:
    """DBSCAN labels, relabelled records, centroids and statistics; `features` [N, D] and `dist` [N, N] are
    in the order of `records`."""
    if features.shape[0] != len(records) or dist.shape[0] != len(records):
        raise ValueError(
            f"pseudo_labels: {len(records)} records, features {features.shape}, distances {dist.shape}"
        )
    labels = dbscan_labels(dist, eps=eps, min_samples=min_samples)
    return PseudoLabels(
        labels,
        pseudo_label_records(records, labels),
        cluster_means(features, labels),
        cluster_stats(labels, true_pids),
    )
