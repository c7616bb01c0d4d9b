"""model.freeze_stages: the backbone's first N stages get no gradient, stay in eval mode and do not change."""

from __future__ import annotations

import pytest
import torch

from reidkit.models.backbones import BACKBONES, frozen_stage_modules, make_backbone
from reidkit.models.model import build_reid_model


def _step(model: torch.nn.Module) -> None:
    """One Adam step with weight decay on every trainable parameter (decay would move a frozen one too)."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1, weight_decay=0.1)
    out = model(torch.randn(4, 3, 64, 32))
    (out["bn_feat"].pow(2).sum() + out["logits"].sum()).backward()
    opt.step()


@pytest.mark.parametrize(("backbone", "n"), [("resnet18", 2), ("osnet_x0_25", 3), ("mobilenetv2", 2)])
def test_frozen_stages_get_no_gradient_and_do_not_change(backbone: str, n: int) -> None:
    torch.manual_seed(0)
    model = build_reid_model(backbone, 5, weights=None, freeze_stages=n).train()
    stages = BACKBONES[backbone].stages
    frozen_prefixes = tuple(f"{path}." for stage in stages[:n] for path in stage)
    next_prefixes = tuple(f"{path}." for path in stages[n])
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}  # parameters and BN buffers
    _step(model)
    after = model.backbone.state_dict()
    named = dict(model.backbone.named_parameters())
    frozen = [k for k in named if k.startswith(frozen_prefixes)]
    assert frozen, "the test must cover some frozen parameters"
    for k in frozen:
        assert named[k].grad is None and not named[k].requires_grad
    for k in before:
        if k.startswith(frozen_prefixes):
            assert torch.equal(before[k], after[k]), f"{k} changed although its stage is frozen"
    # the first trainable stage does get gradients and moves
    trained = [k for k in named if k.startswith(next_prefixes)]
    assert trained and all(named[k].grad is not None for k in trained)
    assert any(not torch.equal(before[k], after[k]) for k in trained)
    for m in frozen_stage_modules(backbone, model.backbone, n):
        assert not m.training  # frozen stages stay in eval mode (BN statistics, dropout) after train()


def test_freeze_stages_zero_trains_everything() -> None:
    model = build_reid_model("resnet18", 5, weights=None, freeze_stages=0).train()
    assert all(p.requires_grad for p in model.backbone.parameters())


def test_every_backbone_lists_its_stages_and_they_exist() -> None:
    for name, spec in BACKBONES.items():
        if name == "efficientnet_lite0":
            pytest.importorskip("timm")
        body, _ = make_backbone(name)
        assert len(spec.stages) >= 5, name
        assert frozen_stage_modules(name, body, len(spec.stages))  # every path resolves


def test_too_many_stages_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"model.freeze_stages=9: resnet18 has 5 stages, expected 0..5"):
        build_reid_model("resnet18", 0, weights=None, freeze_stages=9)
