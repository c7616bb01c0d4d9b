"""Stanford Cars reader for class-disjoint retrieval (196 classes).

Layout (a), the all-in-one annotation used for metric learning (`root` holds it)::

    root/cars_annos.mat   struct array `annotations` with fields relative_im_path ('car_ims/000001.jpg'),
                          class (1..196), test (0/1; ignored: retrieval splits by class)
    root/car_ims/000001.jpg

  pid = class id.

Layout (b), an ImageFolder: `root/<class name>/<image>` or `root/{train,test}/<class name>/<image>` (the two
halves are merged). pid = index of the class folder in natural sort order (0-based).

camid -1. The first `train_classes` classes in order (default half: 98) train, the rest are the test set,
used as both query and gallery.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from reidkit.data.readers._common import (
    BadFiles,
    DatasetError,
    absolute,
    fine_grained_split,
    list_images_recursive,
    natural_key,
    require_dir,
    split_classes,
)
from reidkit.types import Record, Split


def _read_mat(base: Path) -> list[Record]:
    mat_file = base / "cars_annos.mat"
    try:
        mat = scipy.io.loadmat(str(mat_file), squeeze_me=True, struct_as_record=False)
    except (ValueError, OSError, TypeError) as e:
        raise DatasetError(f"{mat_file}: not a readable MATLAB file ({e})") from e
    if "annotations" not in mat:
        raise DatasetError(
            f"{mat_file}: no 'annotations' variable; expected the Stanford Cars cars_annos.mat"
        )
    anns = np.atleast_1d(mat["annotations"])
    bad = BadFiles(mat_file, "annotations with relative_im_path and class naming an existing image")
    records = []
    for i, a in enumerate(anns):
        rel, cls = getattr(a, "relative_im_path", None), getattr(a, "class", None)
        if not isinstance(rel, str) or cls is None or not np.issubdtype(np.asarray(cls).dtype, np.integer):
            bad.add(f"annotation {i}", "missing relative_im_path or integer class")
            continue
        path = base / rel
        if not path.is_file():
            bad.add(path, "missing image")
            continue
        records.append(Record(path=str(path), pid=int(cls), camid=-1))
    bad.resolve(len(anns))
    return records


def _read_image_folder(base: Path) -> list[Record]:
    roots = [base / h for h in ("train", "test") if (base / h).is_dir()] or [base]
    class_dirs: dict[str, list[Path]] = {}
    for r in roots:
        for c in r.iterdir():
            if c.is_dir():
                class_dirs.setdefault(c.name, []).append(c)
    if not class_dirs:
        raise DatasetError(
            f"{base}: no class folders; expected cars_annos.mat + car_ims/, or "
            "<class>/<image> folders (optionally under train/ and test/)"
        )
    records = []
    for pid, name in enumerate(sorted(class_dirs, key=natural_key)):
        files = [p for d in class_dirs[name] for p in list_images_recursive(d)]
        if not files:
            raise DatasetError(
                f"{class_dirs[name][0]}: class folder without images; expected <image>.jpg files"
            )
        records += [Record(path=str(p), pid=pid, camid=-1) for p in sorted(files)]
    return records


def read_cars(root: str | Path, train_classes: int | None = None) -> Split:
    """Read Stanford Cars (cars_annos.mat or an ImageFolder) and split its classes into train and test."""
    base = require_dir(absolute(root), "Stanford Cars: cars_annos.mat + car_ims/, or <class>/<image> folders")
    if (base / "cars_annos.mat").is_file():
        records = _read_mat(base)
    elif (base / "car_ims").is_dir():
        raise DatasetError(f"{base / 'cars_annos.mat'}: does not exist; car_ims/ needs its annotation file")
    else:
        records = _read_image_folder(base)
    train, test = split_classes(records, train_classes, "cars", base)
    return fine_grained_split("cars", train, test)
