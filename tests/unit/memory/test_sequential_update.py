"""ClusterMemory(update="sequential") against a plain transcription of Cluster-Contrast's `cm` backward
update: one momentum step per batch row, in batch order, normalised after every step (repeated labels)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reidkit.memory.cluster_memory import ClusterMemory, occurrence


def _naive_cm(
    mem: list[list[float]], feats: list[list[float]], labels: list[int], m: float
) -> list[list[float]]:
    """The reference's loop: for x, y in zip(inputs, targets): c[y] = m c[y] + (1 - m) x; c[y] /= |c[y]|."""
    mem = [list(c) for c in mem]
    for x, y in zip(feats, labels, strict=True):
        new = [m * c + (1 - m) * v for c, v in zip(mem[y], x, strict=True)]
        norm = sum(v * v for v in new) ** 0.5
        mem[y] = [v / norm for v in new]
    return mem


def _setup(seed: int, c: int, b: int, d: int) -> tuple[ClusterMemory, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mem = ClusterMemory(d, momentum=0.2, update="sequential").double()
    mem.reset(torch.randn(c, d, generator=g, dtype=torch.float64))
    return mem, F.normalize(torch.randn(b, d, generator=g, dtype=torch.float64), dim=1)


def test_sequential_matches_the_reference_loop_with_repeated_labels() -> None:
    mem, feats = _setup(0, 6, 12, 5)
    labels = torch.tensor([3, 0, 3, 3, 1, 0, 3, 1, 5, 3, 0, 3])  # cluster 3 six times; 2 and 4 absent
    before = mem.features.tolist()
    mem.update(feats, labels)
    want = _naive_cm(before, feats.tolist(), labels.tolist(), 0.2)
    assert torch.allclose(mem.features, torch.tensor(want, dtype=torch.float64), atol=1e-12)
    assert mem.features[2].tolist() == before[2] and mem.features[4].tolist() == before[4]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sequential_matches_on_random_batches(seed: int) -> None:
    mem, feats = _setup(seed, 7, 40, 8)
    labels = torch.randint(0, 7, (40,), generator=torch.Generator().manual_seed(seed))
    before = mem.features.tolist()
    mem.update(feats, labels)
    want = _naive_cm(before, feats.tolist(), labels.tolist(), 0.2)
    assert torch.allclose(mem.features, torch.tensor(want, dtype=torch.float64), atol=1e-12)


def test_order_matters_and_differs_from_one_step_per_cluster() -> None:
    mem, feats = _setup(4, 2, 6, 3)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    start = mem.features.clone()
    mem.update(feats, labels)
    seq = mem.features.clone()
    mem.reset(start)
    mem.update(feats.flip(0), labels.flip(0))  # the same rows, each cluster's in reverse order
    assert not torch.allclose(seq, mem.features)
    for how in ("mean", "hard"):
        other = ClusterMemory(3, momentum=0.2, update=how).double()
        other.reset(start)
        other.update(feats, labels)
        assert not torch.allclose(seq, other.features)


def test_occurrence_counts_earlier_rows_of_the_same_label() -> None:
    labels = torch.tensor([4, 1, 4, 4, 0, 1, 4])
    assert occurrence(labels).tolist() == [0, 0, 1, 2, 0, 1, 3]
    assert occurrence(torch.tensor([], dtype=torch.long)).tolist() == []


def test_checkpoint_of_another_update_mode_loads() -> None:
    hard = ClusterMemory(4, update="hard")
    hard.reset(torch.randn(3, 4))
    seq = ClusterMemory(4, update="sequential")
    seq.load_state_dict(hard.state_dict())  # the buffer is the same whatever the update: old runs resume
    assert torch.equal(seq.features, hard.features)
