"""OSNet (Zhou et al., ICCV'19), the light omni-scale ReID backbone, in the Torchreid parameter layout.

The module and parameter names follow Torchreid (`conv1.conv.weight`, `conv2.0.conv2b.1.conv2.weight`,
`fc.0.weight`, ...) so Torchreid-layout state dicts, such as the OSNet x0.25 MSMT17 weights described in
`shared/weights/osnet_x0_25_msmt17/SOURCE.md`, load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# name -> stage channels [stem, conv2, conv3, conv4]; every variant has layers [2, 2, 2].
OSNET_CHANNELS: dict[str, tuple[int, int, int, int]] = {
    "osnet_x1_0": (64, 256, 384, 512),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_25": (16, 64, 96, 128),
}
_LAYERS = (2, 2, 2)


class ConvLayer(nn.Module):
    """Conv (no bias) + BN + ReLU with a free kernel size; the OSNet stem."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Conv1x1(nn.Module):
    """1x1 conv (no bias) + BN + ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Conv1x1Linear(nn.Module):
    """1x1 conv (no bias) + BN, no activation (block output projection and shortcut)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class LightConv3x3(nn.Module):
    """Lite 3x3: 1x1 conv, then 3x3 depthwise conv (both without bias and BN between), then BN + ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False, groups=channels)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """Unified aggregation gate: x * sigmoid(fc2(relu(fc1(avgpool(x))))), 1x1 convs with bias."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f"ChannelGate needs channels >= {reduction}, got {channels}")
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = F.adaptive_avg_pool2d(x, 1)  # [B, C, 1, 1]
        g = torch.sigmoid(self.fc2(self.relu(self.fc1(g))))
        return x * g


class OSBlock(nn.Module):
    """Omni-scale residual bottleneck: four streams of 1..4 lite 3x3 convs fused by one shared gate."""

    def __init__(self, cin: int, cout: int, bottleneck_reduction: int = 4) -> None:
        super().__init__()
        mid = cout // bottleneck_reduction
        self.conv1 = Conv1x1(cin, mid)
        self.conv2a = LightConv3x3(mid)
        self.conv2b = nn.Sequential(LightConv3x3(mid), LightConv3x3(mid))
        self.conv2c = nn.Sequential(LightConv3x3(mid), LightConv3x3(mid), LightConv3x3(mid))
        self.conv2d = nn.Sequential(*(LightConv3x3(mid) for _ in range(4)))
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1Linear(mid, cout)
        self.downsample = Conv1x1Linear(cin, cout) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)  # [B, mid, h, w]
        x2 = (
            self.gate(self.conv2a(x1))
            + self.gate(self.conv2b(x1))
            + self.gate(self.conv2c(x1))
            + self.gate(self.conv2d(x1))
        )
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv3(x2) + identity)


def _stage(cin: int, cout: int, blocks: int, reduce_spatial: bool) -> nn.Sequential:
    layers: list[nn.Module] = [OSBlock(cin, cout)]
    layers += [OSBlock(cout, cout) for _ in range(1, blocks)]
    if reduce_spatial:
        layers.append(nn.Sequential(Conv1x1(cout, cout), nn.AvgPool2d(2, stride=2)))
    return nn.Sequential(*layers)


class OSNet(nn.Module):
    """OSNet trunk up to `conv5`: [B, 3, H, W] -> [B, C, H/16, W/16] feature map (not pooled)."""

    def __init__(self, channels: tuple[int, int, int, int]) -> None:
        super().__init__()
        c0, c1, c2, c3 = channels
        self.out_dim = c3
        self.conv1 = ConvLayer(3, c0, 7, stride=2, padding=3)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _stage(c0, c1, _LAYERS[0], reduce_spatial=True)
        self.conv3 = _stage(c1, c2, _LAYERS[1], reduce_spatial=True)
        self.conv4 = _stage(c2, c3, _LAYERS[2], reduce_spatial=False)
        self.conv5 = Conv1x1(c3, c3)
        self._init_params()

    def _init_params(self) -> None:
        # Torchreid's init: kaiming (fan_out) convs, unit BN, N(0, 0.01) linears, zero biases.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))  # [B, c0, H/4, W/4]
        x = self.conv3(self.conv2(x))  # [B, c2, H/16, W/16]
        return self.conv5(self.conv4(x))  # [B, c3, H/16, W/16]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


class OSNetReID(OSNet):
    """The full Torchreid OSNet embedder: trunk, global average pool, then `fc` = Linear + BN1d + ReLU.

    [B, 3, H, W] -> [B, feature_dim]; this is the embedding Torchreid's ReID weights were trained to give
    (not L2-normalised; compare with cosine). The classifier is not part of it (start one fresh if needed).
    """

    def __init__(self, channels: tuple[int, int, int, int], feature_dim: int = 512) -> None:
        super().__init__(channels)
        self.feature_dim = feature_dim
        self.fc = nn.Sequential(
            nn.Linear(channels[3], feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True)
        )
        nn.init.normal_(self.fc[0].weight, 0.0, 0.01)  # Torchreid's init; BatchNorm1d starts at (1, 0)
        nn.init.zeros_(self.fc[0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.forward_features(x)  # [B, C, h, w]
        return self.fc(fmap.mean(dim=(2, 3)))  # [B, feature_dim]


def osnet_channels(name: str) -> tuple[int, int, int, int]:
    """Stage channels of a named OSNet variant; unknown names raise listing the valid ones."""
    if name not in OSNET_CHANNELS:
        raise ValueError(f"unknown OSNet variant {name!r}; valid: {sorted(OSNET_CHANNELS)}")
    return OSNET_CHANNELS[name]
