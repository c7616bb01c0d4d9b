"""ema_update / momentum_copy against the formula θk ← m·θk + (1−m)·θq computed by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reidkit.memory.ema import ema_update, momentum_copy


def net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    m[2].weight.requires_grad_(False)  # a frozen parameter
    return m


def test_update_follows_the_formula_and_copies_buffers() -> None:
    src, dst = net(0), net(1)
    src.train()(torch.randn(8, 3))  # give src non-default BN statistics
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    ema_update(src, dst, 0.9)
    s, d = src.state_dict(), dst.state_dict()
    for name in ("0.weight", "0.bias", "1.weight", "1.bias", "2.bias"):
        torch.testing.assert_close(d[name], 0.9 * before[name] + 0.1 * s[name])
    assert torch.equal(d["2.weight"], s["2.weight"])  # frozen in src: copied
    for name in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert torch.equal(d[name], s[name])


def test_repeated_updates_converge_geometrically() -> None:
    src, dst = net(0), net(1)
    w0 = dst[0].weight.detach().clone()
    for _ in range(10):
        ema_update(src, dst, 0.8)
    torch.testing.assert_close(dst[0].weight, src[0].weight + 0.8**10 * (w0 - src[0].weight))


def test_extreme_momenta() -> None:
    src, dst = net(0), net(1)
    before = dst[0].weight.detach().clone()
    ema_update(src, dst, 1.0)
    assert torch.equal(dst[0].weight, before)
    ema_update(src, dst, 0.0)
    assert torch.equal(dst[0].weight, src[0].weight)
    with pytest.raises(ValueError, match="momentum"):
        ema_update(src, dst, 1.5)


def test_momentum_copy_is_frozen_and_independent() -> None:
    src = net(0)
    twin = momentum_copy(src)
    assert all(not p.requires_grad for p in twin.parameters())
    assert all(
        torch.equal(a, b) for a, b in zip(src.state_dict().values(), twin.state_dict().values(), strict=True)
    )
    with torch.no_grad():
        src[0].weight.add_(1.0)
    assert not torch.equal(src[0].weight, twin[0].weight)


def test_mismatched_modules_raise() -> None:
    with pytest.raises(ValueError, match="differ"):
        ema_update(nn.Linear(3, 4), nn.Sequential(nn.Linear(3, 4)), 0.5)
    with pytest.raises(ValueError, match="shape"):
        ema_update(nn.Linear(3, 4), nn.Linear(3, 5), 0.5)
