"""evaluate(query, gallery) -> Report: distances (optionally re-ranked, optionally to centroids) + metrics.

Pure: takes Features, returns a Report. Every CMC/mAP/mINP in the project comes from `rank_metrics` /
`query_stats` in metrics.py, reached from here; centroid galleries come from centroids.py.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from reidkit.evaluation.centroids import (
    camera_aware_centroid_distances,
    camera_aware_reference_centroids,
    centroid_gallery,
)
from reidkit.evaluation.distance import METRICS, pairwise_distance
from reidkit.evaluation.metrics import (
    CMC_PROTOCOLS,
    FINE_GRAINED_KS,
    QueryStats,
    query_stats,
    rank_metrics,
    recall_at_k,
    report_from_stats,
    resolve_camera_rule,
)
from reidkit.evaluation.rerank import cross_modal_rerank, k_reciprocal_rerank
from reidkit.evaluation.text_rerank import topk_overlap_distance
from reidkit.types import Features, Report
from reidkit.utils import resolve_device

log = logging.getLogger(__name__)

EVAL_PROTOCOLS = ("reid", "text", "fine_grained")  # what `evaluate(protocol=...)` accepts
RERANK_KEYS = ("k1", "k2", "lambda_value")
# rerank={"method": "topk_overlap", "topk": k, "weight": w}: TextReID's re-ranking, protocol "text" only
TOPK_OVERLAP_KEYS = ("method", "topk", "weight")
TEXT_KS = (1, 5, 10)
# centroids=: none, one per pid (True / "pid"), ours camera-aware ("camera"), centroids-reid's camera-aware
CENTROID_MODES = (False, True, "pid", "camera", "camera_aware_reference")
_STAT_FIELDS = ("query_index", "first_rank", "ap", "inp")


def _check_rerank(rerank: dict | None) -> dict | None:
    if rerank is None:
        return None
    if not isinstance(rerank, dict):
        raise ValueError(
            f"rerank must be a dict of {', '.join(RERANK_KEYS)} (or None), got {type(rerank).__name__}"
        )
    method = rerank.get("method", "kreciprocal")
    if method == "topk_overlap":
        unknown = sorted(set(rerank) - set(TOPK_OVERLAP_KEYS))
        if unknown:
            valid = ", ".join(TOPK_OVERLAP_KEYS)
            raise ValueError(f"unknown topk_overlap option(s) {unknown}; valid: {valid}")
        return dict(rerank)
    if method != "kreciprocal":
        raise ValueError(f"unknown rerank method {method!r}; valid: 'kreciprocal', 'topk_overlap'")
    rerank = {k: v for k, v in rerank.items() if k != "method"}
    unknown = sorted(set(rerank) - set(RERANK_KEYS))
    if unknown:
        raise ValueError(f"unknown rerank option(s) {unknown}; valid: {', '.join(RERANK_KEYS)}")
    return dict(rerank)


def _tensor(f: Features, device: str | torch.device | None, metric: str) -> torch.Tensor:
    """Features on the requested device; L2-normalised for the cosine metric (what re-ranking then sees)."""
    t = torch.as_tensor(f.feats)
    if device is not None:
        t = t.to(resolve_device(device))
    if metric == "cosine":
        t = torch.nn.functional.normalize(t.float() if not t.is_floating_point() else t, dim=1)
    return t


def _distances(
    q: Features,
    g: Features,
    metric: str,
    rerank: dict | None,
    device: str | torch.device | None,
    cross_modal: bool,
) -> np.ndarray:
    """[Q, G] distances: plain `metric`, or re-ranked: k-reciprocal (on L2-normalised features when metric is
    cosine) or, with rerank["method"] == "topk_overlap", TextReID's top-k overlap (cosine only)."""
    qt, gt = _tensor(q, device, metric), _tensor(g, device, metric)
    if rerank is None:
        return pairwise_distance(qt, gt, metric).cpu().numpy()
    if rerank.get("method") == "topk_overlap":  # TextReID's; _check_rerank keeps "method" only for it
        if metric != "cosine":
            raise ValueError(f"topk_overlap re-ranking is defined on cosine similarity, not {metric!r}")
        return topk_overlap_distance(qt, gt, **{k: v for k, v in rerank.items() if k != "method"})
    fn = cross_modal_rerank if cross_modal else k_reciprocal_rerank
    return fn(qt, gt, **rerank)


def _unit(f: Features) -> Features:
    """The same Features with L2-normalised rows."""
    x = torch.nn.functional.normalize(torch.as_tensor(f.feats).float(), dim=1).numpy()
    return Features(feats=x, pids=f.pids, camids=f.camids, index=f.index, image_ids=f.image_ids)


def unique_images(gallery: Features) -> Features:
    """The gallery with one row per `image_id`, first occurrence kept (text data: one record per caption)."""
    if gallery.image_ids is None:
        raise ValueError("gallery.image_ids is required to de-duplicate a text-to-image gallery (got None)")
    ids, first = np.unique(gallery.image_ids, return_index=True)
    # the same image must not carry two identities
    pid_of = gallery.pids[first][np.searchsorted(ids, gallery.image_ids)]
    bad = np.flatnonzero(pid_of != gallery.pids)
    if bad.size:
        raise ValueError(
            f"gallery.image_ids: image_id {gallery.image_ids[bad[0]]} appears with pids "
            f"{gallery.pids[bad[0]]} and {pid_of[bad[0]]}"
        )
    keep = np.sort(first)
    return Features(
        feats=gallery.feats[keep],
        pids=gallery.pids[keep],
        camids=gallery.camids[keep],
        index=gallery.index[keep],
        image_ids=gallery.image_ids[keep],
    )


def text_to_image_metrics(
    query: Features,
    gallery: Features,
    *,
    metric: str = "cosine",
    ks: tuple[int, ...] = TEXT_KS,
    max_rank: int = 50,
    ap: str = "standard",
    rerank: dict | None = None,
    device: str | torch.device | None = None,
) -> Report:
    """Text->image retrieval: R@K (in `recall_at_k` and the CMC), mAP and mINP over the de-duplicated
    image gallery, with no camera filtering; `rerank` = cross_modal_rerank options, or {"method":
    "topk_overlap", "topk": k, "weight": w} for TextReID's top-k overlap re-ranking (cosine metric only)."""
    gal = unique_images(gallery)
    distmat = _distances(query, gal, metric, _check_rerank(rerank), device, cross_modal=True)
    stats = query_stats(distmat, query.pids, gal.pids, cross_camera=False, ap=ap)
    report = report_from_stats(stats, max(max_rank, max(ks)))
    report.recall_at_k = {k: float(report.cmc[k - 1]) for k in ks}
    return report


def _camera_aware_reference_stats(query: Features, gallery: Features, metric: str, ap: str) -> QueryStats:
    """Per-query stats against camera_aware_reference_centroids: a centroid is junk for a query of its pid
    when it used the query's camera. Run once per query camera, with the centroids' camera set to that
    camera where they used it, so query_stats' same-pid same-camera rule removes exactly those."""
    cent, c_pids, cams, members = camera_aware_reference_centroids(query, gallery)
    none = np.full(len(c_pids), -1, dtype=np.int64)
    cg = Features(feats=cent, pids=c_pids, camids=none, index=none.copy())
    distmat = _distances(query, cg, metric, None, None, cross_modal=False)
    parts = []
    for c in np.unique(query.camids):
        rows = np.flatnonzero(query.camids == c)
        used_c = members[:, cams == c].any(axis=1)  # [C] centroid used camera c
        g_cam = np.where(used_c, c, c + 1)
        st = query_stats(distmat[rows], query.pids[rows], c_pids, query.camids[rows], g_cam, ap=ap)
        st.query_index = rows[st.query_index]
        parts.append(st)
    order = np.argsort(np.concatenate([p.query_index for p in parts]), kind="stable")
    cat = {k: np.concatenate([getattr(p, k) for p in parts])[order] for k in _STAT_FIELDS}
    return QueryStats(**cat, num_queries=len(query))


def evaluate(
    query: Features,
    gallery: Features,
    *,
    metric: str = "cosine",
    centroids: bool | str = False,
    rerank: dict | None = None,
    max_rank: int = 50,
    ap: str = "standard",
    protocol: str = "reid",
    cmc_protocol: str = "standard",
    device: str | torch.device | None = None,
) -> Report:
    """Retrieval metrics of query against gallery Features.

    protocol "reid" (image->image, cross-camera rule; cameras unknown -> nothing removed):
      centroids=False: every gallery image; True / "pid": one centroid per pid (mean of L2-normalised
      features, re-normalised; the centroid mixes cameras, so no camera rule); "camera": the query's own
      pid is the centroid of its gallery images from other cameras only, every other pid the centroid of
      all its images (see camera_aware_centroid_distances); "camera_aware_reference": centroids-reid's
      definition (camera_aware_reference_centroids: per queried pid and query camera, a centroid of the pid's
      gallery images from the other cameras; a query drops its pid's centroids that used its camera; pids
      without queries, such as distractors, have no centroid). Centroid modes L2-normalise the queries.
      `rerank`: k_reciprocal_rerank options ({} = defaults) on the query and the (centroid) gallery, with
      L2-normalised features when metric is cosine; not available with the camera-aware modes.
      `cmc_protocol`: "standard" (CMC over every kept gallery image) or "cuhk03" (single-gallery-shot CMC:
      one random gallery image per identity, averaged over 10 seeded draws; mAP/mINP keep the full list;
      see rank_metrics). "cuhk03" needs centroids=False.
    protocol "text": text_to_image_metrics. protocol "fine_grained": the query set is also the gallery
      (pass the same Features twice); each sample is excluded from its own ranking; Recall@1/2/4/8.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    if protocol not in EVAL_PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(EVAL_PROTOCOLS)}")
    rerank = _check_rerank(rerank)
    if rerank is not None and rerank.get("method") == "topk_overlap" and protocol != "text":
        raise ValueError(f"topk_overlap re-ranking is defined for protocol 'text' only, not {protocol!r}")
    if centroids not in CENTROID_MODES:
        valid = ", ".join(map(repr, CENTROID_MODES))
        raise ValueError(f"unknown centroids mode {centroids!r}; valid: {valid}")
    if protocol != "reid" and centroids:
        raise ValueError(f"centroids are defined for the reid protocol only, not {protocol!r}")
    if cmc_protocol not in CMC_PROTOCOLS:
        raise ValueError(f"unknown cmc_protocol {cmc_protocol!r}; valid: {', '.join(CMC_PROTOCOLS)}")
    if cmc_protocol != "standard" and (protocol != "reid" or centroids):
        raise ValueError(f"cmc_protocol={cmc_protocol!r} needs protocol='reid' without centroids")

    if protocol == "text":
        return text_to_image_metrics(
            query, gallery, metric=metric, max_rank=max_rank, ap=ap, rerank=rerank, device=device
        )
    if protocol == "fine_grained":
        same = gallery is query or (len(gallery) == len(query) and np.array_equal(gallery.index, query.index))
        if not same:
            raise ValueError("fine_grained: gallery must be the query set itself (the test set is both)")
        if rerank is not None:
            raise ValueError("fine_grained: re-ranking is not defined for this protocol")
        distmat = _distances(query, query, metric, None, device, cross_modal=False)
        stats = query_stats(distmat, query.pids, query.pids, cross_camera=False, exclude_self=True, ap=ap)
        report = report_from_stats(stats, max(max_rank, max(FINE_GRAINED_KS)))
        ks = tuple(k for k in FINE_GRAINED_KS if k < len(query))  # Recall@K needs more than K samples
        report.recall_at_k = recall_at_k(query.feats, query.pids, ks, metric=metric) if ks else {}
        return report

    if centroids:
        query = _unit(query)  # the centroid protocol compares unit vectors on both sides
    if centroids == "camera_aware_reference":
        if rerank is not None:
            raise ValueError("re-ranking with camera-aware centroids is not supported; use centroids=True")
        return report_from_stats(_camera_aware_reference_stats(query, gallery, metric, ap), max_rank)
    if centroids == "camera" and resolve_camera_rule(query.camids, gallery.camids):
        if rerank is not None:
            raise ValueError(
                "re-ranking with camera-aware centroids is not supported (the own-pid centroid "
                "differs per query); use centroids=True or no centroids"
            )
        distmat, c_pids, valid = camera_aware_centroid_distances(query, gallery, metric)
        rows = np.flatnonzero(valid)
        if rows.size == 0:
            raise ValueError(
                f"none of the {len(query)} queries has a gallery image of its pid from another camera"
            )
        stats = query_stats(distmat[rows], query.pids[rows], c_pids, cross_camera=False, ap=ap)
        stats.num_queries = len(query)
        stats.query_index = rows[stats.query_index]
        return report_from_stats(stats, max_rank)
    if centroids:
        cg = centroid_gallery(gallery)
        distmat = _distances(query, cg, metric, rerank, device, cross_modal=False)
        stats = query_stats(distmat, query.pids, cg.pids, cross_camera=False, ap=ap)
        return report_from_stats(stats, max_rank)
    distmat = _distances(query, gallery, metric, rerank, device, cross_modal=False)
    return rank_metrics(
        distmat,
        query.pids,
        gallery.pids,
        query.camids,
        gallery.camids,
        max_rank,
        ap=ap,
        protocol=cmc_protocol,
    )
