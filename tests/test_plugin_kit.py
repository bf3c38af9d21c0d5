"""The kit plugin authors get with mianshi (core.testing): a real engine session on an in-memory store
and a manual clock, scripted events in, messages out; the in-memory store fences like the database."""
from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from core import events as ev
from core.interfaces import LeaseLost
from core.testing import MemoryStore, SessionHarness

PROMPTS = ["请讲一次团队合作的经历。", "请讲一次失败的经历。"]
needs_examples = pytest.mark.skipif("behavioral" not in {ep.name for ep in entry_points(group="mianshi")},
                                    reason="the example plugins are not installed")


async def test_the_harness_runs_the_builtin_intro_with_a_manual_clock():
    async with SessionHarness(engine={"phases": ["intro", "question"]},
                              config={"timing": {"question_count": 1, "intro_silence_seconds": 10.0}}) as h:
        assert h.said() == ["请开始自我介绍吧"]
        await h.send(ev.TextAnswer("我叫李明，做了三年后端"))
        await h.advance(9.0)
        assert h.said("question") == []                    # 9 s of silence: still the intro
        await h.advance(1.5)                               # past 10 s: the intro ends by silence
        assert h.said("question")[0] == "自我介绍结束，下面开始问问题。"
        assert (await h.transcript())[0]["phase"] == "intro"


@needs_examples
async def test_an_example_phase_unit_tested_without_a_database():
    async with SessionHarness(engine={"phases": ["behavioral"]},
                              config={"plugins": {"behavioral": {"prompts": PROMPTS, "silence_seconds": 5.0}}}) as h:
        assert h.said("behavioral") == ["下面进入行为面试环节。", PROMPTS[0]]    # first phase: its opening alone
        assert h.messages[-1]["input"] == "speech" and h.messages[-1]["phase_title"] == "行为面试"
        await h.send(ev.TextAnswer("我们一起排查了线上故障"))
        await h.send(ev.EndAnswer())
        assert h.said("behavioral")[1:] == PROMPTS
        await h.send(ev.TextAnswer("一次发布失败后我补上了回滚预案"))
        await h.advance(6.0)                               # silence ends the last answer: the end
        assert h.messages[-1]["phase"] == "end"
        transcript = await h.transcript()
        assert [(e["prompt_index"], e["text"][:4]) for e in transcript] == [(1, "我们一起"), (2, "一次发布")]
        section = (await h.record())["sections"][0]
        assert [it["answer"][:4] for it in section["items"]] == ["我们一起", "一次发布"]


async def test_the_memory_store_fences_like_the_database():
    store = MemoryStore()
    interview_id, resume_id = store.add("u", {"position_type": "backend"}, {"resume_name": "r"})
    assert await store.load_interview("someone else", interview_id) is None
    first = await store.take_lease("u", interview_id, "a", 10)
    second = await store.take_lease("u", interview_id, "b", 10)
    assert second["lease_epoch"] == first["lease_epoch"] + 1 and "lease" not in second
    with pytest.raises(LeaseLost):
        await store.update_interview(interview_id, set_fields={"phase": "x"}, epoch=first["lease_epoch"])
    with pytest.raises(LeaseLost):
        await store.append_transcript(interview_id, [{"text": "旧"}], epoch=first["lease_epoch"])
    assert await store.check_leases({interview_id: first["lease_epoch"]}) == {interview_id}
    assert await store.renew_leases({interview_id: second["lease_epoch"]}, 10) == set()
    await store.update_interview(interview_id, set_fields={"phase_state.intro": {"n": 1}, "phase": "intro"},
                                 push={"questions": {"text": "题"}}, epoch=second["lease_epoch"])
    await store.update_interview(interview_id, set_fields={"questions.0.asked": True})
    doc = await store.load_interview("u", interview_id)
    assert doc["phase_state"] == {"intro": {"n": 1}} and doc["questions"] == [{"text": "题", "asked": True}]
    with pytest.raises(LookupError):
        await store.update_interview("nope", set_fields={"phase": "x"})
