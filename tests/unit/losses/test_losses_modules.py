"""The loss modules only hold hyper-parameters: they must give what the functions give."""

from __future__ import annotations

import pytest
import torch

from reidkit.losses import functional as LF
from reidkit.losses.modules import CenterLoss, CentroidTripletLoss, CrossEntropyLabelSmooth, TripletLoss


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 6, generator=g), torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])


def test_modules_match_functions() -> None:
    feats, labels = _batch()
    assert TripletLoss(0.3)(feats, labels) == LF.batch_hard_triplet(feats, labels, 0.3)
    soft = LF.batch_hard_triplet(feats, labels, soft_margin=True)
    assert TripletLoss(soft_margin=True)(feats, labels) == soft
    assert CentroidTripletLoss(0.7)(feats, labels) == LF.centroid_triplet(feats, labels, 0.7)
    logits = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    assert CrossEntropyLabelSmooth(0.2)(logits, labels) == LF.cross_entropy_label_smooth(logits, labels, 0.2)


def test_center_loss_owns_trainable_centers() -> None:
    feats, labels = _batch()
    loss_fn = CenterLoss(num_classes=3, feat_dim=6)
    assert loss_fn.centers.shape == (3, 6)
    assert [n for n, _ in loss_fn.named_parameters()] == ["centers"]
    loss = loss_fn(feats, labels)
    assert loss.item() == pytest.approx(LF.center_loss(feats, labels, loss_fn.centers).item())
    loss.backward()
    # d/dc_k (1/B) sum_{i: y_i = k} |f_i - c_k|^2 = (2/B) sum_{i: y_i = k} (c_k - f_i)
    expected = torch.stack(
        [2.0 / 8 * (loss_fn.centers[k].detach() - feats[labels == k]).sum(0) for k in range(3)]
    )
    assert torch.allclose(loss_fn.centers.grad, expected, atol=1e-5)


def test_center_loss_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        CenterLoss(0, 4)
