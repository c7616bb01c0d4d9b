"""check_dataset / format_report on tiny trees: every problem is reported and names the offending file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidkit.data.check import CheckResult, check_dataset, format_report
from reidkit.data.readers import read_split


def img(path: Path, seed: int = 0, fmt: str | None = None) -> Path:
    """A 16x32 noise image (noise so that JPEG files have enough bytes to truncate, and differ by seed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, size=(32, 16, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def make_market(root: Path) -> Path:
    names = {
        "bounding_box_train": [
            "0002_c1s1_000001_00.jpg",
            "0002_c2s1_000002_00.jpg",
            "0004_c1s1_000003_00.jpg",
        ],
        "query": ["0001_c1s1_000004_00.jpg", "0003_c2s1_000005_00.jpg"],
        "bounding_box_test": [
            "0001_c2s1_000006_00.jpg",
            "0003_c1s1_000007_00.jpg",
            "0000_c1s1_000008_00.jpg",
        ],
    }
    seed = 0
    for folder, ns in names.items():
        for n in ns:
            seed += 1
            img(root / folder / n, seed)
    return root


def one_error_naming(result: CheckResult, *needles: str) -> str:
    assert not result.ok
    hits = [e for e in result.errors if all(n in e for n in needles)]
    assert hits, f"no error naming {needles}: {result.errors}"
    return hits[0]


def test_clean_dataset_is_ok_with_reader_statistics(tmp_path: Path) -> None:
    root = make_market(tmp_path)
    result = check_dataset(root, "market1501")
    assert result.ok and result.errors == [] and result.warnings == []
    assert result.split_stats == read_split("market1501", root).stats()
    assert result.split_stats["gallery"] == {
        "ids": 3,
        "images": 3,
        "records": 3,
        "captions": 0,
        "cameras": {0: 2, 1: 1},
    }
    assert result.images_checked == 8
    assert result.image_sizes == {"min": (16, 32), "median": (16, 32), "max": (16, 32)}
    report = format_report(result)
    assert report.splitlines()[-1] == "OK"
    assert any(line.split()[:5] == ["gallery", "3", "3", "3", "0"] for line in report.splitlines())


def test_truncated_and_non_image_files_are_errors_naming_them(tmp_path: Path) -> None:
    root = make_market(tmp_path)
    victim = root / "bounding_box_test" / "0001_c2s1_000006_00.jpg"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # truncated JPEG
    (root / "query" / "0003_c2s1_000005_00.jpg").write_text("this is not an image")
    result = check_dataset(root, "market1501")
    msg = one_error_naming(result, "2 of 8 images cannot be read", str(victim))
    assert str(root / "query" / "0003_c2s1_000005_00.jpg") in msg
    assert "truncated" in msg
    report = format_report(result)
    assert str(victim) in report and report.splitlines()[-1] == "FAILED: 1 error(s)"
    # without decoding the reader's structural checks pass: the damage is only found by decoding
    assert check_dataset(root, "market1501", decode_images=False).ok


def test_truncated_png_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for rel, seed in [("query/1_c1_a.png", 1), ("gallery/1_c2_b.png", 2), ("train/2_c1_c.png", 3)]:
        img(root / rel, seed)
    victim = root / "gallery" / "1_c2_b.png"
    victim.write_bytes(victim.read_bytes()[:-40])
    one_error_naming(check_dataset(root, "folder"), str(victim))


def test_query_identity_missing_from_gallery(tmp_path: Path) -> None:
    root = make_market(tmp_path)
    lonely = img(root / "query" / "0009_c1s1_000010_00.jpg", 99)
    msg = one_error_naming(
        check_dataset(root, "market1501"), "1 query identities never appear in the gallery"
    )
    assert str(lonely) in msg and "pid 9" in msg


def test_same_camera_only_match_is_a_warning(tmp_path: Path) -> None:
    root = make_market(tmp_path)
    img(root / "query" / "0005_c3s1_000010_00.jpg", 50)
    img(root / "bounding_box_test" / "0005_c3s1_000011_00.jpg", 51)
    result = check_dataset(root, "market1501")
    assert result.ok
    assert any("own camera" in w and "0005_c3s1_000010_00.jpg" in w for w in result.warnings)


def test_missing_folder_is_reported_not_raised(tmp_path: Path) -> None:
    root = make_market(tmp_path)
    for f in (root / "query").iterdir():
        f.unlink()
    (root / "query").rmdir()
    result = check_dataset(root, "market1501")
    assert result.split_stats is None
    one_error_naming(result, str(root), "missing query")
    assert "FAILED" in format_report(result)


def test_empty_split_is_reported(tmp_path: Path) -> None:
    root = make_market(tmp_path)
    for f in (root / "bounding_box_test").iterdir():
        f.unlink()
    one_error_naming(check_dataset(root, "market1501"), str(root / "bounding_box_test"), "no image files")


def test_caption_file_pointing_at_missing_images(tmp_path: Path) -> None:
    entries = [
        {"split": "train", "id": 1, "file_path": "p/1.jpg", "captions": ["red"]},
        {"split": "test", "id": 2, "file_path": "p/2.jpg", "captions": ["blue"]},
    ]
    for e in entries:
        img(tmp_path / "imgs" / e["file_path"])
    entries.append({"split": "test", "id": 2, "file_path": "p/gone.jpg", "captions": ["green"]})
    (tmp_path / "reid_raw.json").write_text(json.dumps(entries))
    result = check_dataset(tmp_path, "cuhkpedes")
    one_error_naming(result, str(tmp_path / "reid_raw.json"), str(tmp_path / "imgs" / "p" / "gone.jpg"))


def test_text_dataset_checked_ok(tmp_path: Path) -> None:
    entries = [
        {"split": "val", "id": 1, "file_path": "p/1.jpg", "captions": ["red"], "camid": 1},
        {"split": "test", "id": 2, "file_path": "p/2.jpg", "captions": ["blue", "navy"], "camid": 2},
    ]
    for i, e in enumerate(entries):
        img(tmp_path / "imgs" / e["file_path"], i)
    (tmp_path / "reid_raw.json").write_text(json.dumps(entries))
    result = check_dataset(tmp_path, "cuhkpedes", train_split="val")
    assert result.ok, result.errors
    assert result.protocol == "text"
    assert result.split_stats["query"]["captions"] == 2 and result.split_stats["gallery"]["images"] == 1


def test_duplicates_leaks_and_conflicting_labels(tmp_path: Path) -> None:
    for n, seed in [("a.jpg", 1), ("b.jpg", 2), ("c.jpg", 3)]:
        img(tmp_path / n, seed)
    (tmp_path / "data.csv").write_text(
        "path,pid,camid,split\n"
        "a.jpg,1,0,train\n"
        "b.jpg,2,0,query\n"
        "c.jpg,2,1,gallery\n"
        "c.jpg,2,1,gallery\n"  # duplicate record: warning
        "a.jpg,1,1,gallery\n"  # train image also in the gallery: error
        "b.jpg,2,1,gallery\n"  # query image also in the gallery: error
    )
    result = check_dataset(tmp_path / "data.csv", "csv")
    one_error_naming(result, "1 images are in train and in query/gallery", str(tmp_path / "a.jpg"))
    one_error_naming(result, "1 images are both query and gallery", str(tmp_path / "b.jpg"))
    assert any("gallery: 1 duplicate records" in w and str(tmp_path / "c.jpg") in w for w in result.warnings)
    (tmp_path / "data.csv").write_text(
        "path,pid,camid,split\nb.jpg,2,0,query\nc.jpg,2,1,gallery\nc.jpg,3,1,gallery\n"
    )
    one_error_naming(
        check_dataset(tmp_path / "data.csv", "csv"), "more than one pid", str(tmp_path / "c.jpg")
    )


def test_byte_identical_copies_across_train_and_test(tmp_path: Path) -> None:
    root = make_market(tmp_path)
    src = root / "bounding_box_train" / "0004_c1s1_000003_00.jpg"
    copy = root / "bounding_box_test" / "0004_c2s1_000099_00.jpg"
    copy.write_bytes(src.read_bytes())
    result = check_dataset(root, "market1501")
    assert any("byte-identical images are both in train" in w and str(copy) in w for w in result.warnings)


def test_reader_warnings_are_collected(tmp_path: Path) -> None:
    root = make_market(tmp_path)
    for i in range(150):
        (root / "bounding_box_train" / f"0006_c1s1_{i + 100:06d}_00.jpg").write_bytes(
            (root / "bounding_box_train" / "0002_c1s1_000001_00.jpg").read_bytes()
        )
    (root / "bounding_box_train" / "notes.jpg").write_bytes(b"")
    result = check_dataset(root, "market1501", decode_images=False)
    assert result.ok
    assert any("entries are not named" in w and "notes.jpg" in w for w in result.warnings)


def test_fine_grained_single_image_class_warns(tmp_path: Path) -> None:
    base = tmp_path / "CUB_200_2011"
    items = [(1, 1, "001.A/a.jpg"), (2, 1, "001.A/b.jpg"), (3, 2, "002.B/c.jpg"), (4, 2, "002.B/d.jpg"),
             (5, 3, "003.C/e.jpg")]  # fmt: skip
    for i, _, rel in items:
        img(base / "images" / rel, i)
    (base / "images.txt").write_text("".join(f"{i} {rel}\n" for i, _, rel in items))
    (base / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, c, _ in items))
    result = check_dataset(tmp_path, "cub", train_classes=1)
    assert result.ok and result.protocol == "fine_grained"
    assert any("only image of their class" in w and "e.jpg" in w for w in result.warnings)


def test_usage_errors_still_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset format"):
        check_dataset(tmp_path, "nope")
    with pytest.raises(ValueError, match="no option"):
        check_dataset(tmp_path, "market1501", variant="x")


def test_data_without_cameras_is_ok_with_a_warning(tmp_path: Path) -> None:
    for rel, seed in [
        ("query/1_a.jpg", 1),
        ("gallery/1_b.jpg", 2),
        ("gallery/2_c.jpg", 3),
        ("train/3_d.jpg", 4),
    ]:
        img(tmp_path / rel, seed)
    result = check_dataset(tmp_path, "folder")
    assert result.ok and result.split_stats["gallery"]["cameras"] == {-1: 2}
    assert any("no camera ids" in w for w in result.warnings)
