"""Datasets over `Record` lists and the collate function that builds a `Batch`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset

from reidkit.types import Batch, Record

EXIF_ORIENTATION = 0x0112


def upright(im: Image.Image) -> Image.Image:
    """The image as it is meant to be seen: a phone photo stored sideways with an EXIF orientation tag is
    turned upright (as browsers show it), so it embeds like its upright twin. No tag: the image itself."""
    if im.getexif().get(EXIF_ORIENTATION, 1) == 1:
        return im
    return ImageOps.exif_transpose(im)


def load_image(path: str) -> Image.Image:
    """Open an image as RGB, upright (EXIF orientation applied); errors name the file and what was
    expected."""
    try:
        with Image.open(path) as im:
            return upright(im).convert("RGB")
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{path}: image file not found") from e
    except (UnidentifiedImageError, OSError) as e:
        raise OSError(f"{path}: not a readable image ({e})") from e


class ImageDataset(Dataset):
    """Images of a record list, transformed; items are dicts collated by `collate`."""

    def __init__(self, records: Sequence[Record], transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.records = list(records)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.records[i]
        return {
            "image": self.transform(load_image(r.path)),
            "pid": r.pid,
            "camid": r.camid,
            "index": i,
            "image_id": r.image_id,
        }


class ImageTextDataset(ImageDataset):
    """Image + caption pairs (one record per caption); `tokenizer(text) -> list[int]` of word ids."""

    def __init__(
        self,
        records: Sequence[Record],
        transform: Callable[[Image.Image], torch.Tensor] | None,
        tokenizer: Callable[[str], list[int]],
    ) -> None:
        super().__init__(records, transform)  # type: ignore[arg-type]
        for r in self.records:
            if r.text is None:
                raise ValueError(f"{r.path}: ImageTextDataset needs a caption on every record")
        self.tokenizer = tokenizer

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.records[i]
        item: dict[str, Any] = {
            "pid": r.pid,
            "camid": r.camid,
            "index": i,
            "image_id": r.image_id,
            "tokens": self.tokenizer(r.text or ""),
        }
        if self.transform is not None:
            item["image"] = self.transform(load_image(r.path))
        return item


def collate(items: list[dict[str, Any]]) -> Batch:
    """Stack images, pad token lists with 0 to the longest caption in the batch."""
    images = torch.stack([it["image"] for it in items]) if "image" in items[0] else torch.empty(0)
    tokens = lengths = None
    if "tokens" in items[0]:
        lens = [max(len(it["tokens"]), 1) for it in items]
        tokens = torch.zeros(len(items), max(lens), dtype=torch.long)
        for j, it in enumerate(items):
            if it["tokens"]:
                tokens[j, : len(it["tokens"])] = torch.as_tensor(it["tokens"], dtype=torch.long)
        lengths = torch.as_tensor(lens, dtype=torch.long)
    return Batch(
        images=images,
        pids=torch.as_tensor([it["pid"] for it in items], dtype=torch.long),
        camids=torch.as_tensor([it["camid"] for it in items], dtype=torch.long),
        index=torch.as_tensor([it["index"] for it in items], dtype=torch.long),
        tokens=tokens,
        lengths=lengths,
        image_ids=torch.as_tensor([it["image_id"] for it in items], dtype=torch.long),
    )
