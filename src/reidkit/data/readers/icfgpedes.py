"""ICFG-PEDES (text-based person search) reader.

Layout (`root` holds the annotation file, or its only sub-folder does)::

    root/ICFG-PEDES.json   JSON list, one object per image:
        {"split": "train"|"test", "id": 0, "file_path": "test/0027/0027_010_05_0303afternoon_1582_1.jpg",
         "captions": ["The man is wearing ..."]}
    root/imgs/<file_path>  the images (or root/<file_path> when there is no imgs/)

One caption per image in the release; camid is -1 (the data carries no camera label).
"""

from __future__ import annotations

from pathlib import Path

from reidkit.data.readers._text import build_text_split, images_root, load_json_list, locate
from reidkit.types import Split


def read_icfgpedes(root: str | Path, train_split: str = "train", test_split: str = "test") -> Split:
    """Read ICFG-PEDES: one record per caption (train, query), one per test image (gallery)."""
    ann = locate(root, ["ICFG-PEDES.json"], "ICFG-PEDES.json with imgs/")
    return build_text_split(
        "icfgpedes",
        ann,
        load_json_list(ann),
        path_key="file_path",
        image_root=images_root(ann.parent),
        train_split=train_split,
        test_split=test_split,
    )
