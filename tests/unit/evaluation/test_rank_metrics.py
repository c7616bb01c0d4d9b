"""rank_metrics (CMC, mAP, mINP; cross-camera and CUHK03 protocols) against hand-worked and naive oracles."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from reidkit.evaluation import metrics as M
from reidkit.evaluation import rank_metrics


def hand_worked() -> tuple[np.ndarray, ...]:
    """3 queries x 6 gallery.

    gallery (pid, cam): g0 (1,0) g1 (1,1) g2 (1,2) g3 (2,1) g4 (3,2) g5 (0,3 distractor)
    query A (1,0): g0 is same pid + same camera -> removed. Kept order by distance:
        g2 .2 (hit), g5 .3, g4 .4, g1 .5 (hit), g3 .9  -> AP = (1/1 + 2/4)/2 = .75, INP = 2/4, first rank 1
    query B (2,2): order g2 .05, g5 .1, g1 .2, g3 .3 (hit), g0 .6, g4 .7 -> AP = 1/4, INP = 1/4, first rank 4
    query C (3,2): its only match g4 is in its own camera -> no valid match, skipped.
    """
    distmat = np.array(
        [
            [0.1, 0.5, 0.2, 0.9, 0.4, 0.3],
            [0.6, 0.2, 0.05, 0.3, 0.7, 0.1],
            [0.3, 0.2, 0.1, 0.4, 0.5, 0.6],
        ],
        dtype=np.float32,
    )
    q_pids, q_cams = np.array([1, 2, 3]), np.array([0, 2, 2])
    g_pids, g_cams = np.array([1, 1, 1, 2, 3, 0]), np.array([0, 1, 2, 1, 2, 3])
    return distmat, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("ap", ["standard", "sklearn"])  # no ties here, so both AP definitions agree
def test_hand_worked(ap: str) -> None:
    r = rank_metrics(*hand_worked(), max_rank=5, ap=ap)
    assert r.num_valid_queries == 2
    np.testing.assert_allclose(r.cmc, [0.5, 0.5, 0.5, 1.0, 1.0], atol=1e-12)
    assert r.mAP == pytest.approx((0.75 + 0.25) / 2, abs=1e-12)
    assert r.mINP == pytest.approx((0.5 + 0.25) / 2, abs=1e-12)


def random_problem(seed: int, nq: int = 40, ng: int = 300, ties: bool = False):
    rng = np.random.default_rng(seed)
    q_pids, g_pids = rng.integers(0, 25, nq), rng.integers(0, 30, ng)
    q_cams, g_cams = rng.integers(0, 4, nq), rng.integers(0, 4, ng)
    d = rng.random((nq, ng)).astype(np.float32)
    if ties:
        d = np.round(d * 20) / 20  # many exactly equal distances: ties broken by gallery index
    return d, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("path", ["candidates", "full_sort"])
def test_against_naive_loop(ties: bool, path: str, naive_metrics, monkeypatch) -> None:
    # force either the candidate path or the full-row sort, and small chunks, to cover every branch
    monkeypatch.setattr(M, "_DENSE_FRACTION", 1.0 if path == "candidates" else 0.0)
    monkeypatch.setattr(M, "_BLOCK_ENTRIES", 7 * 300)
    for seed in range(3):
        prob = random_problem(seed, ties=ties)
        r = rank_metrics(*prob, max_rank=20)
        cmc, m_ap, m_inp, nv = naive_metrics(*prob, max_rank=20)
        assert r.num_valid_queries == nv
        np.testing.assert_allclose(r.cmc, cmc, atol=1e-6)
        assert r.mAP == pytest.approx(m_ap, abs=1e-6)
        assert r.mINP == pytest.approx(m_inp, abs=1e-6)


def test_sklearn_ap_matches_sklearn_on_ties() -> None:
    d, q_pids, g_pids, q_cams, g_cams = random_problem(5, ties=True)
    r = rank_metrics(d, q_pids, g_pids, q_cams, g_cams, ap="sklearn")
    aps = []
    for i in range(d.shape[0]):
        keep = ~((g_pids == q_pids[i]) & (g_cams == q_cams[i]))
        y = g_pids[keep] == q_pids[i]
        if y.any():
            aps.append(average_precision_score(y, -d[i][keep]))
    assert r.mAP == pytest.approx(float(np.mean(aps)), abs=1e-9)
    # with ties the two definitions really differ (otherwise this test would prove nothing)
    assert abs(rank_metrics(d, q_pids, g_pids, q_cams, g_cams).mAP - r.mAP) > 1e-4


def test_torch_input_and_max_rank_beyond_gallery(naive_metrics) -> None:
    prob = random_problem(7, nq=10, ng=12)
    r = rank_metrics(torch.from_numpy(prob[0]), *prob[1:], max_rank=30)
    cmc, m_ap, _, _ = naive_metrics(*prob, max_rank=30)
    assert r.cmc.shape == (30,) and r.cmc[-1] == 1.0
    np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
    assert r.mAP == pytest.approx(m_ap, abs=1e-12)


def test_no_cameras_removes_nothing_and_warns_once(naive_metrics, monkeypatch, caplog) -> None:
    monkeypatch.setattr(M, "_warned_no_cameras", False)
    d, q_pids, g_pids, _, _ = random_problem(3)
    q_cams, g_cams = np.full(d.shape[0], -1), np.full(d.shape[1], -1)
    with caplog.at_level(logging.WARNING, logger="reidkit.evaluation.metrics"):
        r = rank_metrics(d, q_pids, g_pids, q_cams, g_cams)
        rank_metrics(d, q_pids, g_pids, q_cams, g_cams)
    assert sum("no camera ids" in rec.message for rec in caplog.records) == 1
    _, m_ap, m_inp, nv = naive_metrics(d, q_pids, g_pids, q_cams, g_cams, cross_camera=False)
    assert (r.mAP, r.mINP, r.num_valid_queries) == (pytest.approx(m_ap), pytest.approx(m_inp), nv)


def test_errors() -> None:
    d, q_pids, g_pids, q_cams, g_cams = hand_worked()
    with pytest.raises(ValueError, match="none of the 1 queries"):
        rank_metrics(d[2:], q_pids[2:], g_pids, q_cams[2:], g_cams)
    bad = d.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rank_metrics(bad, q_pids, g_pids, q_cams, g_cams)
    with pytest.raises(ValueError, match="g_pids"):
        rank_metrics(d, q_pids, g_pids[:4], q_cams, g_cams)
    with pytest.raises(ValueError, match="unknown ap mode"):
        rank_metrics(d, q_pids, g_pids, q_cams, g_cams, ap="interpolated")
    with pytest.raises(ValueError, match="unknown protocol"):
        rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol="market")


# ---------------------------------------------------------------------------------- CUHK03 single shot
def test_cuhk03_equals_standard_when_one_image_per_identity(naive_metrics) -> None:
    rng = np.random.default_rng(11)
    g_pids = np.arange(50)  # one gallery image per identity: sampling has no choice to make
    q_pids = rng.integers(0, 50, 20)
    q_cams, g_cams = np.zeros(20, dtype=np.int64), np.ones(50, dtype=np.int64)
    d = rng.random((20, 50))
    r = rank_metrics(d, q_pids, g_pids, q_cams, g_cams, max_rank=10, protocol="cuhk03", repeats=3, seed=4)
    cmc, m_ap, _, _ = naive_metrics(d, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
    assert r.mAP == pytest.approx(m_ap, abs=1e-12)


def test_cuhk03_expectation_by_enumeration() -> None:
    """One query (pid 1, cam 0). Gallery by distance: a=(2) .1, b=(1) .2, c=(3) .3, d=(2) .4, e=(1) .5,
    f=(1, cam 0) .05 (same camera: removed first). Single shot keeps one of {a, d} and one of {b, e}:
    the match rank over the 4 equally likely draws is exactly computed below."""
    d = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.05]])
    g_pids = np.array([2, 1, 3, 2, 1, 1])
    g_cams = np.array([1, 1, 1, 1, 1, 0])
    expected = np.zeros(5)
    for p2, p1 in itertools.product([0, 3], [1, 4]):  # chosen pid-2 and pid-1 items
        chosen = sorted([p2, p1, 2], key=lambda j: d[0, j])
        rank = chosen.index(p1)
        expected[rank:] += 0.25
    r = rank_metrics(d, np.array([1]), g_pids, np.array([0]), g_cams, 5, protocol="cuhk03", repeats=20000)
    np.testing.assert_allclose(r.cmc, expected, atol=0.02)
    again = rank_metrics(d, np.array([1]), g_pids, np.array([0]), g_cams, 5, protocol="cuhk03", repeats=20000)
    np.testing.assert_array_equal(r.cmc, again.cmc)  # seeded
    # mAP stays the multi-shot one: hits at kept ranks 2 and 5 -> (1/2 + 2/5) / 2
    assert r.mAP == pytest.approx((1 / 2 + 2 / 5) / 2)
