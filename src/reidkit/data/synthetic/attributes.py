"""Who the synthetic people are: attribute palettes, one identity's attributes, and what of them each view
shows. Palettes are small and skewed so that identities share values and differ in their combination."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from reidkit.data.synthetic.config import _STREAM_ATTRS, VIEWS

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
