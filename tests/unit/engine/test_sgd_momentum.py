"""optim.nesterov: plain vs Nesterov SGD momentum, against two steps worked by hand on f(x) = x^2 / 2."""

from __future__ import annotations

import pytest
import torch

from reidkit.config import load_config
from reidkit.engine.schedule import build_optimizer


def two_steps(nesterov: bool) -> list[float]:
    x = torch.nn.Parameter(torch.tensor([1.0]))
    opt = build_optimizer([{"params": [x]}], "sgd", lr=0.1, weight_decay=0.0, momentum=0.9, nesterov=nesterov)
    out = []
    for _ in range(2):
        opt.zero_grad()
        (x**2 / 2).sum().backward()  # gradient = x
        opt.step()
        out.append(float(x))
    return out


def test_plain_momentum_by_hand() -> None:
    """v1 = g = 1, x1 = 1 - .1 = .9; v2 = .9 * 1 + .9 = 1.8, x2 = .9 - .18 = .72."""
    assert two_steps(nesterov=False) == pytest.approx([0.9, 0.72])


def test_nesterov_momentum_by_hand() -> None:
    """v1 = 1, step g + .9 v1 = 1.9 -> x1 = .81; g = .81, v2 = .9 + .81 = 1.71, step .81 + 1.539 = 2.349
    -> x2 = .81 - .2349 = .5751."""
    assert two_steps(nesterov=True) == pytest.approx([0.81, 0.5751])


def test_nesterov_is_a_config_key(tmp_path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("optim:\n  name: sgd\n  nesterov: false\n")
    assert load_config(recipe).optim.nesterov is False
    assert load_config(recipe, ["optim.nesterov=true"]).optim.nesterov is True
