"""JPEG frame validation: size bound, JPEG header, sane dimensions, decodes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from plugins._vision_util import (FrameError, decode_frame, encode_jpeg, fit_for_detection,
                                  jpeg_dimensions)


def _jpeg(w: int, h: int) -> bytes:
    rng = np.random.default_rng(0)
    return encode_jpeg(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), 70)


def _with_declared_size(jpeg: bytes, w: int, h: int) -> bytes:
    """Rewrite the SOF0 segment's width/height (what a decompression bomb does)."""
    i = jpeg.index(b"\xff\xc0")
    b = bytearray(jpeg)
    b[i + 5:i + 7] = h.to_bytes(2, "big")
    b[i + 7:i + 9] = w.to_bytes(2, "big")
    return bytes(b)


def test_valid_frame_decodes():
    img = decode_frame(_jpeg(640, 480))
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    assert jpeg_dimensions(_jpeg(320, 240)) == (320, 240)


@pytest.mark.parametrize("data, fragment", [
    (b"", "为空"),
    (b"hello world, not an image", "不是 JPEG"),
    (cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes(), "不是 JPEG"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "不完整"),
])
def test_not_a_jpeg(data, fragment):
    with pytest.raises(FrameError) as info:
        decode_frame(data)
    assert fragment in info.value.text


def test_size_bound():
    data = _jpeg(640, 480)
    with pytest.raises(FrameError, match="过大"):
        decode_frame(data, max_bytes=len(data) - 1)


@pytest.mark.parametrize("w, h", [(16, 16), (2000, 100), (640, 2400)])
def test_insane_dimensions(w, h):
    with pytest.raises(FrameError, match="尺寸异常"):
        decode_frame(_jpeg(w, h))


def test_declared_huge_size_refused_before_decoding():
    bomb = _with_declared_size(_jpeg(64, 64), 60000, 60000)
    with pytest.raises(FrameError, match="60000×60000"):
        decode_frame(bomb)


@pytest.mark.parametrize("keep", [400, 2000, 0.5])
def test_truncated_body(keep):
    data = _jpeg(640, 480)
    n = keep if isinstance(keep, int) else int(len(data) * keep)
    with pytest.raises(FrameError, match="损坏"):
        decode_frame(data[:n])


def test_fit_for_detection_downscales_only():
    big = np.zeros((1080, 1920, 3), np.uint8)
    assert fit_for_detection(big).shape == (360, 640, 3)
    small = np.zeros((240, 320, 3), np.uint8)
    assert fit_for_detection(small) is small
