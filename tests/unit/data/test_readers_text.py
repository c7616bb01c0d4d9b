"""Image-text readers (CUHK-PEDES, ICFG-PEDES, RSTPReid) on tiny annotation files written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from reidkit.data.readers import DatasetError, read_split


def img(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), (10, 200, 30)).save(path)
    return path


def rows(records: list) -> list[tuple[str, int, int, str | None, int]]:
    return [(Path(r.path).name, r.pid, r.camid, r.text, r.image_id) for r in records]


PEDES = [
    {
        "split": "train",
        "id": 11,
        "file_path": "CUHK01/0001001.png",
        "captions": ["A man in red. "],
        "camid": 1,
    },
    {
        "split": "train",
        "id": 11,
        "file_path": "CUHK01/0001003.png",
        "captions": ["A man in a red coat."],
        "processed_tokens": [["a", "man", "in", "a", "red", "coat"], ["red", "coat", "black", "shoes"]],
        "camid": 2,
    },
    {"split": "val", "id": 12, "file_path": "CUHK01/0002001.png", "captions": ["Val only."], "camid": 1},
    {
        "split": "test",
        "id": 13,
        "file_path": "CUHK01/0003001.png",
        "captions": ["A woman.", "She has a bag."],
    },
    {"split": "test", "id": 14, "file_path": "CUHK01/0004003.png", "captions": ["A child."], "camid": 2},
]


def make_pedes(root: Path, entries: list[dict] = PEDES, name: str = "reid_raw.json") -> Path:
    for e in entries:
        img(root / "imgs" / e["file_path"])
    (root / name).write_text(json.dumps(entries))
    return root


def test_cuhkpedes_one_record_per_caption_and_tokenised_extras(tmp_path: Path) -> None:
    split = read_split("cuhkpedes", make_pedes(tmp_path))
    assert split.protocol == "text"
    assert rows(split.train) == [
        ("0001001.png", 11, 0, "A man in red.", 0),
        ("0001003.png", 11, 1, "A man in a red coat.", 1),
        ("0001003.png", 11, 1, "red coat black shoes", 1),  # second caption only in processed_tokens
    ]
    assert rows(split.query) == [
        ("0003001.png", 13, -1, "A woman.", 2),
        ("0003001.png", 13, -1, "She has a bag.", 2),
        ("0004003.png", 14, 1, "A child.", 3),
    ]
    assert rows(split.gallery) == [("0003001.png", 13, -1, None, 2), ("0004003.png", 14, 1, None, 3)]
    assert split.train[0].path == str(tmp_path / "imgs" / "CUHK01" / "0001001.png")


def test_cuhkpedes_split_options_and_caption_all(tmp_path: Path) -> None:
    make_pedes(tmp_path, name="caption_all.json")
    split = read_split("cuhkpedes", tmp_path, train_split="val")
    assert rows(split.train) == [("0002001.png", 12, 0, "Val only.", 0)]
    assert [r.image_id for r in split.gallery] == [1, 2]
    with pytest.raises(
        DatasetError, match="no entries with split 'training'.*splits present: test, train, val"
    ):
        read_split("cuhkpedes", tmp_path, train_split="training")


def test_cuhkpedes_synthetic_style_paths_relative_to_root(tmp_path: Path) -> None:
    # the synthetic dataset: Market layout + reid_raw.json with file_path relative to root, no imgs/
    entries = [
        {
            "split": "train",
            "id": 5,
            "file_path": "bounding_box_train/0005_c2s1_000000_00.jpg",
            "captions": ["a", "b"],
        },
        {"split": "test", "id": 6, "file_path": "query/0006_c1s1_000001_00.jpg", "captions": ["c", "d"]},
        {
            "split": "test",
            "id": 6,
            "file_path": "bounding_box_test/0006_c3s1_000002_00.jpg",
            "captions": ["e", "f"],
        },
    ]
    for e in entries:
        img(tmp_path / e["file_path"])
    (tmp_path / "reid_raw.json").write_text(json.dumps(entries))
    split = read_split("cuhkpedes", tmp_path)
    assert rows(split.train) == [
        ("0005_c2s1_000000_00.jpg", 5, 1, "a", 0),
        ("0005_c2s1_000000_00.jpg", 5, 1, "b", 0),
    ]
    assert [(r.pid, r.camid, r.image_id) for r in split.gallery] == [(6, 0, 1), (6, 2, 2)]
    assert [r.text for r in split.query] == ["c", "d", "e", "f"]
    assert split.train[0].path == str(tmp_path / "bounding_box_train" / "0005_c2s1_000000_00.jpg")


def test_icfgpedes(tmp_path: Path) -> None:
    entries = [
        {"split": "train", "id": 0, "file_path": "train/0000/0000_000_01_a_0015_0.jpg", "captions": ["man"]},
        {"split": "test", "id": 27, "file_path": "test/0027/0027_010_05_b_1582_1.jpg", "captions": ["woman"]},
    ]
    for e in entries:
        img(tmp_path / "imgs" / e["file_path"])
    (tmp_path / "ICFG-PEDES.json").write_text(json.dumps(entries))
    split = read_split("icfgpedes", tmp_path)
    assert rows(split.train) == [("0000_000_01_a_0015_0.jpg", 0, -1, "man", 0)]
    assert rows(split.query) == [("0027_010_05_b_1582_1.jpg", 27, -1, "woman", 1)]
    assert rows(split.gallery) == [("0027_010_05_b_1582_1.jpg", 27, -1, None, 1)]


def test_rstpreid_val_ignored_and_camera_from_name(tmp_path: Path) -> None:
    entries = [
        {"split": "train", "id": 0, "img_path": "0000_c14_0031.jpg", "captions": ["one", "two"]},
        {"split": "val", "id": 1, "img_path": "0001_c1_0001.jpg", "captions": ["three", "four"]},
        {"split": "test", "id": 2, "img_path": "0002_c3_0002.jpg", "captions": ["five", "six"]},
    ]
    for e in entries:
        img(tmp_path / "RSTPReid" / "imgs" / e["img_path"])
    (tmp_path / "RSTPReid" / "data_captions.json").write_text(json.dumps(entries))
    split = read_split("rstpreid", tmp_path)  # found in the single sub-folder
    assert rows(split.train) == [
        ("0000_c14_0031.jpg", 0, 13, "one", 0),
        ("0000_c14_0031.jpg", 0, 13, "two", 0),
    ]
    assert rows(split.gallery) == [("0002_c3_0002.jpg", 2, 2, None, 1)]
    assert [r.text for r in split.query] == ["five", "six"]
    val = read_split("rstpreid", tmp_path, test_split="val")
    assert {r.pid for r in val.query} == {1}
