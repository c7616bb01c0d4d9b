"""evaluate(query, gallery) for the reid, text and fine-grained protocols against naive oracles."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from reidkit.evaluation import cross_modal_rerank, evaluate, rank_metrics, recall_at_k, text_to_image_metrics
from reidkit.evaluation import metrics as M
from reidkit.types import Features


def make(x: np.ndarray, pids: np.ndarray, cams: np.ndarray, image_ids: np.ndarray | None = None) -> Features:
    return Features(
        feats=x.astype(np.float32),
        pids=pids.astype(np.int64),
        camids=cams.astype(np.int64),
        index=np.arange(len(pids), dtype=np.int64),
        image_ids=image_ids,
    )


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 1 - a @ b.T


def reid_problem(seed: int = 0, nq: int = 30, ng: int = 150, cams: bool = True):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, 16))
    qp, gp = rng.integers(0, 20, nq), rng.integers(0, 20, ng)
    qx = centres[qp] + 0.8 * rng.standard_normal((nq, 16))
    gx = centres[gp] + 0.8 * rng.standard_normal((ng, 16))
    qc = rng.integers(0, 3, nq) if cams else np.full(nq, -1)
    gc = rng.integers(0, 3, ng) if cams else np.full(ng, -1)
    return make(qx, qp, qc), make(gx, gp, gc)


def test_reid_default_is_cosine_cross_camera(naive_metrics) -> None:
    q, g = reid_problem()
    r = evaluate(q, g, max_rank=10)
    cmc, m_ap, m_inp, nv = naive_metrics(cosine(q.feats, g.feats), q.pids, g.pids, q.camids, g.camids, 10)
    np.testing.assert_allclose(r.cmc, cmc, atol=1e-6)
    assert (r.mAP, r.mINP, r.num_valid_queries) == (pytest.approx(m_ap), pytest.approx(m_inp), nv)


def test_reid_euclidean(naive_metrics) -> None:
    q, g = reid_problem(1)
    d = np.linalg.norm(q.feats[:, None].astype(np.float64) - g.feats[None], axis=-1)
    r = evaluate(q, g, metric="euclidean")
    _, m_ap, _, _ = naive_metrics(d, q.pids, g.pids, q.camids, g.camids)
    assert r.mAP == pytest.approx(m_ap, abs=1e-6)


def test_reid_rerank_uses_normalised_features(naive_metrics, dense_rerank_oracle) -> None:
    q, g = reid_problem(2)
    r = evaluate(q, g, rerank={"k1": 10, "k2": 3})
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    d = dense_rerank_oracle(unit(q.feats.astype(np.float64)), unit(g.feats.astype(np.float64)), 10, 3, 0.3)
    _, m_ap, m_inp, _ = naive_metrics(d, q.pids, g.pids, q.camids, g.camids)
    assert r.mAP == pytest.approx(m_ap, abs=1e-5) and r.mINP == pytest.approx(m_inp, abs=1e-5)


def test_no_cameras_warns_and_keeps_everything(naive_metrics, monkeypatch, caplog) -> None:
    monkeypatch.setattr(M, "_warned_no_cameras", False)
    q, g = reid_problem(3, cams=False)
    with caplog.at_level(logging.WARNING):
        r = evaluate(q, g)
    assert any("no camera ids" in rec.message for rec in caplog.records)
    _, m_ap, _, nv = naive_metrics(cosine(q.feats, g.feats), q.pids, g.pids, None, None, cross_camera=False)
    assert r.mAP == pytest.approx(m_ap, abs=1e-6) and r.num_valid_queries == nv


def test_reid_cuhk03_cmc_equals_naive_when_one_image_per_identity(naive_metrics) -> None:
    # one gallery image per identity: the single-shot draw has no choice to make, so the naive CMC is exact
    rng = np.random.default_rng(11)
    q = make(rng.standard_normal((20, 8)), rng.integers(0, 40, 20), np.zeros(20))
    g = make(rng.standard_normal((40, 8)), np.arange(40), np.ones(40))
    r = evaluate(q, g, max_rank=10, cmc_protocol="cuhk03")
    cmc, m_ap, _, nv = naive_metrics(cosine(q.feats, g.feats), q.pids, g.pids, q.camids, g.camids, 10)
    np.testing.assert_allclose(r.cmc, cmc, atol=1e-6)
    assert r.mAP == pytest.approx(m_ap) and r.num_valid_queries == nv


def test_reid_cuhk03_cmc_is_rank_metrics_single_shot() -> None:
    q, g = reid_problem(5)
    standard = evaluate(q, g, max_rank=10)
    r = evaluate(q, g, max_rank=10, cmc_protocol="cuhk03")
    d = cosine(q.feats, g.feats)
    want = rank_metrics(d, q.pids, g.pids, q.camids, g.camids, 10, protocol="cuhk03")
    np.testing.assert_allclose(r.cmc, want.cmc, atol=1e-6)
    assert not np.allclose(r.cmc, standard.cmc)  # several images per identity: single shot differs
    assert (r.mAP, r.mINP) == (pytest.approx(standard.mAP), pytest.approx(standard.mINP))  # full list
    for bad in ({"protocol": "text"}, {"centroids": True}):
        with pytest.raises(ValueError, match="cmc_protocol='cuhk03' needs protocol='reid' without centroids"):
            evaluate(q, g, cmc_protocol="cuhk03", **bad)
    with pytest.raises(ValueError, match="unknown cmc_protocol"):
        evaluate(q, g, cmc_protocol="market")


def text_problem(seed: int = 0):
    """30 images of 10 people, 2 captions per image; the gallery has one record per caption (duplicates)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((10, 12))
    img_pid = np.repeat(np.arange(10), 3)
    img_x = centres[img_pid] + 0.7 * rng.standard_normal((30, 12))
    cap_img = np.repeat(np.arange(30), 2)
    cap_x = centres[img_pid[cap_img]] + 0.9 * rng.standard_normal((60, 12))
    query = make(cap_x, img_pid[cap_img], np.zeros(60), image_ids=cap_img)
    gallery = make(img_x[cap_img], img_pid[cap_img], np.zeros(60), image_ids=cap_img)  # same camera!
    return query, gallery, img_x, img_pid


def test_text_to_image_dedups_and_ignores_cameras(naive_metrics) -> None:
    q, g, img_x, img_pid = text_problem()
    r = evaluate(q, g, protocol="text")
    d = cosine(q.feats, img_x.astype(np.float32))
    cmc, m_ap, m_inp, nv = naive_metrics(d, q.pids, img_pid, None, None, max_rank=50, cross_camera=False)
    assert nv == 60 and r.num_valid_queries == 60  # same camera everywhere, yet nothing removed
    assert r.mAP == pytest.approx(m_ap, abs=1e-6) and r.mINP == pytest.approx(m_inp, abs=1e-6)
    assert r.recall_at_k == {k: pytest.approx(cmc[k - 1]) for k in (1, 5, 10)}
    assert r.as_dict()["Recall@5"] == pytest.approx(cmc[4])


def test_text_rerank_is_cross_modal(naive_metrics) -> None:
    q, g, img_x, img_pid = text_problem(1)
    r = text_to_image_metrics(q, g, rerank={"k1": 5, "k2": 2})
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    d = cross_modal_rerank(unit(q.feats.astype(np.float64)), unit(img_x), 5, 2)
    _, m_ap, _, _ = naive_metrics(d, q.pids, img_pid, None, None, cross_camera=False)
    assert r.mAP == pytest.approx(m_ap, abs=1e-5)


def test_text_gallery_errors() -> None:
    q, g, _, _ = text_problem()
    with pytest.raises(ValueError, match="image_ids is required"):
        evaluate(q, make(g.feats, g.pids, g.camids), protocol="text")
    bad_pids = g.pids.copy()
    bad_pids[1] = 99  # record 1 is the second caption of image 0
    with pytest.raises(ValueError, match="image_id 0 appears with pids"):
        evaluate(q, make(g.feats, bad_pids, g.camids, g.image_ids), protocol="text")


def test_fine_grained_excludes_self(naive_metrics) -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 8, 80)
    x = rng.standard_normal((8, 10))[labels] + 1.0 * rng.standard_normal((80, 10))
    f = make(x, labels, np.zeros(80))
    r = evaluate(f, f, protocol="fine_grained")
    assert r.recall_at_k == pytest.approx(recall_at_k(f.feats, f.pids))
    _, m_ap, _, nv = naive_metrics(
        cosine(f.feats, f.feats), labels, labels, None, None, cross_camera=False, exclude_self=True
    )
    assert r.mAP == pytest.approx(m_ap, abs=1e-6) and nv == 80
    with pytest.raises(ValueError, match="gallery must be the query set"):
        evaluate(f, make(x[:10], labels[:10], np.zeros(10)), protocol="fine_grained")


def test_bad_arguments() -> None:
    q, g = reid_problem()
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(q, g, metric="dot")
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate(q, g, protocol="video")
    with pytest.raises(ValueError, match="unknown rerank option"):
        evaluate(q, g, rerank={"k3": 1})
