"""Storage benchmark: what the embedded mongoeco server costs, through the real app and driver.

    .venv/bin/python bench/bench_storage.py [--resumes 1000] [--interviews 1000] [--samples 60]
                                            [--big 10000] [--utterances 1000]

Prints:
  1. REST latency (p50/p95, over HTTP on a real socket) of GET /users/resume/list/ and
     POST /interviews/create/ with --resumes resumes and --interviews interviews stored
     (spread over 100 users, 10 each; the listing user has 10 resumes).
  2. The cost of one insert_one at 10 and at --big stored documents in the collection (mongoeco
     re-reads the collection on every insert), next to an update by _id and a find by _id at the
     same sizes.
  3. A long interview the way the engine stores it: append_transcript (one final utterance at a
     time) and update_interview ($push of a cheat event) at the start and at the end of
     --utterances utterances, with --interviews interviews stored.

Part 2 fills the big collection by writing rows straight into mongoeco's SQLite file, in the exact
format mongoeco itself wrote for a template document (the server is stopped meanwhile and the
result is checked through the driver): filling 10 000 documents through insert_one would take
about half an hour precisely because of the cost being measured. Everything else goes through the
real API / store. Numbers depend on the machine; see README, "Storage".
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sanic import Sanic  # noqa: E402

from core.hookspecs import hookimpl  # noqa: E402
from core.interfaces import Question  # noqa: E402
from storage import db as dbmod  # noqa: E402
from storage.embedded import EmbeddedMongo  # noqa: E402

RESUME = {"resume_name": "后端开发简历", "expected_position": "后端工程师", "name": "张三",
          "education": [{"school": "浙江大学", "degree": "本科"}],
          "work_experience": [{"company": "示例科技", "title": "后端工程师", "description": "订单系统"}],
          "projects": [{"name": "订单系统重构", "description": "服务拆分，Redis 缓存"}],
          "skills": ["Python", "Django", "MySQL", "Redis"], "self_evaluation": "热爱技术"}
INTERVIEW = {"position_name": "后端开发工程师", "position_type": "backend", "company_name": "示例公司",
             "position_description": "负责后端开发工作", "position_requirements": "熟悉Python/Django"}


class _Questions:
    name = "bench_fixed"

    async def generate(self, request):
        return [Question(text="请介绍一个项目。", source=self.name)]

    async def follow_up(self, request):
        return None


class _BenchPlugin:
    @hookimpl
    def register_question_sources(self, register):
        register("bench_fixed", lambda ctx: _Questions())


LIGHT_ENGINE = {"engine": {"phases": [], "vad": "", "asr": "", "question_sources": ["bench_fixed"],
                           "scorers": [], "cheat_detectors": [], "code_runner": ""}}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def fmt(values: list[float]) -> str:
    return f"p50 {pct(values, 50):7.1f} ms   p95 {pct(values, 95):7.1f} ms   (n={len(values)})"


async def timed(coro) -> float:
    t = time.perf_counter()
    await coro
    return (time.perf_counter() - t) * 1000


# --- 1 + 3: through the app -----------------------------------------------------------------------
async def bench_app(args, workdir: Path) -> None:
    from sanic_app import SERVER_PROTOCOL, create_app

    Sanic.test_mode = True
    mongo = EmbeddedMongo(workdir / "app-data")
    uri = await mongo.start()
    app = create_app({**LIGHT_ENGINE, "storage": {"mongodb_uri": uri, "database": "bench"},
                      "server": {"data_dir": str(workdir / "app-data")},
                      # 100 users register from this one address: lift the per-address limit
                      "throttle": {"registrations_per_address": 1_000_000}}, extra_plugins=[_BenchPlugin()])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False,
                                      protocol=SERVER_PROTOCOL)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            users = []
            t0 = time.perf_counter()
            for i in range(100):
                r = await http.post("/users/register/", json={"username": f"bench_{i}_{uuid.uuid4().hex[:6]}",
                                                              "password": "bench-pass-1"})
                r.raise_for_status()
                users.append({"Authorization": f"Bearer {r.json()['token']}"})
            print(f"  registered 100 users in {time.perf_counter() - t0:.1f} s", flush=True)

            async def fill(path: str, body: dict, count: int, label: str) -> None:
                t = time.perf_counter()
                for i in range(count):
                    r = await http.post(path, json=body, headers=users[i % len(users)])
                    r.raise_for_status()
                    if (i + 1) % 250 == 0:
                        print(f"    {label}: {i + 1}/{count} ({time.perf_counter() - t:.0f} s)", flush=True)
                print(f"  stored {count} {label} in {time.perf_counter() - t:.1f} s", flush=True)

            await fill("/users/resume/", RESUME, args.resumes, "resumes")
            await fill("/interviews/create/", INTERVIEW, args.interviews, "interviews")

            me = users[0]
            listing = []
            for _ in range(args.samples):
                t = time.perf_counter()
                r = await http.get("/users/resume/list/", headers=me)
                listing.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and r.json()["total"] == args.resumes // len(users)
            creating = []
            for _ in range(args.samples):
                t = time.perf_counter()
                r = await http.post("/interviews/create/", json=INTERVIEW, headers=me)
                creating.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 201
            print(f"\n1. REST with {args.resumes} resumes and {args.interviews} interviews stored")
            print(f"  GET  /users/resume/list/   {fmt(listing)}")
            print(f"  POST /interviews/create/   {fmt(creating)}", flush=True)

            # 3. a long interview, the engine's way
            store = app.ctx.store
            iid = r.json()["id"]
            appends = []
            for i in range(args.utterances):
                entry = {"seq": i, "phase": "question", "question_index": i // 10, "text": "这个项目里我负责订单服务的拆分" * 3,
                         "start": i * 5.0, "end": i * 5.0 + 4.0}
                appends.append(await timed(store.append_transcript(iid, [entry])))
            pushes = []
            for i in range(args.utterances // 5):
                pushes.append(await timed(store.update_interview(
                    iid, set_fields={"phase": "question"}, push={"cheat_events": {"kind": "no_face", "n": i}})))
            load_ms = await timed(store.load_transcript(iid))
            transcript = await store.load_transcript(iid)
            assert [e["seq"] for e in transcript] == list(range(args.utterances))
            head, tail = appends[:50], appends[-50:]
            print(f"\n3. One interview with {args.utterances} final utterances ({args.interviews + args.samples} "
                  f"interviews stored)")
            print(f"  append_transcript, utterances 1-50            {fmt(head)}")
            print(f"  append_transcript, utterances {args.utterances - 49}-{args.utterances}"
                  f"{' ' * max(0, 15 - len(str(args.utterances)) * 2)}{fmt(tail)}")
            print(f"  update_interview ($set + $push), first 20      {fmt(pushes[:20])}")
            print(f"  update_interview ($set + $push), last 20       {fmt(pushes[-20:])}")
            print(f"  load_transcript of {args.utterances} entries            {load_ms:7.1f} ms", flush=True)
    finally:
        await server.before_stop()
        task = server.close()
        if task is not None:
            await task
        await server.after_stop()
        await mongo.stop()


# --- 2: insert cost against collection size ---------------------------------------------------------
def _seed_rows(db_path: Path, database: str, collection: str, template_id: str, count: int) -> None:
    conn = sqlite3.connect(db_path)
    try:
        key, document = conn.execute(
            "SELECT storage_key, document FROM documents WHERE db_name=? AND coll_name=? AND storage_key LIKE ?",
            (database, collection, f"%{template_id}%")).fetchone()
        rows = []
        for i in range(count):
            new_id = f"seed{i:08d}"
            assert template_id in key and json.loads(document)["_id"] == template_id
            rows.append((database, collection, key.replace(template_id, new_id), document.replace(template_id, new_id)))
        conn.executemany("INSERT INTO documents (db_name, coll_name, storage_key, document) VALUES (?, ?, ?, ?)", rows)
        conn.commit()
    finally:
        conn.close()


async def _insert_costs(col, label: str, samples: int) -> None:
    inserts, updates, finds = [], [], []
    for i in range(samples):
        _id = f"probe-{uuid.uuid4().hex}"
        inserts.append(await timed(col.insert_one({"_id": _id, "user_id": "u1", "text": "x" * 200, "n": i})))
        await col.delete_one({"_id": _id})          # keep the size constant
        updates.append(await timed(col.update_one({"_id": "template"}, {"$set": {"n": i}})))
        finds.append(await timed(col.find_one({"_id": "template"})))
    print(f"  {label:<28} insert_one {fmt(inserts)}")
    print(f"  {'':<28} update by _id {fmt(updates)}")
    print(f"  {'':<28} find by _id   {fmt(finds)}", flush=True)


async def bench_inserts(args, workdir: Path) -> None:
    print(f"\n2. Cost of one write against the collection size (mongoeco {args.big} vs 10 documents)")
    data = workdir / "insert-data"
    mongo = EmbeddedMongo(data)
    uri = await mongo.start()
    client, db = dbmod.connect(uri, "bench_insert")
    col = db.docs
    await col.insert_one({"_id": "template", "user_id": "u1", "text": "x" * 200, "n": 0})
    for i in range(9):
        await col.insert_one({"_id": f"small{i}", "user_id": "u1", "text": "x" * 200, "n": i})
    assert await col.count_documents({}) == 10
    await _insert_costs(col, "10 stored documents", args.samples)
    client.close()
    await mongo.stop()

    t = time.perf_counter()
    _seed_rows(mongo.db_path, "bench_insert", "docs", "template", args.big - 10)
    seeded_in = time.perf_counter() - t
    mongo = EmbeddedMongo(data)
    uri = await mongo.start()
    client, db = dbmod.connect(uri, "bench_insert")
    col = db.docs
    count = await col.count_documents({})
    probe = await col.find_one({"_id": "seed00000042"})
    assert count == args.big and probe["text"] == "x" * 200, (count, probe)
    print(f"  (filled to {count} documents in {seeded_in:.1f} s by writing SQLite rows, checked through the driver)")
    await _insert_costs(col, f"{args.big} stored documents", max(10, args.samples // 3))
    client.close()
    await mongo.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resumes", type=int, default=1000)
    parser.add_argument("--interviews", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--utterances", type=int, default=1000)
    parser.add_argument("--only", choices=["app", "inserts"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mianshi-bench-") as tmp:
        workdir = Path(tmp)
        print(f"mianshi storage benchmark (embedded mongoeco over the wire, motor client; {time.strftime('%Y-%m-%d %H:%M')})",
              flush=True)
        if args.only in (None, "inserts"):
            await bench_inserts(args, workdir)
        if args.only in (None, "app"):
            print("\n(preparing part 1 and 3)")
            await bench_app(args, workdir)


if __name__ == "__main__":
    asyncio.run(main())
