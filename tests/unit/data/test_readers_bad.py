"""Bad input at the reader level: every error (or warning, for a few bad files in a large set) names the
offending file and what was expected."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from reidkit.data.readers import DatasetError, read_split


def img(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), (1, 2, 3)).save(path)
    return path


def make_market(root: Path, n_train: int = 2) -> Path:
    for i in range(n_train):
        img(root / "bounding_box_train" / f"{i + 1:04d}_c1s1_{i:06d}_00.jpg")
    img(root / "query" / "0001_c1s1_000001_00.jpg")
    img(root / "bounding_box_test" / "0001_c2s1_000002_00.jpg")
    return root


def test_missing_split_folder_named(tmp_path: Path) -> None:
    make_market(tmp_path)
    (tmp_path / "query" / "0001_c1s1_000001_00.jpg").unlink()
    (tmp_path / "query").rmdir()
    with pytest.raises(DatasetError, match=r"missing query; expected Market-1501 folders"):
        read_split("market1501", tmp_path)
    with pytest.raises(DatasetError, match=r"detected/\{bounding_box_train"):
        read_split("cuhk03", tmp_path)
    with pytest.raises(DatasetError, match=r"no query/ folder"):
        read_split("folder", tmp_path)


def test_unparseable_name_in_small_set_is_an_error(tmp_path: Path) -> None:
    make_market(tmp_path)
    img(tmp_path / "query" / "holiday_photo.jpg")
    with pytest.raises(DatasetError) as e:
        read_split("market1501", tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "query") in msg and "holiday_photo.jpg" in msg and "'<pid>_c<camera>" in msg


def test_few_unparseable_names_in_large_set_warn_with_count(tmp_path: Path, caplog) -> None:
    make_market(tmp_path, n_train=150)
    img(tmp_path / "bounding_box_train" / "stray.jpg")
    with caplog.at_level(logging.WARNING):
        split = read_split("market1501", tmp_path)
    assert len(split.train) == 150
    assert "1 of 151 entries" in caplog.text and "stray.jpg" in caplog.text


def test_camera_zero_in_market_name(tmp_path: Path) -> None:
    make_market(tmp_path)
    img(tmp_path / "bounding_box_test" / "0001_c0s1_000003_00.jpg")
    with pytest.raises(
        DatasetError, match=r"0001_c0s1_000003_00.jpg \(camera c0: cameras are numbered from c1\)"
    ):
        read_split("market1501", tmp_path)


def test_empty_split_folder_and_junk_only_part(tmp_path: Path) -> None:
    make_market(tmp_path)
    (tmp_path / "bounding_box_test" / "0001_c2s1_000002_00.jpg").unlink()
    with pytest.raises(DatasetError, match=rf"{tmp_path / 'bounding_box_test'}: no image files"):
        read_split("market1501", tmp_path)
    img(tmp_path / "bounding_box_test" / "-1_c2s1_000002_00.jpg")
    with pytest.raises(DatasetError, match=r"bounding_box_test: the gallery part is empty"):
        read_split("market1501", tmp_path)


def test_labels_csv_row_pointing_at_missing_image(tmp_path: Path) -> None:
    rows = [
        "bounding_box_train/0000_00.jpg,bounding_box_train,0,1",
        "query/0001_00.jpg,query,1,1",
        "bounding_box_test/0001_05.jpg,bounding_box_test,1,2",
    ]
    for r in rows:
        img(tmp_path / r.split(",")[0])
    rows.append("bounding_box_test/0001_06.jpg,bounding_box_test,1,2")  # not on disk
    (tmp_path / "labels.csv").write_text("path,split,pid,camid\n" + "\n".join(rows) + "\n")
    with pytest.raises(DatasetError) as e:
        read_split("cuhk03", tmp_path)
    assert str(tmp_path / "labels.csv") in str(e.value)
    assert str(tmp_path / "bounding_box_test" / "0001_06.jpg") + " (missing image)" in str(e.value)


def test_labels_csv_disagreeing_with_name(tmp_path: Path) -> None:
    rows = [
        "bounding_box_train/0000_00.jpg,bounding_box_train,0,1",
        "query/0001_00.jpg,query,1,2",  # slot 00 is camera 1
        "bounding_box_test/0001_05.jpg,bounding_box_test,1,2",
    ]
    for r in rows:
        img(tmp_path / r.split(",")[0])
    (tmp_path / "labels.csv").write_text("path,split,pid,camid\n" + "\n".join(rows) + "\n")
    with pytest.raises(
        DatasetError, match=r"line 3: query/0001_00.jpg \(name says pid 1 camid 1, labels say"
    ):
        read_split("cuhk03", tmp_path)


def test_csv_missing_column_and_bad_integer(tmp_path: Path) -> None:
    img(tmp_path / "a.jpg")
    (tmp_path / "data.csv").write_text("path,pid,split\na.jpg,1,query\n")
    with pytest.raises(DatasetError, match=rf"{tmp_path / 'data.csv'}: missing column\(s\) camid"):
        read_split("csv", tmp_path / "data.csv")
    (tmp_path / "data.csv").write_text("path,pid,camid,split\na.jpg,one,0,query\n")
    with pytest.raises(DatasetError, match=rf"{tmp_path / 'data.csv'} line 2: field 'pid' is 'one'"):
        read_split("csv", tmp_path / "data.csv")


def test_csv_missing_image_and_missing_part_file(tmp_path: Path) -> None:
    img(tmp_path / "a.jpg")
    (tmp_path / "query.csv").write_text("path,pid,camid\na.jpg,1,0\nghost.jpg,1,1\n")
    (tmp_path / "gallery.csv").write_text("path,pid,camid\na.jpg,1,0\n")
    with pytest.raises(
        DatasetError, match=rf"{tmp_path / 'query.csv'}.*{tmp_path / 'ghost.jpg'} \(missing image\)"
    ):
        read_split("csv", tmp_path)
    (tmp_path / "query.csv").write_text("path,pid,camid\na.jpg,1,0\n")
    (tmp_path / "gallery.csv").unlink()
    with pytest.raises(DatasetError, match=rf"{tmp_path / 'gallery.csv'}: does not exist"):
        read_split("csv", tmp_path)


def _pedes(root: Path, entries: list[dict], make: bool = True) -> None:
    for e in entries:
        if make:
            img(root / "imgs" / e["file_path"])
    (root / "reid_raw.json").write_text(json.dumps(entries))


def test_caption_file_pointing_at_missing_image(tmp_path: Path) -> None:
    entries = [
        {"split": "train", "id": 1, "file_path": "a/1.png", "captions": ["x"]},
        {"split": "test", "id": 2, "file_path": "a/2.png", "captions": ["y"]},
    ]
    _pedes(tmp_path, entries)
    entries.append({"split": "test", "id": 3, "file_path": "a/3.png", "captions": ["z"]})
    _pedes(tmp_path, entries, make=False)
    with pytest.raises(DatasetError) as e:
        read_split("cuhkpedes", tmp_path)
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / "reid_raw.json")) and str(tmp_path / "imgs" / "a" / "3.png") in msg


def test_caption_entry_without_captions_or_bad_camid(tmp_path: Path) -> None:
    entries = [
        {"split": "train", "id": 1, "file_path": "a/1.png", "captions": ["x"]},
        {"split": "test", "id": 2, "file_path": "a/2.png", "captions": []},
    ]
    _pedes(tmp_path, entries)
    with pytest.raises(
        DatasetError, match=r"reid_raw.json: 1 of 2 entries.*entry 1 \(a/2.png\) \(no non-empty caption\)"
    ):
        read_split("cuhkpedes", tmp_path)
    entries[1] = {"split": "test", "id": 2, "file_path": "a/2.png", "captions": ["y"], "camid": 0}
    _pedes(tmp_path, entries)
    with pytest.raises(DatasetError, match=r"a/2.png\) \('camid' is 0, expected an integer >= 1"):
        read_split("cuhkpedes", tmp_path)


def test_invalid_json_and_missing_annotation(tmp_path: Path) -> None:
    (tmp_path / "ICFG-PEDES.json").write_text("[{'split': 'train'")
    with pytest.raises(DatasetError, match=rf"{tmp_path / 'ICFG-PEDES.json'}: not valid JSON"):
        read_split("icfgpedes", tmp_path)
    with pytest.raises(DatasetError, match=rf"{tmp_path}: no data_captions.json found"):
        read_split("rstpreid", tmp_path)


def test_msmt17_list_pointing_at_missing_image(tmp_path: Path) -> None:
    for name, folder in [("list_train.txt", "train"), ("list_val.txt", "train"), ("list_query.txt", "test"),
                         ("list_gallery.txt", "test")]:  # fmt: skip
        rel = f"0001/0001_000_0{len(name) % 9 + 1}_x_0001_0.jpg"
        img(tmp_path / folder / rel)
        (tmp_path / name).write_text(f"{rel} 1\n")
    (tmp_path / "list_gallery.txt").write_text(
        "0001/0001_000_03_x_0001_0.jpg 1\n0009/0009_000_02_x_0009_0.jpg 9\n"
    )
    with pytest.raises(DatasetError, match=rf"list_gallery.txt.*{tmp_path / 'test' / '0009'}"):
        read_split("msmt17", tmp_path)


def test_cub_image_without_label(tmp_path: Path) -> None:
    base = tmp_path / "CUB_200_2011"
    for rel in ["001.A/a.jpg", "002.B/b.jpg", "002.B/c.jpg"]:
        img(base / "images" / rel)
    (base / "images.txt").write_text("1 001.A/a.jpg\n2 002.B/b.jpg\n3 002.B/c.jpg\n")
    (base / "image_class_labels.txt").write_text("1 1\n2 2\n")
    with pytest.raises(
        DatasetError, match=r"images.txt: 1 of 3 entries.*image 3 \(002.B/c.jpg\) \(no label in"
    ):
        read_split("cub", tmp_path)
    (base / "image_class_labels.txt").unlink()
    with pytest.raises(DatasetError, match=rf"{base / 'image_class_labels.txt'}: does not exist"):
        read_split("cub", tmp_path)


def test_cars_car_ims_without_annotation(tmp_path: Path) -> None:
    img(tmp_path / "car_ims" / "000001.jpg")
    with pytest.raises(DatasetError, match=rf"{tmp_path / 'cars_annos.mat'}: does not exist"):
        read_split("cars", tmp_path)


def test_aircraft_missing_list(tmp_path: Path) -> None:
    data = tmp_path / "data"
    img(data / "images" / "1.jpg")
    (data / "images_variant_train.txt").write_text("1 A320\n")
    with pytest.raises(DatasetError, match=rf"{data / 'images_variant_val.txt'}: does not exist"):
        read_split("aircraft", tmp_path)


def test_latin1_csv_and_json_name_the_file(tmp_path: Path) -> None:
    table = tmp_path / "data.csv"
    table.write_bytes("path,pid,camid,split\ncaf\xe9.jpg,1,0,query\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"data.csv: byte 24 is not UTF-8; save the CSV as UTF-8"):
        read_split("csv", table)
    (tmp_path / "reid_raw.json").write_bytes('[{"file_path": "caf\xe9.png"}]'.encode("latin-1"))
    with pytest.raises(DatasetError, match=r"reid_raw.json: byte \d+ is not UTF-8"):
        read_split("cuhkpedes", tmp_path)


def test_non_utf8_file_name_is_refused_when_read(tmp_path: Path) -> None:
    root = make_market(tmp_path / "m")
    bad = root.as_posix().encode() + b"/bounding_box_train/0003_c1s1_000003_00_\xff.jpg"
    img(Path(bad.decode("utf-8", "surrogateescape")))
    with pytest.raises(DatasetError, match=r"000003_00_\ufffd.jpg: the file name is not valid UTF-8"):
        read_split("market1501", root)
