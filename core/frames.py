"""Video frames from the client: validation and decoding (blocking; run in the vision pool).

A frame is refused with ``FrameError`` (its ``text`` goes to the client) before any pixel memory is
allocated when its JPEG header declares an unusable size.
"""
from __future__ import annotations

import cv2
import numpy as np

# --- frame validation ----------------------------------------------------------------------------
DEFAULT_MAX_FRAME_BYTES = 1_500_000
DEFAULT_MAX_WIDTH = 1920
DEFAULT_MAX_HEIGHT = 1920
DEFAULT_MIN_SIDE = 32
DEFAULT_WORK_WIDTH = 640          # frames wider than this are downscaled before detection
DEFAULT_WORK_HEIGHT = 480


class FrameError(ValueError):
    """A video frame that cannot be used; ``text`` is the Chinese message for the client."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from the JPEG header (SOFn segment), without decoding the image, so that a
    huge declared size is refused before any pixel memory is allocated."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise FrameError("视频帧不是 JPEG 图片（frame_data 应为 base64 编码的 JPEG）")
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise FrameError("视频帧 JPEG 数据损坏，无法解析文件头")
        marker = data[i + 1]
        if marker == 0xFF:                      # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker == 0xD9 or marker == 0xDA:    # end of image / start of scan before any SOF
            break
        seg_len = (data[i + 2] << 8) | data[i + 3]
        if seg_len < 2:
            raise FrameError("视频帧 JPEG 数据损坏，无法解析文件头")
        if marker in _SOF_MARKERS:
            if i + 9 > n:
                break
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            return width, height
        i += 2 + seg_len
    raise FrameError("视频帧 JPEG 数据不完整，找不到图像尺寸")


def decode_frame(data: bytes, *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 max_width: int = DEFAULT_MAX_WIDTH, max_height: int = DEFAULT_MAX_HEIGHT,
                 min_side: int = DEFAULT_MIN_SIDE) -> np.ndarray:
    """Validate and decode one JPEG frame to a BGR ``uint8`` array; raise ``FrameError``."""
    if not data:
        raise FrameError("视频帧为空")
    if len(data) > max_bytes:
        raise FrameError(f"视频帧过大（{len(data)} 字节，上限 {max_bytes} 字节）")
    width, height = jpeg_dimensions(data)
    if width < min_side or height < min_side or width > max_width or height > max_height:
        raise FrameError(f"视频帧尺寸异常（{width}×{height}），应在 {min_side}×{min_side} 到 "
                         f"{max_width}×{max_height} 之间，建议 640×480")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise FrameError("视频帧 JPEG 数据损坏，无法解码")
    if image.shape[1] != width or image.shape[0] != height:
        raise FrameError("视频帧 JPEG 数据损坏，解码尺寸与文件头不符")
    return image


def fit_for_detection(image: np.ndarray, max_width: int = DEFAULT_WORK_WIDTH,
                      max_height: int = DEFAULT_WORK_HEIGHT) -> np.ndarray:
    """Downscale (never upscale) so the frame fits ``max_width``×``max_height``."""
    h, w = image.shape[:2]
    scale = min(max_width / w, max_height / h, 1.0)
    if scale >= 1.0:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
