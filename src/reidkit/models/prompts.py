"""FRPT's two trainable parts around a frozen backbone (Wang et al., "Fine-grained Retrieval Prompt
Tuning", AAAI 2023): the structure perturbation prompt (SPP) on the input and the category-specific
awareness head (CAH) on the backbone's feature map.

SPP = content parsing (the frozen first block's low-level features -> a content-aware kernel of large
receptive field -> a discriminative projection map A, spatial softmax) + structure modification (A as a
probability mass: each output pixel samples the A-weighted mean of source coordinates under a separable
Gaussian distance kernel, so large-A regions are magnified; bilinear `grid_sample`).
CAH = SE channel weights alpha fusing alpha * InstanceNorm(F) + (1 - alpha) * F.

The reference code (Pual2013/FRPT, fast-reid) builds both parts differently from the paper text; the
`official` variant uses `SaliencySamplerPrompt` (ReLU'd third-stage features -> 1x1 conv -> softmax on a
31 x 31 grid -> the same Gaussian magnifying resampling) and `ReferenceAwarenessHead` (SE with r = 1 mixing
mask * F + (1 - mask) * IN(F), then 1x1 and 3x3 conv-BN-ReLU).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


# ------------------------------------------------------------------------------------ first-block features
def _resnet_stem(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x)))))  # [B, 64 | 256, H/4, W/4]


def _mobilenetv2_stem(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.features[:4](x)  # [B, 24, H/4, W/4]


def _efficientnet_stem(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.blocks[1](m.blocks[0](m.bn1(m.conv_stem(x))))  # [B, 24, H/4, W/4]


def _osnet_stem(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.maxpool(m.conv1(x))  # [B, c0, H/4, W/4]


# backbone name (reidkit.models.backbones.BACKBONES) -> (backbone, images) -> its first block's output at 1/4.
STEMS: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    "resnet18": _resnet_stem,
    "resnet34": _resnet_stem,
    "resnet50": _resnet_stem,
    "resnet50_ibn_a": _resnet_stem,
    "mobilenetv2": _mobilenetv2_stem,
    "efficientnet_lite0": _efficientnet_stem,
    "osnet_x0_25": _osnet_stem,
    "osnet_x0_5": _osnet_stem,
    "osnet_x0_75": _osnet_stem,
    "osnet_x1_0": _osnet_stem,
}


def first_block_features(name: str, backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Low-level features of a `make_backbone(name)` module: its stem + first block, [B, 3, H, W] -> [B, C1,
    H/4, W/4]; reuses the backbone's own layers (no copy), so a frozen backbone gives frozen features."""
    if name not in STEMS:
        raise ValueError(f"FRPT has no first-block split for backbone {name!r}; valid: {sorted(STEMS)}")
    return STEMS[name](backbone, images)


def _channels(
    features: Callable[[str, nn.Module, torch.Tensor], torch.Tensor], name: str, m: nn.Module
) -> int:
    """Channel count of `features(name, m, images)` (one tiny forward in eval mode; the mode is restored)."""
    was_training = m.training
    m.eval()
    p = next(m.parameters())
    with torch.no_grad():
        c = int(features(name, m, torch.zeros(1, 3, 64, 64, device=p.device, dtype=p.dtype)).shape[1])
    m.train(was_training)
    return c


def first_block_channels(name: str, backbone: nn.Module) -> int:
    """Channel count of `first_block_features`."""
    return _channels(first_block_features, name, backbone)


# ------------------------------------------------------------------------------------ third-stage features
# The reference's prompt reads ResNet `layer3`: the last stage at 1/16 of the input before the final stage
# (the one `last_stride` acts on). The same cut for the other backbones, by output resolution.
def _resnet_stage3(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.layer3(m.layer2(_resnet_stem(m, x)))  # [B, 256 | 1024, H/16, W/16]


def _mobilenetv2_stage3(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.features[:14](x)  # [B, 96, H/16, W/16]: features 7-13; features[14] is the last stride


def _efficientnet_stage3(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.blocks[4](m.blocks[3](m.blocks[2](_efficientnet_stem(m, x))))  # [B, 112, H/16, W/16]


def _osnet_stage3(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.conv3(m.conv2(_osnet_stem(m, x)))  # [B, c2, H/16, W/16]: conv4 is OSNet's last stage


# backbone name -> (backbone, images) -> its third stage's output at 1/16 (ResNet layer3 and equivalents).
THIRD_STAGES: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    "resnet18": _resnet_stage3,
    "resnet34": _resnet_stage3,
    "resnet50": _resnet_stage3,
    "resnet50_ibn_a": _resnet_stage3,
    "mobilenetv2": _mobilenetv2_stage3,
    "efficientnet_lite0": _efficientnet_stage3,
    "osnet_x0_25": _osnet_stage3,
    "osnet_x0_5": _osnet_stage3,
    "osnet_x0_75": _osnet_stage3,
    "osnet_x1_0": _osnet_stage3,
}


def third_stage_features(name: str, backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Mid-level features of a `make_backbone(name)` module, [B, 3, H, W] -> [B, C3, H/16, W/16] (ResNet
    layer3 or the same cut), through the backbone's own layers: what the reference's prompt reads."""
    if name not in THIRD_STAGES:
        raise ValueError(
            f"FRPT has no third-stage split for backbone {name!r}; valid: {sorted(THIRD_STAGES)}"
        )
    return THIRD_STAGES[name](backbone, images)


def third_stage_channels(name: str, backbone: nn.Module) -> int:
    """Channel count of `third_stage_features`."""
    return _channels(third_stage_features, name, backbone)


# ------------------------------------------------------------------------------- structure modification
def _centres(n: int, pad: int, device: torch.device) -> torch.Tensor:
    """Centres of n cells tiling [-1, 1] (grid_sample, align_corners=False), `pad` more cells each side."""
    i = torch.arange(-pad, n + pad, device=device, dtype=torch.float32)
    return (2 * i + 1) / n - 1  # [n + 2 pad]


def saliency_sampling_grid(
    attention: torch.Tensor, out_hw: tuple[int, int], sigma: float, pad_sigmas: float = 5.0
) -> torch.Tensor:
    """Sampling grid [B, H, W, 2] (x, y in [-1, 1]) that magnifies where `attention` [B, h, w] is large.

    Output pixel p takes the source coordinate sum_q A(q) k(p, q) q / sum_q A(q) k(p, q), k a Gaussian of
    std `sigma` (in [-1, 1] units) separable in x and y. The map is replicate-padded `pad_sigmas` * sigma with
    coordinates continued linearly, so a uniform A gives the identity grid (no pull towards the centre).
    The mean is monotone in p (the object stays one piece). Computed in float32 as three matrix products.
    """
    if attention.dim() != 3:
        raise ValueError(f"saliency_sampling_grid: attention must be [B, h, w], got {tuple(attention.shape)}")
    if sigma <= 0:
        raise ValueError(f"saliency_sampling_grid: sigma must be > 0, got {sigma}")
    _, h, w = attention.shape
    H, W = out_hw
    dev = attention.device
    with torch.autocast(dev.type, enabled=False):
        a = attention.float()
        a = a / a.amax(dim=(1, 2), keepdim=True).clamp_min(1e-30)  # scale cancels; keeps the sums in range
        px, py = math.ceil(pad_sigmas * sigma * w / 2), math.ceil(pad_sigmas * sigma * h / 2)
        a = F.pad(a[:, None], (px, px, py, py), mode="replicate")[:, 0]  # [B, h', w']
        sx, sy = _centres(w, px, dev), _centres(h, py, dev)  # [w'], [h']
        ox, oy = _centres(W, 0, dev), _centres(H, 0, dev)  # [W], [H]
        kx = torch.exp(-((ox[:, None] - sx[None]) ** 2) / (2 * sigma**2))  # [W, w']
        ky = torch.exp(-((oy[:, None] - sy[None]) ** 2) / (2 * sigma**2))  # [H, h']
        den = ky @ a @ kx.T  # [B, H, W]
        gx = (ky @ a @ (kx * sx[None]).T) / den.clamp_min(1e-30)  # [B, H, W]
        gy = ((ky * sy[None]) @ a @ kx.T) / den.clamp_min(1e-30)  # [B, H, W]
        return torch.stack([gx, gy], dim=-1).clamp(-1.0, 1.0)  # [B, H, W, 2]


# ------------------------------------------------------------------------------------------------ SPP
def banded_matrix(taps: torch.Tensor, n: int) -> torch.Tensor:
    """1-D "same" correlation (zero padding) with odd-length taps [N, L] as matrices [N, n, n]:
    (M @ v)[i] = sum_t taps[t] v[i + t - L // 2]. Rows of a separable 2-D filter: Y = My @ Z @ Mx^T."""
    length = taps.shape[1]
    off = torch.arange(n, device=taps.device)[None, :] - torch.arange(n, device=taps.device)[:, None]  # j - i
    idx = off + length // 2  # [n, n]: tap index, valid in [0, L)
    valid = (idx >= 0) & (idx < length)
    padded = torch.cat([taps, taps.new_zeros(taps.shape[0], 1)], dim=1)  # [N, L + 1]: last = 0
    return padded[:, torch.where(valid, idx, length)]  # [N, n, n]


class StructurePerturbationPrompt(nn.Module):
    """Content parsing -> projection map A (spatial softmax) -> magnifying resampling of the input image.

    Content parsing: 1x1 conv (C1 -> hidden) + ReLU; a per-sample, per-channel separable kernel generated from
    the globally pooled content (`kernel_size` taps per axis, stretched to span >= `receptive_field` x the
    feature width and height); instance norm + ReLU; 1x1 conv -> one logit map, soft-bounded to
    +-`logit_bound`. The last conv starts at zero: A starts uniform, i.e. the prompt starts as the identity.
    """

    def __init__(
        self,
        in_channels: int,
        hidden: int = 32,
        kernel_size: int = 7,
        receptive_field: float = 0.3,
        sigma: float = 0.25,
        logit_bound: float = 10.0,
    ) -> None:
        super().__init__()
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"SPP kernel_size must be odd and >= 3, got {kernel_size}")
        if not 0 < receptive_field <= 1:
            raise ValueError(
                f"SPP receptive_field must be a fraction of the feature size in (0, 1], got {receptive_field}"
            )
        if sigma <= 0 or logit_bound <= 0:
            raise ValueError(f"SPP sigma and logit_bound must be > 0, got {sigma}, {logit_bound}")
        self.hidden, self.k, self.rf = hidden, kernel_size, receptive_field
        self.sigma, self.bound = sigma, logit_bound
        self.reduce = nn.Conv2d(in_channels, hidden, 1)
        self.kernel_gen = nn.Linear(hidden, 2 * hidden * kernel_size)  # y and x taps per channel
        nn.init.normal_(self.kernel_gen.weight, std=0.01)
        nn.init.constant_(self.kernel_gen.bias, 1.0)  # starts near a box filter (taps are normalised below)
        self.proj = nn.Conv2d(hidden, 1, 1, bias=False)  # no bias: the spatial softmax ignores a constant
        nn.init.zeros_(self.proj.weight)

    def span(self, size: int) -> int:
        """Kernel length along an axis of `size` cells: odd, >= kernel_size, >= receptive_field * size."""
        need = math.ceil(self.rf * size)
        return max(self.k, need + (need + 1) % 2)

    def _taps(self, raw: torch.Tensor, size: int) -> torch.Tensor:
        """raw [N, k] -> [N, L] taps stretched (linear interpolation) to span(size), divided by L."""
        length = self.span(size)
        taps = F.interpolate(raw[:, None], size=length, mode="linear", align_corners=True)[:, 0]
        return taps / length  # [N, L]

    def attention(self, low: torch.Tensor) -> torch.Tensor:
        """Projection map A [B, h, w] (>= 0, sums to 1 per image) from low-level features [B, C1, h, w]."""
        b, _, h, w = low.shape
        z = F.relu(self.reduce(low))  # [B, c, h, w]
        raw = self.kernel_gen(z.mean(dim=(2, 3))).reshape(b * self.hidden, 2, self.k)  # content-aware taps
        my = banded_matrix(self._taps(raw[:, 0], h), h).reshape(b, self.hidden, h, h)  # [B, c, h, h]
        mx = banded_matrix(self._taps(raw[:, 1], w), w).reshape(b, self.hidden, w, w)  # [B, c, w, w]
        y = my @ z @ mx.transpose(2, 3)  # [B, c, h, w]: separable large-kernel correlation
        y = F.instance_norm(y)  # unit spatial contrast per channel: the prompt's strength is in `proj` alone
        logits = self.proj(F.relu(y))[:, 0]  # [B, h, w]
        logits = self.bound * torch.tanh(logits / self.bound)
        return torch.softmax(logits.reshape(b, -1).float(), dim=1).reshape(b, h, w)  # [B, h, w]

    def forward(self, images: torch.Tensor, low: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"images": modified [B, 3, H, W], "attention": A [B, h, w], "grid": [B, H, W, 2]}."""
        return resample_by_attention(images, low, self.attention, self.sigma, "SPP")


def resample_by_attention(
    images: torch.Tensor,
    feats: torch.Tensor,
    attention: Callable[[torch.Tensor], torch.Tensor],
    sigma: float,
    who: str,
) -> dict[str, torch.Tensor]:
    """A prompt's forward: attention A [B, h, w] from `feats`, then the input images resampled through the
    Gaussian saliency grid of A: {"images" [B, 3, H, W], "attention" A, "grid" [B, H, W, 2]}."""
    if images.dim() != 4 or feats.dim() != 4 or images.shape[0] != feats.shape[0]:
        raise ValueError(
            f"{who} expects images [B, 3, H, W] and features [B, C, h, w], got "
            f"{tuple(images.shape)} and {tuple(feats.shape)}"
        )
    attn = attention(feats)  # [B, h, w]
    grid = saliency_sampling_grid(attn, (images.shape[2], images.shape[3]), sigma)  # [B, H, W, 2]
    out = F.grid_sample(
        images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )  # [B, 3, H, W]
    return {"images": out, "attention": attn, "grid": grid}


class SaliencySamplerPrompt(nn.Module):
    """The reference code's structure perturbation prompt: ReLU -> 1x1 conv (C3 -> 1 logit map, with bias,
    PyTorch's default init, so it does not start as the identity) on the frozen third-stage features, bilinear
    resize to `grid` x `grid`, spatial softmax = A, then the Gaussian magnifying resampling of the input image
    (`saliency_sampling_grid`). The reference's Gaussian has a full width at half maximum of `fwhm` grid
    cells; it computes the grid on the 31 x 31 cells and upsamples it bilinearly, here it is evaluated per
    output pixel. No content-aware kernel: the paper text's large-kernel parsing is not in the code."""

    def __init__(self, in_channels: int, grid: int = 31, fwhm: float = 13.0) -> None:
        super().__init__()
        if grid < 2 or fwhm <= 0:
            raise ValueError(f"SaliencySamplerPrompt needs grid >= 2 and fwhm > 0, got {grid}, {fwhm}")
        self.grid = grid
        # std of the Gaussian in grid_sample's [-1, 1] units (cells of width 2 / grid)
        self.sigma = fwhm / math.sqrt(8.0 * math.log(2.0)) * 2.0 / grid
        self.proj = nn.Conv2d(in_channels, 1, 1)

    def attention(self, feats: torch.Tensor) -> torch.Tensor:
        """A [B, grid, grid] (>= 0, sums to 1 per image) from third-stage features [B, C3, h, w]."""
        logits = self.proj(F.relu(feats))  # [B, 1, h, w]
        logits = F.interpolate(logits, size=(self.grid, self.grid), mode="bilinear", align_corners=True)
        b = logits.shape[0]
        return torch.softmax(logits.reshape(b, -1).float(), dim=1).reshape(b, self.grid, self.grid)

    def forward(self, images: torch.Tensor, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"images": modified [B, 3, H, W], "attention": A [B, grid, grid], "grid": [B, H, W, 2]}."""
        return resample_by_attention(images, feats, self.attention, self.sigma, "SaliencySamplerPrompt")


# ------------------------------------------------------------------------------------------------ CAH
def category_aware_fuse(fmap: torch.Tensor, alpha: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """alpha * InstanceNorm(F) + (1 - alpha) * F with per-channel alpha [B, C]; F [B, C, h, w] -> same."""
    if fmap.dim() != 4 or alpha.shape != fmap.shape[:2]:
        raise ValueError(
            f"category_aware_fuse: expected F [B, C, h, w] and alpha [B, C], got "
            f"{tuple(fmap.shape)} and {tuple(alpha.shape)}"
        )
    a = alpha[:, :, None, None].to(fmap.dtype)  # [B, C, 1, 1]
    return a * F.instance_norm(fmap, eps=eps) + (1 - a) * fmap


class CategoryAwarenessHead(nn.Module):
    """SE channel attention (GAP -> FC(C/r) -> ReLU -> FC -> sigmoid) gives alpha; instance norm removes
    instance-specific (species-level) statistics; output alpha * IN(F) + (1 - alpha) * F, [B, C, h, w]."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        if channels <= 0 or reduction <= 0:
            raise ValueError(f"CAH needs channels > 0 and reduction > 0, got {channels}, {reduction}")
        self.fc1 = nn.Linear(channels, max(channels // reduction, 1))
        self.fc2 = nn.Linear(max(channels // reduction, 1), channels)

    def alpha(self, fmap: torch.Tensor) -> torch.Tensor:
        """Per-channel fusion weights in (0, 1): [B, C, h, w] -> [B, C]."""
        return torch.sigmoid(self.fc2(F.relu(self.fc1(fmap.mean(dim=(2, 3))))))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return category_aware_fuse(fmap, self.alpha(fmap))


def conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    """Conv (no bias, "same" padding) + BatchNorm + ReLU: the reference head's block (BN momentum 0.01)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout, momentum=0.01),
        nn.ReLU(inplace=True),
    )


class ReferenceAwarenessHead(nn.Module):
    """The reference code's category-specific awareness head, [B, C, h, w] -> [B, C, h, w]: SE without biases
    (GAP -> FC(C/r) -> ReLU -> FC -> sigmoid = mask, r = 1 in the reference) mixing mask * F + (1 - mask) *
    InstanceNorm(F) (the mask weighs F, where the paper text's alpha weighs IN(F)), then a 1x1 conv-BN-ReLU
    to C/2 channels and a 3x3 conv-BN-ReLU back to C: trainable capacity on top of the frozen features."""

    def __init__(self, channels: int, reduction: int = 1) -> None:
        super().__init__()
        if channels < 2 or reduction <= 0:
            raise ValueError(
                f"ReferenceAwarenessHead needs channels >= 2 and reduction > 0, got {channels}, {reduction}"
            )
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Linear(channels, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, channels, bias=False)
        self.block = nn.Sequential(
            conv_bn_relu(channels, channels // 2, 1), conv_bn_relu(channels // 2, channels, 3)
        )

    def mask(self, fmap: torch.Tensor) -> torch.Tensor:
        """Per-channel weight of F in (0, 1): [B, C, h, w] -> [B, C]."""
        return torch.sigmoid(self.fc2(F.relu(self.fc1(fmap.mean(dim=(2, 3))))))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        mixed = category_aware_fuse(fmap, 1.0 - self.mask(fmap))  # mask * F + (1 - mask) * IN(F)
        return self.block(mixed)  # [B, C, h, w]
