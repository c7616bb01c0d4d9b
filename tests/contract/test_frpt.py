"""FRPT contract: one step on a synthetic batch per variant, finite loss; the frozen backbone's weights and
BN buffers are bit-identical after a step and it stays in eval mode; gradients reach the prompt through it;
param groups and parameter counts; save -> load gives identical embeddings; fit() drives it."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import torch

from reidkit.config import ConfigError, ModelConfig
from reidkit.engine.checkpoint import load_checkpoint
from reidkit.methods.base import BuildInputs
from reidkit.methods.frpt import FRPT, VARIANTS, FRPTConfig, build
from reidkit.types import Batch, Record

B, C = 8, 4
FROZEN = [v for v in VARIANTS if v != "finetune"]


def make(variant: str = "frpt", seed: int = 0, **kw) -> FRPT:
    torch.manual_seed(seed)
    cfg = FRPTConfig(variant=variant, spp_hidden=8, **kw)
    return build(cfg, ModelConfig(backbone="resnet18", last_stride=2, pooling="gem"), BuildInputs(C))


def make_batch(seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        images=torch.randn(B, 3, 64, 64, generator=g),
        pids=torch.arange(B) % C,
        camids=torch.full((B,), -1),
        index=torch.arange(B),
    )


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}  # parameters and BN buffers


def one_step(m: FRPT, batch: Batch, lr: float = 1e-2) -> dict[str, torch.Tensor]:
    opt = torch.optim.Adam(m.param_groups(lr, 5e-4), lr=lr)
    m.train()
    out = m.training_step(batch)
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    return out


@pytest.mark.parametrize("variant", FROZEN)
def test_frozen_backbone_is_bit_identical_after_a_step(variant: str) -> None:
    m = make(variant)
    before_bb, before_all = snapshot(m.backbone), snapshot(m)
    m.train()
    assert m.training and not m.backbone.training
    assert not any(mod.training for mod in m.backbone.modules())
    out = one_step(m, make_batch())
    assert torch.isfinite(out["loss"]) and out["loss"].dim() == 0 and {"ce", "acc"} <= set(out)
    after = m.backbone.state_dict()
    assert before_bb.keys() == after.keys()
    for k, v in before_bb.items():
        assert torch.equal(v, after[k]), k  # weights, running stats and num_batches_tracked
    assert all(p.grad is None for p in m.backbone.parameters())
    moved = [
        k
        for k, v in m.state_dict().items()
        if not k.startswith("backbone.") and not torch.equal(v, before_all[k])
    ]
    assert any(k.startswith("head.classifier") for k in moved)
    if m.cah is not None:
        assert any(k.startswith("cah.") for k in moved)
    if m.spp is not None:
        assert "spp.proj.weight" in moved
        assert 0 < float(out["attn_entropy"]) <= 1 + 1e-6


def test_gradients_reach_the_prompt_through_the_frozen_backbone() -> None:
    m = make("frpt").train()
    torch.nn.init.normal_(m.spp.proj.weight, std=0.5)  # away from the identity start: every layer gets grad
    m.training_step(make_batch())["loss"].backward()
    for name, p in m.spp.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in m.backbone.parameters())


@pytest.mark.parametrize("variant", VARIANTS)
def test_param_groups_hold_exactly_the_trainable_parameters(variant: str) -> None:
    m = make(variant)
    groups = m.param_groups(1e-3, 5e-4)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in m.parameters() if p.requires_grad}
    backbone = {id(p) for p in m.backbone.parameters()}
    trainable, total = m.trainable_parameters()
    assert total == sum(p.numel() for p in m.parameters())
    own = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("backbone.") and p.requires_grad)
    if variant == "finetune":
        assert backbone <= set(ids) and m.backbone.training
        assert {g["lr"] for g in groups if backbone & {id(p) for p in g["params"]}} == {1e-3 * 0.1}
        assert trainable == own + sum(p.numel() for p in m.backbone.parameters())
    else:
        assert not backbone & set(ids)
        assert trainable == own
        if variant != "official":  # the reference head is two full-width convs, no small fraction
            assert trainable < 0.5 * total
    assert (m.spp is not None) == (variant in ("frpt", "no_cah", "official"))
    if m.spp is not None:  # the prompt at lr x spp_lr_scale, nothing else there
        spp = {id(p) for p in m.spp.parameters()}
        assert {g["lr"] for g in groups if spp & {id(p) for p in g["params"]}} == {1e-3 * 10}
        assert all({id(p) for p in g["params"]} <= spp for g in groups if g["lr"] == 1e-3 * 10)
    assert (m.cah is not None) == (variant in ("frpt", "no_spp", "official"))
    if variant == "linear_probe":  # GeM exponent, BNNeck weight and the classifier only
        assert trainable == 1 + m.dim + m.dim * C


def test_finetune_moves_the_backbone_and_its_bn_statistics() -> None:
    m = make("finetune")
    before = snapshot(m.backbone)
    one_step(m, make_batch())
    after = m.backbone.state_dict()
    assert not torch.equal(before["conv1.weight"], after["conv1.weight"])
    assert not torch.equal(before["bn1.running_mean"], after["bn1.running_mean"])


@pytest.mark.parametrize("variant", ["frpt", "no_spp"])
def test_fit_then_save_load_gives_identical_embeddings(variant: str, tmp_path: Path, fit_tiny) -> None:
    m = make(variant)
    recs = [Record(f"{i}.jpg", int(p)) for i, p in enumerate(make_batch().pids)]
    opt = torch.optim.Adam(m.param_groups(1e-2, 0.0), lr=1e-2)
    res = fit_tiny(
        m, recs, lambda r, e, s: [make_batch(e * 10 + j) for j in range(s, 2)], optimizer=opt, amp=False
    )
    assert res.steps == 2 and (tmp_path / "last.pt").is_file()
    fresh = make(variant, seed=7)
    fresh.load_state_dict(load_checkpoint(tmp_path / "last.pt", map_location="cpu")["model"])
    batch = make_batch(99)
    e1, e2 = m.embedders()["image"].embed(batch), fresh.embedders()["image"].embed(batch)
    assert e1.shape == (B, m.dim) and torch.equal(e1, e2)
    torch.testing.assert_close(e1.norm(dim=1), torch.ones(B))
    assert m.training and not m.backbone.training  # the embedder restored train mode, backbone still eval


def test_perturb_returns_the_modified_images_and_needs_the_spp() -> None:
    m = make("frpt").eval()
    p = m.perturb(make_batch().images)
    assert p["images"].shape == (B, 3, 64, 64) and p["attention"].shape == (B, 16, 16)
    torch.testing.assert_close(p["images"], make_batch().images, atol=1e-3, rtol=0)  # identity at init
    with pytest.raises(ValueError, match="no structure perturbation prompt"):
        make("no_spp").perturb(make_batch().images)


def test_config_fields_are_constructor_keywords_and_variants_are_checked() -> None:
    params = inspect.signature(FRPT.__init__).parameters
    for f in dataclasses.fields(FRPTConfig):
        if f.name != "name":
            assert f.name in params and params[f.name].default == f.default, f.name
    assert FRPTConfig().name == "frpt"
    with pytest.raises(ConfigError, match="linear_probe"):
        FRPTConfig(variant="full")
    with pytest.raises(ValueError, match="has no first-block split"):
        FRPT(torch.nn.Conv2d(3, 8, 3), 8, C, backbone_name="vit_b16")
