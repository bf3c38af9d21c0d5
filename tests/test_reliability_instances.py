"""Two app processes on one database (what a load balancer without sticky sessions gives): a
candidate starts on instance A, resumes on B while A's socket is still open and A's client keeps
answering. A's session is gone within 2 s, A's client is told (error, close 4409), nothing A writes
after B took over lands (the database refuses it: the lease epoch), and the interview finishes on B
with a transcript and phase history free of duplicates and gaps."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import websockets

from conftest import SAMPLE_INTERVIEW, SAMPLE_RESUME
from core.timeutil import epoch_seconds
from ws_support import Inbox

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "admin-" + uuid.uuid4().hex

CONFIG = """
[server]
host = "127.0.0.1"
max_ws_message_bytes = 2000000

[storage]
database = "{database}"

[auth]
token_ttl_hours = 1

[engine]
phases = ["intro", "question"]
vad = ""
asr = ""
question_sources = ["bank"]
scorers = ["heuristic"]
cheat_detectors = []
code_runner = ""
lease_ttl_seconds = 10.0
lease_check_seconds = 1.0

[timing]
intro_silence_seconds = 600.0
answer_silence_seconds = 600.0
question_count = 2
tick_seconds = 0.25

[limits]
messages_per_second = 200

[plugins.bank]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Instance:
    def __init__(self, name: str, mongo_uri: str, config_path: Path, data_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/webrtc/"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIANSHI_")}
        env.update(PORT=str(self.port), MONGODB_URI=mongo_uri, MIANSHI_CONFIG=str(config_path),
                   MIANSHI_DATA_DIR=str(data_dir), MIANSHI_JWT_SECRET="shared-secret-of-the-cluster-" + "x" * 20,
                   MIANSHI_ADMIN_TOKEN=ADMIN, MIANSHI_INSTANCE_ID=name)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir.parent / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "sanic_app.py"], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    async def ready(self, http: httpx.AsyncClient, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"instance {self.name} exited: {self.output()[-3000:]}")
            try:
                if (await self.stats(http)) is not None:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
        raise AssertionError(f"instance {self.name} did not start: {self.output()[-3000:]}")

    async def stats(self, http: httpx.AsyncClient) -> dict | None:
        r = await http.get(self.base_url + "/-/stats", headers={"Authorization": f"Bearer {ADMIN}"})
        return r.json() if r.status_code == 200 else None

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def instances(mongo_uri, tmp_path):
    config_path = tmp_path / "cluster.toml"
    config_path.write_text(CONFIG.format(database=f"cluster_{uuid.uuid4().hex[:10]}"), encoding="utf-8")
    started = [Instance(name, mongo_uri, config_path, tmp_path / name / "data") for name in ("A", "B")]
    yield started
    for instance in started:
        instance.stop()


def at(entry: dict) -> float:
    return epoch_seconds(entry["at"])


async def test_resume_on_another_instance_fences_out_the_first(instances):
    a, b = instances
    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(a.ready(http), b.ready(http))
        r = await http.post(a.base_url + "/users/register/",
                            json={"username": f"c_{uuid.uuid4().hex[:8]}", "password": "secret-pass-1"})
        assert r.status_code == 201, r.text
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        token = r.json()["token"]
        resume_id = (await http.post(a.base_url + "/users/resume/", json=SAMPLE_RESUME, headers=auth)).json()["resume_id"]
        interview_id = (await http.post(a.base_url + "/interviews/create/", json=SAMPLE_INTERVIEW,
                                        headers=auth)).json()["id"]
        create = json.dumps({"type": "create_stream", "title": "面试视频流", "description": "实时面试",
                             "interview_id": interview_id, "resume_id": str(resume_id)})

        # --- on A: the intro, then the first question ---------------------------------------------
        ws_a = await websockets.connect(f"{a.ws_url}?token={token}")
        inbox_a = Inbox(ws_a)
        await inbox_a.wait_for(lambda m: m["type"] == "connection_established")
        await ws_a.send(create)
        await inbox_a.wait_for(lambda m: m["type"] == "interview_message" and m["phase"] == "intro")
        await ws_a.send(json.dumps({"type": "text_answer", "text": "我是张三，做了四年后端开发"}))
        await ws_a.send(json.dumps({"type": "end_answer"}))
        await inbox_a.wait_for(lambda m: m["type"] == "interview_message" and m.get("question_index") == 1)
        assert (await a.stats(http))["sessions"] == 1

        # A's client keeps answering, as a page whose user has not noticed anything would
        sent_by_a: list[str] = []

        async def keep_answering():
            n = 0
            try:
                while True:
                    text = f"A的回答{n}"
                    await ws_a.send(json.dumps({"type": "text_answer", "text": text}))
                    sent_by_a.append(text)
                    n += 1
                    await asyncio.sleep(0.03)
            except websockets.ConnectionClosed:
                pass
        spam = asyncio.ensure_future(keep_answering())
        await asyncio.sleep(0.5)

        # --- B takes over while A's socket is open ------------------------------------------------
        ws_b = await websockets.connect(f"{b.ws_url}?token={token}")
        inbox_b = Inbox(ws_b)
        await inbox_b.wait_for(lambda m: m["type"] == "connection_established")
        await ws_b.send(create)
        await inbox_b.wait_for(lambda m: m["type"] == "stream_created")
        took_over = time.time()
        resumed = await inbox_b.wait_for(lambda m: m["type"] == "interview_message")
        assert resumed.get("question_index") == 1              # the same question again

        await asyncio.wait_for(inbox_a.task, 5)                 # A's socket is closed by A
        closed_after = time.time() - took_over
        assert closed_after < 2.0, f"A noticed after {closed_after:.2f} s"
        assert ws_a.close_code == 4409
        assert inbox_a.of("error", code=4409), inbox_a.messages[-3:]
        await spam
        assert len(sent_by_a) > 10
        stats_a = await a.stats(http)
        assert stats_a["sessions"] == 0 and stats_a["closing"] == 0
        assert (await b.stats(http))["sessions"] == 1

        # --- B finishes the interview ---------------------------------------------------------------
        answered = set()
        while True:
            message = await inbox_b.wait_for(
                lambda m: m["type"] == "interview_message" and (m["phase"] == "end" or
                                                                (m.get("question_index"), m["text"]) not in answered),
                timeout=30)
            if message["phase"] == "end":
                break
            answered.add((message.get("question_index"), message["text"]))
            await ws_b.send(json.dumps({"type": "text_answer", "text": f"B的回答{len(answered)}"}))
            await ws_b.send(json.dumps({"type": "end_answer"}))
        await ws_b.close()
        await inbox_b.task

        r = await http.get(f"{b.base_url}/interviews/{interview_id}/", headers=auth)
        interview = r.json()["interview"]
        assert interview["status"] == "finished"
        transcript = interview["transcript"]
        texts = [e["text"] for e in transcript]
        assert len(texts) == len(set(texts)), "an utterance was stored twice"
        from_a = [e for e in transcript if e["text"].startswith("A的回答")]
        from_b = [e for e in transcript if e["text"].startswith("B的回答")]
        assert from_a and from_b
        assert all(at(e) < took_over for e in from_a), "a write of A landed after B took over"
        assert [e["text"] for e in from_a] == sent_by_a[:len(from_a)]     # in order, no gaps
        assert transcript.index(from_a[-1]) < transcript.index(from_b[0])
        assert [p["phase"] for p in interview["phase_history"]] == ["intro", "question", "end"]
        indexes = [q["index"] for q in interview["questions"] if q.get("index") is not None]
        assert indexes == sorted(set(indexes)) and indexes[0] == 1 and indexes[-1] == len(set(indexes))
        assert (await b.stats(http))["sessions"] == 0
