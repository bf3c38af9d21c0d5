"""Helpers for engine tests: a real store on the test MongoDB server, seeded records, a recording
client, and scripted test plugins (one per hook) in the manner of pipecat's frame tests."""
from __future__ import annotations

import asyncio
import uuid

import numpy as np

from core import events as ev
from core.config import load_config
from core.engine import Engine
from core.hookspecs import hookimpl
from core.interfaces import CheatKind, Question, RunOutcome, VadEvent
from core.phase import Phase
from storage import db as dbmod
from storage.store import Store

BACKEND_RESUME = {
    "resume_name": "后端开发简历", "expected_position": "后端工程师", "name": "李明",
    "education": [{"school": "华中科技大学", "major": "软件工程", "degree": "本科"}],
    "work_experience": [{"company": "星河电商", "title": "后端开发工程师", "start": "2021-07", "end": "2024-06",
                         "description": "负责订单系统和支付系统"}],
    "projects": [{"name": "订单中心重构", "role": "核心开发",
                  "description": "订单服务拆分，引入 Redis 缓存与 Kafka 消息队列",
                  "tech": ["Java", "Redis", "Kafka", "MySQL"]}],
    "skills": ["Java", "Redis", "Kafka", "MySQL", "Spring Boot"],
    "self_evaluation": "擅长高并发系统设计",
}

INTERVIEW = {"position_name": "后端开发工程师", "position_type": "backend", "company_name": "示例公司",
             "position_description": "负责后端开发工作", "position_requirements": "熟悉Java/Redis"}


async def make_store(mongo_uri: str) -> tuple[object, Store]:
    client, database = dbmod.connect(mongo_uri, f"t_{uuid.uuid4().hex[:10]}")
    await dbmod.create_indexes(database)
    return client, Store(database)


async def seed(store: Store, resume: dict | None = None, interview: dict | None = None) -> tuple[str, int, str]:
    user_id = await store.users.create(f"u{uuid.uuid4().hex[:8]}", "x")
    resume_doc = await store.resumes.create(user_id, dict(resume or BACKEND_RESUME))
    interview_doc = await store.interviews.create(user_id, dict(interview or INTERVIEW))
    return user_id, int(resume_doc["_id"]), str(interview_doc["_id"])


def engine_config(**overrides) -> dict:
    base = {"engine": {"phases": ["intro", "question"], "vad": "", "asr": "", "question_sources": ["bank"],
                       "scorers": ["heuristic"], "cheat_detectors": [], "code_runner": ""},
            "timing": {"question_count": 3, "tick_seconds": 0.25}}
    for key, value in overrides.items():
        base.setdefault(key, {}).update(value)
    return load_config(overrides=base, env={"MIANSHI_DATA_DIR": "/tmp/mianshi-test-data"})


class Client:
    """Records what the server sends, like a front end would."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.arrived = asyncio.Event()

    async def send(self, message: dict) -> None:
        self.messages.append(message)
        self.arrived.set()

    def of(self, mtype: str, **match) -> list[dict]:
        return [m for m in self.messages if m["type"] == mtype and all(m.get(k) == v for k, v in match.items())]

    def texts(self, mtype: str = "interview_message") -> list[str]:
        return [m["text"] for m in self.of(mtype)]

    async def wait_for(self, predicate, timeout: float = 30.0) -> dict:
        async def waiter():
            while True:
                for m in self.messages:
                    if predicate(m):
                        return m
                self.arrived.clear()
                await self.arrived.wait()
        return await asyncio.wait_for(waiter(), timeout)


async def settle(session, rounds: int = 3) -> None:
    """Let queued events be handled."""
    for _ in range(rounds):
        await asyncio.sleep(0)
        await session.events.join()


# --- scripted test plugins: one per hook ------------------------------------------------------------
class ToneVad:
    """Speech = frames whose RMS exceeds a threshold (the scripted audio below is tone or silence)."""
    name = "tone"

    class Stream:
        def __init__(self) -> None:
            self.pos = 0
            self.in_speech = False
            self.quiet = 0

        def accept(self, pcm):
            out = []
            for start in range(0, len(pcm), 320):
                chunk = pcm[start:start + 320].astype(np.float32)
                loud = float(np.sqrt(np.mean(chunk ** 2))) > 500 if len(chunk) else False
                if loud and not self.in_speech:
                    self.in_speech, self.quiet = True, 0
                    out.append(VadEvent("start", self.pos + start))
                elif not loud and self.in_speech:
                    self.quiet += 1
                    if self.quiet >= 10:   # 200 ms of quiet ends the segment
                        self.in_speech = False
                        out.append(VadEvent("end", self.pos + start))
                elif loud:
                    self.quiet = 0
            self.pos += len(pcm)
            return out

        def finish(self):
            if self.in_speech:
                self.in_speech = False
                return [VadEvent("end", self.pos)]
            return []

    def open_stream(self):
        return self.Stream()


class ToneAsr:
    """Reads the tone's frequency as a digit: the scripted 'speech' encodes text the test chose."""
    name = "tone"
    DIGITS = "零一二三四五六七八九"

    class Stream:
        def __init__(self, outer) -> None:
            self.outer = outer

        def _read(self, pcm):
            if len(pcm) < 1600:
                return ""
            spectrum = np.abs(np.fft.rfft(pcm.astype(np.float32)))
            freq = int(np.argmax(spectrum) * 16000 / len(pcm))
            digit = round(freq / 100) - 3   # 300 Hz -> 0 ... 1200 Hz -> 9
            return ToneAsr.DIGITS[digit] if 0 <= digit <= 9 else ""

        def partial(self, pcm, context):
            self.outer.contexts.append(context)
            return self._read(pcm)

        def final(self, pcm, context):
            self.outer.contexts.append(context)
            text = self._read(pcm)
            return text + ("说完了" if text == "九" else "")

    def __init__(self) -> None:
        self.contexts = []

    def open_stream(self):
        return self.Stream(self)


def tone(digit: int, seconds: float, amplitude: int = 8000) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    return (amplitude * np.sin(2 * np.pi * (300 + 100 * digit) * t)).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(int(16000 * seconds) * 2)


class ScriptedSource:
    name = "scripted"

    def __init__(self, questions: list[str], follow_up: str | None = None, fail: bool = False,
                 points: list[str] | None = None) -> None:
        self.questions = questions
        self.points = points or []
        self.follow_up_text = follow_up
        self.fail = fail
        self.requests = []

    async def generate(self, request):
        self.requests.append(request)
        if self.fail:
            raise RuntimeError("model unreachable")
        return [Question(text=q, kind="skill", topic="t", reference_points=list(self.points))
                for q in self.questions[:request.count]]

    async def follow_up(self, request):
        return self.follow_up_text


class ScriptedScorer:
    name = "scripted"

    def __init__(self) -> None:
        self.records = []

    async def score(self, record):
        self.records.append(record)
        return {"overall_score": 7, "summary": "ok", "questions": [], "code": {}, "cheat_events": []}


class OneShotPhase(Phase):
    """A third-party phase: asks one thing and finishes on any text answer."""
    name = "oneshot"
    opening = "请用一句话总结你的优势"

    async def on_event(self, ctx, event):
        if isinstance(event, ev.TextAnswer):
            ctx.state["answer"] = event.text
            await ctx.finish()

    async def on_exit(self, ctx):
        await ctx.save()


class EchoRunner:
    name = "echo"
    languages = ("python",)

    async def run(self, language, code, stdin, limits):
        return RunOutcome(stdout=stdin, stderr="", exit_code=0, wall_ms=1.0)

    def check(self):
        return None


class BrightnessDetector:
    """A scripted detector: a dark frame means nobody is in the picture."""
    name = "brightness"
    kinds = (CheatKind("no_face", "未检测到人脸，请保持在摄像头画面中。", "未检测到人脸"),)

    def detect(self, image, state):
        state["frames"] = state.get("frames", 0) + 1
        kind = "no_face" if float(image.mean()) < 40 else None
        return [ev.CheatSignal(self.name, kind, 1.0, {"mean": round(float(image.mean()), 1)})]


def jpeg_of(value: int) -> bytes:
    import cv2
    image = np.full((240, 320, 3), value, dtype=np.uint8)
    image[::8, ::8] = 255 - value          # some texture so the encoder has work to do
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


class HookPlugin:
    """Registers one scripted component through every registration hook and observes events."""

    def __init__(self, source: ScriptedSource | None = None) -> None:
        self.source = source or ScriptedSource(["第一题：请介绍Redis持久化", "第二题：Kafka如何保证不丢消息"],
                                                 points=["RDB 快照", "AOF 追加日志"])
        self.scorer = ScriptedScorer()
        self.asr = ToneAsr()
        self.observed: list[tuple[str, str, dict]] = []

    @hookimpl
    def register_phases(self, register):
        class Factory:
            def __init__(self, ctx):
                pass

            def create(self):
                return OneShotPhase()
        register("oneshot", Factory)

    @hookimpl
    def register_vad(self, register):
        register("tone", lambda ctx: ToneVad())

    @hookimpl
    def register_asr(self, register):
        register("tone", lambda ctx: self.asr)

    @hookimpl
    def register_question_sources(self, register):
        register("scripted", lambda ctx: self.source)

    @hookimpl
    def register_scorers(self, register):
        register("scripted", lambda ctx: self.scorer)

    @hookimpl
    def register_code_runners(self, register):
        register("echo", lambda ctx: EchoRunner())

    @hookimpl
    def register_cheat_detectors(self, register):
        register("brightness", lambda ctx: BrightnessDetector())

    @hookimpl
    def interview_event(self, interview_id, kind, data):
        self.observed.append((interview_id, kind, data))


async def start_engine(store, config, plugin=None, clock=None) -> Engine:
    engine = Engine(config, store=store, clock=clock, extra_plugins=(plugin,) if plugin else (),
                    load_entry_points=False)
    await engine.start()
    return engine
