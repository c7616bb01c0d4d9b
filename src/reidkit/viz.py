"""Pictures: ranked-list grids (query + top-k, green = match, red = wrong) and training curves."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reidkit.utils import atomic_write

log = logging.getLogger(__name__)


def save_figure(fig: Any, out: str | Path, dpi: int) -> Path:
    """Write a matplotlib figure atomically (format from the suffix, PNG by default) and close it."""
    import matplotlib.pyplot as plt

    out = Path(out)
    with atomic_write(out, "wb") as fh:
        fig.savefig(fh, format=out.suffix.lstrip(".") or "png", dpi=dpi)
    plt.close(fig)
    log.info("wrote %s", out)
    return out


def ranked_list_grid(
    query_paths: Sequence[str],
    ranked_gallery_paths: Sequence[Sequence[str]],
    ranked_matches: Sequence[Sequence[bool]],
    out: str | Path,
    *,
    titles: Sequence[str] | None = None,
    labels: Sequence[Sequence[str]] | None = None,
    thumb: tuple[int, int] = (128, 64),
) -> Path:
    """One row per query: the query (blue border) and its top-k gallery images with green/red borders,
    each labelled (`labels[i][j]`, e.g. rank, identity and similarity; default: the rank), under a legend.
    Drawn with PIL (a matplotlib figure of rows x (k + 1) axes took seconds)."""
    from PIL import Image, ImageDraw, ImageFont, ImageOps

    from reidkit.data.dataset import upright

    rows, k = len(query_paths), max((len(r) for r in ranked_gallery_paths), default=0)
    font = ImageFont.load_default(size=11)
    border, label_h, pad, legend_h = 4, 18, 8, 30
    cell_w = max(thumb[1] + 2 * border, 150)  # wide enough for "10 · distractor · 0.45"
    cell_h = thumb[0] + 2 * border + label_h
    canvas = Image.new("RGB", (pad + (k + 1) * (cell_w + pad), legend_h + rows * (cell_h + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    legend = "blue: query    green: same identity    red: another identity    label: "
    draw.text((pad, 8), legend + ("rank · id · similarity" if labels else "rank"), fill="black", font=font)

    def cell(i: int, j: int, path: str, colour: str, label: str) -> None:
        x, y = pad + j * (cell_w + pad), legend_h + i * (cell_h + pad)
        with Image.open(path) as im:
            im = upright(im).convert("RGB").resize((thumb[1], thumb[0]))
        canvas.paste(
            ImageOps.expand(im, border=border, fill=colour), (x + (cell_w - thumb[1]) // 2 - border, y)
        )
        draw.text((x + cell_w // 2, y + cell_h - label_h // 2), label, fill="black", font=font, anchor="mm")

    for i, qp in enumerate(query_paths):
        cell(i, 0, qp, "#1f5fbf", titles[i] if titles else "query")
        for j, path in enumerate(ranked_gallery_paths[i][:k]):
            ok = ranked_matches[i][j]
            cell(i, j + 1, path, "#1a9e3a" if ok else "#d62728", labels[i][j] if labels else f"{j + 1}")
    out = Path(out)
    with atomic_write(out, "wb") as fh:
        canvas.save(fh, format=out.suffix.lstrip(".").upper().replace("JPG", "JPEG") or "PNG")
    log.info("wrote %s", out)
    return out


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a run's metrics.jsonl; a malformed line is an error naming the file and line."""
    import json

    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not a JSON object ({e.msg})") from None
    return rows


def training_curves(rows: Sequence[dict], out: str | Path) -> Path:
    """Loss curves against the optimiser step (every logged loss part, per step and per-epoch means) and the
    validation metrics against the step, one PNG: how a run trained, from its metrics.jsonl rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r for r in rows if r.get("event") == "step"]
    epochs = [r for r in rows if r.get("event") == "epoch"]
    evals = [r for r in rows if r.get("event") == "eval"]
    if not steps and not epochs:
        raise ValueError("metrics.jsonl has no step or epoch rows: nothing to plot")
    skip = {"event", "epoch", "step", "lr", "time_s"}
    losses = sorted({k for r in steps + epochs for k, v in r.items() if k not in skip and "loss" in k})
    val_keys = [k for k in ("mAP", "R1", "mINP") if any(k in r for r in evals)]
    fig, axes = plt.subplots(1, 2 if val_keys else 1, figsize=(11 if val_keys else 6, 3.6), squeeze=False)
    ax = axes[0, 0]
    for key in losses:
        if steps:
            ax.plot([r["step"] for r in steps if key in r], [r[key] for r in steps if key in r], lw=0.8,
                    alpha=0.5, label=f"{key} (step)")  # fmt: skip
        if epochs:
            ax.plot([r["step"] for r in epochs if key in r], [r[key] for r in epochs if key in r], "o-", ms=3,
                    label=f"{key} (epoch mean)")  # fmt: skip
    ax.set(xlabel="optimiser step", ylabel="training loss", title="training")
    ax.legend(fontsize=7)
    if val_keys:
        ax = axes[0, 1]
        for key in val_keys:
            ax.plot([r["step"] for r in evals], [r.get(key, np.nan) for r in evals], "o-", ms=3, label=key)
        ax.set(xlabel="optimiser step", ylabel="validation (held-out training ids)", title="validation")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out, dpi=120)
