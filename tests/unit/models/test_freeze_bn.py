"""model.freeze_bn: the backbone's BatchNorm keeps its running statistics while the model trains."""

from pathlib import Path

import pytest
import torch

from reidkit.app.build import build_method
from reidkit.config import load_config
from reidkit.models.model import build_reid_model


def _bn_buffers(module):
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k or "num_batches" in k}


@pytest.mark.parametrize("freeze", [True, False])
def test_backbone_bn_statistics_frozen_only_when_asked(freeze):
    torch.manual_seed(0)
    m = build_reid_model("resnet18", 0, weights=None, freeze_bn=freeze)
    m.train()  # freeze_bn must survive every train() call (the engine calls it each epoch)
    body_before, head_before = _bn_buffers(m.backbone), _bn_buffers(m.head)
    out = m(torch.randn(4, 3, 64, 32))
    out["bn_feat"].pow(2).sum().backward()
    body_after, head_after = _bn_buffers(m.backbone), _bn_buffers(m.head)
    same = all(torch.equal(body_before[k], body_after[k]) for k in body_before)
    assert same == freeze
    assert not all(torch.equal(head_before[k], head_after[k]) for k in head_before)  # the BNNeck trains
    assert m.backbone.bn1.weight.grad is not None and m.backbone.bn1.weight.grad.abs().sum() > 0
    assert m.training and m.backbone.bn1.training != freeze


def test_frozen_bn_train_forward_equals_eval_forward_of_the_backbone():
    torch.manual_seed(0)
    m = build_reid_model("resnet18", 0, weights=None, freeze_bn=True).train()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        train_map = m.backbone(x)
        m.eval()
        torch.testing.assert_close(train_map, m.backbone(x))


def test_freeze_bn_is_rejected_where_it_does_not_apply():
    cfg = load_config(
        Path(__file__).resolve().parents[3] / "configs/synthetic/textreid.yaml", ["model.freeze_bn=true"]
    )
    with pytest.raises(ValueError, match="apply to ctl and cluster_contrast"):
        build_method(cfg, 4, weights=None)
