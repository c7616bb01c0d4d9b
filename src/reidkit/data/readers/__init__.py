"""Dataset readers: one module per on-disk layout, each returning a `Split` (see each module's docstring).

`READERS` is the explicit registry (name -> function + one-line layout); `read_split` looks a name up,
checks the options against the reader's signature (strings from the CLI are converted to the declared
types) and reads. Readers check structure and names only; `reidkit.data.check` decodes the images.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from reidkit.data.readers._common import DatasetError, absolute, list_images_recursive
from reidkit.data.readers.aircraft import read_aircraft
from reidkit.data.readers.cars import read_cars
from reidkit.data.readers.csv_table import read_csv
from reidkit.data.readers.cub import read_cub
from reidkit.data.readers.cuhk01 import read_cuhk01
from reidkit.data.readers.cuhk03 import read_cuhk03
from reidkit.data.readers.cuhkpedes import read_cuhkpedes
from reidkit.data.readers.dukemtmc import read_dukemtmc
from reidkit.data.readers.folder import read_folder
from reidkit.data.readers.icfgpedes import read_icfgpedes
from reidkit.data.readers.market1501 import read_market1501
from reidkit.data.readers.msmt17 import read_msmt17
from reidkit.data.readers.rstpreid import read_rstpreid
from reidkit.data.readers.veri import read_veri
from reidkit.data.readers.viper import read_viper
from reidkit.types import Record, Split

__all__ = ["READERS", "DatasetError", "ReaderInfo", "image_records", "read_split", "reader_options"]


class ReaderInfo(NamedTuple):
    """A reader function and a one-line description of the layout it expects."""

    fn: Callable[..., Split]
    description: str


READERS: dict[str, ReaderInfo] = {
    "market1501": ReaderInfo(
        read_market1501,
        "bounding_box_train/ query/ bounding_box_test/, "
        "<pid>_c<cam>s<seq>_<frame>_<box>.jpg (also the synthetic dataset)",
    ),
    "dukemtmc": ReaderInfo(
        read_dukemtmc, "bounding_box_train/ query/ bounding_box_test/, <pid>_c<cam>_f<frame>.jpg"
    ),
    "msmt17": ReaderInfo(read_msmt17, "train/ test/ + list_{train,val,query,gallery}.txt ('<path> <pid>')"),
    "cuhk03": ReaderInfo(
        read_cuhk03,
        "{detected,labeled}/ with Market-style split folders, or split folders of PPPP_SS.jpg + labels.csv",
    ),
    "cuhk01": ReaderInfo(read_cuhk01, "split folders of PPPPIII.png + labels.csv, or the raw campus/ folder"),
    "viper": ReaderInfo(read_viper, "cam_a/ cam_b/ with <pid>_<angle>.bmp; identities split at random"),
    "veri": ReaderInfo(read_veri, "image_train/ image_query/ image_test/, <id>_c<cam>_<frame>_<n>.jpg"),
    "cuhkpedes": ReaderInfo(
        read_cuhkpedes, "reid_raw.json or caption_all.json (split, id, file_path, captions) + imgs/"
    ),
    "icfgpedes": ReaderInfo(read_icfgpedes, "ICFG-PEDES.json (split, id, file_path, captions) + imgs/"),
    "rstpreid": ReaderInfo(read_rstpreid, "data_captions.json (split, id, img_path, captions) + imgs/"),
    "cub": ReaderInfo(
        read_cub, "CUB_200_2011/ images.txt, image_class_labels.txt, images/; first half of the classes train"
    ),
    "cars": ReaderInfo(
        read_cars, "cars_annos.mat + car_ims/, or <class>/<image> folders; first half of the classes train"
    ),
    "aircraft": ReaderInfo(
        read_aircraft,
        "data/images_variant_{train,val,test}.txt + data/images/; first half of the variants train",
    ),
    "folder": ReaderInfo(read_folder, "[train/] query/ gallery/ with <pid>_c<cam>_*.jpg or <pid>_*.jpg"),
    "csv": ReaderInfo(
        read_csv, "a CSV path,pid,camid,split[,caption], or a folder with [train.csv] query.csv gallery.csv"
    ),
}


def reader_options(format: str) -> dict[str, inspect.Parameter]:
    """The keyword options a reader accepts (everything but `root`), for help texts and validation."""
    info = _lookup(format)
    params = inspect.signature(info.fn).parameters
    return {k: p for k, p in params.items() if k != "root"}


def read_split(format: str, root: str | Path, **options: Any) -> Split:
    """Read the dataset at `root` with the reader `format`; unknown formats/options raise ValueError."""
    info = _lookup(format)
    accepted = reader_options(format)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        valid = ", ".join(accepted) or "none"
        raise ValueError(f"reader {format!r} has no option(s) {', '.join(unknown)}; valid options: {valid}")
    hints = typing.get_type_hints(info.fn)
    opts = {k: _coerce(v, hints.get(k), f"{format} option {k}") for k, v in options.items()}
    path = absolute(root)
    if not path.exists():
        raise DatasetError(f"{path}: does not exist; expected a {format} dataset ({info.description})")
    return info.fn(path, **opts)


def image_records(folder: str | Path) -> list[Record]:
    """Every image under `folder`, recursively, unlabelled (pid -1, camera -1), in path order: your own
    photos, for indexing or embedding; the file name is what identifies a result."""
    path = Path(folder)
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder; expected a folder of images (searched recursively)")
    records = [Record(str(absolute(p)), -1, -1) for p in list_images_recursive(path)]
    if not records:
        raise DatasetError(f"{path}: no image files (.jpg, .png, ...) found in it or its subfolders")
    return records


def _lookup(format: str) -> ReaderInfo:
    if format not in READERS:
        raise ValueError(f"unknown dataset format {format!r}; valid formats: {', '.join(READERS)}")
    return READERS[format]


def _coerce(value: Any, hint: Any, what: str) -> Any:
    """Convert a string option (from the command line) to the reader's declared type int/float/bool/str."""
    if not isinstance(value, str) or hint is None:
        return value
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    if type(None) in typing.get_args(hint) and value.lower() in ("none", "null", ""):
        return None
    target = args[0]
    if target is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{what}={value!r}; expected true or false")
    if target in (int, float):
        try:
            return target(value)
        except ValueError:
            raise ValueError(f"{what}={value!r}; expected {target.__name__}") from None
    return value
