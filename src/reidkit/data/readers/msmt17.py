"""MSMT17 reader (V1 or V2 folder names), driven by the official list files.

Layout (`root` is this folder or holds it as its only sub-folder, e.g. `MSMT17_V1/`)::

    root/train/0000/0000_000_01_0303morning_0015_0.jpg   (V2: mask_train_v2/)
    root/test/0000/0000_000_01_0303morning_0015_0.jpg    (V2: mask_test_v2/)
    root/list_train.txt    lines '<path relative to train/> <pid>'
    root/list_val.txt      same format; added to train when use_val=True (the usual protocol)
    root/list_query.txt    lines '<path relative to test/> <pid>'
    root/list_gallery.txt  same format

The camera is the third `_` field of the name (`01`..`15` -> camid 0..14). pids come from the list files
(train and test ids are numbered independently, as in the release).
"""

from __future__ import annotations

from pathlib import Path

from reidkit.data.readers._common import (
    BadFiles,
    DatasetError,
    find_root,
    require_dir,
    require_file,
    require_nonempty,
)
from reidkit.types import Record, Split

EXPECTED_LINE = "'<folder>/<pid>_<n>_<camera>_<time>_<frame>_<box>.jpg <pid>'"


def _image_dir(base: Path, names: tuple[str, str], what: str) -> Path:
    for n in names:
        if (base / n).is_dir():
            return base / n
    return require_dir(base / names[0], what)


def _read_list(list_file: Path, image_dir: Path) -> list[Record]:
    require_file(list_file, f"an MSMT17 list file with lines {EXPECTED_LINE}")
    lines = [ln for ln in list_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise DatasetError(f"{list_file}: empty; expected lines {EXPECTED_LINE}")
    bad = BadFiles(list_file, f"lines {EXPECTED_LINE} naming an existing image")
    out = []
    for i, line in enumerate(lines, 1):
        fields = line.split()
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            bad.add(f"line {i}: {line!r}", "expected '<path> <pid>'")
            continue
        rel, pid = fields[0], int(fields[1])
        parts = Path(rel).stem.split("_")
        if len(parts) < 3 or not parts[2].isdigit() or int(parts[2]) < 1:
            bad.add(f"line {i}: {rel}", "no camera number 01.. in the third '_' field")
            continue
        path = image_dir / rel
        if not path.is_file():
            bad.add(path, "missing image")
            continue
        out.append(Record(path=str(path), pid=pid, camid=int(parts[2]) - 1))
    bad.resolve(len(lines))
    return out


def read_msmt17(root: str | Path, use_val: bool = True) -> Split:
    """Read MSMT17 from its list files; `use_val` adds list_val.txt to the training part."""
    base = find_root(
        root, ["list_query.txt", "list_gallery.txt"], "MSMT17 list_*.txt files and train/, test/"
    )
    train_dir = _image_dir(
        base, ("train", "mask_train_v2"), "MSMT17 training images (train/ or mask_train_v2/)"
    )
    test_dir = _image_dir(base, ("test", "mask_test_v2"), "MSMT17 test images (test/ or mask_test_v2/)")
    train = _read_list(base / "list_train.txt", train_dir)
    if use_val:
        train += _read_list(base / "list_val.txt", train_dir)
    query = _read_list(base / "list_query.txt", test_dir)
    gallery = _read_list(base / "list_gallery.txt", test_dir)
    for part, recs, src in (
        ("train", train, "list_train.txt"),
        ("query", query, "list_query.txt"),
        ("gallery", gallery, "list_gallery.txt"),
    ):
        require_nonempty(recs, part, base / src, f"lines {EXPECTED_LINE}")
    return Split(name="msmt17", train=train, query=query, gallery=gallery, protocol="reid")
