"""The cameras: each one's style (lighting, colour cast, preferred viewpoint, scale, blur, occlusion,
noise) and its background scene, so that images of one person differ from camera to camera."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from reidkit.data.synthetic.config import _STREAM_CAMERA


@dataclass(frozen=True)
class CameraStyle:
    """How one camera sees: background, colour cast, preferred viewpoint, scale, blur, occlusion, noise."""

    cam: int  # 1-based
    sky: tuple[int, int, int]  # background gradient top colour
    wall: tuple[int, int, int]  # background gradient colour at the horizon
    ground: tuple[int, int, int]
    horizon: float  # fraction of the height where the ground starts
    gain: tuple[float, float, float]  # per-channel colour cast
    brightness: float
    view_probs: tuple[float, float, float]  # over VIEWS
    scale_range: tuple[float, float]  # person height / image height
    blur_prob: float
    occlusion_prob: float
    noise_std: float
    bg_seed: int = field(default=0)


def make_cameras(num_cameras: int, seed: int) -> list[CameraStyle]:
    """Camera styles 1..num_cameras; camera c depends only on (seed, c). Each prefers one viewpoint."""
    cams = []
    for cam in range(1, num_cameras + 1):
        rng = np.random.default_rng([seed, _STREAM_CAMERA, cam])
        probs = [0.2, 0.2, 0.2]
        probs[(cam - 1) % 3] = 0.6
        lo = float(rng.uniform(0.72, 0.86))

        def col(a: int, b: int, rng: np.random.Generator = rng) -> tuple[int, int, int]:
            rgb = 0.6 * rng.integers(a, b, 3) + 0.4 * rng.integers(a, b)  # muted: pulled toward a grey
            return tuple(int(x) for x in rgb)  # type: ignore[return-value]

        cams.append(
            CameraStyle(
                cam=cam,
                sky=col(90, 230),
                wall=col(60, 200),
                ground=col(50, 170),
                horizon=float(rng.uniform(0.45, 0.75)),
                gain=tuple(float(g) for g in 1.0 + rng.uniform(-0.18, 0.18, 3)),  # type: ignore[arg-type]
                brightness=float(rng.uniform(0.72, 1.2)),
                view_probs=(probs[0], probs[1], probs[2]),
                scale_range=(lo, min(1.0, lo + float(rng.uniform(0.08, 0.14)))),
                blur_prob=float(rng.uniform(0.1, 0.45)),
                occlusion_prob=float(rng.uniform(0.1, 0.3)),
                noise_std=float(rng.uniform(2.0, 7.0)),
                bg_seed=int(rng.integers(2**31)),
            )
        )
    return cams


@lru_cache(maxsize=32)
def _background(camera: CameraStyle, width: int, height: int) -> np.ndarray:
    """A camera's scene, larger than one image so crops vary: gradient, ground, shapes, texture."""
    rng = np.random.default_rng(camera.bg_seed)
    bw, bh = int(width * 1.5), int(height * 1.25)
    hy = int(camera.horizon * bh)
    t = np.linspace(0.0, 1.0, hy)[:, None, None]  # [hy, 1, 1]
    upper = (1 - t) * np.array(camera.sky) + t * np.array(camera.wall)  # [hy, 1, 3]
    t2 = np.linspace(0.0, 1.0, bh - hy)[:, None, None]
    lower = np.array(camera.ground) * (0.85 + 0.3 * t2)  # [bh-hy, 1, 3]
    base = np.concatenate([upper, lower], axis=0) * np.ones((1, bw, 1))  # [bh, bw, 3]
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(4, 10))):
        color = tuple(int(x) for x in rng.integers(30, 230, 3))
        kind = int(rng.integers(3))
        if kind == 0:  # building part / window / door
            x0, y0 = rng.uniform(-0.1, 0.9) * bw, rng.uniform(0.0, 0.6) * hy
            d.rectangle(
                [x0, y0, x0 + rng.uniform(0.1, 0.5) * bw, y0 + rng.uniform(0.1, 0.6) * hy], fill=color
            )
        elif kind == 1:  # bush / car-like blob near the horizon
            x0, y0 = rng.uniform(-0.2, 0.9) * bw, hy - rng.uniform(0.05, 0.3) * bh
            d.ellipse([x0, y0, x0 + rng.uniform(0.2, 0.6) * bw, y0 + rng.uniform(0.1, 0.25) * bh], fill=color)
        else:  # pole
            x0 = rng.uniform(0, bw)
            d.rectangle(
                [x0, 0, x0 + rng.uniform(0.02, 0.06) * bw, hy + rng.uniform(0.0, 0.2) * bh], fill=color
            )
    if rng.random() < 0.6:  # road markings
        y = hy + rng.uniform(0.2, 0.6) * (bh - hy)
        d.line([(0, y), (bw, y + rng.uniform(-0.1, 0.1) * bh)], fill=(220, 220, 210), width=max(1, bh // 60))
    arr = np.asarray(img, dtype=np.float32)
    low = rng.integers(0, 256, (bh // 12 + 2, bw // 12 + 2), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(low).resize((bw, bh), Image.Resampling.BICUBIC), dtype=np.float32)
    arr = arr + (smooth[:, :, None] - 128.0) * 0.18 + rng.normal(0.0, 4.0, arr.shape)
    out = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    out.setflags(write=False)  # shared through the cache
    return out
