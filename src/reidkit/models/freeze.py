"""The one rule for frozen parts: a frozen module gets no gradients and stays in eval mode (its BatchNorm
statistics never move) whoever calls `train()`: the method, an embedder, the training loop."""

from __future__ import annotations

from typing import Self

from torch import nn


def batchnorm_layers(module: nn.Module) -> list[nn.Module]:
    """Every BatchNorm layer inside `module` (1-d, 2-d and 3-d)."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class KeepsFrozen(nn.Module):
    """An nn.Module whose registered parts stay in eval mode on every `train()` call."""

    def keep_frozen(self, *modules: nn.Module, train_weights: bool = False) -> None:
        """Keep `modules` in eval mode from now on; their weights stop training unless `train_weights`
        (frozen BatchNorm statistics with trainable affine weights)."""
        if not train_weights:
            for m in modules:
                m.requires_grad_(False)
        # a plain list, not a ModuleList: these stay registered (and saved) where they already live
        self._kept_frozen: list[nn.Module] = [*getattr(self, "_kept_frozen", []), *modules]
        self.train(self.training)

    def train(self, mode: bool = True) -> Self:
        super().train(mode)
        for m in getattr(self, "_kept_frozen", ()):
            m.eval()
        return self
