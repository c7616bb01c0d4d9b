"""Readers on the real subsets in ../shared/data with the counts stated in each SOURCE.md (file lists only,
no decoding, so these run in the default suite; skipped when the data is absent)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from reidkit.data.readers import read_split

SHARED = Path(
    os.environ.get("REIDKIT_SHARED_DATA") or Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
)


def dataset(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"real data {path} not present (set REIDKIT_SHARED_DATA to the shared data folder)")
    return Path(os.path.abspath(path))  # readers give normalised absolute paths


def counts(split, part: str) -> tuple[int, int, dict[int, int]]:
    s = split.stats()[part]
    return s["ids"], s["images"], s["cameras"]


def test_cuhk03_detected_counts_and_labels() -> None:
    root = dataset("cuhk03_detected")
    split = read_split("cuhk03", root)
    assert split.protocol == "reid"
    assert counts(split, "train") == (550, 5272, {0: 2587, 1: 2685})
    assert counts(split, "query") == (550, 1095, {0: 550, 1: 545})
    assert counts(split, "gallery") == (550, 4171, {0: 2032, 1: 2139})
    assert not {r.pid for r in split.train} & {r.pid for r in split.gallery}
    # every record agrees with its labels.csv row (camid 1/2 -> 0/1)
    with open(root / "labels.csv", newline="") as fh:
        labels = {
            str(root / row["path"]): (int(row["pid"]), int(row["camid"]) - 1) for row in csv.DictReader(fh)
        }
    records = split.train + split.query + split.gallery
    assert len(records) == len(labels) == 10538
    assert all(labels[r.path] == (r.pid, r.camid) for r in records)


def test_cuhk01_counts() -> None:
    split = read_split("cuhk01", dataset("cuhk01"))
    assert counts(split, "train") == (364, 1456, {0: 728, 1: 728})
    assert counts(split, "query") == (364, 728, {0: 364, 1: 364})
    assert counts(split, "gallery") == (364, 728, {0: 364, 1: 364})
    for r in split.query[:50]:  # PPPPIII: 001/002 camera 1 -> camid 0
        stem = Path(r.path).stem
        assert (int(stem[:4]), (int(stem[4:]) - 1) // 2) == (r.pid, r.camid)


def test_cuhk_pedes_cuhk01_counts_and_captions() -> None:
    root = dataset("cuhk_pedes_cuhk01")
    split = read_split("cuhkpedes", root, train_split="val")
    assert split.protocol == "text"
    train, query, gallery = (split.stats()[p] for p in ("train", "query", "gallery"))
    assert (train["ids"], train["images"], train["captions"]) == (62, 248, 496)
    assert (query["ids"], query["images"], query["captions"]) == (60, 240, 480)
    assert (gallery["ids"], gallery["images"], gallery["records"], gallery["captions"]) == (60, 240, 240, 0)
    # the second caption of each image is its second token list (as in `captions_from_tokens`)
    entries = {
        str(root / "imgs" / e["file_path"]): e for e in json.loads((root / "reid_raw.json").read_text())
    }
    by_image: dict[int, list] = {}
    for r in split.train + split.query:
        by_image.setdefault(r.image_id, []).append(r)
    assert len(by_image) == 488 and all(len(v) == 2 for v in by_image.values())
    for recs in list(by_image.values())[:100]:
        e = entries[recs[0].path]
        assert recs[0].text == e["captions"][0].strip()
        assert recs[1].text == e["captions_from_tokens"][1]
        assert {r.pid for r in recs} == {e["id"]} and {r.camid for r in recs} == {e["camid"] - 1}
    gallery_ids = {r.image_id: r.path for r in split.gallery}
    assert all(gallery_ids[r.image_id] == r.path for r in split.query)


def test_cub_subset_class_split() -> None:
    split = read_split("cub", dataset("cub200_2011_subset"))
    assert split.protocol == "fine_grained"
    assert sorted({r.pid for r in split.train}) == list(range(1, 16)) and len(split.train) == 300
    assert sorted({r.pid for r in split.query}) == list(range(16, 31)) and len(split.query) == 300
    assert split.gallery == split.query
    assert all(Path(r.path).parent.name.startswith(f"{r.pid:03d}.") for r in split.train + split.query)
