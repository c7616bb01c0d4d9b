"""FRPT `official` (the reference code's architecture): fast-reid's epsilon / (C - 1) label smoothing vs a
per-row loop; the reference head's structure counted by hand and its mixing direction; the prompt reads the
third stage (ResNet layer3, MobileNetV2 features 7-13) of the original image; the variant builds through the
method table and one step trains only prompt + head + classifier; MobileNetV2 honours last_stride; the
recipe and older configs load."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from reidkit.config import ConfigError, ModelConfig, from_dict, load_config
from reidkit.losses.functional import cross_entropy_label_smooth, cross_entropy_smooth_others
from reidkit.methods import METHODS
from reidkit.methods.base import BuildInputs
from reidkit.methods.frpt import FRPT
from reidkit.models.backbones import make_backbone
from reidkit.models.prompts import (
    ReferenceAwarenessHead,
    SaliencySamplerPrompt,
    third_stage_channels,
    third_stage_features,
)
from reidkit.types import Batch

REPO = Path(__file__).resolve().parents[3]
B, C = 6, 3

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------------------- label smoothing
def smooth_others_loop(logits: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """Naive twin: per row, target 1 - eps on the label and eps / (C - 1) on every other class."""
    n, c = logits.shape
    total = 0.0
    for i in range(n):
        row = logits[i].double()
        log_z = math.log(sum(math.exp(float(v)) for v in row))
        for j in range(c):
            q = 1.0 - eps if j == int(labels[i]) else eps / (c - 1)
            total += -q * (float(row[j]) - log_z)
    return torch.tensor(total / n, dtype=torch.float64)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_smooth_others_matches_a_per_row_loop(eps: float) -> None:
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(7, 5, generator=g) * 3, torch.randint(0, 5, (7,), generator=g)
    got = cross_entropy_smooth_others(logits, labels, epsilon=eps)
    torch.testing.assert_close(got.double(), smooth_others_loop(logits, labels, eps), atol=1e-5, rtol=1e-5)
    if eps > 0:  # not torch's epsilon / C convention
        assert abs(float(got) - float(cross_entropy_label_smooth(logits, labels, epsilon=eps))) > 1e-3
    else:
        torch.testing.assert_close(got, F.cross_entropy(logits, labels))


def test_smooth_others_gradient_is_softmax_minus_target() -> None:
    logits = torch.randn(4, 3, requires_grad=True)
    labels = torch.tensor([0, 2, 1, 2])
    cross_entropy_smooth_others(logits, labels, epsilon=0.3).backward()
    target = torch.full((4, 3), 0.15).scatter_(1, labels[:, None], 0.7)
    torch.testing.assert_close(logits.grad, (logits.softmax(1) - target).detach() / 4)


def test_smooth_others_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        cross_entropy_smooth_others(torch.randn(2, 1), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="epsilon"):
        cross_entropy_smooth_others(torch.randn(2, 3), torch.zeros(2, dtype=torch.long), epsilon=1.0)


# ------------------------------------------------------------------------------------------- the head
def test_reference_head_structure_counted_by_hand() -> None:
    c = 16
    head = ReferenceAwarenessHead(c)
    # SE, r = 1, no biases: 2 x C x C; 1x1 conv C -> C/2 + BN(C/2); 3x3 conv C/2 -> C + BN(C)
    expected = 2 * c * c + (c * (c // 2) + 2 * (c // 2)) + ((c // 2) * c * 9 + 2 * c)
    assert expected == 1840
    assert sum(p.numel() for p in head.parameters()) == expected
    assert head.fc1.weight.shape == (c, c) and head.fc1.bias is None and head.fc2.bias is None
    (conv1, bn1, _), (conv3, bn3, _) = head.block
    assert conv1.weight.shape == (c // 2, c, 1, 1) and conv3.weight.shape == (c, c // 2, 3, 3)
    assert conv1.bias is None and conv3.bias is None and conv3.padding == (1, 1)
    assert bn1.num_features == c // 2 and bn3.num_features == c and bn1.momentum == 0.01
    out = head(torch.randn(2, c, 5, 7))
    assert out.shape == (2, c, 5, 7) and (out >= 0).all()  # ends with ReLU


def test_reference_head_mask_weighs_the_raw_features() -> None:
    c = 8
    head = ReferenceAwarenessHead(c)
    seen: list[torch.Tensor] = []
    head.block.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    fmap = torch.rand(2, c, 4, 4) + 1.0  # positive channel means
    with torch.no_grad():
        head.fc1.weight.copy_(torch.eye(c))
        head.fc2.weight.copy_(100 * torch.eye(c))  # mask -> 1
        head(fmap)
        torch.testing.assert_close(seen[-1], fmap, atol=1e-5, rtol=0)  # mask * F + (1 - mask) * IN(F) = F
        head.fc2.weight.copy_(-100 * torch.eye(c))  # mask -> 0
        head(fmap)
        torch.testing.assert_close(seen[-1], F.instance_norm(fmap), atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------------------- the prompt
def test_saliency_sampler_geometry() -> None:
    p = SaliencySamplerPrompt(4)
    assert p.grid == 31 and math.isclose(p.sigma, 13 / (2 * math.sqrt(2 * math.log(2))) * 2 / 31)
    assert sum(q.numel() for q in p.parameters()) == 4 + 1  # 1x1 conv to one map, with bias
    images, feats = torch.rand(2, 3, 32, 48), torch.rand(2, 4, 2, 3)
    with torch.no_grad():
        p.proj.weight.zero_()  # uniform A: the resampling is the identity
        out = p(images, feats)
    assert out["attention"].shape == (2, 31, 31) and out["grid"].shape == (2, 32, 48, 2)
    torch.testing.assert_close(out["attention"].sum(dim=(1, 2)), torch.ones(2))
    torch.testing.assert_close(out["images"], images, atol=1e-3, rtol=0)


# ------------------------------------------------------------------------------------ the whole variant
def make_official(backbone: str = "resnet18", seed: int = 0) -> FRPT:
    torch.manual_seed(seed)
    entry = METHODS["frpt"]
    cfg = entry.config(variant="official", label_smoothing=0.3, label_smoothing_style="others")
    m = entry.build(cfg, ModelConfig(backbone=backbone, last_stride=1, pooling="gem"), BuildInputs(C))
    assert isinstance(m, FRPT)
    return m


def make_batch(size: int = 64) -> Batch:
    g = torch.Generator().manual_seed(1)
    return Batch(
        images=torch.randn(B, 3, size, size, generator=g),
        pids=torch.arange(B) % C,
        camids=torch.full((B,), -1),
        index=torch.arange(B),
    )


def test_official_trains_only_prompt_head_and_classifier() -> None:
    m = make_official()
    assert isinstance(m.spp, SaliencySamplerPrompt) and isinstance(m.cah, ReferenceAwarenessHead)
    before = {k: v.clone() for k, v in m.backbone.state_dict().items()}
    own = {n: p.detach().clone() for n, p in m.named_parameters() if not n.startswith("backbone.")}
    groups = m.param_groups(1e-2, 1e-4)
    trainable = {id(p) for g in groups for p in g["params"]}
    fixed = {"head.neck.bias"}  # the BNNeck's bias stays at 0 (as in fast-reid)
    assert trainable == {id(p) for n, p in m.named_parameters() if n in own and n not in fixed}
    opt = torch.optim.SGD(groups, lr=1e-2, momentum=0.9)
    m.train()
    assert not m.backbone.training
    out = m.training_step(make_batch())
    opt.zero_grad()
    out["loss"].backward()
    assert all(p.grad is None for p in m.backbone.parameters())
    for name, p in m.named_parameters():
        if name in own and name not in fixed:  # prompt, head (SE + convs + BN), GeM, BNNeck, classifier
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # the loss is fast-reid's smoothing on the logits (the head's BN uses batch statistics: same logits)
    with torch.no_grad():
        logits = m(make_batch().images)["logits"]
    torch.testing.assert_close(out["ce"], cross_entropy_smooth_others(logits, make_batch().pids, 0.3))
    opt.step()
    after = m.backbone.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())  # weights and BN statistics
    moved = {n for n, p in m.named_parameters() if n in own and not torch.equal(p, own[n])}
    assert {"spp.proj.weight", "cah.fc1.weight", "cah.block.1.0.weight", "head.classifier.weight"} <= moved


def test_official_prompt_reads_layer3_of_the_original_image() -> None:
    m = make_official().eval()
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    m.backbone.layer3.register_forward_hook(lambda _m, args, out: calls.append((args[0], out.detach())))
    read: list[torch.Tensor] = []
    m.spp.proj.register_forward_pre_hook(lambda _m, args: read.append(args[0].detach()))
    images = make_batch().images
    with torch.no_grad():
        m(images)
    assert len(calls) == 2 and len(read) == 1  # layer3 on the original (for the prompt), then on the prompted
    layer3_of_original = calls[0][1]
    assert layer3_of_original.shape == (B, 256, 4, 4)  # resnet18 layer3: 256 channels at 1/16
    torch.testing.assert_close(read[0], F.relu(layer3_of_original), atol=0, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(third_stage_features("resnet18", m.backbone, images), layer3_of_original)


def test_mobilenetv2_third_stage_and_last_stride() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    for last_stride, side in ((1, 4), (2, 2)):
        net, dim = make_backbone("mobilenetv2", last_stride=last_stride)
        net.eval()
        with torch.no_grad():
            assert net(x).shape == (1, dim, side, side)
    seen: list[torch.Tensor] = []
    net.features[13].register_forward_hook(lambda _m, _a, out: seen.append(out))
    with torch.no_grad():
        feats = third_stage_features("mobilenetv2", net, x)
    assert feats.shape == (1, 96, 4, 4) and third_stage_channels("mobilenetv2", net) == 96
    assert torch.equal(feats, seen[0])  # the output of features 7-13, before the last stride (features[14])
    with pytest.raises(ValueError, match="no third-stage split"):
        third_stage_features("vit_b16", net, x)


# -------------------------------------------------------------------------------------------- configs
def test_recipe_and_older_configs_load() -> None:
    cfg = load_config(REPO / "configs/cub200_2011_subset/frpt_official.yaml")
    assert cfg.method.variant == "official" and cfg.model.last_stride == 1
    assert (cfg.method.label_smoothing, cfg.method.label_smoothing_style) == (0.3, "others")
    optim = cfg.optim
    assert (optim.name, optim.lr, optim.momentum, optim.weight_decay) == ("sgd", 1e-3, 0.9, 1e-4)
    assert cfg.data.crop == "random_resized" and cfg.data.erasing == 0.0
    assert math.isclose(cfg.data.resize / cfg.data.height, 256 / 224, rel_tol=0.01)
    assert (cfg.data.color_jitter, cfg.data.color_jitter_p, cfg.data.color_jitter_hue) == (0.25, 0.5, 0.0)
    old = from_dict({"method": {"name": "frpt", "variant": "frpt", "label_smoothing": 0.1}})
    assert old.method.label_smoothing_style == "uniform"  # a config written before the key existed
    with pytest.raises(ConfigError, match="label_smoothing_style"):
        from_dict({"method": {"name": "frpt", "label_smoothing_style": "torch"}})
