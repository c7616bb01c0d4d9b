"""Re-id readers on tiny trees built here: expected records are written out by hand from the names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image

from reidkit.data.readers import READERS, DatasetError, read_split, reader_options
from reidkit.types import Split


def img(path: Path, color: tuple[int, int, int] = (120, 60, 30)) -> Path:
    """Write an 8x16 image (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), color).save(path)
    return path


def triples(records: list) -> list[tuple[str, int, int]]:
    return sorted((Path(r.path).name, r.pid, r.camid) for r in records)


def assert_paths_ok(split: Split) -> None:
    for r in split.train + split.query + split.gallery:
        assert Path(r.path).is_absolute() and Path(r.path).is_file(), r.path


# ---------------------------------------------------------------- Market-1501 / Duke / VeRi


MARKET = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c3s2_000101_00.jpg"],
    "query": ["0001_c1s1_001051_00.jpg", "0003_c6s1_000001_00.jpg"],
    "bounding_box_test": [
        "0001_c2s1_000001_01.jpg",
        "0003_c1s1_000002_00.jpg",
        "0000_c1s1_000151_01.jpg",  # distractor: kept
        "-1_c1s1_000401_03.jpg",  # junk: dropped
    ],
}


def make_market(root: Path) -> Path:
    for folder, names in MARKET.items():
        for n in names:
            img(root / folder / n)
    (root / "bounding_box_train" / "Thumbs.db").write_bytes(b"not an image")  # ignored
    return root


def test_market1501_junk_dropped_distractors_kept(tmp_path: Path) -> None:
    split = read_split("market1501", make_market(tmp_path / "m"))
    assert split.protocol == "reid" and split.name == "market1501"
    assert triples(split.train) == [
        ("0002_c1s1_000451_03.jpg", 2, 0),
        ("0002_c2s1_000551_01.jpg", 2, 1),
        ("0007_c3s2_000101_00.jpg", 7, 2),
    ]
    assert triples(split.query) == [("0001_c1s1_001051_00.jpg", 1, 0), ("0003_c6s1_000001_00.jpg", 3, 5)]
    assert triples(split.gallery) == [
        ("0000_c1s1_000151_01.jpg", 0, 0),
        ("0001_c2s1_000001_01.jpg", 1, 1),
        ("0003_c1s1_000002_00.jpg", 3, 0),
    ]
    assert split.num_train_ids == 2
    assert all(r.text is None for r in split.gallery)
    assert_paths_ok(split)


def test_market1501_found_inside_single_subfolder(tmp_path: Path) -> None:
    make_market(tmp_path / "Market-1501-v15.09.15")
    direct = read_split("market1501", tmp_path / "Market-1501-v15.09.15")
    nested = read_split("market1501", tmp_path)
    assert nested == direct


def test_market1501_reads_synthetic_style_names(tmp_path: Path) -> None:
    # the synthetic dataset writes {pid:04d}_c{cam}s1_{frame:06d}_00.jpg with pid 0 distractors in the gallery
    for folder, pid, cam, frame in [
        ("bounding_box_train", 5, 1, 0),
        ("query", 6, 2, 1),
        ("bounding_box_test", 6, 3, 2),
        ("bounding_box_test", 0, 1, 3),
    ]:
        img(tmp_path / folder / f"{pid:04d}_c{cam}s1_{frame:06d}_00.jpg")
    split = read_split("market1501", tmp_path)
    assert [(r.pid, r.camid) for r in split.train] == [(5, 0)]
    assert [(r.pid, r.camid) for r in split.query] == [(6, 1)]
    assert sorted((r.pid, r.camid) for r in split.gallery) == [(0, 0), (6, 2)]


def test_market1501_distractor_in_query_dropped_with_warning(tmp_path: Path, caplog) -> None:
    make_market(tmp_path)
    img(tmp_path / "query" / "0000_c2s1_000001_00.jpg")
    with caplog.at_level(logging.WARNING):
        split = read_split("market1501", tmp_path)
    assert all(r.pid != 0 for r in split.query)
    assert "0000_c2s1_000001_00.jpg" in caplog.text


def test_dukemtmc(tmp_path: Path) -> None:
    names = {
        "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c8_f0001000.jpg"],
        "query": ["0005_c2_f0046985.jpg"],
        "bounding_box_test": ["0005_c1_f0044158.jpg", "0009_c3_f0000001.jpg"],
    }
    for folder, ns in names.items():
        for n in ns:
            img(tmp_path / "DukeMTMC-reID" / folder / n)
    split = read_split("dukemtmc", tmp_path)
    assert triples(split.train) == [("0001_c2_f0046182.jpg", 1, 1), ("0001_c8_f0001000.jpg", 1, 7)]
    assert triples(split.query) == [("0005_c2_f0046985.jpg", 5, 1)]
    assert triples(split.gallery) == [("0005_c1_f0044158.jpg", 5, 0), ("0009_c3_f0000001.jpg", 9, 2)]


def test_veri(tmp_path: Path) -> None:
    names = {
        "image_train": ["0001_c001_00016450_0.jpg", "0001_c012_00016500_1.jpg"],
        "image_query": ["0002_c002_00030600_1.jpg"],
        "image_test": ["0002_c003_00084280_0.jpg", "0002_c020_00084290_0.jpg"],
    }
    for folder, ns in names.items():
        for n in ns:
            img(tmp_path / folder / n)
    split = read_split("veri", tmp_path)
    assert triples(split.train) == [("0001_c001_00016450_0.jpg", 1, 0), ("0001_c012_00016500_1.jpg", 1, 11)]
    assert triples(split.query) == [("0002_c002_00030600_1.jpg", 2, 1)]
    assert triples(split.gallery) == [("0002_c003_00084280_0.jpg", 2, 2), ("0002_c020_00084290_0.jpg", 2, 19)]


# ---------------------------------------------------------------- MSMT17


def make_msmt(root: Path) -> Path:
    lists = {
        "list_train.txt": (
            "train",
            ["0000/0000_000_01_0303morning_0015_0.jpg 0", "0001/0001_003_15_0303noon_0200_1.jpg 1"],
        ),
        "list_val.txt": ("train", ["0002/0002_000_07_0303noon_0300_0.jpg 2"]),
        "list_query.txt": ("test", ["0000/0000_001_02_0303morning_0100_0.jpg 0"]),
        "list_gallery.txt": (
            "test",
            ["0000/0000_002_03_0303morning_0101_0.jpg 0", "0004/0004_000_10_0304a_0001_0.jpg 4"],
        ),
    }
    for name, (folder, lines) in lists.items():
        for ln in lines:
            img(root / folder / ln.split()[0])
        (root / name).write_text("\n".join(lines) + "\n")
    return root


def test_msmt17_lists_with_and_without_val(tmp_path: Path) -> None:
    root = make_msmt(tmp_path / "MSMT17_V1")
    split = read_split("msmt17", root)
    assert triples(split.train) == [
        ("0000_000_01_0303morning_0015_0.jpg", 0, 0),
        ("0001_003_15_0303noon_0200_1.jpg", 1, 14),
        ("0002_000_07_0303noon_0300_0.jpg", 2, 6),
    ]
    assert triples(split.query) == [("0000_001_02_0303morning_0100_0.jpg", 0, 1)]
    assert triples(split.gallery) == [
        ("0000_002_03_0303morning_0101_0.jpg", 0, 2),
        ("0004_000_10_0304a_0001_0.jpg", 4, 9),
    ]
    assert split.query[0].path == str(root / "test" / "0000" / "0000_001_02_0303morning_0100_0.jpg")
    no_val = read_split("msmt17", root, use_val="false")  # CLI strings are converted to the declared type
    assert [r.pid for r in no_val.train] == [0, 1]


# ---------------------------------------------------------------- CUHK03


def test_cuhk03_new_protocol_variants(tmp_path: Path) -> None:
    for variant, offset in (("detected", 0), ("labeled", 100)):
        for folder, names in {
            "bounding_box_train": [f"{1 + offset:04d}_c1_1.png", f"{1 + offset:04d}_c2_6.png"],
            "query": [f"{3 + offset:04d}_c1_2.png"],
            "bounding_box_test": [f"{3 + offset:04d}_c2_7.png"],
        }.items():
            for n in names:
                img(tmp_path / "cuhk03-np" / variant / folder / n)
    det = read_split("cuhk03", tmp_path / "cuhk03-np")
    lab = read_split("cuhk03", tmp_path / "cuhk03-np", variant="labeled")
    assert triples(det.train) == [("0001_c1_1.png", 1, 0), ("0001_c2_6.png", 1, 1)]
    assert triples(det.query) == [("0003_c1_2.png", 3, 0)]
    assert triples(lab.gallery) == [("0103_c2_7.png", 103, 1)]
    assert "/labeled/" in lab.train[0].path
    assert read_split("cuhk03", tmp_path) == det  # root may hold the release folder
    with pytest.raises(ValueError, match="variant"):
        read_split("cuhk03", tmp_path / "cuhk03-np", variant="both")


CUHK03_ROWS = [  # path, split, pid, camid (1/2), slot
    ("bounding_box_train/0000_00.jpg", "bounding_box_train", 0, 1, 0),
    ("bounding_box_train/0000_05.jpg", "bounding_box_train", 0, 2, 5),
    ("bounding_box_train/0001_04.jpg", "bounding_box_train", 1, 1, 4),
    ("query/0010_01.jpg", "query", 10, 1, 1),
    ("query/0010_08.jpg", "query", 10, 2, 8),
    ("bounding_box_test/0010_02.jpg", "bounding_box_test", 10, 1, 2),
    ("bounding_box_test/0010_09.jpg", "bounding_box_test", 10, 2, 9),
]


def make_cuhk03_labels(root: Path, rows=CUHK03_ROWS) -> Path:
    for rel, *_ in rows:
        img(root / rel)
    lines = ["path,split,pid,camid,slot"] + [",".join(map(str, r)) for r in rows]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def test_cuhk03_labels_csv_layout(tmp_path: Path) -> None:
    split = read_split("cuhk03", make_cuhk03_labels(tmp_path))
    expected = {
        part: sorted((Path(p).name, pid, cam - 1) for p, s, pid, cam, _ in CUHK03_ROWS if s == folder)
        for part, folder in (
            ("train", "bounding_box_train"),
            ("query", "query"),
            ("gallery", "bounding_box_test"),
        )
    }
    assert triples(split.train) == expected["train"]
    assert triples(split.query) == expected["query"]
    assert triples(split.gallery) == expected["gallery"]
    # without labels.csv the names alone give the same labels (slot 00-04 camera 1, 05-09 camera 2)
    (tmp_path / "labels.csv").unlink()
    assert read_split("cuhk03", tmp_path) == split


def test_cuhk03_unlisted_files_warned_and_ignored(tmp_path: Path, caplog) -> None:
    make_cuhk03_labels(tmp_path)
    img(tmp_path / "bounding_box_train" / "0042_03.jpg")
    with caplog.at_level(logging.WARNING):
        split = read_split("cuhk03", tmp_path)
    assert all(r.pid != 42 for r in split.train)
    assert "0042_03.jpg" in caplog.text


# ---------------------------------------------------------------- CUHK01 / VIPeR


def test_cuhk01_split_folders_with_and_without_labels(tmp_path: Path) -> None:
    rows = [
        ("bounding_box_train/0001001.png", "bounding_box_train", 1, 1, 1),
        ("bounding_box_train/0001003.png", "bounding_box_train", 1, 2, 3),
        ("query/0002002.png", "query", 2, 1, 2),
        ("query/0002004.png", "query", 2, 2, 4),
        ("bounding_box_test/0002001.png", "bounding_box_test", 2, 1, 1),
        ("bounding_box_test/0002003.png", "bounding_box_test", 2, 2, 3),
    ]
    for rel, *_ in rows:
        img(tmp_path / rel)
    (tmp_path / "labels.csv").write_text(
        "path,split,pid,camid,image_index\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n"
    )
    split = read_split("cuhk01", tmp_path)
    assert triples(split.train) == [("0001001.png", 1, 0), ("0001003.png", 1, 1)]
    assert triples(split.query) == [("0002002.png", 2, 0), ("0002004.png", 2, 1)]
    assert triples(split.gallery) == [("0002001.png", 2, 0), ("0002003.png", 2, 1)]
    (tmp_path / "labels.csv").unlink()
    assert read_split("cuhk01", tmp_path) == split


def _check_two_camera_split(split: Split, all_ids: set[int], n_train: int) -> None:
    train_ids = {r.pid for r in split.train}
    test_ids = {r.pid for r in split.query}
    assert len(train_ids) == n_train and train_ids | test_ids == all_ids and not train_ids & test_ids
    assert {r.pid for r in split.gallery} == test_ids
    assert all(r.camid == 0 for r in split.query) and all(r.camid == 1 for r in split.gallery)


def test_cuhk01_raw_campus_random_split(tmp_path: Path) -> None:
    for pid in range(1, 7):
        for idx in range(1, 5):
            img(tmp_path / "campus" / f"{pid:04d}{idx:03d}.png")
    split = read_split("cuhk01", tmp_path, seed=3)
    _check_two_camera_split(split, set(range(1, 7)), 3)
    assert len(split.train) == 12 and len(split.query) == 6 and len(split.gallery) == 6
    assert read_split("cuhk01", tmp_path, seed=3) == split  # deterministic
    seeds = {tuple(sorted({r.pid for r in read_split("cuhk01", tmp_path, seed=s).train})) for s in range(8)}
    assert len(seeds) > 1  # the seed changes the split
    _check_two_camera_split(read_split("cuhk01", tmp_path, num_train_ids=2), set(range(1, 7)), 2)


def test_viper_two_camera_folders(tmp_path: Path) -> None:
    pids = [0, 1, 2, 5, 9, 873]
    for p in pids:
        img(tmp_path / "VIPeR" / "cam_a" / f"{p:03d}_45.bmp")
        img(tmp_path / "VIPeR" / "cam_b" / f"{p:03d}_90.bmp")
    split = read_split("viper", tmp_path, seed=1)
    _check_two_camera_split(split, set(pids), 3)
    for r in split.query:
        assert Path(r.path).parent.name == "cam_a" and Path(r.path).name.startswith(f"{r.pid:03d}_")


# ---------------------------------------------------------------- registry


def test_registry_lists_every_format_and_rejects_unknown(tmp_path: Path) -> None:
    expected = {
        "market1501", "dukemtmc", "msmt17", "cuhk03", "cuhk01", "viper", "veri", "cuhkpedes", "icfgpedes",
        "rstpreid", "cub", "cars", "aircraft", "folder", "csv",
    }  # fmt: skip
    assert set(READERS) == expected
    assert all(info.description and callable(info.fn) for info in READERS.values())
    with pytest.raises(ValueError, match="unknown dataset format 'market'.*market1501"):
        read_split("market", tmp_path)
    with pytest.raises(ValueError, match="no option.*colour.*valid options: variant"):
        read_split("cuhk03", tmp_path, colour="red")
    with pytest.raises(ValueError, match="train_classes='many'; expected int"):
        read_split("cub", tmp_path, train_classes="many")
    assert set(reader_options("cuhkpedes")) == {"train_split", "test_split"}


def test_missing_root_is_a_dataset_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=str(tmp_path / "nowhere")):
        read_split("market1501", tmp_path / "nowhere")


def test_synthetic_set_loads_through_market_and_cuhkpedes_readers(tmp_path: Path) -> None:
    synthetic = pytest.importorskip("reidkit.data.synthetic")
    root = synthetic.write_synthetic(tmp_path / "syn", synthetic.SyntheticConfig(num_ids=6, seed=2))
    on_disk = {
        f: sorted((root / f).glob("*.jpg")) for f in ("bounding_box_train", "query", "bounding_box_test")
    }
    distractors = [p for p in on_disk["bounding_box_test"] if p.name.startswith("0000_")]
    market = read_split("market1501", root)
    assert [r.path for r in market.train] == [str(p) for p in on_disk["bounding_box_train"]]
    assert [r.path for r in market.query] == [str(p) for p in on_disk["query"]]
    assert [r.path for r in market.gallery] == [str(p) for p in on_disk["bounding_box_test"]]
    assert distractors and sum(r.pid == 0 for r in market.gallery) == len(distractors)
    text = read_split("cuhkpedes", root)
    assert text.protocol == "text"
    assert len(text.train) == 2 * len(on_disk["bounding_box_train"])  # two captions per image
    assert len(text.gallery) == len(on_disk["query"]) + len(on_disk["bounding_box_test"]) - len(distractors)
    labels = {r.path: (r.pid, r.camid) for r in market.train + market.query + market.gallery}
    assert all(labels[r.path] == (r.pid, r.camid) for r in text.train + text.query + text.gallery)
