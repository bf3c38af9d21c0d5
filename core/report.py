"""The interview report: written in the background when an interview ends.

``ReportService`` runs the scorers of ``[engine] scorers`` in order (``llm`` first, the deterministic
``heuristic`` as the fallback) and stores the result on the interview document:

    report_status     "pending" (nothing started yet) → "generating" → "ready";
                      "retrying" after a round in which every scorer failed (next round after a
                      backoff), "failed" once ``max_attempts`` rounds failed
    report            the report dict (see ``core.interfaces.Scorer.score``), once ready
    report_scorer     name of the scorer that wrote it; ``report_degraded`` is true when it is not
                      the first one listed (then the preferred scorer is tried again later and, if
                      it succeeds, replaces the report)
    report_attempts   rounds started so far; ``report_error`` what failed last;
    report_next_retry_at  time of the next round while "retrying"

A restart loses nothing: ``resume_pending()`` (called at start-up) schedules every ended interview
whose report is not "ready" or "failed". Settings (``[report]`` table, all optional):
``max_attempts`` (5), ``retry_base_seconds`` (30), ``retry_max_seconds`` (900),
``scorer_timeout_seconds`` (300), ``upgrade_degraded`` (true).

The store is read through ``load_report_source(interview_id)`` (the whole interview document with
its transcript, whoever owns it) and ``list_report_pending()``; written through
``update_interview``. See ``core.interfaces.InterviewStore``.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any, Callable

from core.interfaces import LeaseLost
from core.timeutil import as_datetime, epoch_seconds, utcnow

log = logging.getLogger("mianshi.report")

UNFINISHED_REPORT_STATES = ("pending", "generating", "retrying")


# --- what the scorers share ------------------------------------------------------------------------
def sections(record: dict) -> list[dict]:
    """The report sections the phases contributed (``PhaseFactory.report_section``), in phase order:
    ``{"phase", "title", "type", ...}``. Type ``qa``: ``items`` of ``{"index", "question", "kind",
    "topic", "reference_points", "answer"}``; type ``code``: ``summary`` (with a ``score`` when
    something was submitted). Other types are shown, not scored."""
    return [s for s in record.get("sections") or [] if isinstance(s, dict)]


def qa_items(record: dict) -> list[dict]:
    """Every prompt and answer of every ``qa`` section, in order, each with its ``phase``."""
    out = []
    for section in sections(record):
        if section.get("type") == "qa":
            out.extend(dict(item, phase=section.get("phase")) for item in section.get("items") or [])
    return out


def scored_sections(record: dict, scored: list[dict]) -> list[dict]:
    """The report's ``sections``: each phase section as contributed, ``qa`` items replaced by their
    scored versions (``scored`` in the order of ``qa_items``), so the page renders any phase."""
    queue = list(scored)
    out = []
    for section in sections(record):
        section = dict(section)
        if section.get("type") == "qa":
            n = len(section.get("items") or [])
            section["items"], queue = queue[:n], queue[n:]
        out.append(section)
    return out


def code_summary(record: dict) -> dict:
    """The summary of the first ``code`` section ({} when there is none)."""
    for section in sections(record):
        if section.get("type") == "code":
            return dict(section.get("summary") or {})
    return {}


def cheat_section(record: dict) -> list[dict]:
    """The cheat episodes, each with its evidence ``id`` (``cheat-<n>``, n from 1) and ``frame_id``
    (the frame that opened it, when one was kept)."""
    out = []
    for n, event in enumerate(record.get("cheat_events") or [], 1):
        if not isinstance(event, dict):
            continue
        kind = str(event.get("kind") or "unknown")
        item = {"id": f"cheat-{n}", "kind": kind, "kind_zh": str(event.get("label") or kind),   # the detector's label
                "started_at": event.get("started_at"), "ended_at": event.get("ended_at"),
                "frames": event.get("frames"), "frame_id": event.get("frame_id")}
        start, end = epoch_seconds(event.get("started_at")), epoch_seconds(event.get("ended_at"))
        if start is not None and end is not None and end >= start:
            item["seconds"] = round(end - start, 1)
        out.append(item)
    return out


# --- evidence -----------------------------------------------------------------------------------------
# Phases put what earned a score into their sections as ``evidence`` lists of ``{"id", "type", ...}``
# (anywhere in a section: a ``qa`` item's evidence is the utterances of its answer, a code summary's
# the submissions); the cheat episodes are evidence too. Scorers cite ids in ``cites`` (per question,
# and ``code_cites``); ``link_evidence`` drops every citation of an id that does not exist and gives
# each scored question the evidence of its item.
def _evidence_lists(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "evidence" and isinstance(value, list):
                yield value
            else:
                yield from _evidence_lists(value)
    elif isinstance(node, list):
        for value in node:
            yield from _evidence_lists(value)


def evidence_ids(record: dict) -> set[str]:
    """Every evidence id of the record's sections and cheat episodes."""
    ids = {str(e["id"]) for found in _evidence_lists(sections(record)) for e in found
           if isinstance(e, dict) and e.get("id")}
    return ids | {c["id"] for c in cheat_section(record)}


def _valid_cites(cites: Any, known: set[str], dropped: list[str]) -> list[str]:
    out = []
    for cite in cites if isinstance(cites, list) else []:
        if isinstance(cite, str) and cite in known:
            if cite not in out:
                out.append(cite)
        else:
            dropped.append(str(cite)[:60])
    return out


def link_evidence(report: dict, record: dict) -> list[str]:
    """In place: every scored question gets its item's ``evidence`` and only the ``cites`` that exist;
    ``code_cites`` likewise. Returns the citations dropped."""
    known = evidence_ids(record)
    by_key = {(it.get("phase"), it.get("index")): it.get("evidence") or [] for it in qa_items(record)}
    dropped: list[str] = []
    scored = [q for q in report.get("questions") or [] if isinstance(q, dict)]
    for section in report.get("sections") or []:
        if isinstance(section, dict) and section.get("type") == "qa":
            scored.extend(q for q in section.get("items") or [] if isinstance(q, dict) and q not in scored)
    seen: set[int] = set()
    for q in scored:
        if id(q) in seen:
            continue
        seen.add(id(q))
        q["evidence"] = by_key.get((q.get("phase"), q.get("index")), [])
        q["cites"] = _valid_cites(q.get("cites"), known, dropped)
    if "code_cites" in report:
        report["code_cites"] = _valid_cites(report.get("code_cites"), known, dropped)
    return dropped


def check_report(report: Any) -> list[str]:
    """What a scorer must return for the report to be stored."""
    if not isinstance(report, dict):
        return ["report is not an object"]
    problems = []
    score = report.get("overall_score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 10:
        problems.append("overall_score must be a number from 0 to 10")
    if not isinstance(report.get("summary"), str) or not report["summary"].strip():
        problems.append("summary must be a non-empty string")
    questions = report.get("questions")
    if not isinstance(questions, list):
        problems.append("questions must be a list")
    else:
        for i, q in enumerate(questions):
            s = q.get("score") if isinstance(q, dict) else None
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s <= 10:
                problems.append(f"questions[{i}].score must be a number from 0 to 10")
    return problems


# --- the service -----------------------------------------------------------------------------------
class ReportService:
    def __init__(self, scorers: list, store, clock, settings: dict | None = None,
                 sections: Callable[[dict], list[dict]] | None = None, owner: str | None = None) -> None:
        settings = dict(settings or {})
        # one report writer per interview across instances: the claim (stores that offer it)
        self.owner = owner or f"report-{uuid.uuid4().hex[:12]}"
        self.claim_ttl = float(settings.get("claim_ttl_seconds", 60.0))
        self._claims = callable(getattr(store, "claim_report", None))
        self.scorers = list(scorers)
        self.sections = sections or (lambda record: [])     # the phases' report sections
        self.store = store
        self.clock = clock
        self.max_attempts = int(settings.get("max_attempts", 5))
        self.retry_base = float(settings.get("retry_base_seconds", 30.0))
        self.retry_max = float(settings.get("retry_max_seconds", 900.0))
        self.scorer_timeout = float(settings.get("scorer_timeout_seconds", 300.0))
        self.upgrade_degraded = bool(settings.get("upgrade_degraded", True))
        if self.max_attempts < 1:
            raise ValueError("[report] max_attempts must be at least 1")
        self._tasks: dict[str, asyncio.Task] = {}
        self._closed = False

    # -- public --------------------------------------------------------------------------------------
    def schedule(self, interview_id: str) -> asyncio.Task | None:
        """Write the report of ``interview_id`` in the background (no-op if already under way)."""
        if self._closed:
            return None
        interview_id = str(interview_id)
        task = self._tasks.get(interview_id)
        if task is not None and not task.done():
            return task
        task = asyncio.get_running_loop().create_task(self._run(interview_id), name=f"report-{interview_id}")
        self._tasks[interview_id] = task
        task.add_done_callback(lambda t, i=interview_id: self._done(i, t))
        return task

    def is_running(self, interview_id: str) -> bool:
        task = self._tasks.get(str(interview_id))
        return task is not None and not task.done()

    async def resume_pending(self) -> int:
        """Schedule every ended interview whose report is unfinished (after a restart)."""
        lister = getattr(self.store, "list_report_pending", None)
        if lister is None:
            log.warning("the store has no list_report_pending(): unfinished reports are not resumed")
            return 0
        ids = await lister()
        for interview_id in ids:
            self.schedule(interview_id)
        if ids:
            log.info("resuming %d unfinished report(s)", len(ids))
        return len(ids)

    async def cancel(self, interview_id: str) -> None:
        """Stop writing this interview's report (it is being deleted)."""
        task = self._tasks.get(str(interview_id))
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def wait(self, interview_id: str) -> None:
        task = self._tasks.get(str(interview_id))
        if task is not None:
            await asyncio.shield(task)

    async def aclose(self) -> None:
        """Stop the background work; an interrupted report stays "generating"/"retrying" in the
        store and is picked up by ``resume_pending`` at the next start."""
        self._closed = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    # -- internals -----------------------------------------------------------------------------------
    def _done(self, interview_id: str, task: asyncio.Task) -> None:
        if self._tasks.get(interview_id) is task:
            del self._tasks[interview_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("report task for %s crashed: %r", interview_id, task.exception())

    def _delay(self, attempt: int) -> float:
        return min(self.retry_base * (2 ** max(0, attempt - 1)), self.retry_max)

    async def _load(self, interview_id: str) -> dict | None:
        """The interview with its transcript and the phases' report sections (what scorers read)."""
        loader = getattr(self.store, "load_report_source", None)
        if loader is not None:
            record = await loader(interview_id)
        else:
            record = await self.store.load_interview_by_id(interview_id)
            if record is not None and "transcript" not in record:
                record = dict(record, transcript=await self.store.load_transcript(interview_id))
        if record is not None:
            record = dict(record, sections=self.sections(record))
        return record

    async def _set(self, interview_id: str, **fields) -> None:
        if self._claims:        # refused (LeaseLost) once another instance has taken the claim over
            await self.store.update_interview(interview_id, set_fields=fields, report_owner=self.owner)
        else:
            await self.store.update_interview(interview_id, set_fields=fields)

    async def _claim(self, interview_id: str) -> bool:
        """Wait for the report claim of ``interview_id``; False when the report no longer needs
        writing (another instance finished it meanwhile)."""
        while not await self.store.claim_report(interview_id, self.owner, self.claim_ttl):
            claim = await self.store.report_claim(interview_id) or {}
            expires = as_datetime(claim.get("expires_at"))
            wait = 1.0 if expires is None else max(1.0, (expires - utcnow()).total_seconds() + 0.5)
            log.info("report for %s is being written by %s; checking again in %.0f s",
                     interview_id, claim.get("owner"), wait)
            await asyncio.sleep(wait)       # wall time: claims expire by the database's clock
            # the status only: not _load(), which reads the transcript and builds the sections
            record = await self.store.load_interview_by_id(interview_id)
            if record is None or record.get("report_status") == "failed" or (
                    record.get("report_status") == "ready" and not record.get("report_degraded")):
                return False
        return True

    async def _keep_claim(self, interview_id: str) -> None:
        while True:
            # wall time, not the injected clock: the claim expires by the database's clock (and a
            # test's manual clock must only see the report's own backoff sleeps)
            await asyncio.sleep(self.claim_ttl / 3)
            try:
                if not await self.store.claim_report(interview_id, self.owner, self.claim_ttl):
                    return      # taken over after an expiry: this writer's next write is refused
            except Exception as exc:        # the database is unreachable: the fence still holds
                log.warning("renewing the report claim of %s failed: %s", interview_id, exc)

    async def _try_scorers(self, scorers: list, record: dict) -> tuple[Any, dict | None, list[str]]:
        errors: list[str] = []
        for scorer in scorers:
            if getattr(scorer, "available", True) is False:
                errors.append(f"{scorer.name}: 未配置")
                continue
            try:
                report = await asyncio.wait_for(scorer.score(record), self.scorer_timeout)
            except asyncio.TimeoutError:
                errors.append(f"{scorer.name}: 超时（{self.scorer_timeout:.0f} 秒）")
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failing scorer is normal: try the next one
                errors.append(f"{scorer.name}: {exc}")
                continue
            problems = check_report(report)
            if problems:
                errors.append(f"{scorer.name}: 报告格式不正确（{'; '.join(problems)}）")
                continue
            dropped = link_evidence(report, record)
            if dropped:                     # cited something that does not exist: not kept
                log.warning("report of %s: scorer %s cited unknown evidence %s; dropped",
                            record.get("id") or record.get("_id"), scorer.name, dropped[:10])
                report["dropped_cites"] = dropped
            return scorer, report, errors
        return None, None, errors

    @staticmethod
    def _usable(scorers: list) -> list:
        return [s for s in scorers if getattr(s, "available", True) is not False]

    async def _run(self, interview_id: str) -> None:
        if not self._claims:
            await self._write(interview_id)
            return
        if not await self._claim(interview_id):
            return
        keeper = asyncio.get_running_loop().create_task(self._keep_claim(interview_id))
        try:
            await self._write(interview_id)
        except LeaseLost as exc:
            log.warning("report for %s: %s; the other writer goes on", interview_id, exc)
        finally:
            keeper.cancel()
            try:
                await asyncio.shield(self.store.release_report(interview_id, self.owner))
            except Exception as exc:
                log.info("releasing the report claim of %s failed: %s", interview_id, exc)

    async def _write(self, interview_id: str) -> None:
        record = await self._load(interview_id)
        if record is None:
            log.warning("report for %s: interview not found", interview_id)
            return
        status = record.get("report_status")
        candidates = list(self.scorers)
        if status == "failed":
            return
        if status == "ready":
            # Written by a fallback: only the better scorers that can run now are worth a try.
            names = [s.name for s in self.scorers]
            used = record.get("report_scorer")
            rank = names.index(used) if used in names else len(names)
            candidates = self._usable(self.scorers[:rank])
            if not (record.get("report_degraded") and self.upgrade_degraded and candidates):
                return
        attempts = int(record.get("report_attempts") or 0)
        while attempts < self.max_attempts:
            attempts += 1
            upgrading = record.get("report_status") == "ready"
            if not upgrading:
                await self._set(interview_id, report_status="generating", report_attempts=attempts,
                                report_next_retry_at=None)
            else:
                await self._set(interview_id, report_attempts=attempts)
            record = await self._load(interview_id) or record
            scorer, report, errors = await self._try_scorers(candidates, record)
            error_text = "; ".join(errors) or None
            if report is not None:
                better = self._usable(self.scorers[:self.scorers.index(scorer)])
                degraded = bool(better)
                report = dict(report, scorer=scorer.name)
                await self._set(interview_id, report=report, report_status="ready", report_scorer=scorer.name,
                                report_degraded=degraded, report_error=error_text,
                                report_ready_at=utcnow(), report_next_retry_at=None)
                record = dict(record, report_status="ready", report_degraded=degraded)
                # A fallback wrote it: try the better scorers again later, if allowed.
                if not (degraded and self.upgrade_degraded and attempts < self.max_attempts):
                    return
                candidates = better
            elif upgrading:
                await self._set(interview_id, report_error=error_text)
                if attempts >= self.max_attempts:
                    return
            else:
                final = attempts >= self.max_attempts
                fields = {"report_status": "failed" if final else "retrying", "report_error": error_text}
                if not final:
                    fields["report_next_retry_at"] = utcnow() + timedelta(seconds=self._delay(attempts))
                await self._set(interview_id, **fields)
                log.warning("report for %s: round %d failed: %s", interview_id, attempts, error_text)
                if final:
                    return
            await self.clock.sleep(self._delay(attempts))
