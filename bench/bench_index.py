"""Gallery index benchmark: instance vs centroid GalleryIndex on a Market-1501-sized synthetic gallery.

    python bench/bench_index.py [--dim 2048] [--threads 1] [--pq] [--quick]

Features are seeded synthetic re-id embeddings (15,913 gallery vectors of 751 identities seen by 2-6 of 6
cameras, 3,368 queries): identities share "outfit" prototypes (hard negatives), each camera adds a bias,
each (identity, camera) a view offset and each image noise, all in a 64-d subspace; the defaults give
R1 ~0.9 / mAP ~0.8 on the exact instance search, like a decent Market-1501 model.

For each mode and factory: build time (incl. training), save time, bytes on disk, load time (incl. the
sha256 verification), single-query and batched query latency (p50/p99), and R1 / mAP@K from the index's
own top-K lists (K=100). The "exact" lines are the full-ranking metrics of the same features
(reidkit.evaluation.rank_metrics; instance: Market's cross-camera protocol; centroid: each query against
every identity centroid, one relevant item, no camera filtering). faiss and BLAS run on --threads threads.
Prints a table and writes bench/results/bench_index_d{dim}[_quick].json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from reidkit.evaluation.metrics import rank_metrics
from reidkit.index import GalleryIndex
from reidkit.types import Features, Record
from reidkit.utils import atomic_write

HERE = Path(__file__).resolve().parent
N_GALLERY, N_IDS, N_QUERY, N_CAMS = 15913, 751, 3368, 6


def market_sized(
    dim: int, seed: int = 0, scale: float = 1.0, noise: float = 0.6, spread: float = 0.6, latent: int = 64
) -> tuple[Features, Features, list[Record]]:
    """(query, gallery, gallery records): seeded clustered features shaped like Market-1501's test split.

    Appearance lives in a `latent`-dim subspace mapped into `dim` by a random orthonormal map (plus a little
    isotropic noise), so the difficulty does not fade as `dim` grows, as with real embeddings.
    """
    rng = np.random.default_rng(seed)
    n_ids, n_gal, n_q = round(N_IDS * scale), round(N_GALLERY * scale), round(N_QUERY * scale)

    def gauss(*shape: int, d: int = latent) -> np.ndarray:
        return rng.standard_normal((*shape, d)) / np.sqrt(d)  # rows of norm ~1

    proto = gauss(n_ids // 5)  # outfit prototypes shared by ~5 identities each
    centres = proto[rng.integers(0, len(proto), n_ids)] + spread * gauss(n_ids)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    cam_bias = 0.3 * gauss(N_CAMS)
    view = 0.35 * gauss(n_ids, N_CAMS)  # how an identity looks in one camera (pose, light)
    embed = np.linalg.qr(rng.standard_normal((dim, latent)))[0].T  # [latent, dim], orthonormal rows
    id_cams = [rng.choice(N_CAMS, size=rng.integers(2, N_CAMS + 1), replace=False) for _ in range(n_ids)]
    # Gallery: every identity once in each of its cameras, the rest spread at random over its cameras.
    first = np.repeat(np.arange(n_ids), [len(c) for c in id_cams])
    g_pid = np.concatenate([first, rng.integers(0, n_ids, n_gal)])[:n_gal]
    g_cam = np.array([rng.choice(id_cams[p]) for p in g_pid])
    g_cam[: len(first)] = np.concatenate(id_cams)
    # Queries: (identity, camera) pairs; every identity is also in the gallery under another camera.
    pairs = np.array([(p, c) for p, cs in enumerate(id_cams) for c in cs])
    pairs = pairs[rng.permutation(len(pairs))]
    pairs = np.concatenate([pairs, pairs])[:n_q]

    def sample(pid: np.ndarray, cam: np.ndarray) -> np.ndarray:
        z = centres[pid] + cam_bias[cam] + view[pid, cam] + noise * gauss(len(pid))  # [N, latent]
        x = z @ embed + 0.1 * gauss(len(pid), d=dim)  # [N, dim]
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    q = Features(sample(pairs[:, 0], pairs[:, 1]), pairs[:, 0].copy(), pairs[:, 1].copy(), np.arange(n_q))
    g = Features(sample(g_pid, g_cam), g_pid.astype(np.int64), g_cam.astype(np.int64), np.arange(n_gal))
    records = [
        Record(f"/synthetic/{p:04d}_c{c + 1}_{i:06d}.jpg", int(p), int(c))
        for i, (p, c) in enumerate(zip(g_pid, g_cam, strict=True))
    ]
    return q, g, records


def exact_metrics(query: Features, gallery: Features, centroid: GalleryIndex | None) -> dict[str, float]:
    """Full-ranking R1 / mAP of the features themselves (the quality ceiling of any index)."""
    if centroid is None:
        dist = 1.0 - query.feats @ gallery.feats.T  # [Q, G]
        report = rank_metrics(dist, query.pids, gallery.pids, query.camids, gallery.camids)
    else:
        cents = centroid.centroids()  # [P, D]
        pids = np.array([e.pid for e in centroid.entries()])
        dist = 1.0 - query.feats @ cents.T  # [Q, P]
        report = rank_metrics(dist, query.pids, pids, query.camids, np.full(len(pids), -1))
    return {"R1": float(report.cmc[0]), "mAP": float(report.mAP)}


def topk_metrics(
    ids: np.ndarray, gi: GalleryIndex, query: Features, gallery: Features, centroid: bool
) -> dict[str, float]:
    """R1 and mAP@K from an index's top-K lists [Q, K]; positives the index did not return count as misses.

    Instance mode uses the cross-camera protocol (same pid and camera as the query: ignored).
    """
    pid_of = np.array([e.pid for e in gi.entries()])
    cam_of = np.array([e.camid for e in gi.entries()])
    if centroid:
        n_pos = np.ones(len(query))
    else:
        same = gallery.pids[None, :] == query.pids[:, None]  # [Q, G]
        n_pos = (same & (gallery.camids[None, :] != query.camids[:, None])).sum(axis=1)
    r1, aps = [], []
    for qi in range(len(query)):
        row = ids[qi][ids[qi] >= 0]
        if not centroid:
            row = row[~((pid_of[row] == query.pids[qi]) & (cam_of[row] == query.camids[qi]))]
        hit = pid_of[row] == query.pids[qi]
        if n_pos[qi] == 0:
            continue
        r1.append(bool(hit[:1].any()))
        ranks = np.flatnonzero(hit) + 1
        aps.append(float(np.sum(np.arange(1, len(ranks) + 1) / ranks) / n_pos[qi]))
    return {"R1": float(np.mean(r1)), "mAP@K": float(np.mean(aps))}


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def run_one(
    mode: str, factory: str, query: Features, gallery: Features, records: list[Record], k: int, work: Path
) -> dict:
    start = time.perf_counter()
    gi = GalleryIndex.build(gallery, records, mode=mode, factory=factory, model_sha256="0" * 64)
    gi.search(query.feats[:1], 1)  # centroid mode builds (and trains) its index lazily: include that
    build_s = time.perf_counter() - start
    out = work / f"{mode}-{factory.replace(',', '_')}"
    start = time.perf_counter()
    gi.save(out)
    save_s = time.perf_counter() - start
    size = sum(p.stat().st_size for p in out.iterdir())
    start = time.perf_counter()
    gi = GalleryIndex.load(out, expected_model_sha256="0" * 64, expected_dim=gallery.feats.shape[1])
    load_s = time.perf_counter() - start
    single = []
    for q in query.feats[:300]:
        t0 = time.perf_counter()
        gi.search(q[None], 10)
        single.append((time.perf_counter() - t0) * 1000)
    batched, ids = [], []
    for s in range(0, len(query), 256):
        t0 = time.perf_counter()
        ids.append(gi.search(query.feats[s : s + 256], k)[1])
        batched.append((time.perf_counter() - t0) * 1000)
    found = np.concatenate(ids)  # [Q, K]
    return {
        "mode": mode,
        "factory": gi.factory,
        "entries": len(gi),
        "build_s": build_s,
        "save_s": save_s,
        "load_verify_s": load_s,
        "bytes_on_disk": size,
        "single_query": percentiles(single),
        "batch256": {**percentiles(batched), "qps": 1000 * len(query) / sum(batched)},
        **topk_metrics(found, gi, query, gallery, centroid=mode == "centroid"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=1, help="faiss OpenMP and BLAS threads")
    parser.add_argument("--pq", action="store_true", help="also IVF-PQ (instance mode; slow to train)")
    parser.add_argument("--quick", action="store_true", help="a 1/8-size gallery, for a smoke run")
    parser.add_argument("-k", type=int, default=100, help="list length for R1 / mAP@K")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    threadpool_limits(args.threads)  # numpy's BLAS (ExactIndex, metrics): spin-waiting threads skew timings
    scale = 0.125 if args.quick else 1.0
    query, gallery, records = market_sized(args.dim, scale=scale)
    nlist_inst = 2 ** round(np.log2(np.sqrt(len(gallery))))  # ~sqrt(N): 128 for 15,913
    nlist_cent = 2 ** round(np.log2(np.sqrt(len(set(gallery.pids.tolist())))))  # 32 for 751
    plans = [("instance", f) for f in ("Exact", "Flat", f"IVF{nlist_inst},Flat", "HNSW32")]
    if args.pq:
        plans.append(("instance", f"IVF{nlist_inst},PQ{args.dim // 32}"))
    plans += [("centroid", f) for f in ("Flat", f"IVF{nlist_cent},Flat", "HNSW32")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_index_") as tmp:
        for mode, factory in plans:
            rows.append(run_one(mode, factory, query, gallery, records, args.k, Path(tmp)))
            r = rows[-1]
            print(f"  done {mode:8s} {r['factory']:14s} build {r['build_s']:.2f}s", flush=True)
        cent = GalleryIndex.build(gallery, records, mode="centroid", factory="Exact")
    exact = {
        "instance": exact_metrics(query, gallery, None),
        "centroid": exact_metrics(query, gallery, cent),
    }
    header = (
        f"{'mode':9s} {'factory':14s} {'entries':>7s} {'build s':>8s} {'MB disk':>8s} {'load s':>7s} "
        f"{'1q p50':>7s} {'1q p99':>7s} {'b256 p50':>9s} {'b256 p99':>9s} {'qps':>7s} "
        f"{'R1':>6s} {'mAP@K':>6s}"
    )
    print(
        f"\nMarket-sized gallery: {len(gallery)} vectors, {len(set(gallery.pids.tolist()))} ids, "
        f"dim {args.dim}, {len(query)} queries, faiss threads {args.threads}, K={args.k}; latencies in ms"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['mode']:9s} {r['factory']:14s} {r['entries']:7d} {r['build_s']:8.2f} "
            f"{r['bytes_on_disk'] / 2**20:8.1f} {r['load_verify_s']:7.2f} "
            f"{r['single_query']['p50_ms']:7.2f} {r['single_query']['p99_ms']:7.2f} "
            f"{r['batch256']['p50_ms']:9.1f} {r['batch256']['p99_ms']:9.1f} "
            f"{r['batch256']['qps']:7.0f} {r['R1']:6.3f} {r['mAP@K']:6.3f}"
        )
    for mode, m in exact.items():
        print(f"exact full ranking, {mode:8s}: R1 {m['R1']:.3f}  mAP {m['mAP']:.3f}")
    result = {
        "benchmark": "bench_index",
        "gallery": len(gallery),
        "ids": len(set(gallery.pids.tolist())),
        "queries": len(query),
        "dim": args.dim,
        "k": args.k,
        "faiss_threads": args.threads,
        "faiss_version": faiss.__version__,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "rows": rows,
        "exact": exact,
    }
    out = HERE / "results" / f"bench_index_d{args.dim}{'_quick' if args.quick else ''}.json"
    with atomic_write(out, "w") as fh:
        fh.write(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
