"""What to generate (`SyntheticConfig`, its cache key) and the constants all parts of the generator share:
the views, the independent random streams and the naming limits, kept in one place so the parts agree."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

# Bump when the rendering or the layout changes: it is part of the cache key, so old caches are not reused.
GENERATOR_VERSION = 1
VIEWS = ("front", "back", "side")

# Independent random streams, combined with the seed and an index: numpy.random.default_rng([seed, S, i]).
_STREAM_ATTRS, _STREAM_IMAGES, _STREAM_SPLIT, _STREAM_DISTRACTOR, _STREAM_CAMERA = 1, 2, 3, 4, 5
_MAX_CAMERAS = 9  # Market names carry one camera digit (`c<cam>`)
_MAX_IDS = 9999  # four pid digits


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
