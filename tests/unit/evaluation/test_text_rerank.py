"""TextReID's top-k overlap re-ranking against a naive set-based double loop, a hand-worked example, and its
wiring into evaluate / text_to_image_metrics / rerank_options."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reidkit.app.build import rerank_options
from reidkit.config import load_config
from reidkit.evaluation import evaluate, text_to_image_metrics
from reidkit.evaluation.text_rerank import topk_overlap_distance, topk_overlap_similarity
from reidkit.types import Features


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def naive_topk_overlap(q: np.ndarray, g: np.ndarray, k: int, w: float) -> np.ndarray:
    """cos(q, g) + w · |top-k galleries of q ∩ top-k galleries of g| / |union|, with Python sets."""
    q, g = unit(q.astype(np.float64)), unit(g.astype(np.float64))

    def top(row: np.ndarray) -> set[int]:
        order = sorted(range(len(row)), key=lambda j: -row[j])
        return set(order[:k])

    out = np.zeros((len(q), len(g)))
    for i in range(len(q)):
        qs = top([float(q[i] @ g[j]) for j in range(len(g))])
        for j in range(len(g)):
            gs = top([float(g[j] @ g[m]) for m in range(len(g))])
            out[i, j] = float(q[i] @ g[j]) + w * len(qs & gs) / len(qs | gs)
    return out


@pytest.mark.parametrize("direction", ["text_to_image", "image_to_text"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_naive_sets(direction: str, k: int) -> None:
    rng = np.random.default_rng(k)
    texts, images = rng.standard_normal((13, 6)), rng.standard_normal((9, 6))  # continuous: no ties
    q, g = (texts, images) if direction == "text_to_image" else (images, texts)
    got = topk_overlap_similarity(torch.from_numpy(q), torch.from_numpy(g), topk=k, weight=0.3)
    np.testing.assert_allclose(got.numpy(), naive_topk_overlap(q, g, k, 0.3), rtol=0, atol=1e-10)
    # the overlap term is really there (this would fail with weight ignored)
    plain = unit(q) @ unit(g).T
    assert np.abs(got.numpy() - plain).max() > 0.01
    dist = topk_overlap_distance(q, g, topk=k, weight=0.3, chunk_size=4)  # chunked top-k
    np.testing.assert_allclose(dist, 1.0 - naive_topk_overlap(q, g, k, 0.3), atol=1e-10)


def test_hand_worked_three_by_four() -> None:
    """Unit vectors at angles. Images 0°, 30°, 90°, 200°: top-2 (self included) {0,1} {1,0} {2,1} {3,2},
    top-3 {0,1,2} {1,0,2} {2,1,0} {3,2,0}. Texts 10°, 105°, 170°: top-2 images {0,1} {2,1} {3,2}, top-3
    {0,1,2} {2,1,3} {3,2,1}. Jaccard = |∩| / (2k - |∩|)."""
    at = lambda deg: [math.cos(math.radians(deg)), math.sin(math.radians(deg))]  # noqa: E731
    img_deg, txt_deg = [0, 30, 90, 200], [10, 105, 170]
    images = torch.tensor([at(d) for d in img_deg], dtype=torch.float64)
    texts = torch.tensor([at(d) for d in txt_deg], dtype=torch.float64)
    jaccard = torch.tensor(
        [
            [1.0, 1.0, 1 / 3, 0.0],
            [1 / 3, 1 / 3, 1.0, 1 / 3],
            [0.0, 0.0, 1 / 3, 1.0],
        ],
        dtype=torch.float64,
    )
    cos = torch.tensor(
        [[math.cos(math.radians(t - i)) for i in img_deg] for t in txt_deg], dtype=torch.float64
    )
    got = topk_overlap_similarity(texts, images, topk=2, weight=0.05)
    torch.testing.assert_close(got, cos + 0.05 * jaccard, rtol=0, atol=1e-12)
    jaccard3 = torch.tensor([[1.0, 1.0, 1.0, 0.5], [0.5] * 4, [0.5] * 4], dtype=torch.float64)
    got3 = topk_overlap_similarity(texts, images, topk=3, weight=0.05)
    torch.testing.assert_close(got3, cos + 0.05 * jaccard3, rtol=0, atol=1e-12)
    # topk above the gallery size: every set is the whole gallery, Jaccard 1 everywhere
    torch.testing.assert_close(topk_overlap_similarity(texts, images, topk=9, weight=0.5), cos + 0.5)


def test_rejects_bad_input() -> None:
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="topk must be >= 1"):
        topk_overlap_similarity(x, x, topk=0)
    with pytest.raises(ValueError, match="must share the dimension"):
        topk_overlap_similarity(x, torch.randn(3, 5))


def make(x: np.ndarray, pids: np.ndarray, image_ids: np.ndarray) -> Features:
    n = len(pids)
    return Features(
        feats=x.astype(np.float32),
        pids=pids.astype(np.int64),
        camids=np.zeros(n, dtype=np.int64),
        index=np.arange(n, dtype=np.int64),
        image_ids=image_ids,
    )


def test_text_protocol_uses_topk_overlap(naive_metrics) -> None:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((8, 10))
    img_pid = np.repeat(np.arange(8), 3)
    img_x = centres[img_pid] + 0.8 * rng.standard_normal((24, 10))
    cap_img = np.repeat(np.arange(24), 2)
    cap_x = centres[img_pid[cap_img]] + 0.9 * rng.standard_normal((48, 10))
    q = make(cap_x, img_pid[cap_img], cap_img)
    g = make(img_x[cap_img], img_pid[cap_img], cap_img)  # one gallery row per caption: de-duplicated
    opts = {"method": "topk_overlap", "topk": 5, "weight": 0.05}
    r = evaluate(q, g, protocol="text", rerank=opts)
    d = 1.0 - naive_topk_overlap(q.feats, img_x.astype(np.float32), 5, 0.05)
    cmc, m_ap, _, _ = naive_metrics(d, q.pids, img_pid, None, None, cross_camera=False)
    assert r.mAP == pytest.approx(m_ap, abs=1e-5)
    assert r.recall_at_k == {k: pytest.approx(cmc[k - 1]) for k in (1, 5, 10)}
    assert text_to_image_metrics(q, g, rerank=opts).mAP == pytest.approx(r.mAP)
    # explicit k-reciprocal keeps working, with or without the method key
    kr = text_to_image_metrics(q, g, rerank={"method": "kreciprocal", "k1": 5, "k2": 2})
    assert kr.mAP == pytest.approx(text_to_image_metrics(q, g, rerank={"k1": 5, "k2": 2}).mAP)


def test_rerank_option_errors() -> None:
    x = np.random.default_rng(0).standard_normal((6, 4))
    f = make(x, np.arange(6) % 3, np.arange(6))
    with pytest.raises(ValueError, match="protocol 'text' only"):
        evaluate(f, f, rerank={"method": "topk_overlap"})
    with pytest.raises(ValueError, match="unknown topk_overlap option"):
        evaluate(f, f, protocol="text", rerank={"method": "topk_overlap", "k1": 3})
    with pytest.raises(ValueError, match="unknown rerank method"):
        evaluate(f, f, protocol="text", rerank={"method": "other"})
    with pytest.raises(ValueError, match="cosine similarity"):
        evaluate(f, f, protocol="text", metric="euclidean", rerank={"method": "topk_overlap"})


def test_rerank_options_follow_eval_text_rerank() -> None:
    cfg = load_config(None, ["eval.text_rerank=topk_overlap", "eval.text_rerank_topk=7"])
    assert rerank_options(cfg, "text") == {"method": "topk_overlap", "topk": 7, "weight": 0.05}
    assert rerank_options(cfg) == rerank_options(cfg, "reid") == {"k1": 20, "k2": 6, "lambda_value": 0.3}
    default = load_config(None)
    assert rerank_options(default, "text") == {"k1": 20, "k2": 6, "lambda_value": 0.3}
