"""RSTPReid (text-based person search) reader.

Layout (`root` holds the annotation file, or its only sub-folder does)::

    root/data_captions.json   JSON list, one object per image:
        {"split": "train"|"val"|"test", "id": 0, "img_path": "0000_c14_0031.jpg",
         "captions": ["The woman ...", "A woman ..."]}
    root/imgs/<img_path>      the images (or root/<img_path> when there is no imgs/)

Camera from the name's `_c<camera>_` (c14 -> camid 13), else -1.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from reidkit.data.readers._text import build_text_split, images_root, load_json_list, locate
from reidkit.types import Split

CAMERA = re.compile(r"_c(\d+)(?:_|$)")


def rstp_camera(entry: dict[str, Any], path: Path) -> int:
    """`0000_c14_0031` -> 13; -1 when the name has no `_c<camera>` field."""
    m = CAMERA.search(path.stem)
    return int(m.group(1)) - 1 if m and int(m.group(1)) > 0 else -1


def read_rstpreid(root: str | Path, train_split: str = "train", test_split: str = "test") -> Split:
    """Read RSTPReid: one record per caption (train, query), one per test image (gallery)."""
    ann = locate(root, ["data_captions.json"], "RSTPReid data_captions.json with imgs/")
    return build_text_split(
        "rstpreid",
        ann,
        load_json_list(ann),
        path_key="img_path",
        image_root=images_root(ann.parent),
        train_split=train_split,
        test_split=test_split,
        camera=rstp_camera,
    )
