"""Web-tier benchmark with ASR served elsewhere (issue 15): how many concurrent streaming sessions one
server instance holds with event-loop lag p99 under 50 ms (target: >= 100).

    .venv/bin/python bench/bench_webtier.py                      # levels 25,50,75,100,125,150
    .venv/bin/python bench/bench_webtier.py --levels 50,100 --seconds 30 --delay 0.15
    .venv/bin/python bench/bench_webtier.py --vad energy --no-vision   # what FSMN and the detectors cost

Starts two processes: the real server (``sanic_app.py``, plugins.toml as it is - FSMN VAD, the
default vision detectors on every JPEG, the embedded database - except ``[engine] asr =
"openai_asr"`` pointing at the second process) and ``bench/asr_standin.py``, a FAST STAND-IN for the
remote recogniser that answers every request after ``--delay`` seconds without recognising anything.
The stand-in is acceptable here only because this benchmark measures the web tier: a real recogniser
would run on other machines (README, "Remote ASR"); with it on these 2 cores the numbers would measure
the recogniser.

For each level N, N clients (N candidates, each with a resume and one interview; real WebSockets
from this process; their starts spread over 0.2 s) send
``create_stream``, then a 40 ms audio frame every 40 ms (Mandarin recordings with 1 s of silence
after each, looped, each client at another offset) and one JPEG a second for ``--seconds``; the
server's event-loop lag (``GET /-/stats``: a 10 ms timer's lateness, core/loopmon.py) is read over
75 % of that window, from when the sessions' start has settled (after a ramp of 20 %, once no speech
event waits over 1 s: their start is a burst of database writes; printed), and every second the largest audio backlog of any session (frames
received but not yet through the VAD) and the longest any speech event has waited for its session's
handler (stored, sent: the audio does not wait for it). A level is held when lag p99 < 50 ms AND no
session was more than 1 s of audio behind (a loop can stay responsive while the VAD falls behind)
AND no event waited more than 1 s AND the recordings keep up (at most 2 min of audio waiting for the
encoder, and at most 5 s' worth of the window's database writes of recordings and frames waiting, at
the end; none left unwritten for a full queue). Printed per level: lag
p50/p99/max, the backlog, the sessions open, the ASR requests the stand-in answered, the
finals/partials/errors the clients received, the CPU seconds per wall second of the server (and of
its event-loop thread alone), of its
child processes (the FSMN-VAD worker, the embedded database, the voice worker) and of this client
process, the JPEGs through the detectors per session per second (a busy server drops stale ones
rather than queue them) and the recordings encoded or skipped. Everything runs on one 2-core
machine (the clients and the stand-in too): their CPU is load the server would not have.
``--set SECTION.KEY=VALUE`` changes a plugins.toml setting for the run (e.g.
``--set recordings.enabled=false``, ``--set speech.vad_batch_frames=1``,
``--set plugins.fsmn.worker_process=true``).

``--media standin`` sends the JPEGs and the utterances to a media server (``[media] url``,
README "Media server") played by the same stand-in process (a face per frame, a fixed Opus file per
utterance): what the web tier spends sending that work away. ``--media real`` starts
``media_server.py`` on these cores instead. ``--pin`` puts the server process (all its threads and
its FSMN/voice workers) on CPU 0 and everything else (clients, stand-ins, media server, embedded
database) on CPU 1: the web tier with one core to itself. ``--favour-server`` instead leaves
everything on both cores and puts all but the server at nice 19: the web tier takes what it needs
first (a stand-in for a 2-core web tier of its own, whose database and clients run elsewhere).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
import websockets  # noqa: E402

from bench_session import INTERVIEW, frames_of, free_port, jpeg_frame, new_candidate, read_pcm, stop_server  # noqa: E402

ADMIN = "webtier-" + uuid.uuid4().hex
MAX_BACKLOG = 25          # frames (40 ms each) a session may have waiting for the VAD: 1 s behind real time
MAX_RECORDING_WAIT = 120  # seconds of audio waiting for the recording encoder: more means it falls behind
MAX_STORE_WAIT_S = 5      # recordings/frames waiting for the database at the end: at most this many
                          # seconds of the window's write rate (more means the database falls behind)
SETTLE_MAX_S = 20         # after the ramp, at most this long for the sessions' start to settle (below)
MAX_EVENT_WAIT = 1.0      # seconds a speech event (start/end, transcript) may wait for its handler (store, send)
PHASES = 0.2              # s over which the sessions' starts are spread: their 40 ms frames and the VAD's
                          # 200 ms chunks fall at every phase, not in step (which would flatter batching)
CLIPS = ("intro_01.wav", "intro_02.wav", "intro_03.wav", "answer_long.wav")


def proc_cpu(pid: int, tid: int | None = None) -> float:
    """CPU seconds (user + system) of a process so far, or of its thread ``tid`` (Linux /proc)."""
    with open(f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loop_thread_cpu(pid: int) -> float:
    """CPU seconds so far of ``pid``'s main thread: the server's event loop (its other threads are
    the ASR request threads, the database driver's, the encoders')."""
    return proc_cpu(pid, tid=pid)


def children_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``'s child processes by name (the FSMN-VAD worker, the embedded database,
    the voice worker): they share the instance's cores too."""
    out: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                name, rest = fh.read().split(" (", 1)[1].rsplit(")", 1)
            if int(rest.split()[1]) != pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        label = next((Path(a.decode()).stem for a in args[1:] if a and not a.startswith(b"-")), name)
        if b"-m" in args:
            label = args[args.index(b"-m") + 1].decode()
        out[label] = out.get(label, 0.0) + proc_cpu(int(entry))
    return out


def write_config(data: Path, asr_url: str, max_concurrency: int, vad: str | None = None,
                 vision: bool = True, extra: dict | None = None) -> Path:
    """plugins.toml with the remote plugin selected and room for many registrations from one address;
    ``vad`` another VAD plugin, ``vision=False`` no cheat detectors (to show what they cost)."""
    text = (ROOT / "plugins.toml").read_text(encoding="utf-8")
    edits = []
    if vad:
        edits.append(('\nvad = "fsmn"', f'\nvad = "{vad}"'))
    if not vision:
        edits.append(('\ncheat_detectors = ["blazeface", "facemesh_pose"]', "\ncheat_detectors = []"))
    for old, new in edits + [('\nasr = "whisper"', f'\nasr = "openai_asr"\nasr_workers = {max_concurrency}'),
                     ("[plugins.openai_asr]", f'[plugins.openai_asr]\nbase_url = "{asr_url}"'),
                     ("\nmax_concurrency = 4 ", f"\nmax_concurrency = {max_concurrency} ")]:
        if old not in text:
            raise SystemExit(f"plugins.toml no longer has {old.strip()!r}: update bench/bench_webtier.py")
        text = text.replace(old, new, 1)
    # every candidate registers from this one address: lift the per-address registration limit
    text = set_toml(text, "throttle", {"registrations_per_address": 1_000_000})
    for section, body in (extra or {}).items():        # --set SECTION.KEY=VALUE
        text = set_toml(text, section, body)
    path = data / "webtier.toml"
    path.write_text(text, encoding="utf-8")
    return path


def set_toml(text: str, section: str, body: dict) -> str:
    """``text`` (plugins.toml) with ``key = value`` lines of ``body`` in ``[section]``: a key the
    section has is replaced, others are added under its header (or a new section at the end)."""
    lines = text.split("\n")
    header = f"[{section}]"
    starts = [i for i, line in enumerate(lines) if line.split("#")[0].strip() == header]
    if not starts:
        return text + f"\n{header}\n" + "".join(f"{k} = {v}\n" for k, v in body.items())
    start = starts[0]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    keep = [line for line in lines[start + 1:end] if line.split("=")[0].strip() not in body]
    return "\n".join(lines[:start + 1] + [f"{k} = {v}" for k, v in body.items()] + keep + lines[end:])


class Servers:
    def __init__(self, delay: float, max_concurrency: int, vad: str | None, vision: bool,
                 extra: dict | None = None, media: str = "none") -> None:
        self.data = Path(tempfile.mkdtemp(prefix="mianshi-webtier-"))
        asr_port, port = free_port(), free_port()
        self.asr_base = f"http://127.0.0.1:{asr_port}"
        self.asr_log = open(self.data / "asr_standin.log", "wb")
        self.asr = subprocess.Popen([sys.executable, str(ROOT / "bench" / "asr_standin.py"), "--port",
                                     str(asr_port), "--delay", str(delay)], cwd=str(ROOT),
                                    stdout=self.asr_log, stderr=subprocess.STDOUT)
        self.media_proc = None
        self.media_base = None
        extra = {k: dict(v) for k, v in (extra or {}).items()}
        if media == "standin":
            self.media_base = self.asr_base
        elif media == "real":                  # media_server.py on these same cores
            self.media_base = f"http://127.0.0.1:{free_port()}"
        if self.media_base:
            extra.setdefault("media", {})["url"] = f'"{self.media_base}"'
        config = write_config(self.data, self.asr_base + "/v1", max_concurrency, vad, vision, extra)
        if media == "real":
            self.media_log = open(self.data / "media_server.log", "wb")
            self.media_proc = subprocess.Popen(
                [sys.executable, str(ROOT / "media_server.py"), "--port", self.media_base.rsplit(":", 1)[1]],
                cwd=str(ROOT), env=dict(os.environ, MIANSHI_CONFIG=str(config)),
                stdout=self.media_log, stderr=subprocess.STDOUT)
        env = dict(os.environ, PORT=str(port), MIANSHI_DATA_DIR=str(self.data), MIANSHI_CONFIG=str(config),
                   MIANSHI_ADMIN_TOKEN=ADMIN)
        env.setdefault("MALLOC_ARENA_MAX", "2")         # as scripts/run-server.sh starts the server
        env.pop("MONGODB_URI", None)
        self.log = open(self.data / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "sanic_app.py")], env=env, cwd=str(ROOT),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/ws/webrtc/"

    async def stats(self, http: httpx.AsyncClient) -> dict:
        r = await http.get(self.base + "/-/stats", headers={"Authorization": f"Bearer {ADMIN}"})
        r.raise_for_status()
        return r.json()

    async def asr_stats(self, http: httpx.AsyncClient) -> dict:
        return (await http.get(self.asr_base + "/stats")).json()

    async def up(self, http: httpx.AsyncClient, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p, name in ((self.proc, "server.log"), (self.asr, "asr_standin.log"),
                            (self.media_proc, "media_server.log")):
                if p is not None and p.poll() is not None:
                    raise RuntimeError(f"a process exited early, see {self.data / name}")
            try:
                await self.stats(http)
                await self.asr_stats(http)
                if self.media_base:
                    (await http.get(self.media_base + "/v1/media/info")).raise_for_status()
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
        raise RuntimeError("server did not come up")

    def stop(self) -> None:
        stop_server(self.proc, 60)
        keep = os.environ.get("BENCH_KEEP_LOGS")       # a directory to copy the server's log to
        if keep:
            import shutil
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.data / "server.log", Path(keep) / f"server-{os.getpid()}.log")
        stop_server(self.asr, 10)
        if self.media_proc is not None:
            stop_server(self.media_proc, 10)
            self.media_log.close()
        self.log.close()
        self.asr_log.close()


async def session(servers: Servers, user: tuple[str, int], audio: list[str], video: str,
                  offset: int, seconds: float, ready: asyncio.Barrier, counts: dict, phase: float) -> None:
    token, resume_id = user
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=120) as http:
        r = await http.post(servers.base + "/interviews/create/", json=INTERVIEW, headers=headers)
        interview_id = r.json()["id"]
    async with websockets.connect(f"{servers.ws}?token={token}", max_size=None, open_timeout=120) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "create_stream", "interview_id": interview_id, "resume_id": resume_id}))

        async def reader():
            try:
                async for raw in ws:
                    msg = json.loads(raw)
                    key = msg["type"] + (":final" if msg.get("is_final") else "")
                    counts[key] = counts.get(key, 0) + 1
            except websockets.ConnectionClosed:
                return              # the sender sees it too and reports it

        reading = asyncio.create_task(reader())
        await ready.wait()
        await asyncio.sleep(phase)      # sessions start at different moments, as real ones do
        start = time.monotonic()
        i = 0
        try:
            while time.monotonic() - start < seconds:
                await ws.send(audio[(offset + i) % len(audio)])
                if i % 25 == offset % 25:
                    await ws.send(video)
                i += 1
                await asyncio.sleep(max(0.0, start + i * 0.04 - time.monotonic()))
        except websockets.ConnectionClosed as exc:
            exc.add_note(f"after {time.monotonic() - start:.1f} s of streaming")
            counts.setdefault("dropped_at_s", []).append(round(time.monotonic() - start, 1))
            raise
        reading.cancel()


async def candidates(servers: Servers, http: httpx.AsyncClient, n: int) -> list[tuple[str, int]]:
    """``n`` candidates (token, resume id), each registered with a resume: one per session, as in
    production (their interviews and recordings spread over the database's per-owner shards, and
    ``ws_connections_per_user`` stays as shipped). Registered before the levels, 8 at a time."""
    gate = asyncio.Semaphore(8)

    async def one() -> tuple[str, int]:
        async with gate:
            return await new_candidate(servers.base, http, "w")
    return list(await asyncio.gather(*(one() for _ in range(n))))


async def level(servers: Servers, http: httpx.AsyncClient, users: list[tuple[str, int]], n: int,
                seconds: float, audio: list[str], video: str) -> dict:
    ready = asyncio.Barrier(n + 1)
    counts: dict = {}
    tasks = [asyncio.create_task(session(servers, users[k], audio, video, k * 37, seconds, ready, counts,
                                                 phase=PHASES * k / n))
             for k in range(n)]
    await ready.wait()
    streaming_until = time.monotonic() + seconds
    asr_before = await servers.asr_stats(http)
    await asyncio.sleep(seconds * 0.2)                 # ramp: every client streaming
    # The sessions' start (interviews, leases, first questions: a burst of database writes) can
    # leave speech events waiting for a while: the window starts once none waits over the limit
    # (at most SETTLE_MAX_S later), and how long that took is printed.
    settle_start, settled = time.monotonic(), None
    while time.monotonic() - settle_start < SETTLE_MAX_S:
        wait = (await servers.stats(http)).get("speech_events_waiting", {}).get("max_wait_s", 0.0)
        if wait <= MAX_EVENT_WAIT:
            settled = time.monotonic() - settle_start
            break
        await asyncio.sleep(0.5)
    await http.post(servers.base + "/-/stats/reset", headers={"Authorization": f"Bearer {ADMIN}"})
    before = await servers.stats(http)
    vision_before, rec_before = before["vision_frames"], before["recording_encoder"]
    cpu_s, cpu_c, t0 = proc_cpu(servers.proc.pid), proc_cpu(os.getpid()), time.monotonic()
    cpu_loop = loop_thread_cpu(servers.proc.pid)
    cpu_m = proc_cpu(servers.media_proc.pid) if servers.media_proc is not None else 0.0
    kids_before = children_cpu(servers.proc.pid)
    backlogs = []                                      # each second: the most frames any session had waiting
    waits = []                                         # ... and the longest a speech event had waited
    stretches = []                                     # ... and the partial interval's stretch (core/cadence.py)
    task_counts = []                                   # ... and the server's asyncio tasks (see below)
    window_end = min(t0 + seconds * 0.75, streaming_until - 1.0)     # (shorter when the start settled late)
    while time.monotonic() < window_end:
        await asyncio.sleep(1.0)
        now = await servers.stats(http)
        backlogs.append(now["speech_backlog_frames"]["max"])
        waits.append(now.get("speech_events_waiting", {}).get("max_wait_s", 0.0))
        stretches.append((now.get("partial_cadence") or {}).get("stretch", 1.0))
        task_counts.append(now.get("tasks", 0))
    busy = await servers.stats(http)
    wall = time.monotonic() - t0
    vision = {k: busy["vision_frames"][k] - vision_before[k] for k in vision_before}
    recording = {k: busy["recording_encoder"][k] - (0 if k in ("pending_seconds", "store_waiting", "store_waiting_bytes")
                                                     else rec_before.get(k, 0))
                 for k in rec_before}
    cpu = ((proc_cpu(servers.proc.pid) - cpu_s) / wall, (proc_cpu(os.getpid()) - cpu_c) / wall)
    media_cpu = (proc_cpu(servers.media_proc.pid) - cpu_m) / wall if servers.media_proc is not None else None
    kids = {k: (v - kids_before.get(k, 0.0)) / wall for k, v in children_cpu(servers.proc.pid).items()}
    loop_cpu = (loop_thread_cpu(servers.proc.pid) - cpu_loop) / wall
    results = await asyncio.gather(*tasks, return_exceptions=True)
    asr_after = await servers.asr_stats(http)
    failed = [r for r in results if isinstance(r, BaseException)]
    return {"n": n, "wall": wall, "settled_s": settled, "loop": busy["loop"], "sessions": busy.get("sessions"), "rss_mb": busy["rss_bytes"] / 2**20,
            "cpu": cpu, "counts": counts, "client_failures": len(failed),
            "first_failure": repr(failed[0]) if failed else "",
            "asr_requests": asr_after["requests"] - asr_before["requests"], "asr_bad": asr_after["bad"],
            "asr": busy.get("asr_remote") or {}, "vad": vad_delta(before.get("vad"), busy.get("vad")), "backlog": max(backlogs, default=0),
            "vision": vision, "recording": recording, "media": busy.get("media_server"), "media_cpu": media_cpu, "children_cpu": kids, "loop_cpu": loop_cpu, "vision_per_session_s": vision["processed"] / max(1, n) / wall,
            "backlog_median": sorted(backlogs)[len(backlogs) // 2] if backlogs else 0,
            "event_wait_max": max(waits, default=0.0), "event_waits": waits, "stretches": sorted(stretches), "tasks": task_counts,
            "partials_sent": ((busy.get("asr_remote") or {}).get("partials_ok", 0)
                              - (before.get("asr_remote") or {}).get("partials_ok", 0))}


def store_keeps_up(recording: dict, wall: float) -> bool:
    """The database kept up with the recordings and frames: none left unwritten for a full queue,
    and what waits at the end is at most ``MAX_STORE_WAIT_S`` seconds of the window's write rate
    (a database that falls behind leaves a backlog growing with the run)."""
    rate = recording.get("stored", 0) / max(wall, 1e-9)
    return (recording.get("store_skipped_busy", 0) == 0
            and recording.get("store_waiting", 0) <= max(1.0, MAX_STORE_WAIT_S * rate))


def vad_delta(before: dict | None, after: dict | None) -> dict:
    """The VAD's batched calls (``GET /-/stats`` ``vad``) during the measured window."""
    if not before or not after:
        return {}
    calls, chunks = after["batched_calls"] - before["batched_calls"], after["chunks"] - before["chunks"]
    return {"batched_calls": calls, "chunks": chunks, "chunks_per_call": chunks / calls if calls else 0.0,
            "cpu_seconds": after["cpu_seconds"] - before["cpu_seconds"]}


SPEED_PROBE = "import time\nt = time.perf_counter()\ns = 0\nfor i in range(10_000_000):\n    s += i\nprint(time.perf_counter() - t)"


def cpu_speed(cpu: int | None) -> float:
    """Seconds a 10M-step Python loop takes on ``cpu`` (any when None), median of three: the same
    machine ran it in 0.68-1.25 s within a minute (a shared host), and a level at the edge of one
    core is held or not with it; printed beside every run so that runs can be compared."""
    cmd = [sys.executable, "-c", SPEED_PROBE]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    times = sorted(float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout) for _ in range(3))
    return times[1]


def pin_processes(servers: Servers) -> str:
    """``--pin``: the server process (every thread, and its FSMN/voice workers) on CPU 0; this
    process, the stand-ins, media_server.py and the embedded database on CPU 1. The web tier then
    has one core to itself, and the parts that would run on other machines share the other."""
    def taskset(pid: int, cpu: int) -> None:
        subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True, stdout=subprocess.DEVNULL)

    server_side, elsewhere = split_processes(servers)
    for pid in server_side:
        taskset(pid, 0)
    for pid in elsewhere:
        taskset(pid, 1)
    return "server on CPU 0; clients, stand-ins, media server and database on CPU 1"


def favour_server(servers: Servers) -> str:
    """``--favour-server``: everything but the server (this process with the clients, the stand-ins,
    media_server.py, the embedded database: every thread of each) at nice 19 on both cores. The web
    tier then takes what it needs of the two cores first and the parts that would run on other
    machines get the rest: a stand-in for a 2-core web tier of its own, on a 2-core machine. What
    they then lack shows in the criteria (events waiting for their store, recordings waiting)."""
    _, elsewhere = split_processes(servers)
    for pid in elsewhere:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                os.setpriority(os.PRIO_PROCESS, int(tid), 19)
            except (ProcessLookupError, PermissionError):
                pass
    return "the server at nice 0, clients, stand-ins, media server and database at nice 19, all on both cores"


def split_processes(servers: Servers) -> tuple[list[int], list[int]]:
    """(the server and its workers, everything else: this process, the stand-ins, media_server.py
    and the embedded database)."""
    server_side = [servers.proc.pid]
    elsewhere = [os.getpid(), servers.asr.pid] + ([servers.media_proc.pid] if servers.media_proc else [])
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read()
        except (OSError, ValueError, IndexError):
            continue
        if parent == servers.proc.pid:
            (elsewhere if b"mongoeco" in cmd else server_side).append(int(entry))
    return server_side, elsewhere


async def run(levels: list[int], seconds: float, delay: float, max_concurrency: int, target_ms: float,
              extra: dict, vad: str | None, vision: bool, media: str = "none", pin: bool = False,
              favour: bool = False) -> None:
    servers = Servers(delay, max_concurrency, vad, vision, extra, media)
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            await servers.up(http)
            users = await candidates(servers, http, max(levels))
            if pin:
                print("pinned:", pin_processes(servers))
            elif favour:
                print("favoured:", favour_server(servers))
            # the recordings with a second of silence after each: utterances end, finals are asked
            audio = frames_of(b"".join(read_pcm(f) + bytes(32000) for f in CLIPS))
            video = jpeg_frame()
            print(f"server (vad={vad or 'plugins.toml'}, cheat detectors {'as plugins.toml' if vision else 'off'}, "
                  f"media server: {media}) "
                  f"+ ASR stand-in (answers after {delay:g} s) up; cores={os.cpu_count()}, "
                  f"load average {os.getloadavg()[0]:.2f} before the run (shared machine)")
            speed_cpu = 0 if pin else None
            speed_before = cpu_speed(speed_cpu)
            print(f"machine speed{' on CPU 0' if pin else ''}: a 10M-step Python loop {speed_before:.2f} s "
                  "(median of 3; again after the levels)", flush=True)
            print(" N   lag p50    p99     max   backlog med/max  open  ASR req  finals partials errors  server CPU  client CPU  RSS")
            best = 0
            for n in levels:
                res = await level(servers, http, users, n, seconds, audio, video)
                loop, c = res["loop"], res["counts"]
                print(f"{n:3d}  {loop['lag_ms_p50']:6.1f} {loop['lag_ms_p99']:6.1f} {loop['lag_ms_max']:7.1f}"
                      f"  {res['backlog_median']:6d} /{res['backlog']:4d}  {res['sessions']!s:>4}  {res['asr_requests']:7d}  {c.get('asr_result:final', 0):6d}"
                      f" {c.get('asr_result', 0):8d} {c.get('error', 0):6d}   {res['cpu'][0]:5.2f}/s     "
                      f"{res['cpu'][1]:5.2f}/s   {res['rss_mb']:.0f} MiB"
                      + (f"  ({res['client_failures']} clients failed: {res['first_failure']}"
                         f"{'; dropped after ' + str(sorted(c.get('dropped_at_s', []))) + ' s of streaming' if c.get('dropped_at_s') else ''})"
                         if res["client_failures"] else "")
                      + f"  load {os.getloadavg()[0]:.2f}", flush=True)
                v = res["vision"]
                print(f"      JPEGs: {v['received']} received, {v['processed']} through the detectors "
                      f"({res['vision_per_session_s']:.2f} per session per second), {v['dropped']} dropped "
                      f"as stale", flush=True)
                print(f"      server CPU per wall second: event-loop thread {res['loop_cpu']:.2f}, its other threads "
                      f"{res['cpu'][0] - res['loop_cpu']:.2f} (ASR requests, database driver, encoders)", flush=True)
                print("      the server's child processes, CPU per wall second: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in sorted(res["children_cpu"].items())), flush=True)
                r = res["recording"]
                print(f"      recordings: {r['encoded']} encoded ({r['encode_cpu_seconds']:.1f} CPU s), "
                      f"{r['skipped_busy']} not recorded (encoder backlog), {r['pending_seconds']:.0f} s of "
                      f"audio waiting at the end; {r.get('stored', 0)} recordings/frames written to the database, "
                      f"{r.get('store_waiting', 0)} waiting for their turn at the end, "
                      f"{r.get('store_skipped_busy', 0)} not written (database queue full)", flush=True)
                m = res["media"]
                if m:
                    print(f"      media server ({'media_server.py on these cores, CPU %.2f/s' % res['media_cpu'] if res['media_cpu'] is not None else 'stand-in'}; "
                          f"server's count, cumulative): frames sent {m['frames_sent']}, analysed "
                          f"{m['frames_analysed']}, failed {m['frame_failures']}, skipped (cooldown) "
                          f"{m['frames_skipped_cooldown']}; utterances encoded there {r.get('encoded_remote', 0)}, "
                          f"failed {r.get('remote_failed', 0)}; last error {m['last_error']}", flush=True)
                if res["vad"]:
                    v = res["vad"]
                    print(f"      VAD: {v['chunks']} chunks in {v['batched_calls']} batched calls "
                          f"({v['chunks_per_call']:.1f} sessions' chunks per call), "
                          f"{v['cpu_seconds'] / res['wall']:.2f} CPU s per wall s", flush=True)
                a = res["asr"]
                if a:
                    print(f"      remote ASR (server's count, cumulative): finals ok {a['finals_ok']} failed "
                          f"{a['finals_failed']}, partials ok {a['partials_ok']} skipped busy "
                          f"{a['partials_skipped_busy']} / interval {a['partials_skipped_interval']} / "
                          f"failing {a['partials_skipped_down']}; request p50/p95 final "
                          f"{a['final_ms_p50']:.0f}/{a['final_ms_p95']:.0f} ms, partial "
                          f"{a['partial_ms_p50']:.0f}/{a['partial_ms_p95']:.0f} ms", flush=True)
                st = res["stretches"]
                if st:
                    sent = res["partials_sent"] / max(1, n) / res["wall"]
                    shown = res["counts"].get("asr_result", 0) / max(1, n) / seconds   # over the whole run
                    print(f"      partial cadence: interval stretched x{st[len(st) // 2]:.2f} (median of the "
                          f"seconds), x{st[-1]:.2f} at most; remote partials {sent:.2f} per session per "
                          f"second, the clients got {shown:.2f}", flush=True)
                if res["tasks"]:
                    # Sanic hands each received chunk over in a task that waits until the handler has
                    # read it, and a pong waits behind them: a connection falling behind shows as
                    # tasks piling up (and, 10 s later, as a keep-alive close with 1011)
                    t = res["tasks"]
                    print(f"      server asyncio tasks each second: first {t[0]}, median {sorted(t)[len(t) // 2]}, "
                          f"max {max(t)}, last {t[-1]}", flush=True)
                # held: a responsive loop AND every session keeping up with real time (no more than
                # a second of audio waiting for the VAD at any sample)
                settled = res["settled_s"]
                print("      start-up: " + (f"speech events within {MAX_EVENT_WAIT:g} s {settled:.1f} s after the ramp "
                                           "(the measured window starts then)" if settled is not None else
                                           f"speech events still waited over {MAX_EVENT_WAIT:g} s {SETTLE_MAX_S} s "
                                           "after the ramp (measured from then anyway)"), flush=True)
                late = [f"{k + 1}:{w:.1f}" for k, w in enumerate(res["event_waits"]) if w > MAX_EVENT_WAIT]
                print(f"      speech events: the longest wait for the session's handler (store, send) {res['event_wait_max']:.2f} s"
                      + (f"; seconds of the window with a wait over {MAX_EVENT_WAIT:g} s (second:wait) {' '.join(late)}"
                         if late else ""), flush=True)
                if (loop["lag_ms_p99"] < target_ms and res["backlog"] <= MAX_BACKLOG and not res["client_failures"]
                        and res["recording"]["pending_seconds"] <= MAX_RECORDING_WAIT
                        and store_keeps_up(res["recording"], res["wall"])
                        and res["event_wait_max"] <= MAX_EVENT_WAIT):
                    best = max(best, n)
                elif loop["lag_ms_p99"] > 10 * target_ms:
                    break                        # far past it: higher levels only take longer
                await asyncio.sleep(3)           # the last finals of this level
            print(f"most concurrent streaming sessions with event-loop lag p99 < {target_ms:g} ms and no session "
                  f"more than {MAX_BACKLOG} frames (1 s) behind nor any speech event waiting more than {MAX_EVENT_WAIT:g} s "
                  f"for its handler, recordings keeping up (<= {MAX_RECORDING_WAIT} s "
                  f"of audio waiting for the encoder, <= {MAX_STORE_WAIT_S} s of writes waiting for the database): {best}"
                  f" (of the levels tried: {', '.join(map(str, levels))})")
            print(f"machine speed{' on CPU 0' if pin else ''} after the levels: {cpu_speed(speed_cpu):.2f} s "
                  f"(before: {speed_before:.2f} s)", flush=True)
    finally:
        servers.stop()


def parse_levels(ap: argparse.ArgumentParser, text: str) -> list[int]:
    """``--levels`` "25,50,100" as session counts (``ap.error`` on anything else)."""
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        ap.error("--levels: comma-separated integers, e.g. 50,100")
    if not levels or min(levels) < 1:
        ap.error("--levels: at least one positive count")
    return levels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="25,50,75,100,125,150", help="session counts, comma-separated")
    ap.add_argument("--seconds", type=float, default=25.0, help="streaming time per level")
    ap.add_argument("--delay", type=float, default=0.15, help="the ASR stand-in's answer delay (s)")
    ap.add_argument("--max-concurrency", type=int, default=16,
                    help="[plugins.openai_asr] max_concurrency and [engine] asr_workers")
    ap.add_argument("--target-ms", type=float, default=50.0)
    ap.add_argument("--vad", help="another VAD plugin than plugins.toml's (e.g. energy)")
    ap.add_argument("--no-vision", action="store_true", help="no cheat detectors (JPEGs still sent)")
    ap.add_argument("--media", choices=("none", "standin", "real"), default="none",
                    help="detectors and recording encoding: none = in the server (plugins.toml as it is), "
                         "standin = sent to the stand-in (what the web tier spends sending them away), "
                         "real = sent to media_server.py started on these same cores")
    ap.add_argument("--pin", action="store_true",
                    help="the server on CPU 0, everything else (clients, stand-ins, database) on CPU 1")
    ap.add_argument("--favour-server", action="store_true",
                    help="everything but the server at nice 19 (on both cores): the web tier first")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a setting of a section plugins.toml does not have (TOML value), e.g. speech.vad_batch_frames=1")
    args = ap.parse_args()
    if args.pin and args.favour_server:
        ap.error("--pin and --favour-server are two ways to give the server its cores: one at a time")
    levels = parse_levels(ap, args.levels)
    extra: dict = {}
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.rpartition(".")
        if not (section and name and value):
            ap.error(f"--set {item!r}: expected SECTION.KEY=VALUE")
        extra.setdefault(section, {})[name] = value
    asyncio.run(run(levels, args.seconds, args.delay, args.max_concurrency, args.target_ms, extra, args.vad,
                    not args.no_vision, args.media, args.pin, args.favour_server))


if __name__ == "__main__":
    main()
