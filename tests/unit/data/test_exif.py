"""EXIF orientation: a photo stored sideways with an orientation tag reads as its upright twin, from a file
(datasets, indexing, search) and from an upload (the service)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from reidkit.data.dataset import EXIF_ORIENTATION, load_image
from reidkit.serve.uploads import decode_image


def _upright() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (24, 12, 3), dtype=np.uint8))  # tall: 12 wide, 24 high


def _sideways_png(orientation: int, stored: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    buf = io.BytesIO()
    stored.save(buf, format="PNG", exif=exif)
    return buf.getvalue()


# the stored pixels of an upright picture for each EXIF orientation (what a camera writes), by hand
STORED = {
    3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
    6: lambda im: im.transpose(Image.Transpose.ROTATE_90),  # shown after a 90 degree clockwise turn
    8: lambda im: im.transpose(Image.Transpose.ROTATE_270),
}


@pytest.mark.parametrize("orientation", sorted(STORED))
def test_a_sideways_photo_reads_as_its_upright_twin(orientation, tmp_path):
    upright = _upright()
    data = _sideways_png(orientation, STORED[orientation](upright))
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    assert np.array_equal(np.asarray(load_image(str(path))), np.asarray(upright))
    assert np.array_equal(np.asarray(decode_image(data, max_pixels=10_000)), np.asarray(upright))


def test_no_tag_leaves_the_image_alone(tmp_path):
    im = _upright()
    im.save(tmp_path / "plain.png")
    assert np.array_equal(np.asarray(load_image(str(tmp_path / "plain.png"))), np.asarray(im))
