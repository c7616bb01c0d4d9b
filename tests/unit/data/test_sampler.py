from collections import Counter

import pytest

from reidkit.data.sampler import PKSampler


def _pids():
    # ids 0..5 with 8 images, id 6 with 2 images (fewer than K), id 7 with 5
    return [p for p in range(6) for _ in range(8)] + [6, 6] + [7] * 5


def test_pk_structure_and_no_duplicates():
    pids = _pids()
    s = PKSampler(pids, p=4, k=4, seed=1)
    batches = list(s)
    assert len(batches) == len(s) > 0
    for b in batches:
        assert len(b) == len(set(b)), "an image appears twice in one batch"
        counts = Counter(pids[i] for i in b)
        assert len(counts) == 4
        for pid, c in counts.items():
            assert c == (2 if pid == 6 else 4)  # small identities are used as they are, never duplicated
    used = [i for b in batches for i in b]
    assert len(used) == len(set(used)), "sampling without replacement inside an epoch"


def test_epochs_reproducible_and_different():
    pids = _pids()
    a = PKSampler(pids, 4, 4, seed=3)
    b = PKSampler(pids, 4, 4, seed=3)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)


def test_skip_and_num_batches():
    pids = _pids()
    s = PKSampler(pids, 2, 4, seed=0, num_batches=30)
    full = list(s)
    assert len(full) == 30  # several passes chained
    s.set_epoch(0, skip=7)
    assert list(s) == full[7:]


def test_camera_interleave():
    pids = [0] * 8 + [1] * 8
    cams = [0, 0, 0, 0, 1, 1, 1, 1] * 2
    s = PKSampler(pids, 2, 2, seed=0, camids=cams)
    for b in s:
        for pid in (0, 1):
            members = [i for i in b if pids[i] == pid]
            assert len({cams[i] for i in members}) == 2


def test_ranks_split_each_global_batch_by_identity():
    pids = _pids()
    whole = list(PKSampler(pids, 4, 4, seed=5, num_batches=6))
    ranks = [list(PKSampler(pids, 4, 4, seed=5, num_batches=6, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(whole) == 6
    for step, batch in enumerate(whole):
        a, b = ranks[0][step], ranks[1][step]
        assert a + b == batch  # the two halves, in order, are the single-process batch
        ids_a, ids_b = {pids[i] for i in a}, {pids[i] for i in b}
        assert len(ids_a) == len(ids_b) == 2 and not ids_a & ids_b
    with pytest.raises(ValueError, match="split evenly"):
        PKSampler(pids, 3, 4, rank=0, world_size=2)


def test_errors():
    with pytest.raises(ValueError, match="at least p=5 identities"):
        PKSampler([0, 1, 2], 5, 2)
    with pytest.raises(ValueError, match="camids"):
        PKSampler([0, 1], 1, 1, camids=[0])
