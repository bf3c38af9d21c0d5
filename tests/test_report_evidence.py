"""The evidence-linked report (issue 17): phases put what earned a score into their sections, scorers
cite it (the heuristic and the LLM one alike), and a citation of an id that does not exist is dropped
before the report is stored."""
from __future__ import annotations

import json

from core.clock import SystemClock
from core.report import ReportService, evidence_ids, link_evidence
from core.testing import MemoryStore, report_sections, report_source
from llm_support import Reply, ScriptedServer, source_and_scorer
from plugins.scorer_heuristic import HeuristicScorer

RECORD = {
    "position_name": "后端开发工程师", "position_type": "backend", "status": "finished", "phase": "end",
    "questions": [{"index": 1, "text": "Redis 持久化有哪些方式？", "kind": "fundamental", "topic": "Redis",
                   "reference_points": ["RDB 快照", "AOF 追加日志"], "phase": "question"},
                  {"index": 2, "text": "讲讲你最有挑战的项目", "kind": "project", "topic": "项目", "phase": "question"},
                  {"index": 3, "text": "TCP 三次握手是怎样的？", "kind": "fundamental", "phase": "question"}],
    "transcript": [
        {"phase": "intro", "text": "大家好", "utterance_id": "i1", "source": "speech", "t_start": 0.5, "t_end": 1.5},
        {"phase": "question", "question_index": 1, "text": "嗯我想想", "utterance_id": "a1",
         "source": "speech", "t_start": 10.0, "t_end": 11.0},
        {"phase": "question", "question_index": 1, "text": "有 RDB 快照和 AOF 日志两种方式", "utterance_id": "a2",
         "source": "speech", "t_start": 11.5, "t_end": 14.0},
        {"phase": "question", "question_index": 2, "text": "订单中心重构，把单体拆成服务", "utterance_id": "b1",
         "source": "text", "t_start": None, "t_end": None}],
    "code": {"problem": {"id": "two_sum", "title": "两数之和"},
             "submissions": [{"index": 1, "language": "python", "code": "print(1)", "passed": 1, "total": 4,
                              "cases": [{"index": 1, "visible": True, "passed": True, "time_ms": 3.0, "error": None},
                                        {"index": 2, "visible": False, "passed": False, "time_ms": 2.0,
                                         "error": "wrong answer", "stderr_tail": "secret"}]},
                             {"index": 2, "language": "python", "code": "print(2)", "passed": 4, "total": 4,
                              "cases": []}]},
    "cheat_events": [{"kind": "multiple_faces", "started_at": "2024-03-20T14:30:00Z",
                      "ended_at": "2024-03-20T14:30:04Z", "frame_id": "f1"}],
}


def source() -> dict:
    return report_source(RECORD, ("intro", "question", "code"))


def test_phases_contribute_evidence_and_core_collects_it_without_naming_phases():
    record = source()
    qa = next(s for s in record["sections"] if s["type"] == "qa")
    first = qa["items"][0]
    assert [e["id"] for e in first["evidence"]] == ["a1", "a2"]
    assert first["evidence"][1] == {"id": "a2", "type": "utterance", "text": "有 RDB 快照和 AOF 日志两种方式",
                                    "source": "speech", "t_start": 11.5, "t_end": 14.0}
    assert qa["items"][2]["evidence"] == []                                 # asked, not answered
    code = next(s for s in record["sections"] if s["type"] == "code")["summary"]
    subs = code["evidence"]
    assert [s["id"] for s in subs] == ["submission-1", "submission-2"]
    assert subs[0]["cases"][1] == {"index": 2, "visible": False, "passed": False, "time_ms": 2.0, "error": "wrong answer"}
    assert code["final_id"] == "submission-2" and code["best_id"] == "submission-2"
    assert evidence_ids(record) == {"a1", "a2", "b1", "submission-1", "submission-2", "cheat-1"}


def test_heuristic_scorer_cites_the_utterances_its_score_rests_on():
    record = source()
    report = HeuristicScorer().build(record)
    assert link_evidence(report, record) == []
    q1, q2, q3 = report["questions"]
    assert q1["cites"] == ["a2"]                   # the sentence naming RDB/AOF, not "嗯我想想"
    assert q2["cites"] == ["b1"] and q3["cites"] == []
    assert [e["id"] for e in q1["evidence"]] == ["a1", "a2"]
    assert report["code_cites"] == ["submission-2"]
    assert report["cheat_events"][0]["id"] == "cheat-1" and report["cheat_events"][0]["frame_id"] == "f1"


def test_link_evidence_drops_unknown_citations():
    record = source()
    report = {"questions": [{"phase": "question", "index": 1, "cites": ["a2", "zz-made-up", 7, "a2"]}],
              "code_cites": ["submission-9", "submission-1"]}
    assert link_evidence(report, record) == ["zz-made-up", "7", "submission-9"]
    assert report["questions"][0]["cites"] == ["a2"] and report["code_cites"] == ["submission-1"]


async def test_llm_citations_of_ids_that_do_not_exist_are_dropped_before_storing():
    answer = {"questions": [{"good": "答出了两种方式。", "missing": "没讲取舍。", "reference_answer": "RDB 与 AOF",
                             "score": 6, "cites": ["a2", "a9-invented"]},
                            {"good": "有拆分经验。", "missing": "缺少数据。", "reference_answer": "STAR", "score": 5,
                             "cites": ["b1"]},
                            {"good": "无", "missing": "没有回答。", "reference_answer": "SYN…", "score": 0,
                             "cites": ["cheat-1x"]}],
              "summary": "基础扎实，项目描述偏简略。", "overall_score": 6, "code_cites": ["submission-2", "sub-3"]}
    store = MemoryStore()
    iid, _ = store.add("u1", {k: v for k, v in RECORD.items() if k != "transcript"}, {})
    await store.append_transcript(iid, RECORD["transcript"])
    store.interviews[iid]["report_status"] = "pending"
    async with ScriptedServer([Reply.ok(answer)]) as server:
        _, llm = source_and_scorer(server.base_url, max_retries=0)
        service = ReportService([llm, HeuristicScorer()], store, SystemClock(), {},
                                sections=report_sections(("intro", "question", "code")))
        service.schedule(iid)
        await service.wait(iid)
        sent = server.requests[0]
    report = store.interviews[iid]["report"]
    assert store.interviews[iid]["report_scorer"] == "llm"
    assert [q["cites"] for q in report["questions"]] == [["a2"], ["b1"], []]
    assert report["code_cites"] == ["submission-2"]
    assert sorted(report["dropped_cites"]) == ["a9-invented", "cheat-1x", "sub-3"]
    assert [e["id"] for e in report["questions"][0]["evidence"]] == ["a1", "a2"]
    # the model was given the ids to cite
    user = sent["messages"][1]["content"]
    data = json.loads(user[user.index("<data>\n") + 7:user.rindex("\n</data>")])
    assert data["questions"][0]["utterances"] == [{"id": "a1", "text": "嗯我想想"},
                                                  {"id": "a2", "text": "有 RDB 快照和 AOF 日志两种方式"}]
    assert [s["id"] for s in data["code"]["submissions"]] == ["submission-1", "submission-2"]
    schema = llm.report_schema(3)                  # a reply without citations does not validate
    assert "cites" in schema["properties"]["questions"]["items"]["required"] and "code_cites" in schema["required"]
    await service.aclose()
