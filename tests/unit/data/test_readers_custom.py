"""Custom-data readers: `folder` (named images) and `csv`, with and without cameras and captions."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image

from reidkit.data.readers import DatasetError, read_split
from reidkit.data.readers.folder import parse_folder_name


def img(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), (90, 90, 90)).save(path)
    return path


def triples(records: list) -> list[tuple[str, int, int]]:
    return sorted((Path(r.path).name, r.pid, r.camid) for r in records)


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("12_c1_0003", (12, 0)),
        ("12_c3", (12, 2)),
        ("0002_c1s1_000451_03", (2, 0)),
        ("12_0003", (12, -1)),
        ("12", (12, -1)),
        ("12_cat", (12, -1)),
        ("-1_c2_x", (-1, 1)),
    ],
)
def test_folder_name_parsing(stem: str, expected: tuple[int, int]) -> None:
    assert parse_folder_name(stem) == expected


@pytest.mark.parametrize("stem", ["abc_c1", "12abc", "12_c1x", "12_c0_1"])
def test_folder_name_parsing_rejects(stem: str) -> None:
    assert isinstance(parse_folder_name(stem), str)


def test_folder_with_cameras_and_id_subfolders(tmp_path: Path) -> None:
    for rel in [
        "train/7/7_c1_a.jpg",
        "train/7/7_c2_b.jpg",
        "train/8/8_c1_a.png",
        "query/3_c1_q.jpg",
        "gallery/3_c2_g.jpg",
        "gallery/-1_c1_junk.jpg",
    ]:
        img(tmp_path / rel)
    split = read_split("folder", tmp_path)
    assert triples(split.train) == [("7_c1_a.jpg", 7, 0), ("7_c2_b.jpg", 7, 1), ("8_c1_a.png", 8, 0)]
    assert triples(split.query) == [("3_c1_q.jpg", 3, 0)]
    assert triples(split.gallery) == [("3_c2_g.jpg", 3, 1)]
    assert split.protocol == "reid"


def test_folder_without_cameras_and_without_train(tmp_path: Path, caplog) -> None:
    for rel in ["query/4_x.jpg", "gallery/4_y.jpg", "gallery/5.jpg"]:
        img(tmp_path / rel)
    with caplog.at_level(logging.WARNING):
        split = read_split("folder", tmp_path)
    assert split.train == [] and "evaluation only" in caplog.text
    assert triples(split.query) == [("4_x.jpg", 4, -1)]
    assert triples(split.gallery) == [("4_y.jpg", 4, -1), ("5.jpg", 5, -1)]


def test_folder_camera_base_zero_and_mixed_cameras(tmp_path: Path) -> None:
    for rel in ["query/1_c0_a.jpg", "bounding_box_test/1_c1_b.jpg"]:
        img(tmp_path / rel)
    split = read_split("folder", tmp_path, camera_base="0")
    assert triples(split.query) == [("1_c0_a.jpg", 1, 0)] and triples(split.gallery) == [("1_c1_b.jpg", 1, 1)]
    img(tmp_path / "bounding_box_test" / "1_nocam.jpg")
    with pytest.raises(DatasetError, match="1_nocam.jpg"):
        read_split("folder", tmp_path, camera_base=0)


def test_csv_single_file_with_split_column(tmp_path: Path) -> None:
    for rel in ["imgs/a.jpg", "imgs/b.jpg", "imgs/c.jpg", "imgs/d.jpg"]:
        img(tmp_path / rel)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "data.csv").write_text(
        "path,pid,camid,split\n../imgs/a.jpg,1,0,train\n../imgs/b.jpg,2,,query\n"
        f"{tmp_path / 'imgs' / 'c.jpg'},2,1,gallery\n../imgs/d.jpg,3,-1,bounding_box_test\n"
    )
    split = read_split("csv", tmp_path / "meta" / "data.csv")
    assert triples(split.train) == [("a.jpg", 1, 0)]
    assert triples(split.query) == [("b.jpg", 2, -1)]
    assert triples(split.gallery) == [("c.jpg", 2, 1), ("d.jpg", 3, -1)]
    assert split.protocol == "reid" and split.train[0].path == str(tmp_path / "imgs" / "a.jpg")


def test_csv_three_files_with_captions_is_text(tmp_path: Path) -> None:
    for n in ["a.jpg", "b.jpg", "c.jpg"]:
        img(tmp_path / n)
    (tmp_path / "train.csv").write_text(
        "path,pid,camid,caption\na.jpg,1,0,a red coat\na.jpg,1,0,red jacket\n"
    )
    (tmp_path / "query.csv").write_text(
        "path,pid,camid,caption\nb.jpg,2,0,blue dress\nc.jpg,2,1,blue skirt\n"
    )
    (tmp_path / "gallery.csv").write_text("path,pid,camid,caption\nb.jpg,2,0,\nc.jpg,2,1,\nc.jpg,2,1,\n")
    split = read_split("csv", tmp_path)
    assert split.protocol == "text"
    assert [(Path(r.path).name, r.text, r.image_id) for r in split.train] == [
        ("a.jpg", "a red coat", 0),
        ("a.jpg", "red jacket", 0),
    ]
    assert [(Path(r.path).name, r.text, r.image_id) for r in split.query] == [
        ("b.jpg", "blue dress", 1),
        ("c.jpg", "blue skirt", 2),
    ]
    # one gallery record per unique image, no text, same image ids as the captions
    assert [(Path(r.path).name, r.text, r.image_id) for r in split.gallery] == [
        ("b.jpg", None, 1),
        ("c.jpg", None, 2),
    ]
