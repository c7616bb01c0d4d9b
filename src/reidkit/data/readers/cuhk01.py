"""CUHK01 (CUHK Campus) reader: Market-style split folders (+ `labels.csv`), or the raw `campus/` folder.

Layout (a), e.g. ../shared/data/cuhk01::

    root/bounding_box_train/0001001.png   names PPPPIII: pid, image 001-004 (001/002 camera 1,
                                          003/004 camera 2)
    root/query/...
    root/bounding_box_test/...
    root/labels.csv                        columns path,split,pid,camid[,image_index]; camid 1/2 -> 0/1

Layout (b), the release as distributed: `root/` or `root/campus/` holding all `PPPPIII.png` files. The
identities are split at random (`seed`; `num_train_ids`, default half); test identities give their camera-1
images as queries and their camera-2 images as the gallery.
"""

from __future__ import annotations

import re
from pathlib import Path

from reidkit.data.readers._common import absolute, make_records, parse_folder, require_dir
from reidkit.data.readers._labeled import has_split_folders, read_labeled_folders, two_camera_split
from reidkit.types import Split

NAME = re.compile(r"^(\d{4})(\d{3})$")
EXPECTED = "'PPPPIII.png' (4-digit person, image 001-004, e.g. 0001003.png)"


def parse_cuhk01_name(stem: str) -> tuple[int, int] | str:
    """`0001003` -> (1, 1): images 001/002 are camera 1 (camid 0), 003/004 camera 2 (camid 1)."""
    m = NAME.match(stem)
    if m is None:
        return "not 7 digits PPPPIII"
    idx = int(m.group(2))
    if not 1 <= idx <= 4:
        return f"image index {idx} is not 001-004"
    return int(m.group(1)), (idx - 1) // 2


def read_cuhk01(root: str | Path, seed: int = 0, num_train_ids: int | None = None) -> Split:
    """Read CUHK01 from split folders (+ labels.csv), or split the raw campus folder at random."""
    base = require_dir(absolute(root), "a CUHK01 folder (split folders + labels.csv, or campus/)")
    if has_split_folders(base):
        return read_labeled_folders(base, "cuhk01", parse_cuhk01_name, EXPECTED)
    folder = base / "campus" if (base / "campus").is_dir() else base
    records = make_records(parse_folder(folder, parse_cuhk01_name, EXPECTED))
    return two_camera_split(records, "cuhk01", folder, seed, num_train_ids)
