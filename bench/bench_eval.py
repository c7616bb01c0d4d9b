"""Speed and memory of evaluation, re-ranking and the Jaccard distance against the classic algorithms.

    python bench/bench_eval.py [--quick] [--only rank,rerank,jaccard] [--dim 256] [--no-reference]

Every measurement runs in its own subprocess (peak RSS is that process's high-water mark, reset just
before the timed call), on the same seeded synthetic Market-1501-sized features (bench/_data.py). The
references are re-implementations, written here from their published definitions, of the widely used
pure-numpy `eval_market1501` loop, the classic dense `re_ranking` function and the common faiss+numpy
`compute_jaccard_distance`. Ours is timed as the best of 3 runs (the slow references once). The machine
is shared: compare the ratios of one run, not absolute times.
Prints a table and writes bench/results/bench_eval[_quick].json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TASKS = {
    "rank": ["rank_ours", "rank_argsort", "rank_ref"],
    "rerank": ["rerank_ours", "rerank_ref"],
    "jaccard": ["jaccard_ours", "jaccard_ref"],
}


# ------------------------------------------------------------------------------- reference algorithms
def ref_eval_market1501(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """The widely used pure-numpy evaluation loop (full argsort, per-query Python loop)."""
    num_q, num_g = distmat.shape
    indices = np.argsort(distmat, axis=1)
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    num_valid_q = 0.0
    for q_idx in range(num_q):
        order = indices[q_idx]
        remove = (g_pids[order] == q_pids[q_idx]) & (g_camids[order] == q_camids[q_idx])
        raw_cmc = matches[q_idx][np.invert(remove)]
        if not np.any(raw_cmc):
            continue
        cmc = raw_cmc.cumsum()
        max_pos_idx = np.max(np.where(raw_cmc == 1))
        all_inp.append(cmc[max_pos_idx] / (max_pos_idx + 1.0))
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        num_valid_q += 1.0
        num_rel = raw_cmc.sum()
        tmp_cmc = raw_cmc.cumsum()
        tmp_cmc = [x / (i + 1.0) for i, x in enumerate(tmp_cmc)]
        tmp_cmc = np.asarray(tmp_cmc) * raw_cmc
        all_ap.append(tmp_cmc.sum() / num_rel)
    all_cmc = np.asarray(all_cmc).astype(np.float32).sum(0) / num_valid_q
    return all_cmc, float(np.mean(all_ap)), float(np.mean(all_inp))


def ref_re_ranking(prob_fea, gal_fea, k1=20, k2=6, lambda_value=0.3):
    """The classic dense k-reciprocal re-ranking (N x N float32 distances, float16 encodings, loops)."""
    import torch

    query_num = prob_fea.shape[0]
    all_num = query_num + gal_fea.shape[0]
    feat = torch.cat([torch.from_numpy(prob_fea), torch.from_numpy(gal_fea)])
    sq = torch.pow(feat, 2).sum(dim=1, keepdim=True).expand(all_num, all_num)
    distmat = sq + sq.t()
    distmat.addmm_(feat, feat.t(), beta=1, alpha=-2)
    original_dist = distmat.numpy()
    del feat, sq
    gallery_num = original_dist.shape[0]
    original_dist = np.transpose(original_dist / np.max(original_dist, axis=0))
    v = np.zeros_like(original_dist).astype(np.float16)
    initial_rank = np.argsort(original_dist).astype(np.int32)
    for i in range(all_num):
        forward = initial_rank[i, : k1 + 1]
        backward = initial_rank[forward, : k1 + 1]
        k_reciprocal_index = forward[np.where(backward == i)[0]]
        expansion = k_reciprocal_index
        for j in range(len(k_reciprocal_index)):
            candidate = k_reciprocal_index[j]
            c_forward = initial_rank[candidate, : int(np.around(k1 / 2)) + 1]
            c_backward = initial_rank[c_forward, : int(np.around(k1 / 2)) + 1]
            c_recip = c_forward[np.where(c_backward == candidate)[0]]
            if len(np.intersect1d(c_recip, k_reciprocal_index)) > 2 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        weight = np.exp(-original_dist[i, expansion])
        v[i, expansion] = weight / np.sum(weight)
    original_dist = original_dist[:query_num,]
    if k2 != 1:
        v_qe = np.zeros_like(v, dtype=np.float16)
        for i in range(all_num):
            v_qe[i, :] = np.mean(v[initial_rank[i, :k2], :], axis=0)
        v = v_qe
        del v_qe
    del initial_rank
    inv_index = [np.where(v[:, i] != 0)[0] for i in range(gallery_num)]
    jaccard_dist = np.zeros_like(original_dist, dtype=np.float16)
    for i in range(query_num):
        temp_min = np.zeros(shape=[1, gallery_num], dtype=np.float16)
        ind_non_zero = np.where(v[i, :] != 0)[0]
        ind_images = [inv_index[ind] for ind in ind_non_zero]
        for j in range(len(ind_non_zero)):
            temp_min[0, ind_images[j]] = temp_min[0, ind_images[j]] + np.minimum(
                v[i, ind_non_zero[j]], v[ind_images[j], ind_non_zero[j]]
            )
        jaccard_dist[i] = 1 - temp_min / (2 - temp_min)
    final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
    del original_dist, v, jaccard_dist
    return final_dist[:query_num, query_num:]


def ref_compute_jaccard_distance(target_features, k1=20, k2=6):
    """The common faiss (CPU flat index) + numpy Jaccard distance of cluster-contrast / SpCL, dense N x N."""
    import faiss
    import torch
    import torch.nn.functional as F

    n = target_features.size(0)
    index = faiss.IndexFlatL2(target_features.size(-1))
    index.add(target_features.cpu().numpy())
    _, initial_rank = index.search(target_features.cpu().numpy(), k1)

    def k_reciprocal_neigh(rank, i, k):
        forward = rank[i, : k + 1]
        backward = rank[forward, : k + 1]
        return forward[np.where(backward == i)[0]]

    nn_k1 = [k_reciprocal_neigh(initial_rank, i, k1) for i in range(n)]
    nn_k1_half = [k_reciprocal_neigh(initial_rank, i, int(np.around(k1 / 2))) for i in range(n)]
    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        k_reciprocal_index = nn_k1[i]
        expansion = k_reciprocal_index
        for candidate in k_reciprocal_index:
            c_recip = nn_k1_half[candidate]
            if len(np.intersect1d(c_recip, k_reciprocal_index)) > 2 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        dist = 2 - 2 * torch.mm(target_features[i].unsqueeze(0).contiguous(), target_features[expansion].t())
        v[i, expansion] = F.softmax(-dist, dim=1).view(-1).cpu().numpy()
    del nn_k1, nn_k1_half
    if k2 != 1:
        v_qe = np.zeros_like(v, dtype=np.float32)
        for i in range(n):
            v_qe[i, :] = np.mean(v[initial_rank[i, :k2], :], axis=0)
        v = v_qe
        del v_qe
    del initial_rank
    inv_index = [np.where(v[:, i] != 0)[0] for i in range(n)]
    jaccard_dist = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        temp_min = np.zeros((1, n), dtype=np.float32)
        ind_non_zero = np.where(v[i, :] != 0)[0]
        ind_images = [inv_index[ind] for ind in ind_non_zero]
        for j in range(len(ind_non_zero)):
            temp_min[0, ind_images[j]] = temp_min[0, ind_images[j]] + np.minimum(
                v[i, ind_non_zero[j]], v[ind_images[j], ind_non_zero[j]]
            )
        jaccard_dist[i] = 1 - temp_min / (2 - temp_min)
    del inv_index, v
    jaccard_dist[jaccard_dist < 0] = 0.0
    return jaccard_dist


# ------------------------------------------------------------------------------------ one measurement
def _rss_now_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset this process's peak-RSS mark (Linux /proc/self/clear_refs); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _timed(fn, repeats: int = 1):
    """(result, best wall seconds of `repeats` runs, CPU seconds of that run (all threads), peak RSS above
    the starting RSS in MiB) of fn(). CPU seconds are less sensitive to other jobs on a shared machine."""
    import ctypes
    import gc

    gc.collect()
    try:  # hand freed heap pages back, so the baseline is what is really in use
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    base = _rss_now_kb()
    _reset_peak()
    best, cpu, out = float("inf"), float("nan"), None
    for _ in range(repeats):
        out = None
        gc.collect()
        c, t = time.process_time(), time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t
        if wall < best:
            best, cpu = wall, time.process_time() - c
    return out, best, cpu, (_peak_kb() - base) / 1024.0


def run_task(task: str, quick: bool, dim: int, workdir: Path) -> dict:
    import torch
    from _data import MARKET_TRAIN, market_like, market_train_like

    from reidkit.cluster import jaccard_distance
    from reidkit.evaluation import k_reciprocal_rerank, pairwise_distance, rank_metrics

    scale = 0.2 if quick else 1.0
    if task.startswith("rank") or task.startswith("rerank"):
        q, g = market_like(scale=scale, dim=dim)
        info = {"queries": len(q), "gallery": len(g), "dim": dim}
    if task.startswith("rank"):
        distmat = pairwise_distance(q.feats, g.feats).numpy()
        args = (distmat, q.pids, g.pids, q.camids, g.camids)
        if task == "rank_ours":
            rep, sec, cpu, mib = _timed(lambda: rank_metrics(*args), repeats=3)
            return {
                **info,
                "seconds": sec,
                "cpu_seconds": cpu,
                "peak_mib": mib,
                "cmc": rep.cmc.tolist(),
                "mAP": rep.mAP,
                "mINP": rep.mINP,
            }
        if task == "rank_argsort":
            _, sec, cpu, mib = _timed(lambda: np.argsort(distmat, axis=1))
            return {**info, "seconds": sec, "cpu_seconds": cpu, "peak_mib": mib}
        (cmc, m_ap, m_inp), sec, cpu, mib = _timed(lambda: ref_eval_market1501(*args))
        return {
            **info,
            "seconds": sec,
            "cpu_seconds": cpu,
            "peak_mib": mib,
            "cmc": cmc.tolist(),
            "mAP": m_ap,
            "mINP": m_inp,
        }
    if task.startswith("rerank"):
        fn = k_reciprocal_rerank if task == "rerank_ours" else ref_re_ranking
        dist, sec, cpu, mib = _timed(
            lambda: fn(q.feats, g.feats, 20, 6, 0.3), repeats=3 if task == "rerank_ours" else 1
        )
        before = rank_metrics(pairwise_distance(q.feats, g.feats).numpy(), q.pids, g.pids, q.camids, g.camids)
        after = rank_metrics(np.asarray(dist, dtype=np.float32), q.pids, g.pids, q.camids, g.camids)
        return {
            **info,
            "seconds": sec,
            "cpu_seconds": cpu,
            "peak_mib": mib,
            "mAP_before": before.mAP,
            "mAP": after.mAP,
            "R1": float(after.cmc[0]),
            "mINP": after.mINP,
        }
    # jaccard
    from sklearn.cluster import DBSCAN

    n = round(MARKET_TRAIN * (0.2 if quick else 1.0))
    x, _ = market_train_like(n=n, dim=dim)
    if task == "jaccard_ours":
        dist, sec, cpu, mib = _timed(lambda: jaccard_distance(x, 30, 6), repeats=3)
        extra = {"stored_per_row": dist.nnz / n}
    else:
        dist, sec, cpu, mib = _timed(lambda: ref_compute_jaccard_distance(torch.from_numpy(x), 30, 6))
        extra = {}
    t = time.perf_counter()
    labels = DBSCAN(eps=0.6, min_samples=4, metric="precomputed", n_jobs=1).fit_predict(dist)
    np.save(workdir / f"{task}_labels.npy", labels)
    return {
        "samples": n,
        "dim": dim,
        "seconds": sec,
        "cpu_seconds": cpu,
        "peak_mib": mib,
        "dbscan_seconds": time.perf_counter() - t,
        "clusters": int(len(set(labels.tolist()) - {-1})),
        "outliers": int((labels == -1).sum()),
        **extra,
    }


def _spawn(task: str, quick: bool, dim: int, workdir: Path) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--task",
        task,
        "--dim",
        str(dim),
        "--workdir",
        str(workdir),
    ]
    if quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{task} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a 5x smaller problem, for a smoke check")
    ap.add_argument("--only", default="rank,rerank,jaccard", help="comma list of: rank, rerank, jaccard")
    ap.add_argument("--dim", type=int, default=256, help="feature dimension (default 256)")
    ap.add_argument("--no-reference", action="store_true", help="skip the slow reference implementations")
    ap.add_argument("--task", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.task:  # child process: one measurement, JSON on the last stdout line
        print(json.dumps(run_task(args.task, args.quick, args.dim, Path(args.workdir))))
        return

    from reidkit.utils import atomic_write

    groups = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(groups) - set(TASKS))
    if unknown:
        raise SystemExit(f"unknown --only group(s) {unknown}; valid: {', '.join(TASKS)}")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for group in groups:
            for task in TASKS[group]:
                if args.no_reference and task.endswith("_ref"):
                    continue
                print(f"running {task} ...", file=sys.stderr, flush=True)
                results[task] = _spawn(task, args.quick, args.dim, Path(tmp))
        if "jaccard_ours" in results and "jaccard_ref" in results:
            from sklearn.metrics import adjusted_rand_score

            a = np.load(Path(tmp) / "jaccard_ours_labels.npy")
            b = np.load(Path(tmp) / "jaccard_ref_labels.npy")
            results["jaccard_ours"]["ari_vs_ref"] = float(adjusted_rand_score(b, a))

    rows = []
    for group in groups:
        ours, ref = results.get(f"{group}_ours"), results.get(f"{group}_ref")
        if ours is None:
            continue
        row = {
            "what": group,
            "ours_s": ours["seconds"],
            "ours_cpu_s": ours["cpu_seconds"],
            "ours_peak_mib": ours["peak_mib"],
        }
        if ref is not None:
            row.update(
                ref_s=ref["seconds"],
                ref_peak_mib=ref["peak_mib"],
                speedup=ref["seconds"] / ours["seconds"],
                memory_ratio=ref["peak_mib"] / max(ours["peak_mib"], 1e-9),
            )
            if group == "rank":
                row["max_abs_diff"] = max(
                    float(np.max(np.abs(np.array(ours["cmc"]) - np.array(ref["cmc"])))),
                    abs(ours["mAP"] - ref["mAP"]),
                    abs(ours["mINP"] - ref["mINP"]),
                )
            if group == "rerank":
                row["mAP_diff"] = abs(ours["mAP"] - ref["mAP"])
            if group == "jaccard":
                row["ari"] = ours["ari_vs_ref"]
        if group == "rank" and "rank_argsort" in results:
            row["argsort_only_s"] = results["rank_argsort"]["seconds"]
        rows.append(row)

    report = {
        "quick": args.quick,
        "dim": args.dim,
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "python": platform.python_version(),
        "results": results,
        "summary": rows,
    }
    name = "bench_eval" + ("_quick" if args.quick else "") + (f"_dim{args.dim}" if args.dim != 256 else "")
    name += ("_noref" if args.no_reference else "") + (
        "" if groups == list(TASKS) else "_" + "-".join(groups)
    )
    out = HERE / "results" / f"{name}.json"
    with atomic_write(out, "w") as fh:
        json.dump(report, fh, indent=2)
    _print_table(rows, results)
    print(f"\nwritten: {out}")


def _print_table(rows: list[dict], results: dict) -> None:
    head = (
        f"{'what':8} {'ours s':>8} {'ours cpu':>8} {'ref s':>8} {'speedup':>8} {'ours MiB':>9} {'ref MiB':>9}"
    )
    head += f" {'mem x':>6}"
    head += "  check"
    print(head)
    print("-" * len(head))
    for r in rows:
        check = ""
        if "max_abs_diff" in r:
            check = f"max |diff| cmc/mAP/mINP = {r['max_abs_diff']:.1e}"
            check += f"; full argsort alone {r.get('argsort_only_s', 0):.2f}s"
        if "mAP_diff" in r:
            ours = results["rerank_ours"]
            check = f"mAP {ours['mAP_before']:.4f} -> {ours['mAP']:.4f}, |diff vs ref| = {r['mAP_diff']:.1e}"
        if "ari" in r:
            check = f"DBSCAN ARI vs ref = {r['ari']:.4f}, clusters {results['jaccard_ours']['clusters']}"
        ref_s = f"{r['ref_s']:8.2f}" if "ref_s" in r else f"{'-':>8}"
        spd = f"{r['speedup']:7.1f}x" if "speedup" in r else f"{'-':>8}"
        ref_m = f"{r['ref_peak_mib']:9.0f}" if "ref_peak_mib" in r else f"{'-':>9}"
        mem = f"{r['memory_ratio']:5.1f}x" if "memory_ratio" in r else f"{'-':>6}"
        print(
            f"{r['what']:8} {r['ours_s']:8.3f} {r['ours_cpu_s']:8.2f} {ref_s} {spd} "
            f"{r['ours_peak_mib']:9.0f} {ref_m} {mem}  {check}"
        )


if __name__ == "__main__":
    main()
