"""Each loss against a naive python loop on a few vectors, a hand-worked case, and finite gradients."""

from __future__ import annotations

import math

import pytest
import torch

from reidkit.losses import functional as LF


def _dist(a: list[float], b: list[float]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def _mean(vectors: list[list[float]]) -> list[float]:
    return [sum(col) / len(vectors) for col in zip(*vectors, strict=True)]


def _naive_batch_hard(feats: list[list[float]], labels: list[int], margin: float, soft: bool) -> float:
    terms = []
    pairs = list(zip(feats, labels, strict=True))
    for i, (fi, yi) in enumerate(pairs):
        pos = [_dist(fi, fj) for j, (fj, yj) in enumerate(pairs) if yj == yi and j != i]
        neg = [_dist(fi, fj) for fj, yj in pairs if yj != yi]
        if not pos or not neg:
            continue
        diff = max(pos) - min(neg)
        terms.append(math.log1p(math.exp(diff)) if soft else max(0.0, diff + margin))
    return sum(terms) / len(terms) if terms else 0.0


def _naive_centroid_triplet_per_image(
    feats: list[list[float]], labels: list[int], margin: float, soft: bool
) -> float:
    ids = sorted(set(labels))
    centroid = {k: _mean([f for f, y in zip(feats, labels, strict=True) if y == k]) for k in ids}
    terms = []
    for i, (fi, yi) in enumerate(zip(feats, labels, strict=True)):
        others = [fj for j, (fj, yj) in enumerate(zip(feats, labels, strict=True)) if yj == yi and j != i]
        negatives = [_dist(fi, centroid[k]) for k in ids if k != yi]
        if not others or not negatives:
            continue
        diff = _dist(fi, _mean(others)) - min(negatives)
        terms.append(math.log1p(math.exp(diff)) if soft else max(0.0, diff + margin))
    return sum(terms) / len(terms) if terms else 0.0


def _naive_centroid_triplet_reference(
    feats: list[list[float]], labels: list[int], margin: float, soft: bool
) -> float:
    """centroids-reid's train_ctl_model.py as loops: for each image slot s, the s-th image of every id with
    at least two images plus its leave-s-out centroid; one batch-hard triplet over those points."""
    by_id: dict[int, list[list[float]]] = {}
    for f, y in zip(feats, labels, strict=True):
        by_id.setdefault(y, []).append(f)
    slot_losses = []
    for s in range(max(len(v) for v in by_id.values())):
        points: list[tuple[list[float], int]] = []
        for k, imgs in by_id.items():
            if len(imgs) > s and len(imgs) >= 2:
                points.append((imgs[s], k))
                points.append((_mean([f for j, f in enumerate(imgs) if j != s]), k))
        if len({k for _, k in points}) < 2:
            continue
        terms = []
        for i, (fi, yi) in enumerate(points):
            pos = [_dist(fi, fj) for j, (fj, yj) in enumerate(points) if yj == yi and j != i]
            neg = [_dist(fi, fj) for fj, yj in points if yj != yi]
            diff = max(pos) - min(neg)
            terms.append(math.log1p(math.exp(diff)) if soft else max(0.0, diff + margin))
        slot_losses.append(sum(terms) / len(terms))
    return sum(slot_losses) / len(slot_losses) if slot_losses else 0.0


def _batch(labels: list[int], dim: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(len(labels), dim, generator=g, dtype=torch.float64)
    return feats, torch.tensor(labels)


# P x K batches, and batches whose identities have fewer than K images (down to a single image).
LABEL_SETS = [
    [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],  # P=3, K=4
    [3, 3, 3, 3, 7, 7, 7, 1, 5, 5],  # K=4 with ids holding 3 and 2 images, plus a singleton
    [2, 0, 1, 0, 2, 1, 0, 2],  # shuffled order
    [4, 4, 9],  # one id has a single image
]


def test_pairwise_euclidean_matches_loop() -> None:
    x, _ = _batch([0] * 4, dim=3, seed=1)
    y, _ = _batch([0] * 6, dim=3, seed=2)
    d = LF.pairwise_euclidean(x, y)
    d2 = LF.pairwise_euclidean(x, y, squared=True)
    for i in range(4):
        for j in range(6):
            ref = _dist(x[i].tolist(), y[j].tolist())
            assert d[i, j].item() == pytest.approx(ref, abs=1e-9)
            assert d2[i, j].item() == pytest.approx(ref**2, abs=1e-9)


def test_pairwise_euclidean_coincident_points_are_safe() -> None:
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [3.0, -1.0]], requires_grad=True)
    d = LF.pairwise_euclidean(x, x)
    assert d.min().item() >= 0.0
    assert d[0, 1].item() < 1e-3  # clamped at sqrt(1e-12), not NaN
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_pairwise_euclidean_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="pairwise_euclidean"):
        LF.pairwise_euclidean(torch.zeros(2, 3), torch.zeros(2, 4))


@pytest.mark.parametrize("labels", LABEL_SETS)
@pytest.mark.parametrize("soft", [False, True])
def test_batch_hard_triplet_matches_loop(labels: list[int], soft: bool) -> None:
    feats, y = _batch(labels)
    got = LF.batch_hard_triplet(feats, y, margin=0.5, soft_margin=soft).item()
    assert got == pytest.approx(_naive_batch_hard(feats.tolist(), labels, 0.5, soft), abs=1e-9)


def test_batch_hard_triplet_hand_worked() -> None:
    # 1-D points; id 0 at {0, 3}, id 1 at {1, 5}. Anchor 0: d_ap=3, d_an=1 -> 2.5; anchor 3: d_ap=3, d_an=2 ->
    # 1.5; anchor 1: d_ap=4, d_an=1 -> 3.5; anchor 5: d_ap=4, d_an=2 -> 2.5. Mean = 2.5.
    feats = torch.tensor([[0.0], [3.0], [1.0], [5.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert LF.batch_hard_triplet(feats, labels, margin=0.5).item() == pytest.approx(2.5, abs=1e-5)


def test_batch_hard_triplet_without_valid_anchor_is_zero_with_graph() -> None:
    feats = torch.randn(3, 4, requires_grad=True)
    loss = LF.batch_hard_triplet(feats, torch.tensor([0, 1, 2]))  # no positives at all
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(feats.grad, torch.zeros_like(feats))


@pytest.mark.parametrize("labels", LABEL_SETS)
@pytest.mark.parametrize("soft", [False, True])
def test_centroid_triplet_per_image_matches_loop(labels: list[int], soft: bool) -> None:
    feats, y = _batch(labels, seed=3)
    got = LF.centroid_triplet_per_image(feats, y, margin=0.5, soft_margin=soft).item()
    want = _naive_centroid_triplet_per_image(feats.tolist(), labels, 0.5, soft)
    assert got == pytest.approx(want, abs=1e-9)


def test_centroid_triplet_per_image_hand_worked_leave_one_out() -> None:
    # 1-D: id 0 at {0, 4}, id 1 at {1, 3}, id 2 at {2.5} alone. Centroids: id0 = 2, id1 = 2, id2 = 2.5.
    # q=0: positive is 4 (the OTHER image, not the id centroid 2): d_pos 4, d_neg min(2, 2.5) = 2 -> 2.5
    # q=4: d_pos 4, d_neg min(2, 1.5) = 1.5 -> 3.0;  q=1: d_pos 2, d_neg min(1, 1.5) = 1 -> 1.5
    # q=3: d_pos 2, d_neg min(1, 0.5) = 0.5 -> 2.0;  q=2.5 has no positive centroid: left out.
    feats = torch.tensor([[0.0], [4.0], [1.0], [3.0], [2.5]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    got = LF.centroid_triplet_per_image(feats, labels, margin=0.5).item()
    assert got == pytest.approx((2.5 + 3.0 + 1.5 + 2.0) / 4, abs=1e-5)


def test_centroid_triplet_per_image_is_permutation_invariant() -> None:
    feats, y = _batch([0, 0, 0, 1, 1, 2, 2, 2], seed=4)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    a = LF.centroid_triplet_per_image(feats, y)
    b = LF.centroid_triplet_per_image(feats[perm], y[perm])
    assert a.item() == pytest.approx(b.item(), abs=1e-12)


@pytest.mark.parametrize("form", [LF.centroid_triplet, LF.centroid_triplet_per_image])
def test_centroid_triplet_degenerate_batches_are_zero(form) -> None:
    one_id = torch.randn(4, 3, requires_grad=True)
    loss = form(one_id, torch.tensor([5, 5, 5, 5]))  # no negative centroid
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(one_id.grad).all()
    singletons = form(torch.randn(3, 3), torch.tensor([0, 1, 2]))  # no positive centroid
    assert singletons.item() == 0.0


REFERENCE_LABEL_SETS = [
    *LABEL_SETS,
    [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3],  # ragged K: ids with 2, 4, 4, 3 images
    [1, 1, 1, 1, 2, 2, 2, 2],  # P=2
    [6, 6, 6, 6, 4, 4, 4, 4, 4, 4],  # two ids, 4 and 6 images: slots 4 and 5 hold a single id (skipped)
]


@pytest.mark.parametrize("labels", REFERENCE_LABEL_SETS)
@pytest.mark.parametrize("soft", [False, True])
def test_centroid_triplet_reference_matches_per_slot_loop(labels: list[int], soft: bool) -> None:
    feats, y = _batch(labels, seed=3)
    feats.requires_grad_(True)
    got = LF.centroid_triplet(feats, y, margin=0.5, soft_margin=soft)
    ref_feats = feats.detach().clone().requires_grad_(True)
    # the loop's value, and its gradient through the same loop written with torch scalars
    want = _naive_centroid_triplet_reference(feats.tolist(), labels, 0.5, soft)
    assert got.item() == pytest.approx(want, abs=1e-9)
    ref = _torch_loop_reference(ref_feats, labels, 0.5, soft)
    assert ref.item() == pytest.approx(want, abs=1e-9)
    got.backward()
    ref.backward()
    torch.testing.assert_close(feats.grad, ref_feats.grad, rtol=1e-9, atol=1e-9)


def _torch_loop_reference(feats: torch.Tensor, labels: list[int], margin: float, soft: bool) -> torch.Tensor:
    """The per-slot loop of `_naive_centroid_triplet_reference` on torch rows, for autograd."""
    by_id: dict[int, list[torch.Tensor]] = {}
    for i, y in enumerate(labels):
        by_id.setdefault(y, []).append(feats[i])
    slot_losses = []
    for s in range(max(len(v) for v in by_id.values())):
        points = []
        for k, imgs in by_id.items():
            if len(imgs) > s and len(imgs) >= 2:
                others = [f for j, f in enumerate(imgs) if j != s]
                points += [(imgs[s], k), (sum(others) / len(others), k)]
        if len({k for _, k in points}) < 2:
            continue
        terms = []
        for i, (fi, yi) in enumerate(points):
            pos = max((fi - fj).norm() for j, (fj, yj) in enumerate(points) if yj == yi and j != i)
            neg = min((fi - fj).norm() for fj, yj in points if yj != yi)
            terms.append(torch.nn.functional.softplus(pos - neg) if soft else torch.relu(pos - neg + margin))
        slot_losses.append(sum(terms) / len(terms))
    return sum(slot_losses) / len(slot_losses) if slot_losses else feats.sum() * 0


def test_centroid_triplet_reference_hand_worked() -> None:
    # 1-D, ids 0: {0, 4}, 1: {1, 3}. Slot 0: q0=0, c0=4, q1=1, c1=3. d_ap = 4 (id 0), 2 (id 1).
    #   anchors 0 -> nearest other-id point 1 (d 1): 4-1+.5 = 3.5;  4 -> 3 (d 1): 3.5
    #            1 -> 0 (d 1): 2-1+.5 = 1.5;  3 -> 4 (d 1): 1.5           slot mean (3.5+3.5+1.5+1.5)/4 = 2.5
    # Slot 1: q0=4, c0=0, q1=3, c1=1: the same point set with the same pairs -> 2.5.  Loss 2.5.
    # The per-image form sees only the centroids (both at 2) as negatives: (2.5 + 2.5 + 1.5 + 1.5) / 4 = 2.0.
    feats = torch.tensor([[0.0], [4.0], [1.0], [3.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert LF.centroid_triplet(feats, labels, margin=0.5).item() == pytest.approx(2.5, abs=1e-5)
    assert LF.centroid_triplet_per_image(feats, labels, margin=0.5).item() == pytest.approx(2.0, abs=1e-5)


@pytest.mark.parametrize("labels", LABEL_SETS)
def test_label_smooth_ce_matches_loop(labels: list[int]) -> None:
    num_classes = 10
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(len(labels), num_classes, generator=g, dtype=torch.float64)
    eps = 0.1
    total = 0.0
    for row, y in zip(logits.tolist(), labels, strict=True):
        log_z = math.log(sum(math.exp(v) for v in row))
        for c, v in enumerate(row):
            q = (1 - eps) * (c == y) + eps / num_classes
            total += -q * (v - log_z)
    ref = total / len(labels)
    got = LF.cross_entropy_label_smooth(logits, torch.tensor(labels), epsilon=eps).item()
    assert got == pytest.approx(ref, abs=1e-9)


def test_label_smooth_ce_rejects_bad_epsilon() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        LF.cross_entropy_label_smooth(torch.zeros(2, 3), torch.tensor([0, 1]), epsilon=1.5)


@pytest.mark.parametrize("labels", LABEL_SETS)
def test_center_loss_matches_loop(labels: list[int]) -> None:
    feats, y = _batch(labels, dim=4, seed=6)
    g = torch.Generator().manual_seed(7)
    centers = torch.randn(10, 4, generator=g, dtype=torch.float64)
    pairs = zip(feats.tolist(), labels, strict=True)
    ref = sum(_dist(f, centers[k].tolist()) ** 2 for f, k in pairs) / len(labels)
    assert LF.center_loss(feats, y, centers).item() == pytest.approx(ref, abs=1e-9)


def test_center_loss_rejects_out_of_range_labels() -> None:
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        LF.center_loss(torch.zeros(2, 4), torch.tensor([0, 3]), torch.zeros(3, 4))


def test_gradients_are_finite_with_duplicate_features() -> None:
    # duplicated rows give zero distances (sqrt at 0) and a leave-one-out centroid equal to the query
    base = torch.randn(3, 6)
    feats = torch.cat([base, base, base[:1]]).requires_grad_(True)  # [7, 6]
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    logits = torch.randn(7, 3, requires_grad=True)
    centers = torch.randn(3, 6, requires_grad=True)
    loss = (
        LF.batch_hard_triplet(feats, labels)
        + LF.batch_hard_triplet(feats, labels, soft_margin=True)
        + LF.centroid_triplet(feats, labels)
        + LF.centroid_triplet_per_image(feats, labels)
        + LF.center_loss(feats, labels, centers)
        + LF.cross_entropy_label_smooth(logits, labels)
    )
    loss.backward()
    for t in (feats, logits, centers):
        assert t.grad is not None and torch.isfinite(t.grad).all()
    assert feats.grad.abs().sum() > 0


@pytest.mark.parametrize("form", [LF.centroid_triplet, LF.centroid_triplet_per_image])
def test_centroid_triplet_gradient_matches_finite_differences(form) -> None:
    feats, y = _batch([0, 0, 0, 1, 1, 2], dim=3, seed=8)
    feats.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: form(f, y, margin=5.0), (feats,))
