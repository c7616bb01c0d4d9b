"""An upload that is not an image is refused in words, without a Python object's repr in the message."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from reidkit.serve.uploads import decode_image


@pytest.mark.parametrize(
    "data", [b"just some text", b"GIF89a" + b"\x00" * 10, b"\xff\xd8\xff" + b"\x01" * 30]
)
def test_not_an_image_is_said_in_words(data):
    with pytest.raises(HTTPException) as e:
        decode_image(data, max_pixels=10_000)
    assert e.value.status_code == 400 and "not a decodable image" in e.value.detail
    assert "BytesIO" not in e.value.detail and "object at 0x" not in e.value.detail
