"""Picture of what FRPT's structure perturbation prompt learned: original vs SPP-modified images.

One row per image: the original with the sampling grid drawn on it (where a regular lattice of output rows
and columns samples from: dense lines = magnified), the projection map A, and the modified image.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from reidkit.viz import save_figure

if TYPE_CHECKING:
    from reidkit.methods.frpt import FRPT

log = logging.getLogger(__name__)


def _to_rgb(img: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised [3, H, W] -> displayable [H, W, 3] in [0, 1]."""
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return (img.detach().float().cpu() * s + m).clamp(0, 1).permute(1, 2, 0).numpy()


def spp_figure(
    original: torch.Tensor,
    modified: torch.Tensor,
    attention: torch.Tensor,
    grid: torch.Tensor,
    out: str | Path,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    titles: Sequence[str] | None = None,
    lines: int = 12,
) -> Path:
    """Write the picture (PNG, atomically) from normalised images [N, 3, H, W], modified [N, 3, H, W],
    attention [N, h, w] and grid [N, H, W, 2] (x, y in [-1, 1]); returns `out`."""
    n, _, H, W = original.shape
    if modified.shape != original.shape or grid.shape != (n, H, W, 2) or attention.shape[0] != n:
        raise ValueError(
            f"spp_figure: shapes do not match: original {tuple(original.shape)}, modified "
            f"{tuple(modified.shape)}, attention {tuple(attention.shape)}, grid {tuple(grid.shape)}"
        )
    if titles is not None and len(titles) != n:
        raise ValueError(f"spp_figure: {len(titles)} titles for {n} images")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = grid.detach().float().cpu().numpy()  # [N, H, W, 2]
    px, py = (g[..., 0] + 1) * W / 2 - 0.5, (g[..., 1] + 1) * H / 2 - 0.5  # pixel coordinates
    rows = np.linspace(0, H - 1, lines).round().astype(int)
    cols = np.linspace(0, W - 1, lines).round().astype(int)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.6 * n), squeeze=False)
    for i in range(n):
        ax = axes[i]
        ax[0].imshow(_to_rgb(original[i], mean, std))
        for r in rows:
            ax[0].plot(px[i, r, :], py[i, r, :], color="yellow", lw=0.6)
        for c in cols:
            ax[0].plot(px[i, :, c], py[i, :, c], color="yellow", lw=0.6)
        ax[0].set_title(titles[i] if titles is not None else "original + sampling grid", fontsize=7)
        ax[1].imshow(attention[i].detach().float().cpu().numpy(), cmap="magma")
        ax[1].set_title("projection map A", fontsize=7)
        ax[2].imshow(_to_rgb(modified[i], mean, std))
        ax[2].set_title("SPP-modified", fontsize=7)
        ax[0].set_xlim(-0.5, W - 0.5)  # grid lines clamped at the border stay inside the picture
        ax[0].set_ylim(H - 0.5, -0.5)
        for a in ax:
            a.axis("off")
    fig.tight_layout()
    return save_figure(fig, out, dpi=110)


def write_spp_picture(
    method: FRPT,
    images: torch.Tensor,
    out: str | Path,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    titles: Sequence[str] | None = None,
) -> Path:
    """Run the method's SPP on normalised `images` [N, 3, H, W] (its device) in eval mode and draw them."""
    was_training = method.training
    method.eval()
    with torch.no_grad():
        p = method.perturb(images)
    method.train(was_training)
    return spp_figure(images, p["images"], p["attention"], p["grid"], out, mean=mean, std=std, titles=titles)
