"""Soak benchmark: many short sessions that end abruptly (issue 18).

    .venv/bin/python bench/bench_soak.py [--sessions 1000] [--concurrency 20] [--ping 2]

Starts a real server process (plugins.toml: FSMN VAD, Whisper, the cheat detectors, the embedded
database) and runs ``--sessions`` short interviews, ``--concurrency`` at a time. Each connects,
sends ``create_stream``, streams 0.5-3 s of a Mandarin recording at real-time pace plus a JPEG a
second, then ends one of five ways at that random moment: a TCP abort, a close without
``disconnect``, ``disconnect`` + close, a takeover by a second connection, or a peer that vanishes
(stops reading and answering pings; the server's pings find it). Before (after a warm-up) and after
(once the server reports no session), it prints the server's RSS, its event loop's task count and
its open sessions and speech streams, read from ``GET /-/stats``.

Targets: 0 leaked sessions, RSS growth under 50 MB.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
import websockets  # noqa: E402

from bench_session import INTERVIEW, frames_of, free_port, jpeg_frame, new_candidate, read_pcm  # noqa: E402
from ws_support import SilentPeer  # noqa: E402

ADMIN = "soak-" + uuid.uuid4().hex
ENDINGS = ("abort", "close", "disconnect", "takeover", "vanish")
CLIPS = ("intro_01.wav", "intro_02.wav", "intro_03.wav", "answer_long.wav")


class Server:
    def __init__(self, ping: float) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}/ws/webrtc/"
        self.data = tempfile.mkdtemp(prefix="mianshi-soak-")
        config = Path(self.data) / "soak.toml"
        # plugins.toml as it is, with pings fast enough for vanished peers to be found during the run
        text = (ROOT / "plugins.toml").read_text(encoding="utf-8")
        text = text.replace("ws_ping_interval_seconds = 10.0", f"ws_ping_interval_seconds = {ping}")
        text = text.replace("ws_ping_timeout_seconds = 10.0", f"ws_ping_timeout_seconds = {ping}")
        # one user per client worker: its earlier connections may still be flushing their last final
        text = text.replace("ws_connections_per_user = 4", "ws_connections_per_user = 16")
        config.write_text(text, encoding="utf-8")
        env = dict(os.environ, PORT=str(self.port), MIANSHI_DATA_DIR=self.data, MIANSHI_CONFIG=str(config),
                   MIANSHI_ADMIN_TOKEN=ADMIN)
        env.setdefault("MALLOC_ARENA_MAX", "2")         # as scripts/run-server.sh starts the server
        env.pop("MONGODB_URI", None)
        self.log = open(Path(self.data) / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "sanic_app.py")], env=env, cwd=str(ROOT),
                                     stdout=self.log, stderr=subprocess.STDOUT)

    async def stats(self, http: httpx.AsyncClient) -> dict:
        r = await http.get(self.base + "/-/stats", headers={"Authorization": f"Bearer {ADMIN}"})
        r.raise_for_status()
        return r.json()

    async def up(self, http: httpx.AsyncClient, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early, see {self.log.name}")
            try:
                await self.stats(http)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
        raise RuntimeError("server did not come up")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def one_session(server: Server, http: httpx.AsyncClient, token: str, resume_id: int, ending: str,
                      audio: list[str], video: str, rng: random.Random) -> None:
    r = await http.post(server.base + "/interviews/create/", json=INTERVIEW,
                        headers={"Authorization": f"Bearer {token}"})
    interview_id = r.json()["id"]
    create = json.dumps({"type": "create_stream", "interview_id": interview_id, "resume_id": resume_id})
    url = f"{server.ws}?token={token}"
    start = rng.randrange(len(audio))
    n_frames = int(rng.uniform(0.5, 3.0) * 25)
    if ending == "vanish":
        peer = await SilentPeer.connect(url)
        await peer.wait_for(lambda m: m["type"] == "connection_established")
        await peer.send_text(create)
        await peer.wait_for(lambda m: m["type"] == "interview_message")
        await stream(peer.send_text, audio, video, start, n_frames)
        await peer.go_silent()
        # the peer holds its socket until the server drops it (found by the pings)
        try:
            await asyncio.wait_for(peer.reader.read(), 120)
        except asyncio.TimeoutError:
            pass
        peer.abort()
        return
    async with websockets.connect(url, max_size=None) as ws:
        await ws.recv()
        await ws.send(create)
        while json.loads(await ws.recv())["type"] != "interview_message":
            pass
        await stream(ws.send, audio, video, start, n_frames)
        if ending == "abort":
            ws.transport.abort()
        elif ending == "disconnect":
            await ws.send(json.dumps({"type": "disconnect"}))
        elif ending == "takeover":
            async with websockets.connect(url, max_size=None) as newer:
                await newer.recv()
                await newer.send(create)
                while json.loads(await newer.recv())["type"] != "stream_created":
                    pass
                try:                                  # the older connection is closed (4409)
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                except (websockets.ConnectionClosed, asyncio.TimeoutError):
                    pass


async def stream(send, audio: list[str], video: str, start: int, n_frames: int) -> None:
    t0 = time.monotonic()
    for i in range(n_frames):
        await send(audio[(start + i) % len(audio)])
        if i % 25 == 0:
            await send(video)
        await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.04 - time.monotonic()))


async def run(sessions: int, concurrency: int, ping: float, seed: int, report_every: int) -> None:
    audio = frames_of(b"".join(read_pcm(name) for name in CLIPS))
    video = jpeg_frame()
    server = Server(ping)
    rng = random.Random(seed)
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            await server.up(http)
            users = [await new_candidate(server.base, http, "soak") for _ in range(concurrency)]

            async def worker(w: int, count: int, endings: list[str]) -> list[str]:
                failures = []
                token, resume_id = users[w]
                for k in range(count):
                    try:
                        await one_session(server, http, token, resume_id, endings[k], audio, video,
                                          random.Random(rng.random()))
                    except Exception as exc:            # a client-side hiccup is reported, not fatal
                        failures.append(f"{endings[k]}: {exc!r}")
                return failures

            async def batch(n: int) -> tuple[list[str], dict]:
                endings = [ENDINGS[i % len(ENDINGS)] for i in range(n)]
                rng.shuffle(endings)
                per = [endings[w::concurrency] for w in range(concurrency)]
                t0 = time.monotonic()
                results = await asyncio.gather(*[worker(w, len(per[w]), per[w]) for w in range(concurrency)])
                settled = await settle(server, http)
                return [f for r in results for f in r], {"seconds": time.monotonic() - t0, **settled}

            warm_failures, _ = await batch(min(sessions, 2 * concurrency))
            before = await server.stats(http)
            started = time.monotonic()
            failures, done, after, halfway = [], 0, None, None
            while done < sessions:                  # RSS along the way: a leak grows, a plateau does not
                n = min(report_every, sessions - done)
                batch_failures, after = await batch(n)
                failures += batch_failures
                done += n
                if halfway is None and done >= sessions // 2:
                    halfway = after
                print(f"  after {done:5d} sessions: RSS {after['rss_bytes'] / 2**20:.1f} MiB, {after['tasks']} tasks, "
                      f"{after['sessions']} sessions", flush=True)
            after["seconds"] = time.monotonic() - started
            print(f"soak: {sessions} sessions, {concurrency} at a time, endings {', '.join(ENDINGS)} "
                  f"(pings every {ping} s), {after['seconds']:.0f} s")
            print(f"  before (after {min(sessions, 2 * concurrency)} warm-up sessions): "
                  f"RSS {before['rss_bytes'] / 2**20:.1f} MiB, {before['tasks']} tasks, "
                  f"{before['sessions']} sessions, {before['speech_streams']} speech streams")
            print(f"  after:  RSS {after['rss_bytes'] / 2**20:.1f} MiB, {after['tasks']} tasks, "
                  f"{after['sessions']} sessions, {after['speech_streams']} speech streams "
                  f"(settled {after['settle_seconds']:.1f} s after the last client)")
            growth = (after["rss_bytes"] - before["rss_bytes"]) / 2**20
            print(f"  RSS growth {growth:+.1f} MiB (target < 50), leaked sessions {after['sessions']} (target 0), "
                  f"task count {before['tasks']} -> {after['tasks']}")
            print(f"  RSS growth over the second half of the sessions: "
                  f"{(after['rss_bytes'] - halfway['rss_bytes']) / 2**20:+.1f} MiB (a leak grows steadily)")
            print(f"  event-loop lag over the run: p50 {after['loop']['lag_ms_p50']} ms, "
                  f"p99 {after['loop']['lag_ms_p99']} ms; ASR {after['asr']}")
            if failures or warm_failures:
                print(f"  client-side errors: {len(failures) + len(warm_failures)} (first: {(failures or warm_failures)[:3]})")
    finally:
        server.stop()


async def settle(server: Server, http: httpx.AsyncClient, timeout: float = 180) -> dict:
    t0 = time.monotonic()
    while True:
        s = await server.stats(http)
        if (s["sessions"] == 0 and s["closing"] == 0) or time.monotonic() - t0 > timeout:
            settled = time.monotonic() - t0
            await asyncio.sleep(2.0)          # the server trims its heap once idle: measure after that
            return {**await server.stats(http), "settle_seconds": settled}
        await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--ping", type=float, default=2.0, help="ping interval and timeout of the server (s)")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--report-every", type=int, default=250, help="print RSS after this many sessions")
    args = parser.parse_args()
    asyncio.run(run(args.sessions, args.concurrency, args.ping, args.seed, args.report_every))


if __name__ == "__main__":
    main()
