"""Custom data as folders of named images: `<pid>_c<camera>_<anything>.<ext>`.

Layout::

    root/train/      (or bounding_box_train/) optional: without it the data is evaluation-only
    root/query/
    root/gallery/    (or bounding_box_test/ or test/)

Images may sit in sub-folders of these (e.g. one folder per identity); only the file name is parsed.
Names: `<pid>_c<camera>_<anything>` (Market names `0002_c1s1_000451_03.jpg` work too) with cameras
numbered from `camera_base` (default 1: c1 -> camid 0), or `<pid>_<anything>` / `<pid>.<ext>` for data
without cameras (camid -1; all names of a dataset must agree). pid -1 marks junk and is dropped.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from reidkit.data.readers._common import (
    BadFiles,
    DatasetError,
    absolute,
    list_images_recursive,
    require_dir,
    require_nonempty,
)
from reidkit.types import Record, Split

logger = logging.getLogger(__name__)

NAME = re.compile(r"^(-?\d+)(?:_c(\d+)(?:$|_|s\d)|$|_(?!c\d))")
EXPECTED = "'<pid>_c<camera>_<anything>' or '<pid>_<anything>' (e.g. 12_c1_0003.jpg)"
PART_FOLDERS = {
    "train": ("train", "bounding_box_train"),
    "query": ("query",),
    "gallery": ("gallery", "bounding_box_test", "test"),
}


def parse_folder_name(stem: str, camera_base: int = 1) -> tuple[int, int] | str:
    """`12_c1_0003` -> (12, 0); `12_0003` -> (12, -1); a reason string when the name does not parse."""
    m = NAME.match(stem)
    if m is None:
        return "no '<pid>_' prefix"
    if m.group(2) is None:
        return int(m.group(1)), -1
    cam = int(m.group(2)) - camera_base
    if cam < 0:
        return f"camera c{m.group(2)} is below camera_base={camera_base}"
    return int(m.group(1)), cam


def _read_part(folder: Path, camera_base: int) -> list[Record]:
    files = list_images_recursive(folder)
    if not files:
        raise DatasetError(f"{folder}: no image files; expected images named {EXPECTED}")
    bad = BadFiles(folder, f"named {EXPECTED}")
    out = []
    for p in files:
        got = parse_folder_name(p.stem, camera_base)
        if isinstance(got, str):
            bad.add(p.relative_to(folder), got)
        elif got[0] != -1:
            out.append(Record(path=str(p), pid=got[0], camid=got[1]))
    bad.resolve(len(files))
    return require_nonempty(out, folder.name, folder, f"images named {EXPECTED} with pid != -1")


def read_folder(root: str | Path, camera_base: int = 1) -> Split:
    """Read train/query/gallery folders of `<pid>_c<camera>_*.jpg` (or camera-less `<pid>_*.jpg`) images."""
    base = require_dir(
        absolute(root), "a folder with query/ and gallery/ (and optionally train/) sub-folders"
    )
    parts: dict[str, list[Record]] = {}
    for part, names in PART_FOLDERS.items():
        found = [base / n for n in names if (base / n).is_dir()]
        if not found:
            if part == "train":
                logger.warning("%s: no train/ folder; the data can be used for evaluation only", base)
                parts[part] = []
                continue
            raise DatasetError(
                f"{base}: no {' or '.join(n + '/' for n in names)} folder; expected the {part} "
                f"images named {EXPECTED}"
            )
        parts[part] = _read_part(found[0], camera_base)
    with_cam = [r for recs in parts.values() for r in recs if r.camid >= 0]
    without = [r for recs in parts.values() for r in recs if r.camid < 0]
    if with_cam and without:
        raise DatasetError(
            f"{base}: some names have a camera ({with_cam[0].path}) and some do not "
            f"({without[0].path}); expected all '<pid>_c<camera>_*' or all '<pid>_*'"
        )
    return Split(name=base.name, train=parts["train"], query=parts["query"], gallery=parts["gallery"])
