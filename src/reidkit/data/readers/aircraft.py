"""FGVC-Aircraft reader for class-disjoint retrieval at the variant level (100 variants).

Layout (`root` is `fgvc-aircraft-2013b/`, the `data/` folder itself, or the folder holding
`fgvc-aircraft-2013b/`)::

    root/data/images_variant_train.txt   lines '<image name> <variant>' (variant may contain spaces)
    root/data/images_variant_val.txt
    root/data/images_variant_test.txt
    root/data/images/1025794.jpg

All images of the three lists are used. pid = index of the variant in sorted order; camid -1. The first
`train_classes` variants in sorted order (default half: 50) train, the rest are the test set, used as
both query and gallery.
"""

from __future__ import annotations

from pathlib import Path

from reidkit.data.readers._common import (
    BadFiles,
    DatasetError,
    absolute,
    fine_grained_split,
    require_dir,
    require_file,
    split_classes,
)
from reidkit.types import Record, Split

LISTS = ("images_variant_train.txt", "images_variant_val.txt", "images_variant_test.txt")


def _data_dir(root: Path) -> Path:
    for cand in (root / "data", root, root / "fgvc-aircraft-2013b" / "data"):
        if (cand / LISTS[0]).exists():
            return cand
    return root / "data"


def read_aircraft(root: str | Path, train_classes: int | None = None) -> Split:
    """Read FGVC-Aircraft variants and split them: the first `train_classes` (sorted) train, the rest test."""
    base = require_dir(absolute(root), "fgvc-aircraft-2013b/ with data/images_variant_*.txt and data/images/")
    data = _data_dir(base)
    image_dir = require_dir(data / "images", "the FGVC-Aircraft images <image name>.jpg")
    entries: list[tuple[str, str]] = []
    for name in LISTS:
        lst = require_file(data / name, "lines '<image name> <variant>'")
        bad = BadFiles(lst, "lines '<image name> <variant>' naming an existing image")
        lines = [ln for ln in lst.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not lines:
            raise DatasetError(f"{lst}: empty; expected lines '<image name> <variant>'")
        for i, ln in enumerate(lines, 1):
            fields = ln.strip().split(maxsplit=1)
            if len(fields) != 2:
                bad.add(f"line {i}: {ln!r}")
            elif not (image_dir / f"{fields[0]}.jpg").is_file():
                bad.add(image_dir / f"{fields[0]}.jpg", "missing image")
            else:
                entries.append((fields[0], fields[1].strip()))
        bad.resolve(len(lines))
    variants = {v: k for k, v in enumerate(sorted({v for _, v in entries}))}
    records = [
        Record(path=str(image_dir / f"{img}.jpg"), pid=variants[v], camid=-1) for img, v in sorted(entries)
    ]
    train, test = split_classes(records, train_classes, "aircraft", data)
    return fine_grained_split("aircraft", train, test)
