"""One camera image of a person: the drawn figure posed, scaled and placed on the camera's background, then
occluded, blurred, colour-cast and noised as that camera does."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from reidkit.data.synthetic.attributes import PersonAttributes
from reidkit.data.synthetic.cameras import CameraStyle, _background
from reidkit.data.synthetic.config import VIEWS
from reidkit.data.synthetic.person import _draw_person, _sample_pose


def _occlude(img: Image.Image, rng: np.random.Generator) -> None:
    """Cover part of the image with an object in front of the person (car, bin, pole, passer-by)."""
    w, h = img.size
    d = ImageDraw.Draw(img)
    color = tuple(int(x) for x in rng.integers(30, 210, 3))
    if rng.random() < 0.6:  # low object across the bottom
        y0 = h * rng.uniform(0.62, 0.82)
        x0, x1 = w * rng.uniform(-0.3, 0.3), w * rng.uniform(0.7, 1.3)
        d.rounded_rectangle([x0, y0, x1, h + 5], radius=w * 0.08, fill=color)
        d.line(
            [(x0, y0 + h * 0.04), (x1, y0 + h * 0.04)],
            fill=tuple(c // 2 for c in color),
            width=max(1, h // 64),
        )
    else:  # vertical object at one side
        ww = w * rng.uniform(0.2, 0.4)
        x0 = -ww * 0.2 if rng.random() < 0.5 else w - ww * 0.8
        d.rectangle([x0, h * rng.uniform(-0.1, 0.3), x0 + ww, h], fill=color)


def render_person(
    attrs: PersonAttributes,
    camera: CameraStyle,
    view: str,
    rng: np.random.Generator,
    *,
    size: tuple[int, int] = (64, 128),
) -> Image.Image:
    """One RGB image (width, height) = `size` of `attrs` seen by `camera` from `view`: random pose, scale,
    position, occluder, blur, colour cast and sensor noise, all drawn from `rng`."""
    if view not in VIEWS:
        raise ValueError(f"view={view!r}: expected one of {VIEWS}")
    w, h = size
    pose = _sample_pose(view, rng)
    person = _draw_person(attrs, view, pose, 2 * w, 2 * h)  # drawn at 2x, then scaled down (anti-aliasing)
    if view == "side" and rng.random() < 0.5:
        person = ImageOps.mirror(person)
    bg = _background(camera, w, h)  # [bh, bw, 3]
    oy = int(rng.integers(0, bg.shape[0] - h + 1))
    ox = int(rng.integers(0, bg.shape[1] - w + 1))
    canvas = Image.fromarray(np.ascontiguousarray(bg[oy : oy + h, ox : ox + w]))
    s = float(rng.uniform(*camera.scale_range))
    pw, ph = max(1, round(w * s)), max(1, round(h * s))
    person = person.resize((pw, ph), Image.Resampling.BILINEAR)
    x = round((w - pw) / 2 + rng.normal(0.0, 0.06 * w))
    yy = round((h - ph) * rng.uniform(0.2, 1.0) + rng.normal(0.0, 0.02 * h))
    canvas.paste(person, (x, yy), person)
    if rng.random() < camera.occlusion_prob:
        _occlude(canvas, rng)
    if rng.random() < camera.blur_prob:
        canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.2))))
    arr = np.asarray(canvas, dtype=np.float32)  # [h, w, 3]
    gain = np.asarray(camera.gain, dtype=np.float32) * camera.brightness * float(rng.uniform(0.85, 1.15))
    arr = arr * gain + rng.normal(0.0, camera.noise_std, arr.shape)
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))
