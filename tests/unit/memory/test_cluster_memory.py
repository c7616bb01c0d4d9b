"""ClusterMemory: momentum updates vs a naive per-cluster loop (mean and hard), reset, checkpoint resize."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reidkit.memory.cluster_memory import ClusterMemory


def _naive_update(mem: list[list[float]], feats, labels, m: float, how: str) -> list[list[float]]:
    mem = [list(c) for c in mem]
    for y in sorted(set(labels)):
        members = [f for f, lab in zip(feats, labels, strict=True) if lab == y]
        if how == "mean":
            target = [sum(col) / len(members) for col in zip(*members, strict=True)]
        else:  # the member least similar to the current centroid (first one on ties)
            sims = [sum(a * b for a, b in zip(f, mem[y], strict=True)) for f in members]
            target = members[sims.index(min(sims))]
        new = [m * c + (1 - m) * t for c, t in zip(mem[y], target, strict=True)]
        norm = sum(v * v for v in new) ** 0.5
        mem[y] = [v / norm for v in new]
    return mem


@pytest.mark.parametrize("how", ["mean", "hard"])
def test_update_matches_a_naive_loop(how):
    g = torch.Generator().manual_seed(0)
    mem = ClusterMemory(4, momentum=0.2, update=how).double()
    mem.reset(torch.randn(5, 4, generator=g, dtype=torch.float64))
    before = mem.features.tolist()
    feats = F.normalize(torch.randn(8, 4, generator=g, dtype=torch.float64), dim=1)
    labels = torch.tensor([3, 0, 3, 3, 1, 0, 3, 1])  # clusters 2 and 4 are absent: must stay as they were
    mem.update(feats, labels)
    want = _naive_update(before, feats.tolist(), labels.tolist(), 0.2, how)
    assert torch.allclose(mem.features, torch.tensor(want, dtype=torch.float64), atol=1e-12)
    assert mem.features[2].tolist() == before[2] and mem.features[4].tolist() == before[4]
    assert torch.allclose(mem.features.norm(dim=1), torch.ones(5, dtype=torch.float64))


def test_hard_and_mean_differ_and_hard_takes_the_least_similar():
    mem = ClusterMemory(2, momentum=0.0, update="hard")
    mem.reset(torch.tensor([[1.0, 0.0]]))
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    mem.update(feats, torch.tensor([0, 0, 0]))  # m = 0: the centroid becomes the least similar sample
    assert mem.features[0].tolist() == pytest.approx([0.0, 1.0])
    mean = ClusterMemory(2, momentum=0.0, update="mean")
    mean.reset(torch.tensor([[1.0, 0.0]]))
    mean.update(feats, torch.tensor([0, 0, 0]))
    assert mean.features[0].tolist() == pytest.approx(F.normalize(torch.tensor([1.6, 1.8]), dim=0).tolist())


def test_reset_normalises_and_centroids_is_a_detached_copy():
    mem = ClusterMemory(2)
    mem.reset(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
    assert torch.allclose(mem.features, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))
    copy = mem.centroids()
    mem.update(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
    assert torch.allclose(copy, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))  # reads are not changed by updates
    assert not copy.requires_grad and len(mem) == 2


def test_state_dict_round_trip_resizes_the_buffer():
    src = ClusterMemory(3)
    src.reset(torch.randn(7, 3))
    dst = ClusterMemory(3)
    dst.reset(torch.randn(2, 3))
    dst.load_state_dict(src.state_dict())
    assert torch.equal(dst.features, src.features) and len(dst) == 7
    with pytest.raises(RuntimeError, match=r"expected \[C, 3\]"):
        ClusterMemory(3).load_state_dict({"features": torch.zeros(4, 5)})


def test_bad_inputs_raise():
    mem = ClusterMemory(2)
    mem.reset(torch.eye(2))
    with pytest.raises(ValueError, match="labels must lie"):
        mem.update(torch.eye(2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="valid"):
        ClusterMemory(2, update="median")
    with pytest.raises(ValueError, match="centroids must be"):
        mem.reset(torch.zeros(3, 4))
