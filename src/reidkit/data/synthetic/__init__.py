"""The built-in synthetic dataset: rendered pedestrians with identities, cameras and captions.

It makes `reidkit quickstart` work offline on any machine. Identities are drawn from small attribute
palettes (so many people share a top colour, a bag, ...) and differ in their combination and details;
cameras differ in background, lighting, preferred viewpoint, scale, blur and occlusion. The set is written
in the Market-1501 layout plus a CUHK-PEDES-style `reid_raw.json` with two captions per image, built only
from what is visible in that view. Everything is deterministic from `SyntheticConfig.seed`.

The parts live in the submodules (config, attributes, captions, cameras, person, render, images, and write,
which writes the set to disk and caches it); this package only re-exports the public names.
"""

from __future__ import annotations

from reidkit.data.synthetic.attributes import (
    HAIR_RGB,
    RGB,
    SKIN_RGB,
    PersonAttributes,
    sample_attributes,
    sample_identities,
    visible_attributes,
)
from reidkit.data.synthetic.cameras import CameraStyle, make_cameras
from reidkit.data.synthetic.captions import NUM_TEMPLATES, caption
from reidkit.data.synthetic.config import GENERATOR_VERSION, VIEWS, SyntheticConfig, config_hash
from reidkit.data.synthetic.images import split_query
from reidkit.data.synthetic.person import _draw_person as _draw_person  # reached by the unit tests
from reidkit.data.synthetic.person import _sample_pose as _sample_pose  # reached by the unit tests
from reidkit.data.synthetic.render import render_person
from reidkit.data.synthetic.write import (
    FOLDERS,
    MANIFEST,
    default_cache_dir,
    ensure_synthetic,
    is_complete,
    write_synthetic,
)
from reidkit.data.tokens import tokenize

__all__ = [
    "FOLDERS",
    "GENERATOR_VERSION",
    "HAIR_RGB",
    "MANIFEST",
    "NUM_TEMPLATES",
    "RGB",
    "SKIN_RGB",
    "VIEWS",
    "CameraStyle",
    "PersonAttributes",
    "SyntheticConfig",
    "caption",
    "config_hash",
    "default_cache_dir",
    "ensure_synthetic",
    "is_complete",
    "make_cameras",
    "render_person",
    "sample_attributes",
    "sample_identities",
    "split_query",
    "tokenize",
    "visible_attributes",
    "write_synthetic",
]
