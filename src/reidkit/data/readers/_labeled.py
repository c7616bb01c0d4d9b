"""Market-style split folders with dataset-specific names, optionally labelled by a `labels.csv`.

Shared by the CUHK03 (folder + labels.csv) and CUHK01 readers: `labels.csv` (columns path, split, pid,
camid, ...) is the source of truth when present and is cross-checked against the folders and the names.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path

from reidkit.data.readers._common import (
    SHOW_FIRST,
    BadFiles,
    DatasetError,
    list_images,
    make_records,
    parse_folder,
    parse_int,
    read_csv_rows,
    require_dir,
    require_nonempty,
)
from reidkit.types import Record, Split

logger = logging.getLogger(__name__)

SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
SPLIT_NAMES = {
    "bounding_box_train": "train",
    "train": "train",
    "query": "query",
    "bounding_box_test": "gallery",
    "gallery": "gallery",
    "test": "gallery",
}
Parse = Callable[[str], tuple[int, int] | str]


def has_split_folders(root: Path) -> bool:
    """True when `root` holds the three Market-style split folders."""
    return all((root / f).is_dir() for f in SPLIT_FOLDERS.values())


def read_labeled_folders(root: Path, name: str, parse: Parse, expected: str, camera_base: int = 1) -> Split:
    """Read split folders; with `root/labels.csv` use its pid/camid (camid `camera_base`-based -> 0-based)
    and check each row against the files and the name, else parse the names."""
    folders = {
        part: require_dir(root / sub, f"the {part} images of {name} (files named {expected})")
        for part, sub in SPLIT_FOLDERS.items()
    }
    labels = root / "labels.csv"
    if not labels.exists():
        parts = {
            part: require_nonempty(
                make_records(parse_folder(folder, parse, expected)), part, folder, expected
            )
            for part, folder in folders.items()
        }
        return Split(name=name, train=parts["train"], query=parts["query"], gallery=parts["gallery"])

    rows = read_csv_rows(labels, ["path", "split", "pid", "camid"])
    on_disk = {part: {p.name: p for p in list_images(folder)} for part, folder in folders.items()}
    bad = BadFiles(labels, "rows naming an existing image in the folder of their split, with int pid/camid")
    items: dict[str, list[tuple[Path, int, int]]] = {part: [] for part in SPLIT_FOLDERS}
    listed: set[Path] = set()
    for i, row in enumerate(rows, 2):  # line 1 is the header
        where = f"{labels} line {i}"
        part = SPLIT_NAMES.get(row["split"])
        if part is None:
            bad.add(f"line {i}: {row['path']}", f"split {row['split']!r} is not one of {sorted(SPLIT_NAMES)}")
            continue
        rel = Path(row["path"])
        if rel.parent.name != SPLIT_FOLDERS[part]:
            bad.add(f"line {i}: {rel}", f"split {row['split']!r} but not in {SPLIT_FOLDERS[part]}/")
            continue
        path = on_disk[part].get(rel.name)
        if path is None:
            bad.add(root / rel, "missing image")
            continue
        pid = parse_int(row["pid"], "pid", where)
        cam = parse_int(row["camid"], "camid", where) - camera_base
        if cam < 0:
            bad.add(f"line {i}: {rel}", f"camid {row['camid']} is below {camera_base}")
            continue
        got = parse(path.stem)
        if not isinstance(got, str) and got != (pid, cam):
            bad.add(
                f"line {i}: {rel}",
                f"name says pid {got[0]} camid {got[1] + camera_base}, "
                f"labels say pid {pid} camid {cam + camera_base}",
            )
            continue
        listed.add(path)
        items[part].append((path, pid, cam))
    bad.resolve(len(rows))
    unlisted = sorted(str(p) for files in on_disk.values() for p in files.values() if p not in listed)
    if unlisted:
        logger.warning(
            "%s: %d images in the split folders are not listed and were ignored: %s",
            labels,
            len(unlisted),
            ", ".join(unlisted[:SHOW_FIRST]),
        )
    parts = {
        part: require_nonempty(make_records(sorted(items[part])), part, labels, f"rows with split {part}")
        for part in SPLIT_FOLDERS
    }
    return Split(name=name, train=parts["train"], query=parts["query"], gallery=parts["gallery"])


def two_camera_split(
    records: list[Record], name: str, source: Path, seed: int, num_train_ids: int | None
) -> Split:
    """Random identity split of two-camera data: test identities give camera 0 as query, camera 1 as
    gallery; identities seen by only one camera go to train (with a warning)."""
    cams_of: dict[int, set[int]] = {}
    for r in records:
        cams_of.setdefault(r.pid, set()).add(r.camid)
    both = sorted(pid for pid, cams in cams_of.items() if cams == {0, 1})
    single = sorted(set(cams_of) - set(both))
    if single:
        logger.warning(
            "%s: %d identities are seen by one camera only and were put in train: %s",
            source,
            len(single),
            ", ".join(map(str, single[:SHOW_FIRST])),
        )
    n_train = len(both) // 2 if num_train_ids is None else num_train_ids
    if not 0 < n_train < len(both):
        raise DatasetError(
            f"{source}: num_train_ids={n_train} but {len(both)} identities have both "
            f"cameras; expected 1..{len(both) - 1}"
        )
    order = list(both)
    random.Random(seed).shuffle(order)
    train_ids = set(order[:n_train]) | set(single)
    train = [r for r in records if r.pid in train_ids]
    query = [r for r in records if r.pid not in train_ids and r.camid == 0]
    gallery = [r for r in records if r.pid not in train_ids and r.camid == 1]
    return Split(name=name, train=train, query=query, gallery=gallery, protocol="reid")
