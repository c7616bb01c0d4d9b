"""The centroid protocols (per pid, and camera-aware) against hand-worked examples and a naive loop."""

from __future__ import annotations

import numpy as np
import pytest

from reidkit.evaluation import camera_aware_centroid_distances, centroid_gallery, evaluate
from reidkit.types import Features


def feats(x: list[list[float]], pids: list[int], cams: list[int]) -> Features:
    n = len(pids)
    return Features(
        feats=np.asarray(x, dtype=np.float64),
        pids=np.asarray(pids, dtype=np.int64),
        camids=np.asarray(cams, dtype=np.int64),
        index=np.arange(n, dtype=np.int64),
    )


# gallery: pid 1 seen by cameras 0 and 1, pid 2 by camera 1, pid 3 only by camera 0
GALLERY = feats([[2, 0], [0, 3], [0.6, -0.8], [-1, 0]], [1, 1, 2, 3], [0, 1, 1, 0])
QUERY = feats([[1, 0.1], [-0.2, 1], [0.5, -1]], [1, 3, 2], [0, 0, 0])


def test_centroid_gallery_hand_worked() -> None:
    c = centroid_gallery(GALLERY)
    np.testing.assert_array_equal(c.pids, [1, 2, 3])
    # pid 1: mean of the unit vectors (1,0) and (0,1) -> (.5,.5), re-normalised
    np.testing.assert_allclose(c.feats, [[2**-0.5, 2**-0.5], [0.6, -0.8], [-1, 0]], atol=1e-12)
    assert np.all(c.camids == -1) and np.all(c.index == -1)


def test_pid_centroids_hand_worked() -> None:
    """Cosine distances to C1=(.707,.707), C2=(.6,-.8), C3=(-1,0):
    q0 (pid 1): C1 .226 < C2 .483 < C3 1.995 -> rank 1.   q1 (pid 3): C1 .445 < C3 .804 < C2 -> rank 2.
    q2 (pid 2): C2 .016 first -> rank 1.  mAP = (1 + 1/2 + 1) / 3; a single positive each, so mINP = mAP."""
    for mode in (True, "pid"):
        r = evaluate(QUERY, GALLERY, centroids=mode, max_rank=3)
        assert r.num_valid_queries == 3
        np.testing.assert_allclose(r.cmc, [2 / 3, 1, 1], atol=1e-12)
        assert r.mAP == pytest.approx(2.5 / 3) and r.mINP == pytest.approx(2.5 / 3)


def test_camera_aware_centroids_hand_worked() -> None:
    """q0 (pid 1, cam 0): its own centroid uses only pid 1's camera-1 image (0,1): distance .900, so C2
    (.483) comes first -> rank 2. q1 (pid 3, cam 0): pid 3 has no image from another camera -> skipped.
    q2 (pid 2, cam 0): own centroid = (.6,-.8) from camera 1 -> rank 1. mAP = (1/2 + 1) / 2."""
    r = evaluate(QUERY, GALLERY, centroids="camera", max_rank=3)
    assert r.num_valid_queries == 2
    np.testing.assert_allclose(r.cmc, [0.5, 1, 1], atol=1e-12)
    assert r.mAP == pytest.approx(0.75)
    d, pids, valid = camera_aware_centroid_distances(QUERY, GALLERY)
    np.testing.assert_array_equal(pids, [1, 2, 3])
    np.testing.assert_array_equal(valid, [True, False, True])
    u0 = np.array([1, 0.1]) / np.linalg.norm([1, 0.1])
    assert d[0, 0] == pytest.approx(1 - u0[1])  # own centroid is (0, 1)
    assert d[0, 1] == pytest.approx(1 - u0 @ [0.6, -0.8])


def test_camera_aware_against_naive_loop() -> None:
    rng = np.random.default_rng(0)
    g = feats(
        rng.standard_normal((120, 6)).tolist(),
        rng.integers(0, 15, 120).tolist(),
        rng.integers(0, 4, 120).tolist(),
    )
    q = feats(
        rng.standard_normal((40, 6)).tolist(),
        rng.integers(0, 17, 40).tolist(),
        rng.integers(0, 4, 40).tolist(),
    )
    d, pids, valid = camera_aware_centroid_distances(q, g)
    unit = g.feats / np.linalg.norm(g.feats, axis=1, keepdims=True)
    uq = q.feats / np.linalg.norm(q.feats, axis=1, keepdims=True)
    for i in range(len(q)):
        for j, p in enumerate(pids):
            sel = g.pids == p
            if p == q.pids[i]:
                sel &= g.camids != q.camids[i]
            if not sel.any():
                assert not valid[i]
                continue
            c = unit[sel].sum(0)
            assert d[i, j] == pytest.approx(1 - uq[i] @ c / np.linalg.norm(c), abs=1e-9)
        assert valid[i] == bool(((g.pids == q.pids[i]) & (g.camids != q.camids[i])).any())


def test_camera_aware_without_cameras_is_the_pid_protocol() -> None:
    q = feats(QUERY.feats.tolist(), QUERY.pids.tolist(), [-1] * 3)
    g = feats(GALLERY.feats.tolist(), GALLERY.pids.tolist(), [-1] * 4)
    a, b = evaluate(q, g, centroids="camera"), evaluate(q, g, centroids=True)
    assert (a.mAP, a.num_valid_queries) == (b.mAP, b.num_valid_queries)


def test_camera_aware_with_no_cross_camera_match_raises() -> None:
    g = feats([[1, 0], [0, 1]], [1, 2], [0, 0])
    q = feats([[1, 0.1]], [1], [0])
    with pytest.raises(ValueError, match="from another camera"):
        evaluate(q, g, centroids="camera")


def test_bad_modes() -> None:
    with pytest.raises(ValueError, match="unknown centroids mode"):
        evaluate(QUERY, GALLERY, centroids="cam")
    with pytest.raises(ValueError, match="camera-aware centroids is not supported"):
        evaluate(QUERY, GALLERY, centroids="camera", rerank={})


# centroids-reid's camera-aware protocol: pid 1 seen by cameras 0 and 1, pid 2 by camera 1, a distractor
# (pid 0, camera 2) close to pid 1's first query
REF_GALLERY = feats([[1, 0], [0, 1], [0.6, -0.8], [1, 0.05]], [1, 1, 2, 0], [0, 1, 1, 2])
REF_QUERY = feats([[1, 0.1], [0.1, 1], [0.5, -1]], [1, 1, 2], [0, 1, 0])


def test_camera_aware_reference_hand_worked() -> None:
    """Centroids: pid 1 for query camera 0 -> A = (0,1) from camera 1; for camera 1 -> B = (1,0) from camera
    0; pid 2 for camera 0 -> C = (.6,-.8) from camera 1; the distractor (no query) -> none.
    q0 (pid 1, cam 0): B used cam 0 -> removed; cos A .0995 < cos C .517 -> rank 2, AP 1/2.
    q1 (pid 1, cam 1): A removed; cos B .0995 > cos C -.736 -> rank 1.  q2 (pid 2): C .984 first -> rank 1.
    mAP (1/2 + 1 + 1) / 3. Ours ("camera") keeps the distractor's centroid (cos .999 to q0):
    q0 rank 3, q1 rank 2 (distractor .149 > .0995), q2 rank 1 -> mAP (1/3 + 1/2 + 1) / 3."""
    from reidkit.evaluation.centroids import camera_aware_reference_centroids

    cent, pids, cams, members = camera_aware_reference_centroids(REF_QUERY, REF_GALLERY)
    np.testing.assert_array_equal(pids, [1, 1, 2])
    np.testing.assert_allclose(cent, [[0, 1], [1, 0], [0.6, -0.8]], atol=1e-7)
    np.testing.assert_array_equal(cams, [0, 1, 2])
    np.testing.assert_array_equal(members, [[False, True, False], [True, False, False], [False, True, False]])
    r = evaluate(REF_QUERY, REF_GALLERY, centroids="camera_aware_reference", max_rank=3)
    assert r.num_valid_queries == 3
    np.testing.assert_allclose(r.cmc, [2 / 3, 1, 1], atol=1e-12)
    assert r.mAP == pytest.approx(2.5 / 3)
    ours = evaluate(REF_QUERY, REF_GALLERY, centroids="camera", max_rank=3)
    assert ours.mAP == pytest.approx((1 / 3 + 1 / 2 + 1) / 3)
    np.testing.assert_allclose(ours.cmc, [1 / 3, 2 / 3, 1], atol=1e-12)


def _naive_reference_protocol(q: Features, g: Features) -> tuple[float, np.ndarray]:
    """A transcription of centroids-reid's validation_create_centroids(respect_camids=True) + eval_func, with
    the gallery cameras read from the gallery (the bug fixed): mAP and CMC@1..3."""
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    gf, qf = unit(g.feats), unit(q.feats)
    c_feats, c_pids, c_cams = [], [], []
    for label in sorted(set(g.pids.tolist())):
        inds = np.flatnonzero(g.pids == label)
        seen = set()
        for cam in sorted(set(q.camids[q.pids == label].tolist())):
            keep = inds[g.camids[inds] != cam]
            if keep.size == 0:
                continue
            used = tuple(sorted(set(g.camids[keep].tolist())))
            if used in seen:
                continue
            seen.add(used)
            c_feats.append(gf[keep].mean(0))
            c_pids.append(label)
            c_cams.append(used)
    cf = unit(np.asarray(c_feats))
    aps, cmc = [], np.zeros(3)
    for i in range(len(q.pids)):
        order = np.argsort(1 - qf[i] @ cf.T, kind="stable")
        kept = [j for j in order if not (c_pids[j] == q.pids[i] and q.camids[i] in c_cams[j])]
        hits = np.asarray([c_pids[j] == q.pids[i] for j in kept], dtype=float)
        if not hits.any():
            continue
        prec = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append((prec * hits).sum() / hits.sum())
        cmc += np.argmax(hits) < np.arange(1, 4)  # first match within rank 1, 2, 3
    return float(np.mean(aps)), cmc / len(aps)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_camera_aware_reference_matches_a_naive_transcription(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ng, nq, dim = 120, 40, 8
    g = feats(
        rng.normal(size=(ng, dim)).tolist(), rng.integers(0, 15, ng).tolist(), rng.integers(0, 4, ng).tolist()
    )
    q = feats(
        rng.normal(size=(nq, dim)).tolist(), rng.integers(1, 15, nq).tolist(), rng.integers(0, 4, nq).tolist()
    )
    m_ap, cmc = _naive_reference_protocol(q, g)
    r = evaluate(q, g, centroids="camera_aware_reference", max_rank=3)
    assert r.mAP == pytest.approx(m_ap, abs=1e-9)
    np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
