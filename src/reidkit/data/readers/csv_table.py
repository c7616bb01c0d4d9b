"""Custom data described by CSV files (paths relative to the CSV's folder, or absolute).

Layout (a): `root` is one CSV file with columns `path,pid,camid,split[,caption]`, split in
train/query/gallery (also bounding_box_train, bounding_box_test, test = gallery).
Layout (b): `root` is a folder with `query.csv` and `gallery.csv` (and optionally `train.csv`), columns
`path,pid,camid[,caption]`.

camid is 0-based as written; empty or -1 means no camera. When the query rows have captions the split is
a text split (protocol "text"): one record per row in train and query, gallery = one record per unique
image (`text=None`); `image_id` numbers the unique images. Otherwise it is a re-id split.
"""

from __future__ import annotations

import logging
from pathlib import Path

from reidkit.data.readers._common import (
    BadFiles,
    DatasetError,
    absolute,
    parse_int,
    read_csv_rows,
    require_nonempty,
)
from reidkit.types import Record, Split

logger = logging.getLogger(__name__)

SPLITS = {
    "train": "train",
    "bounding_box_train": "train",
    "query": "query",
    "gallery": "gallery",
    "bounding_box_test": "gallery",
    "test": "gallery",
}
PARTS = ("train", "query", "gallery")
Row = tuple[Path, int, int, str | None, str]  # path, pid, camid, caption, where


def _rows(csv_file: Path, part: str | None) -> dict[str, list[Row]]:
    """Validated rows of one CSV, by part (`part` given: the file holds only that part)."""
    rows = read_csv_rows(csv_file, ["path", "pid", "camid"] + ([] if part else ["split"]))
    bad = BadFiles(csv_file, "rows with an existing image path, int pid/camid and a known split")
    out: dict[str, list[Row]] = {p: [] for p in PARTS}
    for i, row in enumerate(rows, 2):  # line 1 is the header
        where = f"{csv_file} line {i}"
        this = part or SPLITS.get(row["split"])
        if this is None:
            bad.add(f"line {i}: {row['path']}", f"split {row['split']!r} is not one of {sorted(SPLITS)}")
            continue
        if not row["path"]:
            bad.add(f"line {i}", "empty path")
            continue
        path = absolute(csv_file.parent / row["path"])
        if not path.is_file():
            bad.add(path, "missing image")
            continue
        pid = parse_int(row["pid"], "pid", where)
        cam = parse_int(row["camid"], "camid", where) if row["camid"] else -1
        if cam < -1:
            raise DatasetError(f"{where}: camid {cam}; expected a 0-based camera id, or -1/empty for none")
        caption = row.get("caption") or None
        out[this].append((path, pid, cam, caption, where))
    bad.resolve(len(rows))
    return out


def read_csv(root: str | Path) -> Split:
    """Read custom data from one CSV with a split column, or from train/query/gallery CSV files."""
    base = absolute(root)
    if base.is_file():
        rows = _rows(base, None)
        source: dict[str, Path] = dict.fromkeys(PARTS, base)
    elif base.is_dir():
        rows = {p: [] for p in PARTS}
        source = {p: base / f"{p}.csv" for p in PARTS}
        for part in ("query", "gallery"):
            if not source[part].is_file():
                raise DatasetError(
                    f"{source[part]}: does not exist; expected a CSV with columns path,pid,camid[,caption]"
                )
        if not source["train"].is_file():
            logger.warning("%s: no train.csv; the data can be used for evaluation only", base)
        for part in PARTS:
            if source[part].is_file():
                rows[part] = _rows(source[part], part)[part]
    else:
        raise DatasetError(
            f"{base}: does not exist; expected a CSV file or a folder with query.csv, gallery.csv"
        )
    for part in ("query", "gallery"):
        require_nonempty(rows[part], part, source[part], f"rows for the {part}")
    text = any(r[3] is not None for r in rows["query"])
    image_ids: dict[Path, int] = {}
    for part in PARTS:
        for r in rows[part]:
            image_ids.setdefault(r[0], len(image_ids))
    parts: dict[str, list[Record]] = {}
    for part in PARTS:
        if text and part != "gallery":
            missing = [r[4] for r in rows[part] if r[3] is None]
            if missing:
                raise DatasetError(
                    f"{missing[0]}: no caption ({len(missing)} {part} rows lack one); a text "
                    f"split needs a caption in every train and query row"
                )
        if text and part == "gallery":
            seen: dict[Path, Row] = {}
            for r in rows[part]:
                seen.setdefault(r[0], r)
            recs = [Record(str(p), pid, cam, None, image_ids[p]) for p, pid, cam, _, _ in seen.values()]
        else:
            recs = [Record(str(p), pid, cam, cap, image_ids[p]) for p, pid, cam, cap, _ in rows[part]]
        parts[part] = recs
    return Split(
        name=base.stem,
        train=parts["train"],
        query=parts["query"],
        gallery=parts["gallery"],
        protocol="text" if text else "reid",
    )
