"""Shared helpers of the speech tests: the test recordings and their references."""
from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

# The recordings live in shared/ beside the repository (../shared/audio/zh from the checkout).
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
AUDIO = Path(os.environ.get("MIANSHI_TEST_AUDIO") or SHARED / "audio" / "zh")


def references() -> dict[str, str]:
    out = {}
    for line in (AUDIO / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            out[k.strip()] = v.strip()
    return out


def load(name: str) -> np.ndarray:
    with wave.open(str(AUDIO / f"{name}.wav")) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def voiced_bounds(pcm: np.ndarray) -> tuple[int, int]:
    """First and last voiced sample: 10 ms frames within 40 dB of the loudest frame."""
    fr = pcm[: len(pcm) // 160 * 160].astype(np.float32).reshape(-1, 160)
    db = 10 * np.log10((fr ** 2).mean(1) + 1e-3)
    idx = np.nonzero(db > db.max() - 40)[0]
    return int(idx[0]) * 160, int(idx[-1] + 1) * 160


def silence(seconds: float, level_dbfs: float | None = None, seed: int = 0) -> np.ndarray:
    """Digital silence, or white noise at ``level_dbfs`` RMS."""
    n = int(seconds * 16000)
    if level_dbfs is None:
        return np.zeros(n, np.int16)
    rng = np.random.default_rng(seed)
    amp = 32768 * 10 ** (level_dbfs / 20)
    return np.clip(rng.normal(0, amp, n), -32768, 32767).astype(np.int16)


def frames(pcm: np.ndarray, size: int = 640):
    for i in range(0, len(pcm), size):
        yield pcm[i:i + size]


def segments(events) -> list[tuple[int, int]]:
    """(start, end) samples of each utterance in a VAD stream's events, which must alternate
    start, end, start, end."""
    kinds = [e.kind for e in events]
    assert kinds == ["start", "end"] * (len(kinds) // 2), kinds
    return [(events[i].sample, events[i + 1].sample) for i in range(0, len(events), 2)]


def vad_events(vad, pcm: np.ndarray) -> list:
    """The events of one VAD stream fed ``pcm`` in 40 ms frames, then finished."""
    stream = vad.open_stream()
    events = []
    for frame in frames(pcm):
        events += stream.accept(frame)
    events += stream.finish()
    return events


# --- the development set and its fixed split ---------------------------------------------------
DEV_AUDIO = SHARED / "audio" / "zh-dev"


def references_in(audio_dir: Path) -> dict[str, str]:
    out = {}
    for line in (Path(audio_dir) / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            out[k.strip()] = v.strip()
    return out


def load_from(audio_dir: Path, name: str) -> np.ndarray:
    with wave.open(str(Path(audio_dir) / f"{name}.wav")) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def dev_split(names) -> tuple[list[str], list[str]]:
    """(tuning, held-out) names of the development set, fixed: within each group (the name without
    its number: d_be, d_fe, ...) the ceil(n/3) names with the smallest sha256 of the name are
    held out. Tune only on the first part; report on the second."""
    import hashlib
    import math
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(n.rsplit("_", 1)[0], []).append(n)
    held = set()
    for members in groups.values():
        members = sorted(members, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
        held |= set(members[: math.ceil(len(members) / 3)])
    return [n for n in names if n not in held], [n for n in names if n in held]


# --- the interviewer's words in the candidate's transcript (echo) --------------------------------
def interviewer_words(spoken: str, reference: str) -> list[str]:
    """Words the interviewer said (jieba, two or more CJK characters) that the candidate's reference
    does not contain: any of them in the candidate's transcript came from the voice, not from the
    candidate (bench/bench_echo.py, tests/test_browser_echo.py)."""
    import jieba

    from plugins._speech_util import normalize_for_cer
    ref = normalize_for_cer(reference)
    words: list[str] = []
    for w in jieba.lcut(spoken):
        w = normalize_for_cer(w)
        if len(w) >= 2 and all("\u4e00" <= ch <= "\u9fff" for ch in w) and w not in ref and w not in words:
            words.append(w)
    return words


def leaked_words(transcript: str, words: list[str]) -> list[str]:
    """The ``interviewer_words`` found in ``transcript`` (normalised as for CER)."""
    from plugins._speech_util import normalize_for_cer
    text = normalize_for_cer(transcript)
    return [w for w in words if w in text]
