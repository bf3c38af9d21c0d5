"""The question phase.

The plan of questions is generated while the intro runs (``prepare``), from the question sources of
``[engine] question_sources`` in order: the first that answers within
``question_generation_timeout_seconds`` wins, the next is the fallback (the built-in bank never
fails). On entering: "自我介绍结束，下面开始问问题。" immediately followed by the first question. Each
answer ends like the intro; a source may then add up to ``max_follow_ups`` follow-up questions
(``[plugins.question]``); when the queue is empty the phase finishes.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging

from typing import Any

from core.settings import Setting
from core.hookspecs import hookimpl
from core.interfaces import AsrContext, FollowUpRequest, Question, QuestionRequest
from core.phase import Phase, PhaseFactory
from core.resume import resume_terms
from core.turns import Turn

log = logging.getLogger("mianshi.phases.question")


def _question_to_dict(q: Question) -> dict:
    return dataclasses.asdict(q)


def _question_from_dict(d: dict) -> Question:
    fields = {f.name for f in dataclasses.fields(Question)}
    return Question(**{k: v for k, v in d.items() if k in fields})


async def plan_questions(ctx, count: int, timeout: float) -> tuple[list[Question], str, list[str]]:
    """Ask the sources in order; return (questions, source name, errors of the sources that failed)."""
    request = QuestionRequest(resume=ctx.resume, interview=ctx.interview, count=count)
    errors: list[str] = []
    for source in ctx.question_sources:
        try:
            questions = await asyncio.wait_for(source.generate(request), timeout)
        except asyncio.TimeoutError:
            errors.append(f"{source.name}: timed out after {timeout:.0f}s")
            continue
        except Exception as exc:  # a failing source is normal: fall back to the next
            errors.append(f"{source.name}: {exc}")
            continue
        questions = [q for q in questions if isinstance(q, Question) and q.text.strip()]
        if questions:
            for q in questions:
                q.source = q.source or source.name
            return questions[:max(count, 1)], source.name, errors
        errors.append(f"{source.name}: returned no questions")
    return [], "", errors


class QuestionPhase(Phase):
    name = "question"
    title = "问答环节"
    input = "speech"
    opening = "下面开始问问题。"          # after the intro: the guide's "自我介绍结束，下面开始问问题。"
    closing = "问答环节结束"

    def __init__(self, settings: dict | None = None) -> None:
        super().__init__(settings)
        self.turn: Turn | None = None
        self._plan_task: asyncio.Task | None = None

    # -- planning --------------------------------------------------------------------------------
    def _timeout(self, ctx) -> float:
        return float(ctx.timing.get("question_generation_timeout_seconds", 20.0))

    async def _make_plan(self, ctx) -> None:
        count = int(ctx.timing.get("question_count", 5))
        questions, source, errors = await plan_questions(ctx, count, self._timeout(ctx))
        if errors:
            log.warning("interview %s: question sources failed: %s", ctx.interview_id, "; ".join(errors))
        self._store_plan(ctx, questions, source, errors)
        await ctx.save()
        if questions:
            ctx.prepare_speech(questions[0].text)     # said the moment the intro ends

    @staticmethod
    def _store_plan(ctx, questions: list[Question], source: str, errors: list[str]) -> None:
        plan = []
        for i, q in enumerate(questions):
            item = _question_to_dict(q)
            item["root"] = i
            plan.append(item)
        ctx.state.update(plan=plan, plan_source=source, plan_errors=errors, index=0)

    async def prepare(self, ctx) -> None:
        """Called when the session starts: generate the plan in the background during the intro."""
        if "plan" not in ctx.state and self._plan_task is None:
            self._plan_task = ctx.background(self._make_plan(ctx), "question-plan")

    async def _ensure_plan(self, ctx) -> None:
        if "plan" in ctx.state:
            return
        if self._plan_task is None:
            self._plan_task = ctx.background(self._make_plan(ctx), "question-plan")
        try:
            await asyncio.wait_for(asyncio.shield(self._plan_task), self._timeout(ctx) * 2 + 5)
        except asyncio.TimeoutError:
            pass
        if "plan" not in ctx.state:  # the task died: never stall, fall back to the last source
            questions, source, errors = await plan_questions(ctx, int(ctx.timing.get("question_count", 5)),
                                                             self._timeout(ctx))
            self._store_plan(ctx, questions, source, errors)
            await ctx.save()

    # -- asking ----------------------------------------------------------------------------------
    def _start_turn(self, ctx) -> Question:
        """Bias ASR towards the current question and start timing its answer."""
        question = _question_from_dict(ctx.state["plan"][ctx.state["index"]])
        ctx.set_asr_context(AsrContext(question=question.text, terms=resume_terms(ctx.resume),
                                       hints=list(question.reference_points),
                                       domain=str((ctx.interview or {}).get("position_type") or "")))
        self.turn = Turn(float(ctx.timing.get("answer_silence_seconds", 15.0)),
                         str(ctx.timing.get("done_phrase", "说完了")))
        self.turn.start(ctx.clock.now())
        return question

    async def _ask(self, ctx) -> None:
        plan = ctx.state["plan"]
        index = ctx.state["index"]
        question = self._start_turn(ctx)
        await ctx.say(question.text, question_index=index + 1, total=len(plan), question=question)
        if index + 1 < len(plan):       # the next question's voice is ready when this answer ends
            ctx.prepare_speech(plan[index + 1]["text"])

    def attribution(self, ctx) -> dict:
        """Utterances belong to the question being asked (1-based, as ``question_index``)."""
        plan, index = ctx.state.get("plan"), ctx.state.get("index", 0)
        return {"question_index": index + 1} if plan is not None and index < len(plan) else {}

    async def on_enter(self, ctx) -> None:
        await self._ensure_plan(ctx)
        if not ctx.state["plan"]:
            await ctx.finish()
            return
        await self._ask(ctx)

    async def on_resume(self, ctx) -> None:
        await self._ensure_plan(ctx)
        if ctx.state.get("index", 0) >= len(ctx.state["plan"]):
            await ctx.finish()
            return
        self._start_turn(ctx)
        self.turn.texts = list(ctx.state.get("answer_so_far", []))

    async def on_event(self, ctx, event) -> None:
        if self.turn is None:
            return
        before = len(self.turn.texts)
        reason = self.turn.feed(event, ctx.clock.now())
        if len(self.turn.texts) != before:
            ctx.state["answer_so_far"] = list(self.turn.texts)
        if reason:
            await self._answered(ctx, reason)

    async def _follow_up(self, ctx, question: Question, root: int, answer: str) -> str | None:
        """Ask the sources for a follow-up, unless the question already had ``max_follow_ups``."""
        limit = int(self.settings.get("max_follow_ups", 1))
        used = sum(1 for p in ctx.state["plan"] if p.get("kind") == "follow_up" and p.get("root") == root)
        if limit <= 0 or used >= limit or not answer.strip():
            return None
        history = [{"question": p["text"]} for p in ctx.state["plan"][:ctx.state["index"]]]
        request = FollowUpRequest(resume=ctx.resume, interview=ctx.interview, question=question,
                                  answer=answer, history=history)
        timeout = float(self.settings.get("follow_up_timeout_seconds", 8.0))
        for source in ctx.question_sources:
            try:
                text = await asyncio.wait_for(source.follow_up(request), timeout)
            except Exception as exc:  # includes timeouts: the interview goes on without a follow-up
                log.info("follow-up from %s failed: %s", source.name, exc)
                continue
            if text and text.strip():
                return text.strip()
        return None

    async def _answered(self, ctx, reason: str) -> None:
        index = ctx.state["index"]
        plan = ctx.state["plan"]
        entry = plan[index]
        question = _question_from_dict(entry)
        root = entry.get("root", index)
        answer = self.turn.answer if self.turn else ""
        self.turn = None  # nothing more counts for this question while we decide what follows
        follow_up = await self._follow_up(ctx, question, root, answer)
        if follow_up:
            item = _question_to_dict(Question(text=follow_up, kind="follow_up", topic=question.topic,
                                              source=question.source))
            item["root"] = root
            plan.insert(index + 1, item)
        ctx.state["index"] = index + 1
        ctx.state["answer_so_far"] = []
        ctx.state.setdefault("ended_by", []).append(reason)
        await ctx.save()
        if ctx.state["index"] >= len(plan):
            await ctx.finish()
        else:
            await self._ask(ctx)


def _index(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def question_answers(record: dict, phase: str = "question") -> list[dict]:
    """Each asked question (in order) with the candidate's final answer text joined from the
    transcript entries of the phase ``phase`` that carry its ``question_index``, and those entries
    as its ``evidence`` (utterance id, text, times)."""
    by_index: dict[Any, list[str]] = {}
    evidence: dict[Any, list[dict]] = {}
    for entry in record.get("transcript") or []:
        if not isinstance(entry, dict) or entry.get("phase", phase) != phase:
            continue
        text = str(entry.get("text") or "").strip()
        if text and entry.get("question_index") is not None:
            by_index.setdefault(_index(entry["question_index"]), []).append(text)
            if entry.get("utterance_id"):      # what made the answer (core/report.py, "evidence")
                evidence.setdefault(_index(entry["question_index"]), []).append(
                    {"id": entry["utterance_id"], "type": "utterance", "text": text,
                     "source": entry.get("source"), "t_start": entry.get("t_start"), "t_end": entry.get("t_end")})
    questions = [q for q in record.get("questions") or [] if isinstance(q, dict) and q.get("text")
                 and q.get("phase", phase) == phase]
    questions.sort(key=lambda q: (_index(q.get("index", 0)) if isinstance(_index(q.get("index", 0)), int) else 0))
    out = []
    for pos, q in enumerate(questions):
        index = _index(q.get("index", pos + 1))
        points = q.get("reference_points") or []
        out.append({"index": index, "question": str(q["text"]), "kind": q.get("kind") or "fundamental",
                    "topic": q.get("topic") or "", "follow_up_of": q.get("follow_up_of"),
                    "reference_points": [str(p) for p in points if str(p).strip()] if isinstance(points, list) else [],
                    "answer": " ".join(by_index.get(index, [])), "evidence": evidence.get(index, [])})
    return out


class QuestionFactory(PhaseFactory):
    phase_class = QuestionPhase

    def report_section(self, record: dict) -> dict | None:
        return {"type": "qa", "title": QuestionPhase.title, "items": question_answers(record, self.ctx.name)}


SETTINGS = {
    "max_follow_ups": Setting(1, minimum=0),               # follow-ups per planned question
    "follow_up_timeout_seconds": Setting(8.0, minimum=0),  # a slower source asks no follow-up
}

@hookimpl
def register_phases(register):
    register("question", QuestionFactory, settings=SETTINGS)
