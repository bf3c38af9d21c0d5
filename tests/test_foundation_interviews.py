"""Interviews: the guide's create call, list and detail, isolation, and the engine's store protocol."""
from datetime import datetime, timezone

import pytest

from core.interfaces import InterviewStore
from foundation_support import LIGHT_ENGINE, FoundationPlugin
from storage.interviews import BUCKET_SIZE
from test_foundation_accounts import assert_error
from test_foundation_resumes import ISO_Z

GUIDE_BODY = {
    "position_name": "后端开发工程师",
    "position_type": "backend",
    "company_name": "示例公司",
    "position_description": "负责后端开发工作",
    "position_requirements": "熟悉Python/Django",
    "interview_time": "2024-03-20T14:30:00Z",
}


@pytest.fixture
async def server(app_server_factory):
    return await app_server_factory(LIGHT_ENGINE, extra_plugins=[FoundationPlugin()])


async def test_create_returns_exactly_the_guides_response(server, api_client):
    client = await api_client(server)
    r = await client.post("/interviews/create/", json=GUIDE_BODY)
    assert r.status_code == 201
    body = r.json()
    assert list(body) == ["id", "interview_time", "position_name", "company_name", "position_type", "msg"]
    assert isinstance(body["id"], str) and body["id"]
    assert body == {"id": body["id"], "interview_time": "2024-03-20T14:30:00Z", "position_name": "后端开发工程师",
                    "company_name": "示例公司", "position_type": "backend", "msg": "面试创建成功"}


async def test_optional_fields_and_default_time(server, api_client):
    client = await api_client(server)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    r = await client.post("/interviews/create/", json={"position_name": "测试工程师", "position_type": "qa",
                                                       "position_description": "负责测试"})
    after = datetime.now(timezone.utc)
    assert r.status_code == 201
    body = r.json()
    assert body["company_name"] is None and body["msg"] == "面试创建成功"
    assert ISO_Z.match(body["interview_time"])
    when = datetime.strptime(body["interview_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= when <= after
    # another offset is normalised to UTC
    r = await client.post("/interviews/create/", json={**GUIDE_BODY, "interview_time": "2024-03-20T22:30:00+08:00"})
    assert r.json()["interview_time"] == "2024-03-20T14:30:00Z"
    for position_type in ("backend", "frontend", "pm", "qa", "algo"):
        r = await client.post("/interviews/create/", json={**GUIDE_BODY, "position_type": position_type})
        assert r.status_code == 201 and r.json()["position_type"] == position_type


async def test_create_errors_name_the_field(server, api_client):
    client = await api_client(server)
    cases = [
        ({**GUIDE_BODY, "position_type": "devops"}, "position_type"),
        ({**GUIDE_BODY, "position_type": "Backend"}, "position_type"),
        ({**GUIDE_BODY, "position_type": ["backend"]}, "position_type"),
        ({k: v for k, v in GUIDE_BODY.items() if k != "position_type"}, "position_type"),
        ({k: v for k, v in GUIDE_BODY.items() if k != "position_name"}, "position_name"),
        ({**GUIDE_BODY, "position_name": "   "}, "position_name"),
        ({**GUIDE_BODY, "position_name": 42}, "position_name"),
        ({k: v for k, v in GUIDE_BODY.items() if k != "position_description"}, "position_description"),
        ({**GUIDE_BODY, "company_name": {"a": 1}}, "company_name"),
        ({**GUIDE_BODY, "interview_time": "明天下午"}, "interview_time"),
        ({**GUIDE_BODY, "interview_time": 1710945000}, "interview_time"),
        ({**GUIDE_BODY, "unexpected": 1}, "unexpected"),
    ]
    for body, field in cases:
        err = assert_error(await client.post("/interviews/create/", json=body), 400, field)
        if field == "position_type" and "position_type" in body:
            assert "backend" in err["msg"] and "algo" in err["msg"]
    assert assert_error(await client.post("/interviews/create/", content=b'{"position_name": '),
                        400)["msg"] == "请求体不是合法的 JSON"
    assert_error(await client.post("/interviews/create/", content=b"[1, 2]"), 400)
    assert (await client.get("/interviews/")).json()["total"] == 0      # nothing was created


async def test_list_and_detail(server, api_client):
    client = await api_client(server)
    first = await client.create_interview(position_name="一号职位")
    second = await client.create_interview(position_name="二号职位", position_type="algo")
    r = await client.get("/interviews/")
    body = r.json()
    assert r.status_code == 200 and body["success"] is True and body["total"] == 2
    assert [x["id"] for x in body["interviews"]] == [second, first]
    assert body["interviews"][0]["position_type"] == "algo" and body["interviews"][0]["status"] == "created"
    r = await client.get("/interviews/?limit=1&offset=1")
    assert [x["id"] for x in r.json()["interviews"]] == [first] and r.json()["total"] == 2
    assert_error(await client.get("/interviews/?limit=abc"), 400, "limit")
    assert_error(await client.get("/interviews/?limit=0"), 400, "limit")

    store = server.store
    await store.update_interview(first, set_fields={"status": "in_progress", "phase": "question"},
                                 push={"questions": {"index": 0, "text": "介绍一下你的项目"},
                                       "cheat_events": [{"kind": "no_face", "at": "2024-03-20T14:31:00Z"}]})
    await store.append_transcript(first, [{"phase": "intro", "text": "大家好，我叫张三"},
                                          {"phase": "question", "text": "这个项目用了 Redis"}])
    r = await client.get(f"/interviews/{first}/")
    assert r.status_code == 200
    detail = r.json()["interview"]
    assert detail["id"] == first and detail["status"] == "in_progress" and detail["phase"] == "question"
    assert detail["questions"] == [{"index": 0, "text": "介绍一下你的项目"}]
    assert detail["cheat_events"] == [{"kind": "no_face", "at": "2024-03-20T14:31:00Z"}]
    assert [e["text"] for e in detail["transcript"]] == ["大家好，我叫张三", "这个项目用了 Redis"]
    assert detail["position_name"] == "一号职位" and "user_id" not in detail
    for bad in ("999999", "abc", "-1", "1" * 40):
        assert_error(await client.get(f"/interviews/{bad}/"), 404, "interview_id")


async def test_sharding_keeps_each_users_documents_together(server, api_client):
    from storage.common import SHARDS, user_shard
    clients = [await api_client(server) for _ in range(6)]
    for client in clients:
        iid = await client.create_interview()
        assert int(iid) % SHARDS == user_shard(client.user_id)
        await client.create_resume()
    names = set(await server.app.ctx.db.list_collection_names())
    expected = {f"interviews_{user_shard(c.user_id):02d}" for c in clients}
    assert expected <= names and "interviews" not in names and "resumes" not in names
    for client in clients:            # each user still sees exactly their own
        assert (await client.get("/interviews/")).json()["total"] == 1
        assert (await client.get("/users/resume/list/")).json()["total"] == 1


async def test_users_see_only_their_own_interviews(server, api_client):
    alice = await api_client(server)
    bob = await api_client(server)
    iid = await alice.create_interview()
    assert_error(await bob.get(f"/interviews/{iid}/"), 404, "interview_id")
    assert (await bob.get("/interviews/")).json() == {"success": True, "interviews": [], "total": 0}
    assert (await alice.get("/interviews/")).json()["total"] == 1
    assert await server.store.load_interview(bob.user_id, iid) is None
    # someone in the same shard as Alice is refused by the owner check, not by the shard
    from storage.common import user_shard
    neighbour = next(f"n{i}" for i in range(10_000) if user_shard(f"n{i}") == user_shard(alice.user_id))
    assert await server.store.load_interview(neighbour, iid) is None
    rid = await alice.create_resume()
    assert await server.store.load_resume(neighbour, rid) is None
    assert await server.store.resumes.update(neighbour, rid, {"name": "x"}) is None
    assert await server.store.resumes.delete(neighbour, rid) is False
    assert (await server.store.load_resume(alice.user_id, rid))["name"] == "张三"
    loaded = await server.store.load_interview(alice.user_id, iid)
    assert loaded["id"] == iid and loaded["position_type"] == "backend"


async def test_store_protocol_transcript_buckets(server, api_client):
    store = server.store
    assert isinstance(store, InterviewStore)
    client = await api_client(server)
    iid = await client.create_interview()
    assert await store.load_transcript(iid) == []
    total = 3 * BUCKET_SIZE + 7
    sent = 0
    batch = 1
    while sent < total:                       # batches of varying size, crossing bucket borders
        n = min(batch, total - sent)
        await store.append_transcript(iid, [{"seq": sent + i, "text": f"第{sent + i}句"} for i in range(n)])
        sent += n
        batch = batch * 3 % 31 + 1
    transcript = await store.load_transcript(iid)
    assert [e["seq"] for e in transcript] == list(range(total))
    buckets = await store.interviews.transcript_buckets(iid)
    assert [len(b["entries"]) for b in buckets] == [BUCKET_SIZE, BUCKET_SIZE, BUCKET_SIZE, 7]
    assert [b["_id"] for b in buckets] == [f"{iid}:{n}" for n in range(4)]
    await store.append_transcript(iid, [])          # no-op
    with pytest.raises(LookupError):
        await store.append_transcript("does-not-exist", [{"text": "x"}])
    with pytest.raises(LookupError):
        await store.update_interview("does-not-exist", set_fields={"status": "x"})
    with pytest.raises(LookupError):
        await store.update_interview("123456789", set_fields={"status": "x"})
    assert await store.load_transcript("nope") == [] and await store.load_interview_by_id("nope") is None
    with pytest.raises(ValueError):
        await store.update_interview(iid, set_fields={"user_id": "someone-else"})
    # push of several values and set in one update
    await store.update_interview(iid, set_fields={"phase_state": {"intro": {"done": True}}},
                                 push={"code_submissions": [{"n": 1}, {"n": 2}]})
    # the engine's dotted paths: nested push, and a field of an array element by position
    await store.update_interview(iid, set_fields={"code.problem": {"id": "two-sum"}},
                                 push={"code.submissions": {"passed": 3}, "cheat_events": {"kind": "no_face"}})
    await store.update_interview(iid, set_fields={"cheat_events.0.ended_at": "2024-03-20T14:32:00Z"})
    loaded = await store.load_interview(client.user_id, iid)
    assert loaded["code_submissions"] == [{"n": 1}, {"n": 2}]
    assert loaded["code"] == {"problem": {"id": "two-sum"}, "submissions": [{"passed": 3}]}
    assert loaded["cheat_events"] == [{"kind": "no_face", "ended_at": "2024-03-20T14:32:00Z"}]
    assert loaded["phase_state"] == {"intro": {"done": True}}
    source = await store.load_report_source(iid)
    assert len(source["transcript"]) == total and source["user_id"] == client.user_id


async def test_report_pending_listing(server, api_client):
    client = await api_client(server)
    a = await client.create_interview()
    b = await client.create_interview()
    c = await client.create_interview()
    store = server.store
    await store.update_interview(a, set_fields={"status": "finished", "report_status": "pending"})
    await store.update_interview(b, set_fields={"status": "finished", "report_status": "ready"})
    await store.update_interview(c, set_fields={"status": "finished", "report_status": "ready",
                                                "report_degraded": True})
    assert sorted(await store.list_report_pending()) == sorted([a, c])
