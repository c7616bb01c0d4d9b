"""VIPeR-style two-camera reader: one folder per camera, images of one identity share a number.

Layout (`root` is this folder or holds it as its only sub-folder, e.g. `VIPeR/`)::

    root/cam_a/000_45.bmp    camid 0; name '<pid>_<anything>' (VIPeR: '<pid>_<angle>')
    root/cam_b/000_0.bmp     camid 1

Identities are split at random (`seed`; `num_train_ids`, default half, 316 of 632 for VIPeR); for test
identities cam_a images are the queries and cam_b images the gallery.
"""

from __future__ import annotations

import re
from pathlib import Path

from reidkit.data.readers._common import find_root, make_records, parse_folder
from reidkit.data.readers._labeled import two_camera_split
from reidkit.types import Split

NAME = re.compile(r"^(\d+)(?:_|$)")
EXPECTED = "'<pid>_<anything>' (e.g. 000_45.bmp)"


def read_viper(root: str | Path, seed: int = 0, num_train_ids: int | None = None) -> Split:
    """Read cam_a/cam_b folders and split identities at random into train and test."""
    base = find_root(root, ["cam_a", "cam_b"], "VIPeR-style folders cam_a/ and cam_b/")
    records = []
    for cam, sub in enumerate(("cam_a", "cam_b")):

        def parse(stem: str, cam: int = cam) -> tuple[int, int] | str:
            m = NAME.match(stem)
            return (int(m.group(1)), cam) if m else "no leading '<pid>_'"

        records += make_records(parse_folder(base / sub, parse, EXPECTED))
    return two_camera_split(records, "viper", base, seed, num_train_ids)
