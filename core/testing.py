"""A kit for plugin authors' unit tests, shipped with mianshi (in the manner of pipecat's
``run_test``): build the plugins of a configuration, feed scripted events, read the messages out.
Integration tests use the real database; the in-memory store here is for unit tests only.

* ``SessionHarness`` — one interview session of a real engine on a ``MemoryStore`` and a
  ``ManualClock``: ``await h.send(ev.TextAnswer(...))``, ``await h.advance(seconds)``, then read
  ``h.messages`` / ``await h.transcript()`` (see ``tests/test_plugin_kit.py``).
* ``MemoryStore`` — the engine's ``InterviewStore`` in memory, lease fencing included.
* ``plugin_context(name, settings)`` — the context a factory gets, to call a factory directly.
* ``report_source(record, phases)`` — an interview record as the report service hands it to the
  scorers: with the report sections of the given phases.
"""
from __future__ import annotations

import asyncio
import copy
import functools
import itertools
import tempfile
from pathlib import Path
from typing import Any

from core import events as ev
from core.clock import ManualClock, SystemClock
from core.interfaces import LeaseLost, PluginContext


def plugin_context(name: str, settings: dict | None = None, *, config: dict | None = None,
                   data_dir: str | Path | None = None, clock=None) -> PluginContext:
    """The context a factory gets from the engine, for calling a factory directly."""
    return PluginContext(name=name, settings=dict(settings or {}), config=config or {"_env": {}},
                         data_dir=Path(data_dir or "./data"), clock=clock or SystemClock())


@functools.lru_cache(maxsize=8)
def _phase_factories(phases: tuple[str, ...]) -> tuple:
    from core.plugins import collect, make_plugin_manager
    registry = collect(make_plugin_manager(load_entry_points=True))["phase"]
    return tuple((name, registry.get(name).factory(plugin_context(name))) for name in phases)


def report_source(record: dict, phases: tuple[str, ...] = ("intro", "question", "code")) -> dict:
    """``record`` with the ``sections`` the phases ``phases`` contribute to its report, in order."""
    sections = []
    for name, factory in _phase_factories(tuple(phases)):
        section = factory.report_section(record)
        if isinstance(section, dict):
            sections.append({**section, "phase": name})
    return dict(record, sections=sections)


def report_sections(phases: tuple[str, ...] = ("intro", "question", "code")):
    """The ``sections`` callable an engine hands its ``ReportService``, for the given phases."""
    return lambda record: report_source(record, phases)["sections"]


# --- an in-memory store ---------------------------------------------------------------------------
def _set_path(doc: dict, path: str, value: Any) -> None:
    """``$set`` of a dotted path (``phase_state.intro``, ``cheat_events.0.ended_at``)."""
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _push_path(doc: dict, path: str, values: list) -> None:
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node.setdefault(part, {})
    node.setdefault(last, []).extend(values)


class MemoryStore:
    """``core.interfaces.InterviewStore`` in memory, with the database's lease fencing: for plugin
    authors' unit tests only (the project's integration tests run on the real database)."""

    def __init__(self) -> None:
        self.interviews: dict[str, dict] = {}
        self.resumes: dict[int, dict] = {}
        self.transcripts: dict[str, list[dict]] = {}
        self.media: dict[str, dict] = {}              # media id -> {user_id, interview_id, kind, data, ...}
        self._ids = itertools.count(1)

    def add(self, user_id: str, interview: dict, resume: dict) -> tuple[str, int]:
        """Store an interview and a resume of ``user_id``; return their ids."""
        interview_id, resume_id = str(next(self._ids)), next(self._ids)
        self.interviews[interview_id] = {"id": interview_id, "user_id": user_id, "status": "created",
                                         "phase": None, "resume_id": None, "questions": [],
                                         "cheat_events": [], "transcript_count": 0, **copy.deepcopy(interview)}
        self.resumes[resume_id] = {"resume_id": resume_id, "user_id": user_id, **copy.deepcopy(resume)}
        self.transcripts[interview_id] = []
        return interview_id, resume_id

    def _public(self, doc: dict) -> dict:
        return {k: copy.deepcopy(v) for k, v in doc.items() if k != "lease"}

    def _holder(self, interview_id: str, epoch: int | None) -> dict:
        doc = self.interviews.get(str(interview_id))
        if doc is None:
            raise LookupError(f"no interview {interview_id!r}")
        if epoch is not None and doc.get("lease", {}).get("epoch") != epoch:
            raise LeaseLost(f"interview {interview_id!r}: lease epoch {epoch} was taken over")
        return doc

    async def load_interview(self, user_id: str, interview_id: str) -> dict | None:
        doc = self.interviews.get(str(interview_id))
        return self._public(doc) if doc is not None and doc["user_id"] == user_id else None

    async def load_resume(self, user_id: str, resume_id: int) -> dict | None:
        doc = self.resumes.get(int(resume_id))
        return copy.deepcopy(doc) if doc is not None and doc["user_id"] == user_id else None

    async def take_lease(self, user_id: str, interview_id: str, owner: str, ttl_seconds: float) -> dict | None:
        doc = self.interviews.get(str(interview_id))
        if doc is None or doc["user_id"] != user_id:
            return None
        epoch = doc.get("lease", {}).get("epoch", 0) + 1
        doc["lease"] = {"epoch": epoch, "owner": owner}
        return self._public(doc) | {"lease_epoch": epoch}

    async def check_leases(self, held: dict[str, int]) -> set[str]:
        return {str(i) for i, epoch in held.items()
                if (self.interviews.get(str(i)) or {}).get("lease", {}).get("epoch") != epoch}

    async def renew_leases(self, held: dict[str, int], ttl_seconds: float) -> set[str]:
        return await self.check_leases(held)

    async def release_lease(self, interview_id: str, epoch: int) -> None:
        doc = self.interviews.get(str(interview_id))
        if doc is not None and doc.get("lease", {}).get("epoch") == epoch:
            doc["lease"]["owner"] = None

    async def update_interview(self, interview_id: str, *, set_fields: dict | None = None,
                               push: dict | None = None, epoch: int | None = None) -> None:
        doc = self._holder(interview_id, epoch)
        for path, value in (set_fields or {}).items():
            _set_path(doc, path, copy.deepcopy(value))
        for path, value in (push or {}).items():
            _push_path(doc, path, copy.deepcopy(list(value) if isinstance(value, (list, tuple)) else [value]))

    async def append_transcript(self, interview_id: str, entries: list[dict], epoch: int | None = None) -> None:
        doc = self._holder(interview_id, epoch)
        start = len(self.transcripts[str(interview_id)])
        self.transcripts[str(interview_id)].extend(copy.deepcopy(list(entries)))
        doc["transcript_count"] = len(self.transcripts[str(interview_id)])
        return start

    async def update_transcript_entry(self, interview_id: str, position: int, fields: dict,
                                      epoch: int | None = None) -> None:
        self._holder(interview_id, epoch)
        self.transcripts[str(interview_id)][position].update(copy.deepcopy(fields))

    async def load_transcript(self, interview_id: str) -> list[dict]:
        return copy.deepcopy(self.transcripts.get(str(interview_id), []))

    async def save_media(self, user_id: str, interview_id: str, media_id: str, *, kind: str, data: bytes,
                         content_type: str, meta: dict | None = None) -> None:
        self._holder(interview_id, None)
        self.media[str(media_id)] = {**(meta or {}), "user_id": user_id, "interview_id": str(interview_id),
                                     "kind": kind, "content_type": content_type, "data": bytes(data)}

    # what the report service reads
    async def load_interview_by_id(self, interview_id: str) -> dict | None:
        doc = self.interviews.get(str(interview_id))
        return None if doc is None else self._public(doc)

    async def load_report_source(self, interview_id: str) -> dict | None:
        record = await self.load_interview_by_id(interview_id)
        return None if record is None else dict(record, transcript=await self.load_transcript(interview_id))

    async def list_report_pending(self) -> list[str]:
        return []


# --- one session of a real engine --------------------------------------------------------------------
BASE_ENGINE = {"phases": ["intro", "question"], "vad": "", "asr": "", "question_sources": ["bank"],
               "scorers": ["heuristic"], "cheat_detectors": [], "code_runner": ""}
RESUME = {"resume_name": "测试简历", "expected_position": "后端工程师", "name": "李明",
          "education": [{"school": "华中科技大学", "major": "软件工程", "degree": "本科"}],
          "work_experience": [{"company": "星河电商", "title": "后端开发工程师", "description": "订单系统"}],
          "projects": [{"name": "订单中心重构", "description": "订单服务拆分，引入 Redis 缓存"}],
          "skills": ["Java", "Redis", "MySQL"], "self_evaluation": "踏实"}
INTERVIEW = {"position_name": "后端开发工程师", "position_type": "backend", "company_name": "示例公司",
             "position_description": "负责后端开发", "position_requirements": "熟悉 Java / Redis"}


class SessionHarness:
    """``async with SessionHarness(engine={"phases": ["my_phase"]}, plugins=[...]) as h:`` runs one
    interview session of a real ``core.engine.Engine`` (plugins from the entry points and
    ``plugins``) on a ``MemoryStore`` and a ``ManualClock``; messages the client would receive
    collect in ``h.messages``. Configuration tables are merged over a minimal one (``BASE_ENGINE``;
    the question bank, the heuristic scorer, no speech, no vision, no sandbox)."""

    def __init__(self, *, engine: dict | None = None, config: dict | None = None, plugins=(),
                 resume: dict | None = None, interview: dict | None = None, clock: ManualClock | None = None,
                 load_entry_points: bool = True) -> None:
        self.overrides = {**(config or {}), "engine": {**BASE_ENGINE, **(engine or {})}}
        self.plugins = tuple(plugins)
        self.load_entry_points = load_entry_points
        self.clock = clock or ManualClock()
        self.store = MemoryStore()
        self.resume, self.interview = resume or RESUME, interview or INTERVIEW
        self.messages: list[dict] = []
        self.engine = None
        self.session = None
        self._data = None

    async def _send(self, message: dict) -> None:
        self.messages.append(message)

    async def __aenter__(self) -> "SessionHarness":
        from core.config import load_config
        from core.engine import Engine
        self._data = tempfile.TemporaryDirectory(prefix="mianshi-harness-")
        config = load_config(overrides=self.overrides, env={"MIANSHI_DATA_DIR": self._data.name})
        self.engine = Engine(config, store=self.store, clock=self.clock, extra_plugins=self.plugins,
                             load_entry_points=self.load_entry_points)
        await self.engine.start()
        self.interview_id, self.resume_id = self.store.add("user-1", self.interview, self.resume)
        self.session = await self.engine.open_session(
            "user-1", ev.CreateStream(self.interview_id, self.resume_id), self._send)
        await self.session.start()
        await self.settle()
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            if self.session is not None:
                await self.session.close()
            if self.engine is not None:
                await self.engine.close()
        finally:
            if self._data is not None:
                self._data.cleanup()

    async def settle(self, rounds: int = 5) -> None:
        """Let every queued event be handled."""
        for _ in range(rounds):
            await asyncio.sleep(0)
            await self.session.events.join()

    async def send(self, message) -> None:
        """A parsed client message (``core.events``: ``TextAnswer``, ``EndAnswer``, ``AudioFrame`` ...)."""
        await self.session.handle(message)
        await self.settle()

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on the session's clock (timers fire; nothing sleeps)."""
        await self.clock.advance(seconds)
        await self.settle()

    def said(self, phase: str | None = None) -> list[str]:
        """The texts of the ``interview_message``s so far (of ``phase``)."""
        return [m["text"] for m in self.messages
                if m["type"] == "interview_message" and (phase is None or m["phase"] == phase)]

    async def transcript(self) -> list[dict]:
        return await self.store.load_transcript(self.interview_id)

    async def record(self) -> dict:
        """The stored interview with its transcript and the phases' report sections, as the
        scorers get it."""
        record = await self.store.load_report_source(self.interview_id)
        return dict(record, sections=self.engine.report_sections(record))
