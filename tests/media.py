"""Media files for the browser tests: a face video (.y4m) and speech (.wav) for Chromium's fake
capture devices (``--use-file-for-fake-video-capture`` / ``--use-file-for-fake-audio-capture``).
"""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from tests.asr_support import AUDIO as AUDIO_DIR  # ../shared/audio/zh beside the repository
SAMPLE_RATE = 16_000


# --- video ---------------------------------------------------------------------------------------
def rgb_to_yuv420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-range BT.601 (JPEG) RGB -> planar Y, U, V with 2x2-averaged chroma."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] % 2 or rgb.shape[1] % 2:
        raise ValueError("expected an RGB image with even width and height")
    f = rgb.astype(np.float64)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
    v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0

    def sub(c: np.ndarray) -> np.ndarray:
        return (c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2]) / 4.0

    def u8(c: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(c), 0, 255).astype(np.uint8)

    return u8(y), u8(sub(u)), u8(sub(v))


def write_y4m(path: str | Path, frames: list[np.ndarray], fps: int = 30) -> Path:
    """Write RGB frames (H x W x 3 uint8, all the same even size) as a YUV4MPEG2 4:2:0 file."""
    if not frames:
        raise ValueError("no frames")
    height, width = frames[0].shape[:2]
    path = Path(path)
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in frames:
            if frame.shape[:2] != (height, width):
                raise ValueError("all frames must have the same size")
            y, u, v = rgb_to_yuv420(frame)
            fh.write(b"FRAME\n")
            fh.write(y.tobytes())
            fh.write(u.tobytes())
            fh.write(v.tobytes())
    return path


def read_y4m_first_frame(path: str | Path) -> tuple[dict, np.ndarray]:
    """Header fields and the first frame's Y plane (for checking the writer)."""
    data = Path(path).read_bytes()
    header, rest = data.split(b"\n", 1)
    fields = {tok[:1].decode(): tok[1:].decode() for tok in header.split()[1:]}
    w, h = int(fields["W"]), int(fields["H"])
    if not rest.startswith(b"FRAME\n"):
        raise ValueError("missing FRAME marker")
    y = np.frombuffer(rest[6:6 + w * h], dtype=np.uint8).reshape(h, w)
    return fields, y


def astronaut_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """scikit-image's astronaut (one frontal face), scaled to fit and centred on a grey canvas."""
    from skimage import data
    from skimage.transform import resize

    img = data.astronaut()                       # 512 x 512 RGB
    side = min(width, height)
    scaled = (resize(img, (side, side), anti_aliasing=True) * 255).round().astype(np.uint8)
    canvas = np.full((height, width, 3), 128, dtype=np.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    canvas[top:top + side, left:left + side] = scaled
    return canvas


def write_face_y4m(path: str | Path, width: int = 640, height: int = 480, frames: int = 2) -> Path:
    frame = astronaut_frame(width, height)
    return write_y4m(path, [frame] * frames)


# --- audio ---------------------------------------------------------------------------------------
def read_wav(path: str | Path) -> np.ndarray:
    """16 kHz mono s16le WAV -> int16 samples."""
    with wave.open(str(path), "rb") as w:
        if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit, got {w.getframerate()} Hz, "
                             f"{w.getnchannels()} ch, {8 * w.getsampwidth()} bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


def write_wav(path: str | Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return path


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.int16)


def assemble(parts: list[str | float], audio_dir: Path = AUDIO_DIR) -> np.ndarray:
    """Concatenate clips named by stem (``"intro_01"``) and silences given in seconds."""
    chunks = []
    for part in parts:
        if isinstance(part, (int, float)):
            chunks.append(silence(float(part)))
        else:
            chunks.append(read_wav(audio_dir / f"{part}.wav"))
    return np.concatenate(chunks)


def transcripts(audio_dir: Path = AUDIO_DIR) -> dict[str, str]:
    out = {}
    for line in (audio_dir / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            stem, text = line.split("\t", 1)
            out[stem.strip()] = text.strip()
    return out


# --- comparing what the page sent with what the fake microphone played -------------------------------
def align_windows(received: np.ndarray, source: np.ndarray, window: int = SAMPLE_RATE,
                  hop: int = SAMPLE_RATE // 2, min_rms: float = 300.0) -> list[dict]:
    """Chromium's fake capture loops ``source``; for each window of ``received`` with signal in it,
    find where it lies in the (looped) source by circular cross-correlation.

    Returns per window: ``start`` (index in ``received``), ``offset`` = source position minus
    received position (mod len(source); constant while no sample is lost or inserted), ``corr``
    (Pearson correlation with the source at that position: ~1 for an exact resampled copy).
    """
    y = np.asarray(received, dtype=np.float64)
    x = np.asarray(source, dtype=np.float64)
    n_src = len(x)
    if window > n_src:
        raise ValueError("window longer than the source")
    tiled = np.concatenate([x, x[:window]])
    nfft = 1 << int(np.ceil(np.log2(len(tiled) + window)))
    spec = np.fft.rfft(tiled, nfft)
    out = []
    for start in range(0, len(y) - window + 1, hop):
        seg = y[start:start + window]
        if np.sqrt(np.mean(seg ** 2)) < min_rms:
            continue
        corr = np.fft.irfft(spec * np.conj(np.fft.rfft(seg, nfft)), nfft)[:n_src]
        d = int(np.argmax(corr))
        ref = tiled[d:d + window]
        if np.std(ref) == 0:
            continue
        out.append({"start": start, "offset": (d - start) % n_src,
                    "corr": float(np.corrcoef(seg, ref)[0, 1])})
    return out


def offset_steps(windows: list[dict], n_src: int) -> list[int]:
    """Changes of the alignment offset between consecutive windows, unwrapped into
    (-n_src/2, n_src/2]. Positive: the received stream skipped source samples (lost);
    negative: samples were inserted (e.g. padding where the fake device loops the file)."""
    steps = []
    for a, b in zip(windows, windows[1:]):
        step = (b["offset"] - a["offset"]) % n_src
        if step > n_src // 2:
            step -= n_src
        steps.append(int(step))
    return steps
