"""Draws one pedestrian (body, clothes and pattern, bag, hair, hat, face) from attributes, view and pose on a
transparent canvas; `render.py` places it in a camera's scene."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from reidkit.data.synthetic.attributes import HAIR_RGB, RGB, SKIN_RGB, PersonAttributes

_BUILD_SCALE = {"slim": 0.86, "average": 1.0, "broad": 1.17}


def _rgba(c: tuple[int, int, int], shade: float = 1.0) -> tuple[int, int, int, int]:
    return (min(255, int(c[0] * shade)), min(255, int(c[1] * shade)), min(255, int(c[2] * shade)), 255)


def _limb(
    d: ImageDraw.ImageDraw, x0: float, y0: float, angle: float, length: float, width: float, fill: tuple
) -> tuple[float, float]:
    """A rotated bar from (x0, y0), `angle` degrees from straight down toward +x; returns its end point."""
    a = math.radians(angle)
    dx, dy = math.sin(a), math.cos(a)
    x1, y1 = x0 + dx * length, y0 + dy * length
    nx, ny = dy * width / 2, -dx * width / 2
    d.polygon([(x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)], fill=fill)
    r = width / 2
    d.ellipse([x1 - r, y1 - r, x1 + r, y1 + r], fill=fill)
    return x1, y1


def _sample_pose(view: str, rng: np.random.Generator) -> tuple[tuple[float, float], tuple[float, float]]:
    """(leg angles, arm angles) in degrees; +x is the viewer's right (the walking direction when side)."""
    if view == "side":
        stride = float(rng.uniform(-25, 25))
        swing = -0.8 * stride + float(rng.normal(0, 5))
        return (stride, -stride), (swing, -swing)
    spread = float(rng.uniform(0, 8))
    return (-spread, spread), (-float(rng.uniform(3, 14)), float(rng.uniform(3, 14)))


def _draw_person(a: PersonAttributes, view: str, pose: tuple, cw: int, ch: int) -> Image.Image:
    """The person alone on a transparent RGBA canvas [ch, cw], feet near the bottom, facing +x when side."""
    img = Image.new("RGBA", (cw, ch), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    (leg_l, leg_r), (arm_l, arm_r) = pose
    u = ch * 0.94  # person height in pixels
    top = ch * 0.03
    cx = cw / 2

    def y(f: float) -> float:
        return top + f * u

    side, front, back = view == "side", view == "front", view == "back"
    fem = a.gender == "woman"
    build = _BUILD_SCALE[a.build]
    skin = _rgba(SKIN_RGB[a.skin])
    topc = _rgba(RGB[a.top_color])
    botc = _rgba(RGB[a.bottom_color])
    shoec = _rgba(RGB[a.shoe_color])
    hairc = _rgba(HAIR_RGB[a.hair_color]) if a.hair_color != "none" else None
    bagc = _rgba(RGB[a.bag_color]) if a.bag != "none" else None
    sw = 0.115 * u * build * (0.9 if fem else 1.0)  # shoulder half width
    hw = 0.095 * u * build * (1.05 if fem else 1.0)  # hip half width
    if side:
        sw = hw = 0.068 * u * build
    shoulder_y, waist_y = y(0.175), y(0.50)
    coat = a.top_type == "coat"
    hem_y = y(0.70) if coat else y(0.53)
    hem_w = hw * 1.2 if coat else hw
    leg_len, leg_w = 0.43 * u, 0.064 * u * math.sqrt(build)
    arm_len, arm_w = 0.31 * u, 0.05 * u * math.sqrt(build)
    hrx, hry, hcy = 0.052 * u, 0.068 * u, y(0.075)
    head_box = [cx - hrx, hcy - hry, cx + hrx, hcy + hry]
    show_hair = hairc is not None and not (a.hat != "none" and a.hair_style == "short")

    def grow(box: list[float], fx: float, fy: float, dy: float = 0.0) -> list[float]:
        mx, my = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 + dy
        rx, ry = (box[2] - box[0]) / 2 * fx, (box[3] - box[1]) / 2 * fy
        return [mx - rx, my - ry, mx + rx, my + ry]

    # Behind the body: long hair (front), backpack and far limbs (side).
    if show_hair and a.hair_style == "long" and front:
        d.rounded_rectangle(
            [cx - hrx * 1.2, hcy - hry * 0.6, cx + hrx * 1.2, y(0.25)], radius=hrx * 0.6, fill=hairc
        )
    if a.bag == "backpack" and side:
        d.rounded_rectangle(
            [cx - sw - 0.085 * u, y(0.19), cx - sw + 0.02 * u, y(0.45)], radius=0.02 * u, fill=bagc
        )
    if side:
        _limb(d, cx, shoulder_y + 0.01 * u, arm_r, arm_len, arm_w, _rgba(topc[:3], 0.75))

    # Legs, shoes, pelvis / skirt.
    hips = (cx, cx) if side else (cx - hw * 0.5, cx + hw * 0.5)
    for i, (hx, ang) in enumerate(zip(hips, (leg_l, leg_r), strict=True)):
        shade = 0.8 if side and i == 1 else 1.0
        leg_col = botc if a.bottom_type == "trousers" else skin
        fx, fy = _limb(d, hx, waist_y, ang, leg_len, leg_w, _rgba(leg_col[:3], shade))
        if a.bottom_type == "shorts":
            _limb(d, hx, waist_y, ang, leg_len * 0.42, leg_w * 1.1, _rgba(botc[:3], shade))
        sh = 0.028 * u
        if side:
            d.ellipse(
                [fx - leg_w * 0.5, fy - sh, fx + leg_w * 1.3, fy + sh * 0.8], fill=_rgba(shoec[:3], shade)
            )
        else:
            d.ellipse([fx - leg_w * 0.62, fy - sh, fx + leg_w * 0.62, fy + sh * 0.8], fill=shoec)
    if a.bottom_type == "skirt":
        d.polygon([(cx - hw, waist_y - 0.03 * u), (cx + hw, waist_y - 0.03 * u), (cx + hw * 1.5, y(0.72)),
                   (cx - hw * 1.5, y(0.72))], fill=botc)  # fmt: skip
    else:
        d.rectangle([cx - hw, waist_y - 0.03 * u, cx + hw, y(0.57)], fill=botc)

    # Neck and torso (with pattern clipped to the torso).
    d.rectangle([cx - 0.024 * u, y(0.12), cx + 0.024 * u, shoulder_y + 0.02 * u], fill=skin)
    torso = [(cx - sw, shoulder_y), (cx + sw, shoulder_y), (cx + hem_w, hem_y), (cx - hem_w, hem_y)]
    d.polygon(torso, fill=topc)
    r = 0.035 * u
    for sx in (cx - sw + r * 0.6, cx + sw - r * 0.6):  # rounded shoulders
        d.ellipse([sx - r, shoulder_y - r * 0.5, sx + r, shoulder_y + r * 1.5], fill=topc)
    patc = _rgba(RGB[a.pattern_color]) if a.pattern_color != "none" else None
    if a.top_pattern in ("stripes", "checks") and patc is not None:
        tmask = Image.new("L", (cw, ch), 0)
        ImageDraw.Draw(tmask).polygon(torso, fill=255)
        pmask = Image.new("L", (cw, ch), 0)
        pd = ImageDraw.Draw(pmask)
        period = 0.045 * u
        value = 255 if a.top_pattern == "stripes" else 130
        yy = shoulder_y + period * 0.3
        while yy < hem_y:
            pd.rectangle([0, yy, cw, yy + period * 0.45], fill=value)
            yy += period
        if a.top_pattern == "checks":
            vmask = Image.new("L", (cw, ch), 0)
            vd = ImageDraw.Draw(vmask)
            xx = cx - sw
            while xx < cx + sw:
                vd.rectangle([xx, 0, xx + period * 0.45, ch], fill=130)
                xx += period
            pmask = ImageChops.add(pmask, vmask)
        img.paste(patc, (0, 0, cw, ch), ImageChops.multiply(pmask, tmask))
    if a.top_pattern == "logo" and front and patc is not None:
        lr = 0.042 * u
        d.ellipse([cx - lr, y(0.27) - lr, cx + lr, y(0.27) + lr], fill=patc)
        d.rectangle([cx - lr * 0.45, y(0.27) - lr * 0.45, cx + lr * 0.45, y(0.27) + lr * 0.45], fill=topc)
    dark = _rgba(topc[:3], 0.6)
    if front and a.top_type in ("jacket", "coat"):
        d.line([(cx, shoulder_y + 0.01 * u), (cx, hem_y)], fill=dark, width=max(1, int(0.012 * u)))
        for f in (0.15, -0.15):
            d.polygon([(cx, shoulder_y + 0.06 * u), (cx + f * sw * 3.5, shoulder_y),
                       (cx + f * sw * 1.2, shoulder_y)], fill=dark)  # fmt: skip
    elif front and a.top_type == "t-shirt":
        d.chord(
            [cx - 0.03 * u, shoulder_y - 0.03 * u, cx + 0.03 * u, shoulder_y + 0.03 * u], 0, 180, fill=skin
        )

    # Backpack from behind / straps from the front; shoulder bag strap.
    if a.bag == "backpack" and back:
        d.rounded_rectangle([cx - sw * 0.78, y(0.2), cx + sw * 0.78, y(0.45)], radius=0.025 * u, fill=bagc)
        d.rounded_rectangle([cx - sw * 0.55, y(0.34), cx + sw * 0.55, y(0.44)], radius=0.015 * u,
                            fill=_rgba(bagc[:3], 0.75))  # fmt: skip
    elif a.bag == "backpack":
        xs = (cx - sw * 0.55, cx + sw * 0.55) if front else (cx - sw * 0.2,)
        for sx in xs:
            d.line([(sx, shoulder_y), (sx + (0.01 * u if side else 0), y(0.38))], fill=bagc,
                   width=max(1, int(0.02 * u)))  # fmt: skip
    if a.bag == "shoulder bag":
        mirror = -1 if back else 1
        bx = cx + mirror * hw * (0.3 if side else 0.85)
        d.line([(cx - mirror * sw * 0.7, shoulder_y), (bx, y(0.47))], fill=bagc, width=max(1, int(0.014 * u)))
        d.rounded_rectangle([bx - 0.055 * u, y(0.45), bx + 0.055 * u, y(0.57)], radius=0.01 * u, fill=bagc)

    # Arms (sleeves, hands) and a handbag in one hand.
    sleeve = 0.38 if a.top_type == "t-shirt" else 0.93
    arms = [(cx, arm_l)] if side else [(cx - sw + arm_w * 0.3, arm_l), (cx + sw - arm_w * 0.3, arm_r)]
    hands = []
    for ax, ang in arms:
        hx, hy = _limb(d, ax, shoulder_y + 0.012 * u, ang, arm_len, arm_w * 0.85, skin)
        _limb(d, ax, shoulder_y + 0.012 * u, ang, arm_len * sleeve, arm_w, topc)
        hands.append((hx, hy))
    if a.bag == "handbag":
        hx, hy = hands[0] if (side or back) else hands[-1]
        d.arc([hx - 0.03 * u, hy - 0.02 * u, hx + 0.03 * u, hy + 0.04 * u], 180, 360, fill=bagc,
              width=max(1, int(0.01 * u)))  # fmt: skip
        d.rounded_rectangle([hx - 0.045 * u, hy + 0.01 * u, hx + 0.045 * u, hy + 0.085 * u], radius=0.01 * u,
                            fill=bagc)  # fmt: skip

    # Head, face, hair, hat.
    d.ellipse(head_box, fill=skin)
    eye = max(1.0, 0.006 * u)
    if front:
        for ex in (cx - 0.02 * u, cx + 0.02 * u):
            d.ellipse([ex - eye, hcy - eye, ex + eye, hcy + eye], fill=(40, 30, 30, 255))
    elif side:
        d.ellipse([cx + hrx * 0.7, hcy, cx + hrx * 1.25, hcy + hry * 0.3], fill=skin)  # nose
        d.ellipse(
            [cx + hrx * 0.45 - eye, hcy - eye, cx + hrx * 0.45 + eye, hcy + eye], fill=(40, 30, 30, 255)
        )
    if show_hair and a.hair_style != "bald":
        cap_box = grow(head_box, 1.1, 1.08, -0.05 * hry)
        if back:
            d.chord(cap_box, 150, 30, fill=hairc)
            if a.hair_style == "long":
                d.rounded_rectangle([cx - hrx * 1.15, hcy - hry * 0.4, cx + hrx * 1.15, y(0.27)],
                                    radius=hrx * 0.5, fill=hairc)  # fmt: skip
            elif a.hair_style == "ponytail":
                d.rounded_rectangle(
                    [cx - hrx * 0.3, hcy, cx + hrx * 0.3, y(0.25)], radius=hrx * 0.3, fill=hairc
                )
        elif side:
            d.chord(cap_box, 120, 10, fill=hairc)
            if a.hair_style == "long":
                d.rounded_rectangle([cx - hrx * 1.15, hcy - hry * 0.3, cx - hrx * 0.1, y(0.25)],
                                    radius=hrx * 0.4, fill=hairc)  # fmt: skip
            elif a.hair_style == "ponytail":
                _limb(d, cx - hrx * 0.9, hcy - hry * 0.2, -20, 0.13 * u, hrx * 0.5, hairc)
        else:
            d.chord(cap_box, 195, 345, fill=hairc)
    if a.hat != "none":
        hatc = _rgba(RGB[a.hat_color])
        if a.hat == "cap":
            d.chord(grow(head_box, 1.12, 1.05, -0.12 * hry), 180, 360, fill=hatc)
            brim_y = hcy - hry * 0.2
            if front:
                d.ellipse([cx - hrx * 1.1, brim_y - 0.012 * u, cx + hrx * 1.1, brim_y + 0.012 * u], fill=hatc)
            elif side:
                d.rectangle([cx, brim_y - 0.008 * u, cx + hrx * 1.8, brim_y + 0.008 * u], fill=hatc)
        else:
            d.chord(grow(head_box, 1.12, 1.1, -0.2 * hry), 180, 360, fill=hatc)
            band = hcy - hry * 0.25
            d.rectangle([cx - hrx * 1.12, band - 0.018 * u, cx + hrx * 1.12, band], fill=_rgba(hatc[:3], 0.8))
    return img
