"""The background report: ReportService on the real store (embedded MongoDB-compatible server) with
real scorers — the heuristic one and the LLM one against scripted HTTP servers — and
``GET /interviews/<id>/report/`` on a running app with no model configured."""
from __future__ import annotations

import asyncio
import time

import pytest

from core.clock import ManualClock, SystemClock
from core.testing import report_sections
from core.report import ReportService
from engine_support import seed
from llm_support import Reply, ScriptedServer, source_and_scorer
from plugins.scorer_heuristic import HeuristicScorer

FINISHED = {
    "status": "finished", "phase": "end", "report_status": "pending",
    "questions": [{"index": 1, "text": "Redis 持久化有哪些方式？", "kind": "fundamental", "topic": "Redis",
                   "source": "bank", "reference_points": ["RDB 快照", "AOF 追加日志"]},
                  {"index": 2, "text": "讲讲你最有挑战的项目", "kind": "project", "topic": "项目", "source": "bank"}],
    "code": {"problem": {"id": "two_sum", "title": "两数之和"},
             "submissions": [{"language": "python", "passed": 5, "total": 8, "cases": []}]},
    "cheat_events": [{"kind": "no_face", "started_at": "2024-03-20T14:30:00Z", "ended_at": "2024-03-20T14:30:06Z",
                      "frames": 6}],
}
TRANSCRIPT = [{"phase": "intro", "question_index": None, "text": "大家好，我是李明", "source": "speech"},
              {"phase": "question", "question_index": 1, "text": "有 RDB 快照和 AOF 日志两种方式", "source": "speech"},
              {"phase": "question", "question_index": 2, "text": "订单中心重构，把单体拆成服务", "source": "text"}]
LLM_REPORT = {"questions": [{"good": "答出了两种方式。", "missing": "没讲取舍。", "reference_answer": "RDB 与 AOF……", "score": 6,
                             "cites": []},
                            {"good": "有拆分经验。", "missing": "缺少数据。", "reference_answer": "STAR……", "score": 5,
                             "cites": []}],
              "summary": "基础扎实，项目描述偏简略。", "overall_score": 6, "code_cites": []}


async def finished_interview(store, **extra) -> str:
    _, _, interview_id = await seed(store)
    await store.update_interview(interview_id, set_fields={**FINISHED, **extra})
    await store.append_transcript(interview_id, TRANSCRIPT)
    return interview_id


async def wait_for(store, interview_id, predicate, timeout=10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        doc = await store.load_interview_by_id(interview_id)
        if predicate(doc):
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last state: { {k: v for k, v in doc.items() if k.startswith('report')} }")
        await asyncio.sleep(0.05)


async def test_heuristic_report_is_written_in_the_background(store):
    interview_id = await finished_interview(store)
    service = ReportService([HeuristicScorer()], store, SystemClock(), {}, sections=report_sections())
    service.schedule(interview_id)
    assert service.schedule(interview_id) is service.schedule(interview_id)      # one task per interview
    await service.wait(interview_id)
    doc = await store.load_interview_by_id(interview_id)
    assert doc["report_status"] == "ready" and doc["report_scorer"] == "heuristic"
    assert doc["report_degraded"] is False and doc["report_attempts"] == 1
    report = doc["report"]
    assert [q["index"] for q in report["questions"]] == [1, 2]
    assert report["questions"][0]["answer"] == "有 RDB 快照和 AOF 日志两种方式"
    assert "覆盖了要点" in report["questions"][0]["good"]
    assert report["code"]["best_passed"] == 5 and report["cheat_events"][0]["seconds"] == 6.0
    await service.aclose()


async def test_llm_failure_falls_back_then_upgrades_later(store):
    interview_id = await finished_interview(store)
    clock = ManualClock()
    async with ScriptedServer([Reply(503, {"error": {"message": "overloaded"}})]) as server:
        _, llm = source_and_scorer(server.base_url, clock=clock, max_retries=0)
        service = ReportService([llm, HeuristicScorer()], store, clock, {"retry_base_seconds": 60}, sections=report_sections())
        service.schedule(interview_id)
        doc = await wait_for(store, interview_id, lambda d: d.get("report_status") == "ready")
        assert doc["report_scorer"] == "heuristic" and doc["report_degraded"] is True
        assert "llm:" in doc["report_error"] and "503" in doc["report_error"]
        assert len(server.requests) == 1
        server.script = [Reply.ok(LLM_REPORT)]
        await clock.sleepers(1)           # the upgrade's backoff is armed (the status is saved first)
        await clock.advance(59)
        assert len(server.requests) == 1                          # not before the backoff
        await clock.advance(1)
        await service.wait(interview_id)
        assert len(server.requests) == 2
    doc = await store.load_interview_by_id(interview_id)
    assert doc["report_status"] == "ready" and doc["report_scorer"] == "llm" and doc["report_degraded"] is False
    assert doc["report"]["overall_score"] == 6 and doc["report_attempts"] == 2
    assert doc["report"]["code"]["best_passed"] == 5            # facts still come from the record
    await service.aclose()


async def test_every_scorer_failing_retries_with_backoff_then_fails(store):
    interview_id = await finished_interview(store)
    clock = ManualClock()
    async with ScriptedServer([Reply.ok("不是 JSON")]) as server:
        _, llm = source_and_scorer(server.base_url, clock=clock, max_retries=0)
        service = ReportService([llm], store, clock, {"max_attempts": 2, "retry_base_seconds": 30}, sections=report_sections())
        service.schedule(interview_id)
        doc = await wait_for(store, interview_id, lambda d: d.get("report_status") == "retrying")
        assert doc["report_attempts"] == 1 and "invalid JSON" in doc["report_error"]
        assert doc["report_next_retry_at"].endswith("Z")
        await clock.sleepers(1)           # "retrying" is saved before the backoff sleep starts
        await clock.advance(30)
        await service.wait(interview_id)
    doc = await store.load_interview_by_id(interview_id)
    assert doc["report_status"] == "failed" and doc["report_attempts"] == 2 and "report" not in doc
    await service.aclose()


async def test_an_unconfigured_llm_is_skipped_without_degrading(store):
    from llm_support import plugin_context
    from plugins.llm import LlmScorer
    interview_id = await finished_interview(store)
    service = ReportService([LlmScorer.from_context(plugin_context("llm", {})), HeuristicScorer()], store,
                            SystemClock(), {}, sections=report_sections())
    service.schedule(interview_id)
    await service.wait(interview_id)
    doc = await store.load_interview_by_id(interview_id)
    assert doc["report_scorer"] == "heuristic" and doc["report_degraded"] is False
    assert "未配置" in doc["report_error"]
    assert interview_id not in await store.list_report_pending()


async def test_a_report_interrupted_by_a_restart_is_resumed(store):
    interview_id = await finished_interview(store)
    async with ScriptedServer([Reply(200, b"{}", delay=30.0)]) as server:
        _, slow_llm = source_and_scorer(server.base_url, timeout_seconds=60, max_retries=0)
        first = ReportService([slow_llm], store, SystemClock(), {}, sections=report_sections())
        first.schedule(interview_id)
        await wait_for(store, interview_id, lambda d: d.get("report_status") == "generating")
        await first.aclose()                                        # the server stops mid-report
    doc = await store.load_interview_by_id(interview_id)
    assert doc["report_status"] == "generating" and "report" not in doc
    assert interview_id in await store.list_report_pending()
    second = ReportService([HeuristicScorer()], store, SystemClock(), {}, sections=report_sections())   # the next start
    assert await second.resume_pending() >= 1
    await second.wait(interview_id)
    doc = await store.load_interview_by_id(interview_id)
    assert doc["report_status"] == "ready" and doc["report_attempts"] == 2
    await second.aclose()


def test_bad_report_settings():
    with pytest.raises(ValueError, match="max_attempts"):
        ReportService([], None, SystemClock(), {"max_attempts": 0})


# --- the endpoint --------------------------------------------------------------------------------------
APP_OVERRIDES = {"engine": {"phases": ["intro", "question", "code"], "vad": "", "asr": "", "cheat_detectors": [],
                            "code_runner": "", "question_sources": ["llm", "bank"],
                            "scorers": ["llm", "heuristic"]}}


async def test_report_endpoint(app_server_factory, api_client):
    server = await app_server_factory(APP_OVERRIDES)      # plugins.toml: no model configured
    assert [s.name for s in server.engine.question_sources] == ["llm", "bank"]
    assert server.engine.question_sources[0].available is False
    alice, bob = await api_client(server), await api_client(server)
    interview_id = await alice.create_interview()
    path = f"/interviews/{interview_id}/report/"

    r = await alice.get(path)
    assert r.status_code == 409 and r.json()["success"] is False and "尚未结束" in r.json()["msg"]
    assert (await bob.get(path)).status_code == 404
    assert (await alice.get("/interviews/999999/report/")).status_code == 404
    assert (await alice.get(path, auth=False)).status_code == 401

    store = server.store
    await store.update_interview(interview_id, set_fields=FINISHED)
    await store.append_transcript(interview_id, TRANSCRIPT)
    r = await alice.get(path)                  # nobody scheduled it: this request does
    assert r.status_code in (200, 202)
    if r.status_code == 202:
        body = r.json()
        assert body["success"] is True and body["status"] in ("pending", "generating") and "msg" in body
        assert r.headers["retry-after"]
    deadline = time.monotonic() + 10
    while r.status_code == 202 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        r = await alice.get(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["status"] == "ready" and body["scorer"] == "heuristic"
    assert body["degraded"] is False and 0 <= body["overall_score"] <= 10 and body["summary"]
    assert [q["index"] for q in body["questions"]] == [1, 2]
    assert {"score", "good", "missing", "reference_answer", "answer", "question"} <= set(body["questions"][0])
    assert body["code"]["total"] == 8 and body["cheat_events"][0]["kind"] == "no_face"
    assert (await bob.get(path)).status_code == 404

    await store.update_interview(interview_id, set_fields={"report_status": "failed", "report_error": "llm: 503"})
    r = await alice.get(path)
    assert r.status_code == 503 and r.json()["status"] == "failed" and "503" in r.json()["msg"]


async def test_report_endpoint_shows_retrying(app_server_factory, api_client):
    server = await app_server_factory(APP_OVERRIDES)
    alice = await api_client(server)
    interview_id = await alice.create_interview()
    await server.store.update_interview(interview_id, set_fields={
        **FINISHED, "report_status": "retrying", "report_attempts": 1, "report_error": "llm: 超时",
        "report_next_retry_at": "2030-01-01T00:00:00Z"})
    r = await alice.get(f"/interviews/{interview_id}/report/")
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "retrying" and body["error"] == "llm: 超时" and body["attempts"] == 1
    assert body["next_retry_at"] == "2030-01-01T00:00:00Z"


class GatedScorer:
    """A real scorer (the heuristic one) that waits for ``gate`` first, counting its calls."""
    name = "gated"

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate, self.calls, self.inner = gate, 0, HeuristicScorer()

    async def score(self, record: dict) -> dict:
        self.calls += 1
        await self.gate.wait()
        return await self.inner.score(record)


async def test_two_instances_write_one_report_once(store):
    """Both instances schedule the report (both started with it pending): one claims it and writes;
    the other waits for the claim, finds the report written and does nothing."""
    interview_id = await finished_interview(store)
    gate = asyncio.Event()
    a_scorer, b_scorer = GatedScorer(gate), GatedScorer(gate)
    a = ReportService([a_scorer], store, SystemClock(), {"claim_ttl_seconds": 3}, sections=report_sections(), owner="A")
    b = ReportService([b_scorer], store, SystemClock(), {"claim_ttl_seconds": 3}, sections=report_sections(), owner="B")
    a.schedule(interview_id)
    await wait_for(store, interview_id, lambda d: d.get("report_status") == "generating")
    b.schedule(interview_id)
    await asyncio.sleep(4.0)                 # longer than the ttl: A's claim is renewed, not expired
    assert (a_scorer.calls, b_scorer.calls) == (1, 0)
    assert (await store.interviews.report_claim(interview_id))["owner"] == "A"
    gate.set()
    await a.wait(interview_id)
    await asyncio.wait_for(b.wait(interview_id), 10)       # B sees the report written and stops
    doc = await store.load_interview_by_id(interview_id)
    assert doc["report_status"] == "ready" and doc["report_attempts"] == 1 and b_scorer.calls == 0
    assert "report_claim" not in doc
    assert await store.interviews.report_claim(interview_id) is None      # released
    await a.aclose()
    await b.aclose()


async def test_an_expired_report_claim_is_taken_over_and_the_old_writer_is_fenced_out(store):
    interview_id = await finished_interview(store)
    assert await store.claim_report(interview_id, "dead-instance", 0.2)        # then it crashed
    assert not await store.claim_report(interview_id, "B", 60)
    await asyncio.sleep(0.3)
    service = ReportService([HeuristicScorer()], store, SystemClock(), {}, sections=report_sections(), owner="B")
    service.schedule(interview_id)
    await asyncio.wait_for(service.wait(interview_id), 10)
    doc = await store.load_interview_by_id(interview_id)
    assert doc["report_status"] == "ready"
    from core.interfaces import LeaseLost
    with pytest.raises(LeaseLost):           # the crashed writer, were it alive, is refused
        await store.update_interview(interview_id, set_fields={"report_status": "failed"}, report_owner="dead-instance")
    await service.aclose()
