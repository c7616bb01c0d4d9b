"""Pictures: ranked-list grids (query + top-k, green = match, red = wrong)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reidkit.utils import atomic_write

log = logging.getLogger(__name__)


def ranked_list_grid(
    query_paths: Sequence[str],
    ranked_gallery_paths: Sequence[Sequence[str]],
    ranked_matches: Sequence[Sequence[bool]],
    out: str | Path,
    *,
    titles: Sequence[str] | None = None,
    thumb: tuple[int, int] = (128, 64),
) -> Path:
    """One row per query: the query (blue border) and its top-k gallery images with green/red borders."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image, ImageOps

    from reidkit.data.dataset import upright

    rows = len(query_paths)
    k = max((len(r) for r in ranked_gallery_paths), default=0)
    fig, axes = plt.subplots(rows, k + 1, figsize=((k + 1) * 0.9, rows * 1.7), squeeze=False)

    def show(ax, path: str, colour: str, label: str) -> None:
        with Image.open(path) as im:
            im = ImageOps.expand(
                upright(im).convert("RGB").resize((thumb[1], thumb[0])), border=4, fill=colour
            )
        ax.imshow(np.asarray(im))
        ax.set_title(label, fontsize=6)
        ax.axis("off")

    for i, qp in enumerate(query_paths):
        show(axes[i, 0], qp, "#1f5fbf", titles[i] if titles else "query")
        for j in range(k):
            ax = axes[i, j + 1]
            if j < len(ranked_gallery_paths[i]):
                ok = ranked_matches[i][j]
                show(ax, ranked_gallery_paths[i][j], "#1a9e3a" if ok else "#d62728", f"{j + 1}")
            else:
                ax.axis("off")
    fig.tight_layout()
    out = Path(out)
    with atomic_write(out, "wb") as fh:
        fig.savefig(fh, format=out.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    log.info("wrote %s", out)
    return out
