"""Helpers for the contract tests: `fit_tiny`, the short CPU fit() run each method is driven through."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from reidkit.engine.loop import FitResult, MakeLoader, fit
from reidkit.types import Record


@pytest.fixture
def fit_tiny(tmp_path: Path) -> Callable[..., FitResult]:
    """fit() on the CPU into tmp_path with no scheduler; one epoch and no log lines unless told otherwise
    (other fit() keywords pass through)."""

    def run(
        method: torch.nn.Module,
        records: Sequence[Record],
        make_loader: MakeLoader,
        *,
        optimizer: torch.optim.Optimizer,
        epochs: int = 1,
        log_every: int = 0,
        **kw: Any,
    ) -> FitResult:
        return fit(
            method,
            records,
            make_loader,
            optimizer=optimizer,
            scheduler=None,
            epochs=epochs,
            device=torch.device("cpu"),
            out_dir=tmp_path,
            log_every=log_every,
            **kw,
        )

    return run
