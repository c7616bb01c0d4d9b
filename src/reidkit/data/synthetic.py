"""The built-in synthetic dataset: rendered pedestrians with identities, cameras and captions.

It makes `reidkit quickstart` work offline on any machine. Identities are drawn from small attribute
palettes (so many people share a top colour, a bag, ...) and differ in their combination and details;
cameras differ in background, lighting, preferred viewpoint, scale, blur and occlusion. The set is written
in the Market-1501 layout plus a CUHK-PEDES-style `reid_raw.json` with two captions per image, built only
from what is visible in that view. Everything is deterministic from `SyntheticConfig.seed`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

logger = logging.getLogger(__name__)

# Bump when the rendering or the layout changes: it is part of the cache key, so old caches are not reused.
GENERATOR_VERSION = 1
VIEWS = ("front", "back", "side")
FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
MANIFEST = (
    "manifest.json"  # written last: its presence (with matching config and counts) marks a complete set
)
NAME_RE = re.compile(r"^(\d{4})_c(\d)s1_(\d{6})_00\.jpg$")

# Independent random streams, combined with the seed and an index: numpy.random.default_rng([seed, S, i]).
_STREAM_ATTRS, _STREAM_IMAGES, _STREAM_SPLIT, _STREAM_DISTRACTOR, _STREAM_CAMERA = 1, 2, 3, 4, 5
_MAX_CAMERAS = 9  # Market names carry one camera digit (`c<cam>`)
_MAX_IDS = 9999  # four pid digits
_JPEG_QUALITY = 92


# ----------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate; the defaults make the quickstart set (about 1,250 images)."""

    num_ids: int = 200  # identities in total; first half train, second half test (disjoint)
    num_cameras: int = 4
    images_per_id_per_camera: tuple[int, int] = (1, 3)  # inclusive range, drawn per (id, camera)
    cameras_per_id: tuple[int, int] = (2, 4)  # inclusive range of cameras that see one identity
    width: int = 64
    height: int = 128
    seed: int = 0
    distractor_fraction: float = 0.05  # pid-0 distractors added to the gallery, as a fraction of it

    def __post_init__(self) -> None:
        for name in ("images_per_id_per_camera", "cameras_per_id"):
            value = getattr(self, name)
            if isinstance(value, list):  # YAML gives lists; keep the dataclass hashable
                object.__setattr__(self, name, tuple(value))
        _validate_config(self)


def _validate_config(c: SyntheticConfig) -> None:
    def fail(name: str, expected: str) -> None:
        raise ValueError(f"SyntheticConfig.{name}={getattr(c, name)!r}: expected {expected}")

    for name in ("num_ids", "num_cameras", "width", "height", "seed"):
        if not isinstance(getattr(c, name), int) or isinstance(getattr(c, name), bool):
            fail(name, "an int")
    if not 2 <= c.num_ids <= _MAX_IDS:
        fail("num_ids", f"2..{_MAX_IDS} (first half train, second half test)")
    if not 1 <= c.num_cameras <= _MAX_CAMERAS:
        fail("num_cameras", f"1..{_MAX_CAMERAS} (Market names carry one camera digit)")
    for name, upper in (("images_per_id_per_camera", None), ("cameras_per_id", c.num_cameras)):
        r = getattr(c, name)
        ok = (
            isinstance(r, tuple)
            and len(r) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in r)
            and 1 <= r[0] <= r[1]
            and (upper is None or r[1] <= upper)
        )
        if not ok:
            bound = f" <= num_cameras={upper}" if upper is not None else ""
            fail(name, f"an inclusive range (lo, hi) of ints with 1 <= lo <= hi{bound}")
    if c.width < 16 or c.height < 32:
        raise ValueError(f"SyntheticConfig width x height = {c.width}x{c.height}: expected at least 16x32")
    if c.seed < 0:
        fail("seed", "a non-negative int")
    if not isinstance(c.distractor_fraction, int | float) or not 0.0 <= c.distractor_fraction < 1.0:
        fail("distractor_fraction", "a float in [0, 1)")


def config_hash(config: SyntheticConfig) -> str:
    """Hex digest of the config and generator version: names the cache folder."""
    blob = json.dumps({"generator_version": GENERATOR_VERSION, **asdict(config)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# ------------------------------------------------------------------------------------------- attributes

RGB: dict[str, tuple[int, int, int]] = {
    "black": (34, 34, 38),
    "white": (232, 232, 226),
    "grey": (128, 128, 132),
    "blue": (44, 74, 168),
    "red": (186, 36, 42),
    "green": (46, 124, 64),
    "yellow": (222, 194, 56),
    "brown": (114, 76, 44),
}
HAIR_RGB = {"black": (24, 21, 20), "brown": (92, 58, 34), "blonde": (212, 176, 104), "grey": (164, 162, 160)}
SKIN_RGB = {"light": (238, 204, 178), "medium": (214, 168, 132), "tan": (178, 128, 92), "dark": (108, 74, 54)}
_BUILD_SCALE = {"slim": 0.86, "average": 1.0, "broad": 1.17}

# (values, probabilities): small palettes with skewed weights so that many identities share each value.
_P = dict[str, tuple[tuple[str, ...], tuple[float, ...]]]
_CHOICES: _P = {
    "gender": (("man", "woman"), (0.55, 0.45)),
    "build": (("slim", "average", "broad"), (0.3, 0.5, 0.2)),
    "skin": (("light", "medium", "tan", "dark"), (0.35, 0.3, 0.2, 0.15)),
    "hair_color": (("black", "brown", "blonde", "grey"), (0.45, 0.3, 0.15, 0.1)),
    "top_type": (("t-shirt", "long-sleeve", "jacket", "coat"), (0.35, 0.25, 0.25, 0.15)),
    "top_color": (
        ("black", "white", "grey", "blue", "red", "green", "yellow"),
        (0.22, 0.2, 0.15, 0.15, 0.1, 0.08, 0.1),
    ),
    "top_pattern": (("plain", "stripes", "checks", "logo"), (0.55, 0.17, 0.13, 0.15)),
    "bottom_color": (("black", "blue", "grey", "brown", "white"), (0.35, 0.3, 0.2, 0.1, 0.05)),
    "shoe_color": (("black", "white", "brown", "red"), (0.4, 0.35, 0.15, 0.1)),
    "bag": (("none", "backpack", "shoulder bag", "handbag"), (0.35, 0.3, 0.2, 0.15)),
    "bag_color": (("black", "brown", "red", "blue", "grey"), (0.4, 0.25, 0.1, 0.15, 0.1)),
    "hat": (("none", "cap", "beanie"), (0.65, 0.2, 0.15)),
    "hat_color": (("black", "red", "blue", "white", "grey"), (0.35, 0.2, 0.2, 0.15, 0.1)),
}
_GENDERED: dict[str, dict[str, tuple[tuple[str, ...], tuple[float, ...]]]] = {
    "hair_style": {
        "man": (("short", "long", "ponytail", "bald"), (0.75, 0.05, 0.05, 0.15)),
        "woman": (("short", "long", "ponytail"), (0.2, 0.5, 0.3)),
    },
    "bottom_type": {
        "man": (("trousers", "shorts"), (0.8, 0.2)),
        "woman": (("trousers", "shorts", "skirt"), (0.55, 0.15, 0.3)),
    },
}


@dataclass(frozen=True)
class PersonAttributes:
    """One identity's look; `"none"` marks an absent item (and its colour)."""

    gender: str
    build: str
    skin: str
    hair_style: str
    hair_color: str
    top_type: str
    top_color: str
    top_pattern: str
    pattern_color: str
    bottom_type: str
    bottom_color: str
    shoe_color: str
    bag: str
    bag_color: str
    hat: str
    hat_color: str

    def key(self) -> tuple[str, ...]:
        """All attributes as a tuple: identities are unique in this."""
        return tuple(asdict(self).values())

    def as_dict(self) -> dict[str, str]:
        """Field name -> value, as written to attributes.json."""
        return asdict(self)


def _pick(rng: np.random.Generator, spec: tuple[tuple[str, ...], tuple[float, ...]]) -> str:
    values, probs = spec
    return values[int(rng.choice(len(values), p=np.asarray(probs) / sum(probs)))]


def sample_attributes(rng: np.random.Generator) -> PersonAttributes:
    """Draw one person's attributes from the shared palettes."""
    gender = _pick(rng, _CHOICES["gender"])
    hair_style = _pick(rng, _GENDERED["hair_style"][gender])
    top_color = _pick(rng, _CHOICES["top_color"])
    pattern = _pick(rng, _CHOICES["top_pattern"])
    others = tuple(c for c in _CHOICES["top_color"][0] if c != top_color)
    bag = _pick(rng, _CHOICES["bag"])
    hat = _pick(rng, _CHOICES["hat"])
    return PersonAttributes(
        gender=gender,
        build=_pick(rng, _CHOICES["build"]),
        skin=_pick(rng, _CHOICES["skin"]),
        hair_style=hair_style,
        hair_color="none" if hair_style == "bald" else _pick(rng, _CHOICES["hair_color"]),
        top_type=_pick(rng, _CHOICES["top_type"]),
        top_color=top_color,
        top_pattern=pattern,
        pattern_color="none" if pattern == "plain" else others[int(rng.integers(len(others)))],
        bottom_type=_pick(rng, _GENDERED["bottom_type"][gender]),
        bottom_color=_pick(rng, _CHOICES["bottom_color"]),
        shoe_color=_pick(rng, _CHOICES["shoe_color"]),
        bag=bag,
        bag_color="none" if bag == "none" else _pick(rng, _CHOICES["bag_color"]),
        hat=hat,
        hat_color="none" if hat == "none" else _pick(rng, _CHOICES["hat_color"]),
    )


def sample_identities(num_ids: int, seed: int) -> list[PersonAttributes]:
    """Attributes of pids 1..num_ids, unique per id; pid p depends only on (seed, pids < p)."""
    out: list[PersonAttributes] = []
    seen: set[tuple[str, ...]] = set()
    for pid in range(1, num_ids + 1):
        rng = np.random.default_rng([seed, _STREAM_ATTRS, pid])
        attrs = sample_attributes(rng)
        while attrs.key() in seen:  # the space is huge, so this rarely loops
            attrs = sample_attributes(rng)
        seen.add(attrs.key())
        out.append(attrs)
    return out


# --------------------------------------------------------------------------------------------- visibility


def visible_attributes(attrs: PersonAttributes, view: str) -> dict[str, str | None]:
    """What a caption may mention in this view (None = not visible): a logo is on the front only, a
    backpack seen from the front shows only its straps (a generic "bag"), a ponytail is hidden from the
    front, and short hair or a bald head under a hat is not seen."""
    if view not in VIEWS:
        raise ValueError(f"view={view!r}: expected one of {VIEWS}")
    hair_style: str | None = attrs.hair_style
    hair_color: str | None = None if attrs.hair_color == "none" else attrs.hair_color
    if attrs.hat != "none" and attrs.hair_style in ("short", "bald"):
        hair_style = hair_color = None
    elif attrs.hair_style == "ponytail" and view == "front":
        hair_style = None
    pattern: str | None = None if attrs.top_pattern == "plain" else attrs.top_pattern
    if pattern == "logo" and view != "front":
        pattern = None
    bag: str | None = None if attrs.bag == "none" else attrs.bag
    bag_color: str | None = None if bag is None else attrs.bag_color
    if bag == "backpack" and view == "front":
        bag, bag_color = "bag", None
    return {
        "gender": attrs.gender,
        "hair_style": hair_style,
        "hair_color": hair_color,
        "top_type": attrs.top_type,
        "top_color": attrs.top_color,
        "top_pattern": pattern,
        "pattern_color": None if pattern is None else attrs.pattern_color,
        "bottom_type": attrs.bottom_type,
        "bottom_color": attrs.bottom_color,
        "shoe_color": attrs.shoe_color,
        "bag": bag,
        "bag_color": bag_color,
        "hat": None if attrs.hat == "none" else attrs.hat,
        "hat_color": None if attrs.hat == "none" else attrs.hat_color,
    }


# ----------------------------------------------------------------------------------------------- captions

_NOUNS = {
    "man": ("man", "guy", "young man", "male pedestrian", "gentleman"),
    "woman": ("woman", "lady", "young woman", "female pedestrian", "girl"),
}
_COLOR_WORDS = {"grey": ("grey", "gray"), "blonde": ("blonde", "blond", "fair")}
_TOP_WORDS = {
    "t-shirt": ("t-shirt", "tee", "short-sleeved shirt"),
    "long-sleeve": ("long-sleeved shirt", "long-sleeve top", "sweater"),
    "jacket": ("jacket", "zip-up jacket"),
    "coat": ("coat", "long coat", "overcoat"),
}
_BOTTOM_WORDS = {
    "trousers": ("trousers", "pants", "slacks", "long pants"),
    "shorts": ("shorts", "short pants"),
    "skirt": ("skirt", "knee-length skirt"),
}
_PLURAL_BOTTOMS = frozenset({"trousers", "shorts"})
_SHOE_WORDS = ("shoes", "sneakers", "trainers")
_HAT_WORDS = {"cap": ("cap", "baseball cap"), "beanie": ("beanie", "knit hat", "woolly hat")}
# Phrases per item; {c} colour, {p} possessive pronoun.
_BAG_PHRASES = {
    "backpack": ("a {c} backpack", "a {c} rucksack", "a {c} backpack on {p} back"),
    "bag": ("a bag", "some kind of bag", "a bag with straps over {p} shoulders"),
    "shoulder bag": ("a {c} shoulder bag", "a {c} messenger bag", "a {c} bag over {p} shoulder"),
    "handbag": ("a {c} handbag", "a {c} purse", "a small {c} bag in {p} hand"),
}
_HAIR_PHRASES = {
    "short": ("short {c} hair", "{c} hair cut short", "a short {c} haircut"),
    "long": ("long {c} hair", "{c} hair down to the shoulders", "long flowing {c} hair"),
    "ponytail": ("{c} hair in a ponytail", "a {c} ponytail"),
    "bald": ("a bald head", "a shaved head"),
    None: ("{c} hair",),
}
_PATTERN_PHRASES = {
    "stripes": ("{a} {c} {w} with {pc} stripes", "{a} striped {c} {w}", "{a} {c} and {pc} striped {w}"),
    "checks": ("{a} {c} {w} with a {pc} check pattern", "{a} checked {c} {w}", "{a} plaid {c} and {pc} {w}"),
    "logo": (
        "{a} {c} {w} with a {pc} logo on the front",
        "{a} {c} {w} with a printed {pc} logo on the chest",
        "{a} {c} {w} with a {pc} graphic print on the front",
    ),
    None: ("{a} {c} {w}",),
}
NUM_TEMPLATES = 6
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def _choose(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _color(rng: np.random.Generator, name: str) -> str:
    return _choose(rng, _COLOR_WORDS.get(name, (name,)))


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def caption(
    attrs: PersonAttributes, view: str, rng: np.random.Generator, *, template: int | None = None
) -> str:
    """One English description built only from `visible_attributes(attrs, view)`, with a random template
    (or the given one, 0..NUM_TEMPLATES-1), synonyms and item order."""
    if template is None:
        template = int(rng.integers(NUM_TEMPLATES))
    if not 0 <= template < NUM_TEMPLATES:
        raise ValueError(f"template={template}: expected 0..{NUM_TEMPLATES - 1}")
    v = visible_attributes(attrs, view)
    man = v["gender"] == "man"
    noun = _choose(rng, _NOUNS["man" if man else "woman"])
    pron, poss = ("he", "his") if man else ("she", "her")

    hair = None
    if v["hair_style"] is not None or v["hair_color"] is not None:
        c = _color(rng, v["hair_color"]) if v["hair_color"] else ""
        hair = _choose(rng, _HAIR_PHRASES[v["hair_style"]]).format(c=c)
    c = _color(rng, v["top_color"])
    pc = _color(rng, v["pattern_color"]) if v["pattern_color"] else ""
    form = _choose(rng, _PATTERN_PHRASES[v["top_pattern"]])
    first = form.split(" ", 2)[1].format(c=c)  # the word after the article decides "a" / "an"
    top = form.format(a=_article(first), c=c, pc=pc, w=_choose(rng, _TOP_WORDS[v["top_type"]]))
    bw = _choose(rng, _BOTTOM_WORDS[v["bottom_type"]])
    bottom = f"{_color(rng, v['bottom_color'])} {bw}"
    if v["bottom_type"] not in _PLURAL_BOTTOMS:
        bottom = f"a {bottom}"
    shoes = f"{_color(rng, v['shoe_color'])} {_choose(rng, _SHOE_WORDS)}"
    if rng.random() < 0.3:
        shoes = f"a pair of {shoes}"
    items = [top, bottom, shoes]
    extra: list[str] = []
    if v["hat"] is not None:
        hat = f"a {_color(rng, v['hat_color'])} {_choose(rng, _HAT_WORDS[v['hat']])}"
        if rng.random() < 0.5:
            items.append(hat)
        else:
            extra.append(
                _choose(rng, ("{P} wears {h}.", "{P} has {h} on {p} head.", "On {p} head is {h}.")).format(
                    P=_sentence(pron), h=hat, p=poss
                )
            )
    if v["bag"] is not None:
        bag = _choose(rng, _BAG_PHRASES[v["bag"]]).format(c=_color(rng, v["bag_color"] or ""), p=poss)
        verb = _choose(rng, ("carries", "is carrying", "has"))
        extra.append(f"{_sentence(pron)} {verb} {bag}.")
    order = rng.permutation(len(items))
    listed = _join([items[i] for i in order])

    if template == 0:
        main = f"A {noun}{' with ' + hair if hair else ''} wearing {listed}."
    elif template == 1:
        main = f"The {noun} is wearing {listed}{' and has ' + hair if hair else ''}."
    elif template == 2:
        main = (
            f"This {noun} has {hair} and is dressed in {listed}."
            if hair
            else f"This {noun} is dressed in {listed}."
        )
    elif template == 3:
        main = f"Wearing {listed}, {_article(noun)} {noun}{' with ' + hair if hair else ''} walks by."
    elif template == 4:
        main = f"{_sentence(_article(noun))} {noun} dressed in {listed}."
        if hair:
            main += f" {_sentence(pron)} has {hair}."
    else:
        main = f"{_sentence(listed)} are worn by {_article(noun)} {noun}{' who has ' + hair if hair else ''}."
    if len(extra) == 2 and rng.random() < 0.5:
        extra.reverse()
    return " ".join([main, *extra])


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens of a caption (hyphenated words kept), like CUHK-PEDES `processed_tokens`."""
    return _TOKEN_RE.findall(text.lower())


# ------------------------------------------------------------------------------------------------ cameras


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


# ---------------------------------------------------------------------------------------------- rendering


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


# --------------------------------------------------------------------------------------------- the set


@dataclass
class _Image:
    pid: int
    cam: int
    frame: int
    image: Image.Image
    captions: list[str]

    @property
    def name(self) -> str:
        return f"{self.pid:04d}_c{self.cam}s1_{self.frame:06d}_00.jpg"


def _render_identity(
    pid: int, attrs: PersonAttributes, cams: list[CameraStyle], c: SyntheticConfig
) -> list[_Image]:
    """All images of one identity; depends only on (seed, pid, attrs, camera styles, config ranges)."""
    rng = np.random.default_rng([c.seed, _STREAM_IMAGES, pid])
    k = int(rng.integers(c.cameras_per_id[0], c.cameras_per_id[1] + 1))
    chosen = sorted(int(x) + 1 for x in rng.choice(c.num_cameras, size=k, replace=False))
    out: list[_Image] = []
    frame = 0
    for cam in chosen:
        style = cams[cam - 1]
        for _ in range(int(rng.integers(c.images_per_id_per_camera[0], c.images_per_id_per_camera[1] + 1))):
            frame += 1
            view = VIEWS[int(rng.choice(len(VIEWS), p=style.view_probs))]
            image = render_person(attrs, style, view, rng, size=(c.width, c.height))
            t1, t2 = (int(t) for t in rng.choice(NUM_TEMPLATES, size=2, replace=False))
            caps = [caption(attrs, view, rng, template=t1), caption(attrs, view, rng, template=t2)]
            out.append(_Image(pid, cam, frame, image, caps))
    return out


def split_query(images: list[_Image], rng: np.random.Generator) -> tuple[list[_Image], list[_Image]]:
    """At most one query per camera, kept only if the gallery still holds this pid from another camera."""
    by_cam: dict[int, list[_Image]] = {}
    for im in images:
        by_cam.setdefault(im.cam, []).append(im)
    left = {cam: len(ims) for cam, ims in by_cam.items()}  # gallery images per camera
    queries: dict[int, _Image] = {}
    for cam in [list(by_cam)[int(i)] for i in rng.permutation(len(by_cam))]:
        left[cam] -= 1
        if all(any(n > 0 for c2, n in left.items() if c2 != qc) for qc in [*queries, cam]):
            queries[cam] = by_cam[cam][int(rng.integers(len(by_cam[cam])))]
        else:
            left[cam] += 1
    chosen = {id(q) for q in queries.values()}
    query = sorted(queries.values(), key=lambda im: im.frame)
    return query, [im for im in images if id(im) not in chosen]


def _save(image: Image.Image, path: Path) -> None:
    image.save(path, format="JPEG", quality=_JPEG_QUALITY)


def _write_into(root: Path, c: SyntheticConfig) -> dict[str, Any]:
    """Generate the whole set into the (empty, temporary) folder `root`; returns the manifest."""
    for folder in FOLDERS.values():
        (root / folder).mkdir()
    cams = make_cameras(c.num_cameras, c.seed)
    identities = sample_identities(c.num_ids, c.seed)
    num_train = c.num_ids // 2
    entries: list[dict[str, Any]] = []
    counts = dict.fromkeys(FOLDERS.values(), 0)
    gallery_real = 0

    def emit(im: _Image, folder: str, split: str) -> None:
        _save(im.image, root / folder / im.name)
        counts[folder] += 1
        entries.append(
            {
                "split": split,
                "id": im.pid,
                "file_path": f"{folder}/{im.name}",
                "captions": im.captions,
                "processed_tokens": [tokenize(t) for t in im.captions],
                "camid": im.cam,
            }
        )

    for pid, attrs in enumerate(identities, start=1):
        images = _render_identity(pid, attrs, cams, c)
        if pid <= num_train:
            for im in images:
                emit(im, FOLDERS["train"], "train")
            continue
        query, gallery = split_query(images, np.random.default_rng([c.seed, _STREAM_SPLIT, pid]))
        for im in query:
            emit(im, FOLDERS["query"], "test")
        for im in gallery:
            emit(im, FOLDERS["gallery"], "test")
        gallery_real += len(gallery)

    num_distractors = math.ceil(c.distractor_fraction * gallery_real)
    taken = {a.key() for a in identities}
    for k in range(1, num_distractors + 1):
        rng = np.random.default_rng([c.seed, _STREAM_DISTRACTOR, k])
        attrs = sample_attributes(rng)
        while attrs.key() in taken:
            attrs = sample_attributes(rng)
        style = cams[int(rng.integers(c.num_cameras))]
        view = VIEWS[int(rng.choice(len(VIEWS), p=style.view_probs))]
        im = render_person(attrs, style, view, rng, size=(c.width, c.height))
        _save(im, root / FOLDERS["gallery"] / _Image(0, style.cam, k, im, []).name)
        counts[FOLDERS["gallery"]] += 1

    reid_raw = json.dumps(entries, indent=1).encode()
    attributes = json.dumps(
        {f"{pid:04d}": a.as_dict() for pid, a in enumerate(identities, 1)}, indent=1
    ).encode()
    (root / "reid_raw.json").write_bytes(reid_raw)
    (root / "attributes.json").write_bytes(attributes)
    (root / "SYNTHETIC.md").write_text(_readme(c, counts, num_distractors))
    return {
        "generator_version": GENERATOR_VERSION,
        "config": asdict(c),
        "counts": counts,
        "num_distractors": num_distractors,
        "sha256": {
            "reid_raw.json": hashlib.sha256(reid_raw).hexdigest(),
            "attributes.json": hashlib.sha256(attributes).hexdigest(),
        },
    }


def _readme(c: SyntheticConfig, counts: dict[str, int], num_distractors: int) -> str:
    return (
        "# reidkit synthetic pedestrians\n\n"
        "Rendered pedestrians (body shape, skin, hair, top/bottom colour and type, pattern, shoes, bag, hat) "
        f"seen by {c.num_cameras} cameras that differ in background, lighting, preferred viewpoint, scale, "
        "blur and occlusion, written by `reidkit.data.synthetic` (generator version "
        f"{GENERATOR_VERSION}) in the Market-1501 layout with a CUHK-PEDES-style `reid_raw.json` "
        "(two captions per image, built from the attributes visible in that view) and `attributes.json` "
        f"(per identity). {c.num_ids} identities (pids 1..{c.num_ids // 2} train, the rest test), "
        f"{counts['bounding_box_train']} train, {counts['query']} query and {counts['bounding_box_test']} "
        f"gallery images ({num_distractors} of them pid-0 distractors), {c.width}x{c.height} pixels. "
        f"Config: {json.dumps(asdict(c), sort_keys=True)}; seed {c.seed}. The same config always gives the "
        "same files. Synthetic data for tests and quick starts, not a benchmark.\n"
    )


def _move_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    if out.exists() and overwrite and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
        os.rename(tmp, out)
        shutil.rmtree(old)
        return
    if out.exists():
        out.rmdir()  # empty (checked by the caller); a non-empty one makes this raise OSError
    os.rename(tmp, out)


def write_synthetic(
    out: Path, config: SyntheticConfig = SyntheticConfig(), *, overwrite: bool = False
) -> Path:
    """Generate the set into `out` (written to a temp folder beside it, then renamed into place).
    Raises FileExistsError when `out` is a non-empty folder and `overwrite` is False."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder; expected a folder for the synthetic set")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: folder is not empty; pass overwrite=True to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        manifest = _write_into(tmp, config)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))  # last: marks complete
        _move_into_place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote synthetic set to %s: %s", out, manifest["counts"])
    return out


def is_complete(path: Path, config: SyntheticConfig) -> bool:
    """True when `path` holds a finished set for `config`: manifest present, same config, counts match."""
    mpath = Path(path) / MANIFEST
    if not mpath.is_file():
        return False
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError:
        logger.warning("%s: unreadable manifest, treating the set as incomplete", mpath)
        return False
    if manifest.get("generator_version") != GENERATOR_VERSION or manifest.get("config") != json.loads(
        json.dumps(asdict(config))
    ):
        return False
    for folder, n in manifest.get("counts", {}).items():
        if not (Path(path) / folder).is_dir() or len(os.listdir(Path(path) / folder)) != n:
            return False
    return all((Path(path) / f).is_file() for f in ("reid_raw.json", "attributes.json"))


def default_cache_dir() -> Path:
    """$REIDKIT_CACHE, else ~/.cache/reidkit."""
    return Path(os.environ.get("REIDKIT_CACHE") or "~/.cache/reidkit").expanduser()


def ensure_synthetic(cache_dir: Path | None = None, config: SyntheticConfig = SyntheticConfig()) -> Path:
    """The set for `config` under `cache_dir` (default `default_cache_dir()`), generated once and reused;
    a folder without a valid manifest (e.g. left by an older version) is regenerated."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / f"synthetic-{config_hash(config)[:16]}"
    if is_complete(target, config):
        logger.debug("reusing synthetic set %s", target)
        return target
    logger.info("generating synthetic set into %s", target)
    try:
        return write_synthetic(target, config, overwrite=target.exists())
    except OSError:
        if is_complete(target, config):  # another process finished first
            return target
        raise
