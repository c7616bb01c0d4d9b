"""Fine-grained readers (CUB, Stanford Cars, FGVC-Aircraft): class-disjoint splits on tiny trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from reidkit.data.readers import DatasetError, read_split
from reidkit.types import Split


def img(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 8), (5, 5, 200)).save(path)
    return path


def by_class(records: list) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for r in records:
        out.setdefault(r.pid, []).append(Path(r.path).name)
    return {k: sorted(v) for k, v in sorted(out.items())}


def assert_fine_grained(split: Split) -> None:
    assert split.protocol == "fine_grained"
    assert split.query == split.gallery and split.query is not split.gallery
    assert all(r.camid == -1 for r in split.train + split.query)
    assert not {r.pid for r in split.train} & {r.pid for r in split.query}


CUB = {  # image id -> (class id, path under images/)
    1: (1, "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg"),
    2: (1, "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg"),
    5: (2, "002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg"),
    6: (3, "003.Sooty_Albatross/Sooty_Albatross_0001_796338.jpg"),
    7: (3, "003.Sooty_Albatross/Sooty_Albatross_0003_1078.jpg"),
    9: (4, "004.Groove_billed_Ani/Groove_Billed_Ani_0002_1670.jpg"),
}


def make_cub(root: Path) -> Path:
    base = root / "CUB_200_2011"
    for _, rel in CUB.values():
        img(base / "images" / rel)
    (base / "images.txt").write_text("".join(f"{i} {rel}\n" for i, (_, rel) in CUB.items()))
    (base / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, (c, _) in CUB.items()))
    return base


def test_cub_first_half_of_classes_train(tmp_path: Path) -> None:
    base = make_cub(tmp_path)
    split = read_split("cub", tmp_path)  # the folder holding CUB_200_2011/
    assert_fine_grained(split)
    assert by_class(split.train) == {
        1: ["Black_Footed_Albatross_0009_34.jpg", "Black_Footed_Albatross_0046_18.jpg"],
        2: ["Laysan_Albatross_0002_1027.jpg"],
    }
    assert by_class(split.query) == {
        3: ["Sooty_Albatross_0001_796338.jpg", "Sooty_Albatross_0003_1078.jpg"],
        4: ["Groove_Billed_Ani_0002_1670.jpg"],
    }
    assert split.train[0].path == str(base / "images" / CUB[1][1])
    assert read_split("cub", base) == split  # or the CUB_200_2011 folder itself
    three = read_split("cub", base, train_classes=3)
    assert {r.pid for r in three.train} == {1, 2, 3} and {r.pid for r in three.query} == {4}
    with pytest.raises(DatasetError, match="train_classes=4 but 4 classes"):
        read_split("cub", base, train_classes=4)


def _save_cars_mat(path: Path, anns: list[tuple[str, int, int]]) -> None:
    arr = np.zeros((1, len(anns)), dtype=[("relative_im_path", "O"), ("class", "O"), ("test", "O")])
    for i, (rel, cls, test) in enumerate(anns):
        arr[0, i] = (rel, np.array([[cls]], dtype=np.uint8), np.array([[test]], dtype=np.uint8))
    scipy.io.savemat(str(path), {"annotations": arr})


def test_cars_annos_mat(tmp_path: Path) -> None:
    anns = [(f"car_ims/{i:06d}.jpg", cls, i % 2) for i, cls in enumerate([1, 1, 2, 3, 4, 4, 196], start=1)]
    for rel, _, _ in anns:
        img(tmp_path / rel)
    _save_cars_mat(tmp_path / "cars_annos.mat", anns)
    split = read_split("cars", tmp_path)
    assert_fine_grained(split)
    # 5 classes present -> first 2 (sorted ids 1, 2) train; the 'test' flag is not used
    assert by_class(split.train) == {1: ["000001.jpg", "000002.jpg"], 2: ["000003.jpg"]}
    assert by_class(split.query) == {3: ["000004.jpg"], 4: ["000005.jpg", "000006.jpg"], 196: ["000007.jpg"]}


def test_cars_image_folder_train_test_merged_natural_order(tmp_path: Path) -> None:
    files = {
        "train/class2/a.jpg": 0,
        "test/class2/b.jpg": 0,
        "train/class10/c.jpg": 2,
        "train/class3/d.jpg": 1,
        "test/class11/e.jpg": 3,
    }
    for rel in files:
        img(tmp_path / rel)
    split = read_split("cars", tmp_path)
    assert_fine_grained(split)
    # natural sort: class2 (0), class3 (1), class10 (2), class11 (3); first 2 classes train
    got = {str(Path(r.path).relative_to(tmp_path)): r.pid for r in split.train + split.query}
    assert got == files
    assert {r.pid for r in split.train} == {0, 1}


def test_aircraft_variants_sorted(tmp_path: Path) -> None:
    data = tmp_path / "fgvc-aircraft-2013b" / "data"
    lists = {
        "images_variant_train.txt": [("0034309", "707-320"), ("0034958", "A320")],
        "images_variant_val.txt": [("1025794", "Cessna 172"), ("0056978", "F/A-18")],
        "images_variant_test.txt": [("0062302", "A320"), ("1514522", "Boeing 717")],
    }
    for name, entries in lists.items():
        for image, _ in entries:
            img(data / "images" / f"{image}.jpg")
        (data / name).write_text("".join(f"{i} {v}\n" for i, v in entries))
    split = read_split("aircraft", tmp_path / "fgvc-aircraft-2013b")
    assert_fine_grained(split)
    order = sorted(["707-320", "A320", "Cessna 172", "F/A-18", "Boeing 717"])
    pid = {v: k for k, v in enumerate(order)}
    assert by_class(split.train) == {
        pid["707-320"]: ["0034309.jpg"],
        pid["A320"]: ["0034958.jpg", "0062302.jpg"],
    }
    assert by_class(split.query) == {
        pid["Boeing 717"]: ["1514522.jpg"],
        pid["Cessna 172"]: ["1025794.jpg"],
        pid["F/A-18"]: ["0056978.jpg"],
    }
    assert read_split("aircraft", data) == split == read_split("aircraft", tmp_path)
