"""A whole interview through the engine with the real ``llm`` plugin against an OpenAI-compatible
server (a real HTTP server scripted by task): the plan comes from the model, one follow-up after a
shallow answer and never a follow-up of a follow-up, and the report is written by the ``llm`` scorer."""
from __future__ import annotations

import asyncio
import json

import pytest

from core import events as ev
from core.clock import ManualClock
from engine_support import Client, engine_config, seed, settle, start_engine
from llm_support import Reply, ScriptedServer
from plugins.llm import load_prompt

QUESTIONS = {"questions": [
    {"text": "你在订单中心重构里怎么用 Redis 缓存订单？", "kind": "project", "topic": "Redis"},
    {"text": "讲一次你在压力下按时交付的经历。", "kind": "behavioral", "topic": "压力"}]}
FOLLOW_UP = "缓存和数据库不一致时你们怎么处理？"


def router(request: dict) -> Reply:
    content = request["messages"][0]["content"]
    if content == load_prompt("questions", "v1"):
        return Reply.ok(QUESTIONS)
    if content == load_prompt("follow_up", "v1"):
        data = json.loads(request["messages"][1]["content"].split("<data>\n", 1)[1].rsplit("\n</data>", 1)[0])
        shallow = len(data["answer"]) < 15
        return Reply.ok({"follow_up": shallow, "question": FOLLOW_UP if shallow else ""})
    if content == load_prompt("report", "v1"):
        data = json.loads(request["messages"][1]["content"].split("<data>\n", 1)[1].rsplit("\n</data>", 1)[0])
        n = len(data["questions"])
        return Reply.ok({"questions": [{"good": "有思路。", "missing": "缺少细节。", "reference_answer": "参考……",
                                        "score": 6, "cites": [u["id"] for u in q["utterances"]]}
                                       for q in data["questions"]],
                         "summary": "整体尚可。", "overall_score": 6, "code_cites": []})
    return Reply(400, {"error": {"message": "unknown task"}})


async def test_interview_with_llm_questions_follow_up_and_report(store):
    async with ScriptedServer(router) as server:
        config = engine_config(
            engine={"question_sources": ["llm", "bank"], "scorers": ["llm", "heuristic"]},
            timing={"question_count": 2},
            plugins={"llm": {"base_url": server.base_url, "model": "m", "max_retries": 0},
                     "question": {"max_follow_ups": 1}})
        engine = await start_engine(store, config, None, ManualClock())
        user_id, resume_id, interview_id = await seed(store)
        client = Client()
        session = await engine.open_session(user_id, ev.CreateStream(interview_id, resume_id), client.send)
        await session.start()
        await settle(session)
        answers = ["我是李明，做后端三年，说完了",
                   "用来做缓存，说完了",                                 # shallow: a follow-up comes
                   "先更新数据库再删缓存，删除失败时通过消息队列重试，保证最终一致，说完了",   # the follow-up's answer
                   "去年双十一前两周需求翻倍，我拆分任务、每天同步风险，最后提前一天上线，说完了"]
        for text in answers:
            await session.handle(ev.TextAnswer(text))
            await settle(session)
        asked = [m["text"] for m in client.of("interview_message", phase="question")][1:]
        assert asked == [QUESTIONS["questions"][0]["text"], FOLLOW_UP, QUESTIONS["questions"][1]["text"]]
        assert client.of("interview_message")[-1]["phase"] == "end"
        for _ in range(200):
            stored = await store.load_interview(user_id, interview_id)
            if stored.get("report_status") == "ready":
                break
            await asyncio.sleep(0.05)
        await session.close()
        await engine.close()
        tasks = [r["messages"][0]["content"] for r in server.requests]
    prompts = {load_prompt(t, "v1"): t for t in ("questions", "follow_up", "report")}
    # one plan, a follow-up check after each planned question (not after the follow-up), one report
    assert [prompts[c] for c in tasks] == ["questions", "follow_up", "follow_up", "report"]
    assert stored["phase_state"]["question"]["plan_source"] == "llm"
    assert [q["source"] for q in stored["questions"]] == ["llm", "llm", "llm"]
    assert stored["report_status"] == "ready" and stored["report_scorer"] == "llm"
    report = stored["report"]
    assert [q["question"] for q in report["questions"]] == asked
    assert report["questions"][1]["answer"].startswith("先更新数据库")
