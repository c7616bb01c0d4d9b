"""What the command line shows: logging to the console (and the run's train.log), progress bars fed by the
training loop's events, and metric tables."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

console = Console() if sys.stdout.isatty() else Console(width=160)  # wide tables in logs and pipes


def setup_logging(
    verbose: bool = False, log_file: Path | None = None, append: bool = False, level: int | None = None
) -> None:
    """Console logging, plus `log_file` when given: a new file per run, continued when `append` (resume)."""
    level = level if level is not None else logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger()
    root.setLevel(level)
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(RichHandler(console=console, show_path=False, level=level))
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, mode="a" if append else "w")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)


class ProgressCallback:
    """Shows one rich progress bar per epoch from the training loop's events."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task = progress, None

    def __call__(self, ev: dict[str, Any]) -> None:
        if ev["event"] == "epoch_start":
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(
                f"epoch {ev['epoch'] + 1}/{ev['epochs']}", total=ev["total"], completed=ev["done"], info=""
            )
        elif ev["event"] == "step" and self.task is not None:
            self.progress.update(self.task, advance=1, info=f"loss {ev['loss']:.3f}")


def progress_bars() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=True,
    )


def metrics_table(title: str, rows: dict[str, dict[str, float]]) -> Table:
    from reidkit.evaluation.metrics import FINE_GRAINED_KS  # here: `reidkit --help` need not import torch

    table = Table(title=title)
    order = ["mAP", "mINP", "R1", "R5", "R10", *(f"Recall@{k}" for k in FINE_GRAINED_KS)]
    cols = [c for c in order if any(c in m for m in rows.values())]
    table.add_column("protocol")
    for c in cols:
        table.add_column(c, justify="right")
    for name, m in rows.items():
        table.add_row(name, *[f"{m[c]:.4f}" if c in m else "-" for c in cols])
    for m in rows.values():
        if "trainable_params" in m:
            tr, tot = m["trainable_params"], m["total_params"]
            table.caption = f"trainable parameters: {tr:,} of {tot:,} ({tr / max(tot, 1):.1%})"
    return table
