"""CUB-200-2011 reader for class-disjoint (fine-grained) retrieval.

Layout (`root` is `CUB_200_2011/` or the folder holding it)::

    root/images.txt              '<image_id> <path relative to images/>'
    root/image_class_labels.txt  '<image_id> <class_id>'
    root/images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg

pid = class id; camid -1. The first `train_classes` classes present (sorted by id; default half: 100 of
200 for full CUB, 15 of the 30-class subset) are the training classes, the rest are the test set, used as
both query and gallery. `train_test_split.txt` (the classification split) is not used.
"""

from __future__ import annotations

import re
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

CLASS_FOLDER = re.compile(r"^(\d+)\.")


def _read_pairs(path: Path, what: str) -> list[tuple[int, str]]:
    """Lines '<int> <rest>' of a CUB metadata file; malformed lines are collected as bad."""
    require_file(path, what)
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise DatasetError(f"{path}: empty; expected {what}")
    bad = BadFiles(path, what)
    out = []
    for i, ln in enumerate(lines, 1):
        fields = ln.split(maxsplit=1)
        if len(fields) != 2 or not fields[0].isdigit():
            bad.add(f"line {i}: {ln!r}")
            continue
        out.append((int(fields[0]), fields[1].strip()))
    bad.resolve(len(lines))
    return out


def read_cub(root: str | Path, train_classes: int | None = None) -> Split:
    """Read CUB-200-2011 and split its classes: the first `train_classes` train, the rest test."""
    base = require_dir(absolute(root), "CUB_200_2011/ with images.txt, image_class_labels.txt, images/")
    if not (base / "images.txt").exists() and (base / "CUB_200_2011").is_dir():
        base = base / "CUB_200_2011"
    images = _read_pairs(base / "images.txt", "lines '<image_id> <relative image path>'")
    labels_file = base / "image_class_labels.txt"
    labels = _read_pairs(labels_file, "lines '<image_id> <class_id>'")
    label_of: dict[int, int] = {}
    for img_id, cls in labels:
        if not cls.isdigit():
            raise DatasetError(f"{labels_file}: image {img_id} has class {cls!r}; expected an integer")
        label_of[img_id] = int(cls)
    image_dir = require_dir(base / "images", "the CUB images in <class folder>/<file>.jpg")
    bad = BadFiles(base / "images.txt", "images with a class label and an existing file")
    records = []
    for img_id, rel in sorted(images):
        cls = label_of.get(img_id)
        if cls is None:
            bad.add(f"image {img_id} ({rel})", f"no label in {labels_file.name}")
            continue
        m = CLASS_FOLDER.match(Path(rel).parts[0])
        if m is not None and int(m.group(1)) != cls:
            bad.add(f"image {img_id} ({rel})", f"folder says class {int(m.group(1))}, label says {cls}")
            continue
        path = image_dir / rel
        if not path.is_file():
            bad.add(path, "missing image")
            continue
        records.append(Record(path=str(path), pid=cls, camid=-1))
    bad.resolve(len(images))
    train, test = split_classes(records, train_classes, "cub", base / "images.txt")
    return fine_grained_split("cub", train, test)
