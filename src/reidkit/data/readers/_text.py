"""Shared building of image-text splits (CUHK-PEDES, ICFG-PEDES, RSTPReid) from a JSON annotation list.

Records: one per caption in train and query (`text` set, `image_id` = running image index shared by the
captions of one image); the gallery has one record per unique test image (`text=None`, same `image_id`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reidkit.data.readers._common import BadFiles, DatasetError, absolute, require_dir
from reidkit.types import Record, Split

logger = logging.getLogger(__name__)

# entry -> list of captions, or a reason string when the entry has none usable
CaptionFn = Callable[[dict[str, Any]], list[str] | str]
# entry, image path -> 0-based camid (-1 unknown), or a reason string
CameraFn = Callable[[dict[str, Any], Path], int | str]


def locate(root: str | Path, names: list[str], what: str) -> Path:
    """The first of `names` found in `root` or in its only sub-folder holding one; else a DatasetError."""
    base = require_dir(absolute(root), what)
    for folder in [base] + [c for c in sorted(base.iterdir()) if c.is_dir()]:
        for n in names:
            if (folder / n).is_file():
                return folder / n
    raise DatasetError(f"{base}: no {' or '.join(names)} found; expected {what}")


def load_json_list(path: Path) -> list[dict[str, Any]]:
    """A JSON file holding a list of objects; raise naming the file otherwise."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: byte {e.start} is not UTF-8; expected a UTF-8 JSON file") from None
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e}); expected a list of annotation objects") from e
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise DatasetError(f"{path}: expected a non-empty JSON list of objects, got {type(data).__name__}")
    return data


def plain_captions(entry: dict[str, Any]) -> list[str] | str:
    """`captions` as a list of non-empty strings."""
    caps = entry.get("captions")
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        return "'captions' is not a list of strings"
    caps = [c.strip() for c in caps if c.strip()]
    return caps if caps else "no non-empty caption"


def build_text_split(
    name: str,
    ann_file: Path,
    entries: list[dict[str, Any]],
    *,
    path_key: str,
    image_root: Path,
    train_split: str,
    test_split: str,
    captions: CaptionFn = plain_captions,
    camera: CameraFn | None = None,
) -> Split:
    """Validate the entries of `train_split` and `test_split` and build the text-protocol Split."""
    present = sorted({str(e.get("split")) for e in entries})
    for which, s in (("train_split", train_split), ("test_split", test_split)):
        if s not in present:
            raise DatasetError(
                f"{ann_file}: no entries with split {s!r} ({which}); splits present: "
                f"{', '.join(present)}; pass {which}=<one of them>"
            )
    if train_split == test_split:
        raise DatasetError(
            f"{name}: train_split and test_split are both {train_split!r}; expected different splits"
        )
    ignored = sum(e.get("split") not in (train_split, test_split) for e in entries)
    if ignored:
        logger.info("%s: ignored %d entries of other splits", ann_file, ignored)

    bad = BadFiles(ann_file, f"entries with int 'id', '{path_key}' naming an existing image, and captions")
    parsed: dict[str, list[tuple[Path, int, int, list[str]]]] = {train_split: [], test_split: []}
    total = 0
    for i, e in enumerate(entries):
        split = e.get("split")
        if split not in parsed:
            continue
        total += 1
        rel, pid = e.get(path_key), e.get("id")
        if not isinstance(rel, str) or not rel:
            bad.add(f"entry {i}", f"no '{path_key}'")
            continue
        if not isinstance(pid, int) or isinstance(pid, bool):
            bad.add(f"entry {i} ({rel})", f"'id' is {pid!r}, expected an integer")
            continue
        caps = captions(e)
        if isinstance(caps, str):
            bad.add(f"entry {i} ({rel})", caps)
            continue
        path = image_root / rel
        if not path.is_file():
            bad.add(path, "missing image")
            continue
        cam = camera(e, path) if camera is not None else -1
        if isinstance(cam, str):
            bad.add(f"entry {i} ({rel})", cam)
            continue
        parsed[split].append((path, pid, cam, caps))
    bad.resolve(total)

    image_id = 0
    train: list[Record] = []
    query: list[Record] = []
    gallery: list[Record] = []
    for split, out in ((train_split, train), (test_split, query)):
        if not parsed[split]:
            raise DatasetError(f"{ann_file}: split {split!r} has no usable entries")
        for path, pid, cam, caps in parsed[split]:
            out += [Record(path=str(path), pid=pid, camid=cam, text=c, image_id=image_id) for c in caps]
            if split == test_split:
                gallery.append(Record(path=str(path), pid=pid, camid=cam, text=None, image_id=image_id))
            image_id += 1
    return Split(name=name, train=train, query=query, gallery=gallery, protocol="text")


def images_root(base: Path) -> Path:
    """`base/imgs` when it exists (the CUHK-PEDES layout), else `base`."""
    return base / "imgs" if (base / "imgs").is_dir() else base
