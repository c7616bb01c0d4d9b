"""Centroid protocols: one gallery row per identity (plain, or camera-aware for each query's own pid)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from reidkit.evaluation.distance import as_float_tensor, paired_distance, pairwise_distance
from reidkit.types import Features


def _group_sums(feats: torch.Tensor, keys: np.ndarray) -> tuple[np.ndarray, torch.Tensor, np.ndarray]:
    """Sum of rows per distinct key: (sorted unique keys [U], sums [U, D] float64, counts [U])."""
    uniq, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
    sums = torch.zeros((uniq.shape[0], feats.shape[1]), dtype=torch.float64, device=feats.device)
    sums.index_add_(0, torch.as_tensor(inv, device=feats.device), feats.to(torch.float64))
    return uniq, sums, cnt


def centroid_gallery(gallery: Features) -> Features:
    """The centroid protocol's gallery: one row per pid, the mean of its L2-normalised features,
    re-normalised. Centroids have no camera (camid -1) and no record (index -1)."""
    if len(gallery) == 0:
        raise ValueError("centroid_gallery: the gallery is empty")
    feats = F.normalize(as_float_tensor(gallery.feats, "gallery.feats"), dim=1)
    pids, sums, _ = _group_sums(feats, gallery.pids)
    cent = F.normalize(sums, dim=1).to(feats.dtype)  # [P, D]
    none = np.full(pids.shape[0], -1, dtype=np.int64)
    return Features(feats=cent.cpu().numpy(), pids=pids.astype(np.int64), camids=none, index=none.copy())


def camera_aware_centroid_distances(
    query: Features, gallery: Features, metric: str = "cosine"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distances for the camera-aware centroid protocol: (distmat [Q, P], centroid pids [P], valid [Q]).

    Every pid is one centroid of all its gallery images, except a query's own pid, which is the centroid
    of only the gallery images of that pid taken by *other* cameras than the query's: the cross-camera
    rule (drop same-pid same-camera images) applied before averaging. Cameras are matched by value
    (query camid vs gallery camid), never by position in a concatenated query+gallery array (the widely
    used implementation reads the gallery's cameras with the query offset, i.e. from the wrong images).
    Features are L2-normalised first. `valid` is False for queries whose pid has no such image.
    """
    feats = F.normalize(as_float_tensor(gallery.feats, "gallery.feats"), dim=1)  # [G, D]
    qf = F.normalize(as_float_tensor(query.feats, "query.feats").to(feats.device), dim=1)  # [Q, D]
    pids, pid_sums, pid_cnt = _group_sums(feats, gallery.pids)
    cent = F.normalize(pid_sums, dim=1).to(feats.dtype)  # [P, D]
    distmat = pairwise_distance(qf, cent, metric).cpu().numpy()  # [Q, P]

    # Sum over same-pid other-camera images = pid sum - (pid, camera) sum.
    cmin = int(min(gallery.camids.min(), query.camids.min()))
    ncam = int(max(gallery.camids.max(), query.camids.max())) - cmin + 1
    pmin = int(min(pids.min(), query.pids.min()))

    def key(p: np.ndarray, c: np.ndarray) -> np.ndarray:
        return (p.astype(np.int64) - pmin) * ncam + (c.astype(np.int64) - cmin)

    pc_keys, pc_sums, pc_cnt = _group_sums(feats, key(gallery.pids, gallery.camids))
    col = np.minimum(np.searchsorted(pids, query.pids), pids.shape[0] - 1)  # [Q] the query's pid column
    has_pid = pids[col] == query.pids
    own = pid_sums[torch.as_tensor(col, device=feats.device)]  # [Q, D] (a copy: advanced indexing)
    own_cnt = pid_cnt[col].copy()  # [Q]
    at = np.minimum(np.searchsorted(pc_keys, key(query.pids, query.camids)), pc_keys.shape[0] - 1)
    found = pc_keys[at] == key(query.pids, query.camids)
    own[torch.as_tensor(np.flatnonzero(found), device=feats.device)] -= pc_sums[
        torch.as_tensor(at[found], device=feats.device)
    ]
    own_cnt[found] -= pc_cnt[at[found]]
    valid = has_pid & (own_cnt > 0)
    own_cent = F.normalize(own, dim=1).to(feats.dtype)  # [Q, D]
    own_d = paired_distance(qf, own_cent, metric).cpu().numpy()  # [Q]
    rows = np.flatnonzero(valid)
    distmat[rows, col[rows]] = own_d[rows]
    return distmat, pids.astype(np.int64), valid


def camera_aware_reference_centroids(
    query: Features, gallery: Features
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The centroid gallery of centroids-reid's camera-aware protocol, with its camera-index bug fixed:
    (centroids [C, D] unit rows, pids [C], camera values [M], members [C, M] bool).

    For every pid that has query images, and for each distinct camera c of those queries (ascending), one
    centroid of that pid's gallery images taken by cameras other than c, carrying the set of cameras it used;
    a camera set already made for the pid is not repeated, and c is skipped if the pid has no gallery image
    from another camera. Pids without a query (distractors, junk, gallery-only ids) get no centroid. The
    reference reads the gallery cameras at gallery positions of the concatenated query+gallery array (the
    query's cameras); here they are the gallery's own. Centroid = mean of L2-normalised features,
    re-normalised (the reference averages the raw features; the two agree for unit features).
    """
    feats = F.normalize(as_float_tensor(gallery.feats, "gallery.feats"), dim=1).to(torch.float64)
    cams = np.unique(gallery.camids)  # [M]
    rows, pids, members = [], [], []
    q_cams_of = {int(p): np.unique(query.camids[query.pids == p]) for p in np.unique(query.pids)}
    for pid in np.unique(gallery.pids):
        made: set[bytes] = set()  # camera sets already built for this pid
        of_pid = np.flatnonzero(gallery.pids == pid)
        for c in q_cams_of.get(int(pid), ()):
            sel = of_pid[gallery.camids[of_pid] != c]
            if sel.size == 0:
                continue
            used = np.isin(cams, gallery.camids[sel])
            if used.tobytes() in made:
                continue
            made.add(used.tobytes())
            rows.append(feats[torch.as_tensor(sel, device=feats.device)].mean(0))
            pids.append(int(pid))
            members.append(used)
    if not rows:
        raise ValueError("camera_aware_reference: no queried pid has gallery images from other cameras")
    cent = F.normalize(torch.stack(rows), dim=1).to(torch.float32).cpu().numpy()
    return cent, np.asarray(pids, dtype=np.int64), cams.astype(np.int64), np.stack(members)
