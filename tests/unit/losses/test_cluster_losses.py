"""InfoNCE against the cluster memory and ISE's label-preserving loss, against naive loops and by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reidkit.losses.cluster import info_nce, label_preserving


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _naive_info_nce(feats, labels, cents, tau) -> float:
    total = 0.0
    for f, y in zip(feats, labels, strict=True):
        logits = [_dot(f, c) / tau for c in cents]
        total += -(logits[y] - math.log(sum(math.exp(v) for v in logits)))
    return total / len(feats)


def _naive_lp(feats, labels, supports, s_labels, tau) -> float:
    """The reference's recipe, one sample at a time: hardest same-label support vs hardest of each label."""
    terms = []
    for f, y in zip(feats, labels, strict=True):
        sims = [math.exp(_dot(f, s) / tau) for s in supports]
        pos = [v for v, ys in zip(sims, s_labels, strict=True) if ys == y]
        if not pos:
            continue
        negs = {}
        for v, ys in zip(sims, s_labels, strict=True):
            if ys != y:
                negs[ys] = max(negs.get(ys, 0.0), v)
        p = min(pos)
        terms.append(-math.log(p / (p + sum(negs.values()))))
    return sum(terms) / len(terms)


def test_info_nce_matches_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(7, 5, generator=g, dtype=torch.float64), dim=1)
    cents = F.normalize(torch.randn(4, 5, generator=g, dtype=torch.float64), dim=1)
    labels = torch.tensor([0, 1, 2, 3, 0, 2, 2])
    for tau in (0.05, 0.5):
        got = info_nce(feats, labels, cents, tau).item()
        assert got == pytest.approx(
            _naive_info_nce(feats.tolist(), labels.tolist(), cents.tolist(), tau), rel=1e-9
        )


def test_info_nce_hand_worked():
    # f = c0 = (1, 0), c1 = (0, 1), tau = 0.5: -log(e^2 / (e^2 + e^0)) = log(1 + e^-2)
    got = info_nce(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), torch.eye(2), 0.5)
    assert got.item() == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-6)


def test_info_nce_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels must lie"):
        info_nce(torch.ones(2, 3), torch.tensor([0, 2]), torch.ones(2, 3))
    with pytest.raises(ValueError, match="centroids"):
        info_nce(torch.ones(2, 3), torch.tensor([0, 1]), torch.ones(2, 4))


def test_label_preserving_hand_worked():
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    supports = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.28, 0.96]])
    s_labels = torch.tensor([0, 0, 1, 1])
    # tau = 0.5. sample 0: same-label sims 1, 0.6 -> hardest 0.6; label-1 sims 0, 0.28 -> hardest 0.28
    #   loss0 = -log(e^1.2 / (e^1.2 + e^0.56)) = log(1 + e^-0.64)
    # sample 1: same-label sims 1, 0.96 -> 0.96; label-0 sims 0, 0.8 -> 0.8: loss1 = log(1 + e^-0.32)
    expected = 0.5 * (math.log1p(math.exp(-0.64)) + math.log1p(math.exp(-0.32)))
    assert label_preserving(feats, labels, supports, s_labels, 0.5).item() == pytest.approx(
        expected, rel=1e-6
    )


def test_label_preserving_matches_a_naive_loop_with_several_labels():
    g = torch.Generator().manual_seed(1)
    feats = F.normalize(torch.randn(9, 6, generator=g, dtype=torch.float64), dim=1)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 4])  # label 4 has no supports: left out of the mean
    supports = F.normalize(torch.randn(10, 6, generator=g, dtype=torch.float64), dim=1)
    s_labels = torch.tensor([0, 1, 2, 0, 1, 2, 3, 3, 0, 2])  # label 3 is only a negative
    got = label_preserving(feats, labels, supports, s_labels, 0.6).item()
    want = _naive_lp(feats.tolist(), labels.tolist(), supports.tolist(), s_labels.tolist(), 0.6)
    assert got == pytest.approx(want, rel=1e-9)


def test_label_preserving_gradient_is_finite_and_empty_supports_give_zero():
    feats = F.normalize(torch.randn(4, 3), dim=1).requires_grad_(True)
    supports = F.normalize(torch.randn(4, 3), dim=1)
    loss = label_preserving(feats, torch.tensor([0, 0, 1, 1]), supports, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert torch.isfinite(feats.grad).all() and feats.grad.abs().sum() > 0
    zero = label_preserving(
        feats, torch.tensor([0, 0, 1, 1]), torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)
    )
    assert zero.item() == 0.0
