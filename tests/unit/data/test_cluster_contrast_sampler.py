"""ClusterContrastSampler: batch composition of Cluster-Contrast's RandomMultipleGallerySampler + drop_last +
IterLoader, checked by its rules and against a plain transcription of the reference's loop."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from reidkit.data.loaders import pk_sampler
from reidkit.data.sampler import ClusterContrastSampler
from reidkit.types import Record

K = 4


def _data() -> tuple[list[int], list[int]]:
    """8 identities: two cameras with plenty, one camera only, few images, exactly K - 1 on other cameras."""
    spec = {  # pid: cameras of its images
        0: [0] * 6 + [1] * 6,
        1: [0, 1, 1, 1, 1, 1, 1, 1],
        2: [2] * 9,  # one camera: draws among its other images
        3: [0, 0],  # fewer than K images
        4: [0, 1, 2],
        5: [0] * 5 + [1] * 3,  # anchor on cam 0: exactly K - 1 = 3 candidates -> still with replacement
        6: [1, 2, 3, 4, 5, 6],
        7: [3, 3, 3, 4],
    }
    pids = [p for p, cams in spec.items() for _ in cams] + [-1, -1]  # outliers are never sampled
    cams = [c for cams in spec.values() for c in cams] + [0, 1]
    order = np.random.default_rng(0).permutation(len(pids))  # identities interleaved in the record list
    return [pids[i] for i in order], [cams[i] for i in order]


def _naive_pass(pids: list[int], cams: list[int] | None, k: int, rng: np.random.Generator) -> list[int]:
    """The reference's __iter__, line by line, with numpy's generator for torch.randperm / random.choice."""
    pid_index: dict[int, list[int]] = {}
    for i, p in enumerate(pids):
        if p >= 0:
            pid_index.setdefault(p, []).append(i)
    keys = sorted(pid_index)
    ret: list[int] = []
    for kid in rng.permutation(len(keys)):
        index = pid_index[keys[kid]]
        i = index[int(rng.integers(len(index)))]
        ret.append(i)
        select = [] if cams is None else [j for j, x in enumerate(index) if cams[x] != cams[i]]
        if not select:
            select = [j for j, x in enumerate(index) if x != i]
            if not select:
                continue
        for j in rng.choice(select, size=k - 1, replace=not len(select) >= k):
            ret.append(index[j])
    return ret


def _naive_epoch(pids, cams, p, k, seed, epoch, num_batches):  # noqa: ANN001, ANN202
    """Consecutive P * K batches of each pass (drop_last), passes chained as IterLoader does."""
    out: list[list[int]] = []
    rnd = 0
    while True:
        flat = _naive_pass(pids, cams, k, np.random.default_rng([seed, epoch, rnd]))
        out += [flat[s : s + p * k] for s in range(0, len(flat) // (p * k) * p * k, p * k)]
        rnd += 1
        if not num_batches or len(out) >= num_batches:
            return out[:num_batches] if num_batches else out


@pytest.mark.parametrize("use_cams", [True, False])
@pytest.mark.parametrize(("p", "num_batches"), [(2, 0), (2, 9), (3, 5)])
def test_matches_a_naive_transcription(use_cams: bool, p: int, num_batches: int) -> None:
    pids, cams = _data()
    c = cams if use_cams else None
    for epoch in (0, 3):
        s = ClusterContrastSampler(pids, p, K, seed=7, camids=c, num_batches=num_batches)
        s.set_epoch(epoch)
        assert list(s) == _naive_epoch(pids, c, p, K, 7, epoch, num_batches)


def _check_block(b: list[int], pids: list[int], cams: list[int]) -> bool:
    """One identity's K indices follow the reference's rule; True when an index repeats."""
    pid, anchor = pids[b[0]], b[0]
    assert len(b) == K and all(pids[i] == pid for i in b)
    members = [i for i, q in enumerate(pids) if q == pid]
    other_cam = [i for i in members if cams[i] != cams[anchor]]
    pool = other_cam or [i for i in members if i != anchor]
    assert set(b[1:]) <= set(pool)  # other cameras than the anchor's; its own only when there is no other
    repeats = len(set(b)) < K
    assert not repeats or len(pool) < K  # repetition only when fewer than K candidates
    return repeats


def test_one_pass_every_identity_once_with_k_images() -> None:
    pids, cams = _data()
    s = ClusterContrastSampler(pids, 2, K, seed=1, camids=cams)  # 8 identities, P = 2: no tail dropped
    repeated: Counter[int] = Counter()
    for epoch in range(30):
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s) == 4 and all(len(b) == 2 * K for b in batches)
        flat = [i for b in batches for i in b]
        blocks = [flat[j : j + K] for j in range(0, len(flat), K)]
        assert sorted(pids[b[0]] for b in blocks) == list(range(8))  # every identity exactly once
        repeated.update(pids[b[0]] for b in blocks if _check_block(b, pids, cams))
    # never: ids whose pool always has >= K images (0: 6 on the other camera, 2: 8 others, 6: 5 others)
    assert not {0, 2, 6} & set(repeated)
    assert {3, 4, 5} <= set(repeated)  # always short pools: 1, 2, 3 candidates
    assert 0 < repeated[1] < 30  # anchor on camera 1 (7 of 8 images): one candidate on camera 0


def test_tail_identities_sit_the_pass_out() -> None:
    pids, cams = _data()
    s = ClusterContrastSampler(pids, 3, K, seed=2, camids=cams)  # 8 identities, P = 3: 2 batches, 2 left out
    seen = []
    for e in range(6):
        s.set_epoch(e)
        batches = list(s)
        assert len(batches) == 2 and all(len(b) == 3 * K for b in batches)
        ids = {pids[i] for b in batches for i in b}
        assert len(ids) == 6
        seen.append(frozenset(ids))
    assert len(set(seen)) > 1  # which identities are left out changes with the epoch


def test_single_image_identity_writes_one_index_and_shifts_the_cut() -> None:
    pids = [0] * 5 + [1] + [2] * 5 + [3] * 5
    s = ClusterContrastSampler(pids, 2, K, seed=0, num_batches=4)
    for b in s:
        assert len(b) == 2 * K
    flat = _naive_pass(pids, None, K, np.random.default_rng([0, 0, 0]))
    assert len(flat) == 3 * K + 1 and Counter(pids[i] for i in flat)[1] == 1


def test_deterministic_different_epochs_skip_and_ranks() -> None:
    pids, cams = _data()
    a = ClusterContrastSampler(pids, 2, K, seed=3, camids=cams, num_batches=10)
    b = ClusterContrastSampler(pids, 2, K, seed=3, camids=cams, num_batches=10)
    assert list(a) == list(b) and len(a) == 10
    full = list(a)
    a.set_epoch(1)
    assert list(a) != full
    b.set_epoch(0, skip=4)
    assert list(b) == full[4:]
    ranks = [
        list(ClusterContrastSampler(pids, 2, K, seed=3, camids=cams, num_batches=10, rank=r, world_size=2))
        for r in (0, 1)
    ]
    assert [x + y for x, y in zip(*ranks, strict=True)] == full
    with pytest.raises(ValueError, match="split evenly"):
        ClusterContrastSampler(pids, 3, K, rank=0, world_size=2)


def test_loader_routing_and_errors() -> None:
    pids, cams = _data()
    recs = [Record(path=f"{i}.jpg", pid=p, camid=c) for i, (p, c) in enumerate(zip(pids, cams, strict=True))]
    s = pk_sampler(recs, p=20, k=K, seed=0, num_batches=3, epoch=0, sampler="cluster_contrast")
    assert isinstance(s, ClusterContrastSampler) and s.p == 8  # P shrinks to the identities there are
    assert [len(b) for b in s] == [8 * K] * 3
    with pytest.raises(ValueError, match="unknown"):
        pk_sampler(recs, p=2, k=K, seed=0, num_batches=1, epoch=0, sampler="random")
    with pytest.raises(ValueError, match="fills no batch"):
        list(ClusterContrastSampler([0, 1, 2], 2, K))
    with pytest.raises(ValueError, match="at least p=5"):
        ClusterContrastSampler([0, 1, 2], 5, K)
