"""FRPT's SPP and CAH against oracles: the sampling grid vs a naive loop, uniform A -> identity, peaked A ->
magnification, gradients into the prompt, CAH alpha = 0 / 1 vs hand-computed instance norm, the first-block
split as a true prefix of each backbone, and the SPP picture."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from reidkit.models.backbones import make_backbone
from reidkit.models.prompts import (
    STEMS,
    CategoryAwarenessHead,
    StructurePerturbationPrompt,
    banded_matrix,
    category_aware_fuse,
    first_block_channels,
    first_block_features,
    saliency_sampling_grid,
)
from reidkit.viz_prompts import spp_figure


def pixel_centres(n: int) -> torch.Tensor:
    return (2 * torch.arange(n, dtype=torch.float32) + 1) / n - 1  # [n]


# ------------------------------------------------------------------------------------------- the grid
def naive_grid(a: torch.Tensor, out_hw: tuple[int, int], sigma: float, pad: int) -> torch.Tensor:
    """Slow twin: for every output pixel, loop over the replicate-padded cells (coordinates continued)."""
    h, w = a.shape
    H, W = out_hw
    grid = torch.zeros(H, W, 2, dtype=torch.float64)
    for oy in range(H):
        for ox in range(W):
            py, px = (2 * oy + 1) / H - 1, (2 * ox + 1) / W - 1
            num_x = num_y = den = 0.0
            for i in range(-pad, h + pad):
                for j in range(-pad, w + pad):
                    val = float(a[min(max(i, 0), h - 1), min(max(j, 0), w - 1)])
                    sy, sx = (2 * i + 1) / h - 1, (2 * j + 1) / w - 1
                    k = math.exp(-((px - sx) ** 2) / (2 * sigma**2)) * math.exp(
                        -((py - sy) ** 2) / (2 * sigma**2)
                    )
                    num_x, num_y, den = num_x + val * k * sx, num_y + val * k * sy, den + val * k
            grid[oy, ox, 0] = min(max(num_x / den, -1.0), 1.0)
            grid[oy, ox, 1] = min(max(num_y / den, -1.0), 1.0)
    return grid


def test_grid_matches_naive_loop() -> None:
    torch.manual_seed(0)
    a = torch.rand(2, 5, 6) + 0.05  # [B, h, w]
    a[1, 1, 4] = 8.0  # a peak
    fast = saliency_sampling_grid(a, (7, 9), sigma=0.3, pad_sigmas=8.0)  # [B, 7, 9, 2]
    for b in range(2):
        slow = naive_grid(a[b], (7, 9), 0.3, pad=12)
        torch.testing.assert_close(fast[b].double(), slow, atol=2e-5, rtol=0)


def test_uniform_attention_is_identity() -> None:
    torch.manual_seed(0)
    a = torch.full((2, 9, 7), 1.0 / 63)
    grid = saliency_sampling_grid(a, (24, 20), sigma=0.25)  # [B, 24, 20, 2]
    torch.testing.assert_close(grid[..., 0], pixel_centres(20).expand(2, 24, 20), atol=1e-4, rtol=0)
    torch.testing.assert_close(grid[..., 1], pixel_centres(24)[:, None].expand(2, 24, 20), atol=1e-4, rtol=0)
    img = torch.randn(2, 3, 24, 20)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    torch.testing.assert_close(out, img, atol=1e-3, rtol=0)  # up to interpolation error


def test_spp_at_init_is_identity_and_attention_is_a_distribution() -> None:
    torch.manual_seed(0)
    spp = StructurePerturbationPrompt(6, hidden=8, kernel_size=5)
    images, low = torch.randn(3, 3, 32, 28), torch.rand(3, 6, 8, 7)  # [B, 3, H, W], [B, C1, H/4, W/4]
    out = spp(images, low)
    assert out["images"].shape == images.shape and out["attention"].shape == (3, 8, 7)
    torch.testing.assert_close(out["images"], images, atol=1e-3, rtol=0)
    torch.testing.assert_close(out["attention"], torch.full((3, 8, 7), 1 / 56), atol=1e-7, rtol=0)
    torch.nn.init.normal_(spp.proj.weight, std=1.0)
    a = spp.attention(low)
    assert (a >= 0).all() and not torch.allclose(a, torch.full_like(a, 1 / 56))
    torch.testing.assert_close(a.sum(dim=(1, 2)), torch.ones(3), atol=1e-5, rtol=0)


def test_peaked_attention_magnifies_the_peak_and_keeps_order() -> None:
    a = torch.ones(1, 16, 16)
    a[0, 6:10, 6:10] = 30.0  # the peak covers [-0.25, 0.25]^2 of the image: 1/16 of its area
    grid = saliency_sampling_grid(a, (64, 64), sigma=0.25)[0]  # [64, 64, 2]
    inside = (grid.abs() <= 0.25).all(dim=-1)  # output pixels that sample from the peak region
    ident = saliency_sampling_grid(torch.ones(1, 16, 16), (64, 64), sigma=0.25)[0]
    assert abs((ident.abs() <= 0.25).all(dim=-1).float().mean().item() - 1 / 16) < 1e-6
    assert inside.float().mean().item() > 2 * (1 / 16)  # more output pixels map into the peak
    # local magnification: output pixels around the centre step through the source by less than a pixel
    step = (grid[32, 33, 0] - grid[32, 30, 0]) / 3
    assert step < 0.5 * (2 / 64)
    # one piece: source coordinates never go backwards along a row / column
    assert (grid[:, 1:, 0] - grid[:, :-1, 0] >= -1e-6).all()
    assert (grid[1:, :, 1] - grid[:-1, :, 1] >= -1e-6).all()


def test_offcentre_peak_is_magnified_too() -> None:
    a = torch.ones(1, 12, 12)
    a[0, 1:3, 8:10] = 50.0  # top right: x in [1/3, 2/3], y in [-5/6, -1/2], 1/36 of the area
    grid = saliency_sampling_grid(a, (48, 48), sigma=0.25)[0]  # [48, 48, 2]
    gx, gy = grid[..., 0], grid[..., 1]
    inside = (gx >= 1 / 3) & (gx <= 2 / 3) & (gy >= -5 / 6) & (gy <= -1 / 2)
    assert inside.float().mean().item() > 2 / 36
    far = grid[40:, :8]  # bottom-left corner, far from the peak: close to the identity
    ident = saliency_sampling_grid(torch.ones(1, 12, 12), (48, 48), sigma=0.25)[0, 40:, :8]
    assert (far - ident).abs().max() < 0.05


def test_grid_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[B, h, w\]"):
        saliency_sampling_grid(torch.ones(4, 4), (8, 8), sigma=0.2)
    with pytest.raises(ValueError, match="sigma"):
        saliency_sampling_grid(torch.ones(1, 4, 4), (8, 8), sigma=0.0)


# ----------------------------------------------------------------------------------- content parsing
def test_banded_matrix_is_a_same_correlation() -> None:
    torch.manual_seed(0)
    ty, tx, z = torch.randn(3, 5), torch.randn(3, 7), torch.randn(3, 9, 11)
    y = banded_matrix(ty, 9) @ z @ banded_matrix(tx, 11).transpose(1, 2)  # [3, 9, 11]
    for i in range(3):
        kernel = (ty[i][:, None] * tx[i][None, :])[None, None]  # [1, 1, 5, 7]
        ref = F.conv2d(z[i][None, None], kernel, padding=(2, 3))[0, 0]
        torch.testing.assert_close(y[i], ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [4, 8, 14, 28, 56, 57])
def test_kernel_span_covers_the_receptive_field_fraction(size: int) -> None:
    spp = StructurePerturbationPrompt(4, kernel_size=5, receptive_field=0.3)
    span = spp.span(size)
    assert span % 2 == 1 and span >= 5 and span >= 0.3 * size
    assert span - 2 < max(0.3 * size, 5)  # the smallest such length: the next odd one down is too short


def test_spp_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="odd"):
        StructurePerturbationPrompt(4, kernel_size=4)
    with pytest.raises(ValueError, match="receptive_field"):
        StructurePerturbationPrompt(4, receptive_field=0.0)
    with pytest.raises(ValueError, match="images"):
        StructurePerturbationPrompt(4)(torch.randn(2, 3, 16, 16), torch.randn(3, 4, 4, 4))


def test_gradients_reach_every_spp_parameter() -> None:
    torch.manual_seed(0)
    spp = StructurePerturbationPrompt(6, hidden=8, kernel_size=5)
    images, low = torch.randn(2, 3, 32, 32), torch.rand(2, 6, 8, 8)
    target = torch.randn(2, 3, 32, 32)
    (spp(images, low)["images"] * target).sum().backward()  # at init only the last conv can move
    assert spp.proj.weight.grad is not None and spp.proj.weight.grad.abs().sum() > 0
    spp.zero_grad()
    torch.nn.init.normal_(spp.proj.weight, std=0.5)  # away from the identity start
    (spp(images, low)["images"] * target).sum().backward()
    for name, p in spp.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


# ------------------------------------------------------------------------------------------------ CAH
def instance_norm_by_hand(f: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mean = f.mean(dim=(2, 3), keepdim=True)
    var = ((f - mean) ** 2).mean(dim=(2, 3), keepdim=True)  # biased, per sample and channel
    return (f - mean) / torch.sqrt(var + eps)


def test_fuse_alpha_zero_is_identity_one_is_instance_norm() -> None:
    torch.manual_seed(0)
    f = torch.randn(3, 5, 4, 6) * 2 + 1  # [B, C, h, w]
    torch.testing.assert_close(category_aware_fuse(f, torch.zeros(3, 5)), f)
    torch.testing.assert_close(
        category_aware_fuse(f, torch.ones(3, 5)), instance_norm_by_hand(f), atol=1e-5, rtol=0
    )
    alpha = torch.rand(3, 5)
    a = alpha[:, :, None, None]
    torch.testing.assert_close(
        category_aware_fuse(f, alpha), a * instance_norm_by_hand(f) + (1 - a) * f, atol=1e-5, rtol=0
    )
    with pytest.raises(ValueError, match="alpha"):
        category_aware_fuse(f, torch.ones(3, 4))


def test_cah_module_alpha_limits_and_se_shape() -> None:
    torch.manual_seed(0)
    cah = CategoryAwarenessHead(32, reduction=8)
    assert cah.fc1.out_features == 4 and cah.fc2.out_features == 32
    f = torch.randn(2, 32, 5, 5) + 0.5
    alpha = cah.alpha(f)
    assert alpha.shape == (2, 32) and ((alpha > 0) & (alpha < 1)).all()
    se = torch.sigmoid(cah.fc2(torch.relu(cah.fc1(f.mean(dim=(2, 3))))))  # GAP -> FC -> ReLU -> FC -> sigmoid
    torch.testing.assert_close(alpha, se)
    with torch.no_grad():
        cah.fc2.weight.zero_()
        cah.fc2.bias.fill_(-1e4)  # alpha = 0
    torch.testing.assert_close(cah(f), f)
    with torch.no_grad():
        cah.fc2.bias.fill_(1e4)  # alpha = 1
    torch.testing.assert_close(cah(f), instance_norm_by_hand(f), atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------ first-block split
def rest_of(name: str, m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The backbone after its first block, written out per family (the oracle for the split)."""
    if name.startswith("resnet"):
        return m.layer4(m.layer3(m.layer2(x)))
    if name == "mobilenetv2":
        return m.features[4:](x)
    if name == "efficientnet_lite0":
        return m.bn2(m.conv_head(m.blocks[2:](x)))
    return m.conv5(m.conv4(m.conv3(m.conv2(x))))  # osnet


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2", "efficientnet_lite0", "osnet_x0_25"])
def test_first_block_is_a_prefix_of_the_backbone(name: str) -> None:
    torch.manual_seed(0)
    m, _ = make_backbone(name, None, last_stride=1)
    m.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        low = first_block_features(name, m, x)
        assert low.shape[2:] == (16, 16) and low.shape[1] == first_block_channels(name, m)
        torch.testing.assert_close(rest_of(name, m, low), m(x), atol=1e-4, rtol=1e-4)


def test_every_stem_name_is_a_backbone_and_unknown_names_raise() -> None:
    from reidkit.models.backbones import BACKBONES

    assert set(STEMS) <= set(BACKBONES)
    with pytest.raises(ValueError, match="valid"):
        first_block_features("vit_b16", torch.nn.Identity(), torch.zeros(1, 3, 8, 8))


# ------------------------------------------------------------------------------------------- picture
def test_spp_figure_writes_a_png_atomically(tmp_path: Path) -> None:
    torch.manual_seed(0)
    imgs = torch.randn(2, 3, 32, 24)
    a = torch.ones(2, 8, 6)
    a[:, 2:4, 2:4] = 20
    grid = saliency_sampling_grid(a, (32, 24), sigma=0.25)
    mod = F.grid_sample(imgs, grid, align_corners=False, padding_mode="border")
    out = spp_figure(
        imgs, mod, a, grid, tmp_path / "sub" / "spp.png", mean=(0.5,) * 3, std=(0.25,) * 3, titles=["a", "b"]
    )
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100
    assert sorted(p.name for p in out.parent.iterdir()) == ["spp.png"]  # no temp file left
    with pytest.raises(ValueError, match="shapes"):
        spp_figure(imgs, mod[:1], a, grid, tmp_path / "x.png", mean=(0.5,) * 3, std=(0.25,) * 3)
