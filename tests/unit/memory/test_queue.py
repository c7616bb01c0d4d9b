"""FeatureQueue: ring buffer against a naive slot simulation (wrap-around, ids aligned, checkpointed)."""

from __future__ import annotations

import io

import pytest
import torch

from reidkit.memory.queue import FeatureQueue


def entries(n: int, start: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n entries whose feature encodes their global index g (feat = [g, -g, 0.5 g]) and id = 100 + g."""
    g = torch.arange(start, start + n, dtype=torch.float32)
    return torch.stack([g, -g, 0.5 * g], 1), (100 + g).long()


@pytest.mark.parametrize("size", [1, 5, 7])
def test_matches_naive_slot_simulation(size: int) -> None:
    q = FeatureQueue(size, 3)
    slots: dict[int, int] = {}  # oracle: global entry g lands in slot g % size, later writes win
    written = 0
    for n in [2, 3, 0, 9, 1, 4, 6, 2]:  # includes batches larger than the queue
        q.enqueue(*entries(n, written))
        for g in range(written, written + n):
            slots[g % size] = g
        written += n
        assert len(q) == min(written, size)
        feats, ids = q.get()
        for s in range(len(q)):
            g = slots[s]
            assert ids[s].item() == 100 + g  # id stays aligned with its feature
            assert feats[s].tolist() == [g, -g, 0.5 * g]
        assert int(q.ptr) == written % size


def test_size_zero_is_in_batch_only() -> None:
    q = FeatureQueue(0, 3)
    q.enqueue(*entries(4, 0))
    feats, ids = q.get()
    assert len(q) == 0 and feats.shape == (0, 3) and ids.shape == (0,)


def test_get_returns_detached_copies() -> None:
    q = FeatureQueue(4, 3)
    f, i = entries(2, 0)
    q.enqueue(f.requires_grad_(), i)
    feats, ids = q.get()
    assert not feats.requires_grad and feats.shape == (2, 3)
    feats.zero_()
    ids.fill_(-5)
    again = q.get()
    assert again[0][1].tolist() == [1.0, -1.0, 0.5] and again[1].tolist() == [100, 101]


def test_state_dict_roundtrip_resumes_identically() -> None:
    a = FeatureQueue(5, 3)
    a.enqueue(*entries(7, 0))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    b = FeatureQueue(5, 3)
    b.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    for q in (a, b):
        q.enqueue(*entries(3, 7))
    for x, y in zip(a.get(), b.get(), strict=True):
        assert torch.equal(x, y)
    assert int(a.ptr) == int(b.ptr) == 0 and len(a) == len(b) == 5
    assert set(a.state_dict()) == {"feats", "ids", "ptr", "count"}


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="size >= 0"):
        FeatureQueue(-1, 3)
    q = FeatureQueue(4, 3)
    with pytest.raises(ValueError, match="expected feats"):
        q.enqueue(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="expected feats"):
        q.enqueue(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
