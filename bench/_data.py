"""Synthetic Market-1501-sized features for the evaluation benchmarks (seeded, no files needed).

Identities are grouped around shared "outfit" prototypes (so some identities are hard to tell apart),
each camera adds its own bias, and every image adds noise; the defaults give R1 ~ 0.9 on the
query/gallery problem, like a good Market-1501 model.
"""

from __future__ import annotations

import numpy as np

from reidkit.types import Features

# Market-1501 test split: 3,368 queries, 15,913 gallery (13,115 of 750 ids + 2,798 distractors), 6 cameras.
MARKET = {"n_query": 3368, "n_gallery_ids": 13115, "n_distractors": 2798, "n_ids": 750, "n_cams": 6}
MARKET_TRAIN = 12936  # images of 751 training identities


def _sample(
    rng: np.random.Generator,
    centers: np.ndarray,
    cam_bias: np.ndarray,
    pid_idx: np.ndarray,
    cams: np.ndarray,
    noise: float,
) -> np.ndarray:
    dim = centers.shape[1]
    eps = rng.standard_normal((pid_idx.shape[0], dim)) / np.sqrt(dim)
    x = centers[pid_idx] + cam_bias[cams] + noise * eps
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _identities(rng: np.random.Generator, n_ids: int, dim: int, spread: float) -> np.ndarray:
    groups = max(1, n_ids // 5)
    proto = rng.standard_normal((groups, dim)) / np.sqrt(dim)
    c = proto[rng.integers(0, groups, n_ids)] + spread * rng.standard_normal((n_ids, dim)) / np.sqrt(dim)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def market_like(
    scale: float = 1.0,
    dim: int = 256,
    seed: int = 0,
    noise: float = 1.0,
    spread: float = 0.47,
    cam_strength: float = 0.25,
) -> tuple[Features, Features]:
    """(query, gallery) Features shaped like Market-1501's test split, `scale` times its size."""
    rng = np.random.default_rng(seed)
    n_ids = max(4, round(MARKET["n_ids"] * scale))
    n_query = max(n_ids, round(MARKET["n_query"] * scale))
    n_gal = max(2 * n_ids, round(MARKET["n_gallery_ids"] * scale))
    n_dis = round(MARKET["n_distractors"] * scale)
    n_cams = MARKET["n_cams"]
    centers = _identities(rng, n_ids, dim, spread)
    cam_bias = cam_strength * rng.standard_normal((n_cams, dim)) / np.sqrt(dim)
    # each identity is seen by 3..6 cameras; queries: one per (identity, camera), trimmed to n_query
    id_cams = [rng.choice(n_cams, size=rng.integers(3, n_cams + 1), replace=False) for _ in range(n_ids)]
    pairs = np.array([(p, c) for p, cs in enumerate(id_cams) for c in cs])
    pairs = pairs[rng.permutation(len(pairs))[:n_query]]
    q_pid, q_cam = pairs[:, 0], pairs[:, 1]
    # gallery: every identity gets one image in each of its cameras, the rest spread at random
    one_each = np.repeat(np.arange(n_ids), [len(c) for c in id_cams])
    g_pid = np.concatenate([one_each, rng.integers(0, n_ids, n_gal)])
    g_pid = g_pid[:n_gal]
    g_cam = np.concatenate([np.concatenate(id_cams), np.zeros(max(0, n_gal), dtype=np.int64)])[:n_gal]
    start = sum(len(c) for c in id_cams)
    for i in range(min(start, n_gal), n_gal):
        g_cam[i] = rng.choice(id_cams[g_pid[i]])
    q_feat = _sample(rng, centers, cam_bias, q_pid, q_cam, noise)
    g_feat = _sample(rng, centers, cam_bias, g_pid, g_cam, noise)
    # distractors (pid 0 in Market): unrelated people, each its own random appearance
    d_centers = _identities(rng, n_dis, dim, spread)
    d_cam = rng.integers(0, n_cams, n_dis)
    d_feat = _sample(rng, d_centers, cam_bias, np.arange(n_dis), d_cam, noise)
    query = Features(
        feats=q_feat,
        pids=q_pid.astype(np.int64) + 1,
        camids=q_cam.astype(np.int64),
        index=np.arange(len(q_pid), dtype=np.int64),
    )
    g_all_pid = np.concatenate([g_pid + 1, np.zeros(n_dis, dtype=np.int64)]).astype(np.int64)
    g_all_cam = np.concatenate([g_cam, d_cam]).astype(np.int64)
    perm = rng.permutation(len(g_all_pid))
    gallery = Features(
        feats=np.concatenate([g_feat, d_feat])[perm],
        pids=g_all_pid[perm],
        camids=g_all_cam[perm],
        index=np.arange(len(perm), dtype=np.int64),
    )
    return query, gallery


def market_train_like(
    n: int = MARKET_TRAIN, dim: int = 256, seed: int = 1, noise: float = 1.0, spread: float = 0.47
) -> tuple[np.ndarray, np.ndarray]:
    """Unlabelled-training-set-like features [n, dim] (L2-normalised) and their true ids, ~17 per id."""
    rng = np.random.default_rng(seed)
    n_ids = max(2, round(n / 17.2))
    centers = _identities(rng, n_ids, dim, spread)
    cam_bias = 0.25 * rng.standard_normal((6, dim)) / np.sqrt(dim)
    pid = np.concatenate([np.arange(n_ids), rng.integers(0, n_ids, max(0, n - n_ids))])[:n]
    cam = rng.integers(0, 6, n)
    return _sample(rng, centers, cam_bias, pid, cam, noise), pid.astype(np.int64)
