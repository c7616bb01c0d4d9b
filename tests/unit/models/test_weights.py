"""recalibrate_batchnorm: the eval function is kept exactly and the running statistics become the data's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reidkit.models.weights import recalibrate_batchnorm


def _net_with_placeholder_bn() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 5, 1, bias=False),
        nn.BatchNorm2d(5),
    )
    for bn in (net[1], net[4]):  # folded-style placeholders: arbitrary affine, stats far from the data's
        bn.weight.data.uniform_(0.5, 2.0)
        bn.bias.data.uniform_(-1.0, 1.0)
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    return net.eval()


def test_recalibration_keeps_eval_output_and_matches_data_statistics() -> None:
    net = _net_with_placeholder_bn()
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(6, 3, 8, 5, generator=g) * 2 + 1 for _ in range(3)]
    data = torch.cat(batches)  # [18, 3, 8, 5]
    with torch.no_grad():
        before = net(data)
        z1 = net[0](data)  # the first BN's input, computed directly
    assert recalibrate_batchnorm(net, batches) == 2
    assert not net.training
    with torch.no_grad():
        after = net(data)
        assert torch.allclose(after, before, atol=1e-5)
        assert torch.allclose(net[1].running_mean, z1.mean(dim=(0, 2, 3)), atol=1e-5)
        assert torch.allclose(net[1].running_var, z1.var(dim=(0, 2, 3), unbiased=False), atol=1e-4)
        # on the whole data, train mode (batch statistics) now gives the eval output
        net.train()
        assert torch.allclose(net(data), before, atol=1e-4)


def test_recalibration_restores_training_mode_and_rejects_empty_input() -> None:
    net = _net_with_placeholder_bn().train()
    recalibrate_batchnorm(net, [torch.randn(2, 3, 4, 4)])
    assert net.training
    with pytest.raises(ValueError, match="no batch"):
        recalibrate_batchnorm(net, [])
