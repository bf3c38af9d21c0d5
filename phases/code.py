"""The code phase: a coding problem fitted to the position, run against hidden cases in a sandbox.

On entry the phase says "问答环节结束，下面进入代码题环节。" and then sends the problem as
``interview_message(phase=code, text=<statement>, problem={...})``. The candidate submits with
``code_submit`` as often as they like until the time allowed runs out; each submission runs every
case (visible examples and hidden cases) through ``ctx.code_runner`` and is answered with a
``code_result``. Per case the client sees passed/time/error; expected vs got only for visible cases,
never the hidden inputs or outputs. Every submission is stored on the interview
(``code.submissions``; the latest is also ``code.final`` and feeds the report).

A submission runs in the background (the session keeps processing audio and ticks); one session
never runs two submissions at once (the second is refused with "上一次提交仍在运行"). When the time
is up the phase finishes at the next tick, after a submission in flight has completed.

Settings (``[plugins.code]`` in plugins.toml): ``time_allowed_seconds`` (1200), ``problems_dir``,
``cpu_seconds``, ``wall_seconds``, ``memory_mb``, ``max_processes``, ``max_output_bytes`` (per
case; a problem may override ``cpu_seconds``/``memory_mb``), ``announce`` (say the guide's
transition text first, true).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from pathlib import Path
from typing import Any

from core import events
from core.events import CodeSubmit, EndAnswer, Tick
from core.hookspecs import hookimpl
from core.interfaces import PluginContext, RunLimits, RunOutcome
from core.phase import Phase, PhaseFactory
from core.settings import Setting
from core.timeutil import as_datetime, utcnow

log = logging.getLogger("mianshi.code")

PROBLEMS_DIR = Path(__file__).resolve().parent / "problems"
POSITION_TYPES = events.POSITION_TYPES
LANGUAGE_ALIASES = {
    "python": "python", "python3": "python", "py": "python",
    "javascript": "javascript", "js": "javascript", "node": "javascript", "nodejs": "javascript",
}
LANGUAGE_LABELS = {"python": "Python 3", "javascript": "JavaScript (Node.js)"}
TEXT_BUSY = "上一次提交仍在运行，请等待结果后再提交"
TEXT_TIME_UP = "代码题时间已到，不再接受提交"
MAX_SHOWN_CHARS = 2000
CLOCK_ID = uuid.uuid4().hex        # whose clock a stored deadline is in: this process's


class ProblemBankError(ValueError):
    pass


# --- the problem bank ----------------------------------------------------------------------------
def _check_problem(p: dict, where: str) -> None:
    for key in ("id", "title", "description", "input_format", "output_format"):
        if not isinstance(p.get(key), str) or not p[key].strip():
            raise ProblemBankError(f"{where}: problem field {key!r} missing")
    if not re.search(r"[\u4e00-\u9fff]", p["description"]):
        raise ProblemBankError(f"{where}: {p['id']} description must be in Chinese")
    for kind, minimum in (("examples", 2), ("hidden", 5)):
        cases = p.get(kind)
        if not isinstance(cases, list) or len(cases) < minimum:
            raise ProblemBankError(f"{where}: {p['id']} needs at least {minimum} {kind} cases")
        for case in cases:
            if not isinstance(case.get("input"), str) or not isinstance(case.get("output"), str):
                raise ProblemBankError(f"{where}: {p['id']} has a case without input/output text")


class ProblemBank:
    def __init__(self, problems: dict[str, list[dict]]) -> None:
        self.by_position = problems
        self.by_id = {p["id"]: p for items in problems.values() for p in items}

    @classmethod
    def load(cls, directory: str | Path = PROBLEMS_DIR) -> "ProblemBank":
        directory = Path(directory)
        problems: dict[str, list[dict]] = {}
        seen: set[str] = set()
        for path in sorted(directory.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ProblemBankError(f"{path}: {exc}") from None
            position = data.get("position_type")
            if position not in POSITION_TYPES:
                raise ProblemBankError(f"{path}: position_type must be one of {POSITION_TYPES}")
            for p in data.get("problems", []):
                _check_problem(p, path.name)
                if p["id"] in seen:
                    raise ProblemBankError(f"{path}: duplicate problem id {p['id']}")
                seen.add(p["id"])
                p.setdefault("position_type", position)
                p.setdefault("tags", [])
                problems.setdefault(position, []).append(p)
        if not problems:
            raise ProblemBankError(f"no problems found in {directory}")
        return cls(problems)

    def choose(self, position_type: str, resume: dict | None, seed: str) -> dict:
        """The problem for this position; among them, those whose tags match the resume most,
        then a stable pick by ``seed`` (the interview id), so a reconnect gets the same one."""
        candidates = self.by_position.get(position_type) or self.by_position.get("backend") \
            or next(iter(self.by_position.values()))
        text = _resume_text(resume or {})
        scored = [(sum(1 for tag in p.get("tags", []) if tag.lower() in text), p) for p in candidates]
        best = max(score for score, _ in scored)
        top = [p for score, p in scored if score == best]
        digest = int(hashlib.sha256(seed.encode("utf-8")).hexdigest(), 16)
        return top[digest % len(top)]


def _resume_text(resume: dict) -> str:
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
    for key in ("skills", "projects", "work_experience", "expected_position", "self_evaluation"):
        walk(resume.get(key))
    return " ".join(parts).lower()


def public_problem(problem: dict, languages: list[str], time_allowed: float) -> dict:
    """What the client may see: never the hidden cases."""
    return {
        "id": problem["id"],
        "title": problem["title"],
        "description": problem["description"],
        "input_format": problem["input_format"],
        "output_format": problem["output_format"],
        "examples": [{k: v for k, v in ex.items() if k in ("input", "output", "explanation")}
                     for ex in problem["examples"]],
        "languages": languages,
        "time_limit_seconds": int(time_allowed),
        "case_cpu_seconds": problem.get("cpu_seconds"),
        "difficulty": problem.get("difficulty", ""),
    }


def statement_text(pub: dict) -> str:
    lines = [f"代码题：{pub['title']}", "", pub["description"], "", f"输入格式：{pub['input_format']}",
             f"输出格式：{pub['output_format']}"]
    for i, ex in enumerate(pub["examples"], 1):
        lines += ["", f"示例 {i} 输入：", ex["input"].rstrip("\n"), f"示例 {i} 输出：", ex["output"].rstrip("\n")]
        if ex.get("explanation"):
            lines.append(f"说明：{ex['explanation']}")
    langs = "、".join(LANGUAGE_LABELS.get(lang, lang) for lang in pub["languages"])
    minutes = max(1, round(pub["time_limit_seconds"] / 60))
    lines += ["", f"可用语言：{langs}。程序从标准输入读取，向标准输出打印结果。"
                  f"限时 {minutes} 分钟，时间内可多次提交，以最后一次提交为准。"]
    return "\n".join(lines)


def normalize_output(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _clip(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"…（共 {len(text)} 字符，已截断）"


def judge(outcome: RunOutcome, expected: str, limits: RunLimits) -> tuple[bool, str]:
    """(passed, error) for one case; error is a short Chinese category, "" when it passed."""
    if outcome.error:
        return False, "沙箱错误"
    if outcome.timed_out:
        return False, f"超时（CPU {limits.cpu_seconds:g} 秒 / 墙钟 {limits.wall_seconds:g} 秒）"
    if outcome.output_truncated:
        return False, f"输出超限（上限 {limits.max_output_bytes} 字节）"
    if outcome.memory_exceeded:
        return False, f"内存超限（{limits.memory_mb} MB）"
    if outcome.exit_code != 0:
        return False, f"运行错误（退出码 {outcome.exit_code}）"
    if normalize_output(outcome.stdout) != normalize_output(expected):
        return False, "答案错误"
    return True, ""


# --- the phase -----------------------------------------------------------------------------------
OPENING = "下面进入代码题环节。"      # after the questions: the guide's "问答环节结束，下面进入代码题环节。"


class CodePhase(Phase):
    name = "code"
    title = "代码题"
    input = "code"
    opening = OPENING
    closing = "代码题环节结束"

    def __init__(self, bank: ProblemBank, settings: dict) -> None:
        super().__init__(settings)
        self.bank = bank
        if not settings.get("announce", True):
            self.opening = ""
        self.problem: dict | None = None
        self._running: asyncio.Future | None = None

    # settings
    def _time_allowed(self) -> float:
        return float(self.settings.get("time_allowed_seconds", 1200))

    def _limits(self) -> RunLimits:
        s, p = self.settings, self.problem or {}
        return RunLimits(cpu_seconds=float(p.get("cpu_seconds", s.get("cpu_seconds", 2.0))),
                         wall_seconds=float(s.get("wall_seconds", 5.0)),
                         memory_mb=int(p.get("memory_mb", s.get("memory_mb", 256))),
                         max_processes=int(s.get("max_processes", 32)),
                         max_output_bytes=int(s.get("max_output_bytes", 65536)))

    def _languages(self, ctx) -> list[str]:
        runner_langs = list(getattr(ctx.code_runner, "languages", ()) or ("python", "javascript"))
        wanted = self.problem.get("languages") if self.problem else None
        return [lang for lang in runner_langs if not wanted or lang in wanted]

    def _sandbox_problem(self, ctx) -> str | None:
        if ctx.code_runner is None:
            return "未配置代码沙箱"
        try:
            return ctx.code_runner.check()
        except Exception as exc:  # a broken runner must not break the interview
            return str(exc)

    # lifecycle
    async def on_enter(self, ctx) -> None:
        problem = None
        if ctx.state.get("problem_id"):
            problem = self.bank.by_id.get(ctx.state["problem_id"])
        if problem is None:
            position = str(ctx.interview.get("position_type") or "backend")
            problem = self.bank.choose(position, ctx.resume, seed=str(ctx.interview_id))
        self.problem = problem
        pub = public_problem(problem, self._languages(ctx), self._time_allowed())
        deadline = ctx.clock.now() + self._time_allowed()
        ctx.state.update({"problem_id": problem["id"], "deadline": deadline, "clock": CLOCK_ID,
                          "submissions": int(ctx.state.get("submissions", 0))})
        await ctx.store(set_fields={"code.problem": pub, "code.started_at": utcnow()})
        await ctx.save()
        await ctx.say(statement_text(pub), problem=pub)
        trouble = self._sandbox_problem(ctx)
        if trouble:
            log.error("interview %s: code sandbox unavailable: %s", ctx.interview_id, trouble)
            await ctx.send(events.error("代码沙箱暂不可用，提交的代码会被保存但无法运行", field="code"))

    async def on_resume(self, ctx) -> None:
        self.problem = self.bank.by_id.get(ctx.state.get("problem_id", ""))
        if self.problem is None:        # state lost or the bank changed: start the phase over
            ctx.state.pop("problem_id", None)
            await self.on_enter(ctx)
            return
        self._carry_deadline(ctx)
        await self._check_deadline(ctx)

    def _carry_deadline(self, ctx) -> None:
        """The deadline is in the clock's (monotonic) seconds, which mean nothing in another process
        (a restart, another instance): there it is set again from the stored start of the phase, so
        the time allowed runs on wall time across processes."""
        if ctx.state.get("clock") == CLOCK_ID:
            return
        started = as_datetime((ctx.interview.get("code") or {}).get("started_at"))
        if started is None:
            return
        left = self._time_allowed() - (utcnow() - started).total_seconds()
        ctx.state.update({"deadline": ctx.clock.now() + left, "clock": CLOCK_ID})

    async def on_exit(self, ctx) -> None:
        final = ctx.state.get("final")
        await ctx.store(set_fields={"code.finished_at": utcnow(),
                                    "code.submission_count": int(ctx.state.get("submissions", 0)),
                                    "code.final_summary": final})

    async def on_event(self, ctx, event) -> None:
        if isinstance(event, Tick):
            await self._check_deadline(ctx)
        elif isinstance(event, CodeSubmit):
            await self._submit(ctx, event)
        elif isinstance(event, EndAnswer):
            # "回答完毕" in the code phase: the candidate is done before the time is up
            ctx.state["done_requested"] = True
            await ctx.save()
            await self._check_deadline(ctx)

    async def _check_deadline(self, ctx) -> None:
        deadline = ctx.state.get("deadline")
        if not ctx.state.get("done_requested") and (deadline is None or ctx.clock.now() < deadline):
            return
        if self._running is not None and not self._running.done():
            return                      # the submission in flight completes first
        if not ctx.state.get("time_up"):
            ctx.state["time_up"] = True
            await ctx.save()
            await ctx.finish()

    # submissions
    async def _submit(self, ctx, event: CodeSubmit) -> None:
        if self.problem is None:
            await ctx.send(events.error("代码题尚未开始", field="code"))
            return
        if ctx.state.get("deadline") is not None and ctx.clock.now() >= ctx.state["deadline"]:
            await ctx.send(events.error(TEXT_TIME_UP, field="code"))
            return
        if self._running is not None and not self._running.done():
            await ctx.send(events.error(TEXT_BUSY, field="code"))
            return
        language = LANGUAGE_ALIASES.get(event.language.strip().lower())
        allowed = self._languages(ctx)
        if language not in allowed:
            await ctx.send(events.error(
                f"不支持的语言：{event.language[:40]}，可用：{'、'.join(allowed)}", field="language"))
            return
        ctx.state["submissions"] = index = int(ctx.state.get("submissions", 0)) + 1
        await ctx.save()
        done = asyncio.get_running_loop().create_future()
        self._running = done

        async def job() -> None:
            try:
                await self._evaluate(ctx, index, language, event.code)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("interview %s: submission %d failed", ctx.interview_id, index)
                await ctx.send(events.error("代码评测出错，请重新提交", field="code"))
            finally:
                if not done.done():
                    done.set_result(None)
        ctx.background(job(), f"code-submission-{index}", finish_on_close=True)

    async def _evaluate(self, ctx, index: int, language: str, code: str) -> None:
        problem = self.problem
        assert problem is not None
        limits = self._limits()
        trouble = self._sandbox_problem(ctx)
        submitted_at = utcnow()
        if trouble:
            record = {"index": index, "language": language, "code": code, "passed": 0,
                      "total": len(problem["examples"]) + len(problem["hidden"]), "cases": [],
                      "error": f"sandbox unavailable: {trouble}", "submitted_at": submitted_at,
                      "problem_id": problem["id"]}
            await ctx.store(set_fields={"code.final": _summary(record)}, push={"code.submissions": record})
            ctx.state["final"] = _summary(record, state=True)
            await ctx.save()
            await ctx.send(events.code_result(0, record["total"], [], "代码沙箱暂不可用，代码已保存但未能运行",
                                              submission_index=index))
            return
        cases = [(c, True) for c in problem["examples"]] + [(c, False) for c in problem["hidden"]]
        outcomes = await asyncio.gather(*(ctx.code_runner.run(language, code, c["input"], limits)
                                          for c, _ in cases))
        client_cases, stored_cases = [], []
        passed = 0
        for i, ((case, visible), outcome) in enumerate(zip(cases, outcomes), 1):
            ok, err = judge(outcome, case["output"], limits)
            passed += ok
            base = {"index": i, "visible": visible, "passed": ok, "time_ms": outcome.wall_ms, "error": err}
            if visible:
                shown = dict(base, input=case["input"], expected=case["output"], got=_clip(outcome.stdout))
                if not ok and outcome.stderr:
                    shown["stderr"] = _clip(outcome.stderr[-MAX_SHOWN_CHARS:])
                client_cases.append(shown)
            else:
                client_cases.append(base)  # hidden: no input, expected, output or stderr
            stored_cases.append(dict(base, exit_code=outcome.exit_code, timed_out=outcome.timed_out,
                                     memory_exceeded=outcome.memory_exceeded,
                                     output_truncated=outcome.output_truncated,
                                     stderr_tail=outcome.stderr[-500:]))
        total = len(cases)
        visible_total = len(problem["examples"])
        visible_passed = sum(1 for c in client_cases if c["visible"] and c["passed"])
        if passed == total:
            text = f"全部通过：{passed}/{total} 个用例（含 {total - visible_total} 个隐藏用例）。"
        else:
            text = (f"通过 {passed}/{total} 个用例：示例 {visible_passed}/{visible_total}，"
                    f"隐藏用例 {passed - visible_passed}/{total - visible_total}。")
        record = {"index": index, "language": language, "code": code, "passed": passed, "total": total,
                  "cases": stored_cases, "submitted_at": submitted_at, "problem_id": problem["id"],
                  "max_time_ms": max((o.wall_ms for o in outcomes), default=0.0)}
        await ctx.store(set_fields={"code.final": _summary(record)}, push={"code.submissions": record})
        ctx.state["final"] = _summary(record, state=True)
        await ctx.save()
        await ctx.send(events.code_result(passed, total, client_cases, text, submission_index=index))


def _summary(record: dict, state: bool = False) -> dict:
    """The latest submission in brief; ``state``: for the JSON-able phase state (no time: the
    stored ``code.final`` has it)."""
    keys = ("index", "language", "passed", "total", "problem_id", *(() if state else ("submitted_at",)), "error")
    return {k: record.get(k) for k in keys if record.get(k) is not None}


class CodePhaseFactory(PhaseFactory):
    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.settings = dict(ctx.settings or {})
        directory = self.settings.get("problems_dir")
        path = Path(directory) if directory else PROBLEMS_DIR
        if directory and not path.is_absolute():
            path = Path(__file__).resolve().parent.parent / path
        self.bank = ProblemBank.load(path)

    def create(self) -> CodePhase:
        return CodePhase(self.bank, self.settings)

    def report_section(self, record: dict) -> dict | None:
        return {"type": "code", "title": CodePhase.title, "summary": code_section(record)}


def code_section(record: dict) -> dict:
    """The code phase's outcome: the problem, how many submissions, and the FINAL submission, which
    is what the report judges (the best one is shown for information)."""
    code = record.get("code") or {}
    problem = code.get("problem")
    if isinstance(problem, dict):
        title = problem.get("title") or problem.get("name") or problem.get("id") or ""
    else:
        title = str(problem or "")
    subs = [s for s in code.get("submissions") or [] if isinstance(s, dict)]
    out: dict = {"problem_title": title, "attempted": bool(subs), "submissions": len(subs)}
    evidence = [submission_evidence(s, pos) for pos, s in enumerate(subs, 1)]
    if subs:
        def ratio(s):
            total = s.get("total") or 0
            return (s.get("passed") or 0) / total if total else 0.0
        final = code.get("final") if isinstance(code.get("final"), dict) else subs[-1]
        best = max(subs, key=ratio)
        out.update(final_passed=int(final.get("passed") or 0), best_passed=int(best.get("passed") or 0),
                   total=int(final.get("total") or 0), language=final.get("language") or "",
                   all_passed=bool(final.get("total")) and final.get("passed") == final.get("total"))
        out["score"] = round(10 * ratio(final), 1)
        out["final_id"] = f"submission-{final.get('index') or len(subs)}"
        out["best_id"] = f"submission-{best.get('index') or subs.index(best) + 1}"
    return {**out, "evidence": evidence} if evidence else out


def submission_evidence(sub: dict, position: int) -> dict:
    """One submission as report evidence: its code and per-case results (hidden cases without
    their data, as the candidate saw them)."""
    index = sub.get("index") or position
    cases = [{k: c.get(k) for k in ("index", "visible", "passed", "time_ms", "error")}
             for c in sub.get("cases") or [] if isinstance(c, dict)]
    return {"id": f"submission-{index}", "type": "submission", "index": index,
            "language": sub.get("language") or "", "code": sub.get("code") or "",
            "passed": int(sub.get("passed") or 0), "total": int(sub.get("total") or 0),
            "error": sub.get("error"), "submitted_at": sub.get("submitted_at"), "cases": cases}


SETTINGS = {
    "time_allowed_seconds": Setting(1200.0, minimum=1),
    "cpu_seconds": Setting(2.0, minimum=0.1),            # per test case (a problem may set its own)
    "wall_seconds": Setting(5.0, minimum=0.1),
    "memory_mb": Setting(256, minimum=16),
    "max_processes": Setting(32, minimum=1),
    "max_output_bytes": Setting(65536, minimum=1024),
    "announce": True,
    "problems_dir": Setting(None, str),                  # default: phases/problems
}

@hookimpl
def register_phases(register):
    register("code", CodePhaseFactory, settings=SETTINGS)
