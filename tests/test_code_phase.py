"""The code phase, driven by a small recording PhaseContext (the real engine is exercised in
test_code_ws.py): problem choice and message, submissions through the real sandbox, per-case results,
one submission at a time, the deadline, resume and an unavailable sandbox."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from core import events
from core.clock import ManualClock
from core.events import CodeSubmit, EndAnswer, Tick
from core.interfaces import PluginContext
from core.timeutil import utcnow
from phases.code import TEXT_BUSY, TEXT_TIME_UP, CodePhaseFactory
from plugins.sandbox_bwrap import BubblewrapRunner

SOLUTIONS = Path(__file__).resolve().parent / "code_solutions"
pytestmark = pytest.mark.skipif(BubblewrapRunner({}).check() is not None, reason="bubblewrap cannot run here")

SETTINGS = {"time_allowed_seconds": 600, "cpu_seconds": 1, "wall_seconds": 2, "memory_mb": 128,
            "max_processes": 16, "max_output_bytes": 65536}


class RecordingCtx:
    """Implements core.phase.PhaseContext and records everything the phase does."""

    def __init__(self, runner, clock, position="backend", resume=None, state=None, interview_id="iv-1"):
        self.interview_id = interview_id
        self.interview = {"id": interview_id, "position_type": position, "position_name": "工程师"}
        self.resume = resume if resume is not None else {"skills": ["Redis", "Python"]}
        self.clock = clock
        self.timing = {}
        self.settings = dict(SETTINGS)
        self.state = state if state is not None else {}
        self.question_sources = []
        self.code_runner = runner
        self.sent: list[dict] = []
        self.current: dict | None = None
        self.stored: list[tuple[dict | None, dict | None]] = []
        self.saved: list[dict] = []
        self.tasks: list[asyncio.Task] = []
        self.finished = 0

    async def send(self, message):
        self.sent.append(message)

    async def say(self, text, **extra):
        msg = events.interview_message("code", text, **extra)
        self.current = msg
        self.sent.append(msg)

    async def save(self):
        self.saved.append(json.loads(json.dumps(self.state)))      # the state must be JSON-able

    async def record_answer(self, *a, **k):
        raise AssertionError("the code phase records no answers")

    async def record_question(self, *a, **k):
        raise AssertionError("the code phase records no questions")

    async def store(self, *, set_fields=None, push=None):
        json.dumps([set_fields, push], default=str)
        self.stored.append((set_fields, push))

    def set_asr_context(self, context):
        pass

    async def run_blocking(self, fn, *args):
        return fn(*args)

    def background(self, coro, name, finish_on_close=False):
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        return task

    async def finish(self):
        self.finished += 1

    # helpers
    def of_type(self, kind):
        return [m for m in self.sent if m["type"] == kind]

    async def settle(self, timeout=60):
        await asyncio.wait_for(asyncio.gather(*self.tasks), timeout)

    def submissions(self):
        return [push["code.submissions"] for _, push in self.stored if push and "code.submissions" in push]


@pytest.fixture(scope="module")
def runner():
    return BubblewrapRunner({"max_concurrent": 3})


def make_phase(settings=None):
    ctx = PluginContext("code", dict(SETTINGS, **(settings or {})), {}, Path("/tmp"), ManualClock())
    return CodePhaseFactory(ctx).create()


def solution(pid, name):
    return (SOLUTIONS / pid / name).read_text(encoding="utf-8")


async def test_enter_sends_the_problem_and_declares_the_transition(runner):
    from core.phase import transition_text
    from phases.question import QuestionPhase
    phase, ctx = make_phase(), RecordingCtx(runner, ManualClock())
    # the engine says the transition before on_enter: the question phase's closing + this opening
    assert transition_text(QuestionPhase(), phase) == "问答环节结束，下面进入代码题环节。"
    assert transition_text(QuestionPhase(), make_phase({"announce": False})) == ""
    assert phase.input == "code"
    await phase.on_enter(ctx)
    second = ctx.sent[0]
    assert second["phase"] == "code" and second["problem"]["id"] == "backend-lru-cache"
    problem = second["problem"]
    assert problem["title"] == "LRU 缓存" and len(problem["examples"]) == 2
    assert problem["languages"] == ["python", "javascript"] and problem["time_limit_seconds"] == 600
    assert "hidden" not in problem and "输入格式" in second["text"] and "LRU" in second["text"]
    assert ctx.current is second                              # what a reconnect gets again
    assert ctx.state["problem_id"] == "backend-lru-cache"
    assert ctx.state["deadline"] == ctx.clock.now() + 600 and ctx.saved
    assert ctx.stored[0][0]["code.problem"]["id"] == "backend-lru-cache"
    assert "hidden" not in json.dumps(ctx.stored[0][0], ensure_ascii=False, default=str)


@pytest.mark.parametrize("position,resume,expected", [
    ("frontend", {"skills": ["npm", "webpack"]}, "fe-semver-sort"),
    ("qa", {"skills": ["Jenkins", "pytest"]}, "qa-test-report"),
    ("pm", {"skills": ["AB测试"]}, "pm-ab-test"),
    ("algo", {"skills": ["OpenCV"]}, "algo-islands"),
])
async def test_problem_fits_position_and_resume(runner, position, resume, expected):
    phase, ctx = make_phase(), RecordingCtx(runner, ManualClock(), position=position, resume=resume)
    await phase.on_enter(ctx)
    assert ctx.state["problem_id"] == expected


async def test_correct_submission_passes_every_case(runner):
    phase, ctx = make_phase(), RecordingCtx(runner, ManualClock())
    await phase.on_enter(ctx)
    await phase.on_event(ctx, CodeSubmit("python", solution("backend-lru-cache", "correct.py")))
    await ctx.settle()
    (result,) = ctx.of_type("code_result")
    assert result["passed"] == result["total"] == 8 and result["submission_index"] == 1
    assert "全部通过" in result["text"]
    visible = [c for c in result["cases"] if c["visible"]]
    hidden = [c for c in result["cases"] if not c["visible"]]
    assert len(visible) == 2 and len(hidden) == 6
    assert visible[0]["expected"] == visible[0]["got"] == "1\n-1\n3\n1\n"
    for case in hidden:
        assert set(case) == {"index", "visible", "passed", "time_ms", "error"} and case["passed"]
    (sub,) = ctx.submissions()
    assert sub["passed"] == 8 and sub["language"] == "python" and "OrderedDict" in sub["code"]
    assert len(sub["cases"]) == 8
    final = [s for s, _ in ctx.stored if s and "code.final" in s][-1]["code.final"]
    assert final["passed"] == 8 and final["index"] == 1


async def test_wrong_submission_reports_expected_vs_got_for_visible_cases_only(runner):
    phase, ctx = make_phase(), RecordingCtx(runner, ManualClock())
    await phase.on_enter(ctx)
    # the wrong JS solution passes the examples but fails hidden cases; a broken one fails examples
    await phase.on_event(ctx, CodeSubmit("js", solution("backend-lru-cache", "wrong.js")))
    await ctx.settle()
    await phase.on_event(ctx, CodeSubmit("javascript", "console.log('42')"))
    await ctx.settle()
    first, second = ctx.of_type("code_result")
    assert 0 < first["passed"] < first["total"] and "隐藏用例" in first["text"]
    assert second["passed"] == 0 and second["submission_index"] == 2
    case = second["cases"][0]
    assert case["visible"] and not case["passed"] and case["got"] == "42\n" and case["expected"] == "1\n-1\n3\n1\n"
    assert case["error"] == "答案错误"
    hidden_failed = [c for c in second["cases"] if not c["visible"]]
    assert all(set(c) == {"index", "visible", "passed", "time_ms", "error"} for c in hidden_failed)
    assert [s["index"] for s in ctx.submissions()] == [1, 2]


async def test_runtime_error_shows_stderr_for_visible_cases_only(runner):
    phase, ctx = make_phase(), RecordingCtx(runner, ManualClock())
    await phase.on_enter(ctx)
    leak = "import sys\ndata = sys.stdin.read()\nraise ValueError('LEAK:' + data[:40])"
    await phase.on_event(ctx, CodeSubmit("python", leak))
    await ctx.settle()
    (result,) = ctx.of_type("code_result")
    assert result["passed"] == 0
    visible = [c for c in result["cases"] if c["visible"]]
    assert "LEAK:" in visible[0]["stderr"] and visible[0]["error"].startswith("运行错误")
    assert "LEAK" not in json.dumps([c for c in result["cases"] if not c["visible"]], ensure_ascii=False)


async def test_bad_language_and_concurrent_submission_are_refused(runner):
    phase, ctx = make_phase(), RecordingCtx(runner, ManualClock())
    await phase.on_enter(ctx)
    await phase.on_event(ctx, CodeSubmit("ruby", "puts 1"))
    (err,) = ctx.of_type("error")
    assert "不支持的语言" in err["text"] and "python" in err["text"]
    await phase.on_event(ctx, CodeSubmit("python", "import time\ntime.sleep(0.5)\nprint(1)"))
    await phase.on_event(ctx, CodeSubmit("python", "print(2)"))
    assert ctx.of_type("error")[-1]["text"] == TEXT_BUSY
    await ctx.settle()
    assert len(ctx.of_type("code_result")) == 1 and len(ctx.submissions()) == 1
    await phase.on_event(ctx, CodeSubmit("python", "print(3)"))       # free again
    await ctx.settle()
    assert len(ctx.of_type("code_result")) == 2


async def test_hostile_submission_fails_within_bounded_time(runner):
    phase, ctx = make_phase(), RecordingCtx(runner, ManualClock())
    await phase.on_enter(ctx)
    started = time.monotonic()
    await phase.on_event(ctx, CodeSubmit("python", "import os\nwhile True:\n    try:\n        os.fork()\n"
                                                   "    except OSError:\n        pass"))
    await ctx.settle()
    elapsed = time.monotonic() - started
    (result,) = ctx.of_type("code_result")
    assert result["passed"] == 0 and all(c["error"].startswith("超时") for c in result["cases"])
    # 8 cases, 3 at a time, 2 s wall each (+ start-up): bounded
    assert elapsed < 3 * 2 + 6


async def test_deadline_waits_for_submission_in_flight_then_finishes(runner):
    clock = ManualClock()
    phase, ctx = make_phase(), RecordingCtx(runner, clock)
    await phase.on_enter(ctx)
    await phase.on_event(ctx, Tick(clock.now()))
    assert ctx.finished == 0
    await phase.on_event(ctx, CodeSubmit("python", "import time\ntime.sleep(0.3)\nprint(-1)"))
    await clock.advance(601)
    await phase.on_event(ctx, Tick(clock.now()))
    assert ctx.finished == 0                  # the submission in flight completes first
    await ctx.settle()
    assert len(ctx.of_type("code_result")) == 1 and len(ctx.submissions()) == 1
    await phase.on_event(ctx, Tick(clock.now()))
    assert ctx.finished == 1 and ctx.state["time_up"]
    await phase.on_event(ctx, CodeSubmit("python", "print(1)"))
    assert ctx.of_type("error")[-1]["text"] == TEXT_TIME_UP
    await phase.on_event(ctx, Tick(clock.now()))
    assert ctx.finished == 1                  # finish is requested once
    await phase.on_exit(ctx)
    assert ctx.stored[-1][0]["code.submission_count"] == 1


async def test_resume_keeps_problem_and_deadline(runner):
    clock = ManualClock()
    phase, ctx = make_phase(), RecordingCtx(runner, clock, interview_id="iv-resume")
    await phase.on_enter(ctx)
    problem_id, deadline = ctx.state["problem_id"], ctx.state["deadline"]
    # a new connection: a fresh Phase object with the persisted state; nothing is sent again
    phase2 = make_phase()
    ctx2 = RecordingCtx(runner, clock, state=json.loads(json.dumps(ctx.state)), interview_id="iv-resume")
    await clock.advance(100)
    await phase2.on_resume(ctx2)
    assert ctx2.sent == [] and ctx2.finished == 0
    assert ctx2.state["problem_id"] == problem_id and ctx2.state["deadline"] == deadline
    await phase2.on_event(ctx2, CodeSubmit("python", solution(problem_id, "correct.py")))
    await ctx2.settle()
    assert ctx2.of_type("code_result")[0]["passed"] == ctx2.of_type("code_result")[0]["total"]
    # resuming after the time allowed has run out finishes the phase at once
    phase3 = make_phase()
    ctx3 = RecordingCtx(runner, clock, state=json.loads(json.dumps(ctx2.state)), interview_id="iv-resume")
    await clock.advance(600)
    await phase3.on_resume(ctx3)
    assert ctx3.finished == 1 and ctx3.sent == []


async def test_a_deadline_set_in_another_process_runs_on_wall_time(runner):
    """A restart or another instance resumes the phase: the stored deadline is in the other
    process's monotonic seconds, so it is set again from the stored start of the phase."""
    clock = ManualClock(start=5.0)           # this process's monotonic clock: nothing like the other's
    phase, ctx = make_phase(), RecordingCtx(runner, ManualClock(start=90000.0), interview_id="iv-moved")
    await phase.on_enter(ctx)
    state = json.loads(json.dumps(ctx.state))
    state["clock"] = "another-process"
    ctx2 = RecordingCtx(runner, clock, state=dict(state), interview_id="iv-moved")
    ctx2.interview["code"] = {"started_at": utcnow() - timedelta(seconds=100)}
    await make_phase().on_resume(ctx2)
    assert ctx2.finished == 0
    assert abs(ctx2.state["deadline"] - (clock.now() + 500)) < 5     # 600 s allowed, 100 s gone
    await clock.advance(510)
    phase2 = make_phase()
    await phase2.on_resume(ctx2)             # the same process again: its deadline stands
    assert ctx2.finished == 1
    # started longer ago than the time allowed: the phase ends at once
    ctx3 = RecordingCtx(runner, ManualClock(start=1.0), state=dict(state), interview_id="iv-moved")
    ctx3.interview["code"] = {"started_at": utcnow() - timedelta(seconds=700)}
    await make_phase().on_resume(ctx3)
    assert ctx3.finished == 1 and ctx3.sent == []


async def test_unavailable_sandbox_keeps_the_code_and_says_so(tmp_path):
    broken = BubblewrapRunner({"bwrap": str(tmp_path / "missing-bwrap")})
    phase, ctx = make_phase(), RecordingCtx(broken, ManualClock())
    await phase.on_enter(ctx)
    assert "代码沙箱暂不可用" in ctx.of_type("error")[0]["text"]
    await phase.on_event(ctx, CodeSubmit("python", "print(1)"))
    await ctx.settle()
    (result,) = ctx.of_type("code_result")
    assert result["passed"] == 0 and "沙箱" in result["text"]
    (sub,) = ctx.submissions()
    assert sub["code"] == "print(1)" and "sandbox unavailable" in sub["error"]


async def test_end_answer_finishes_the_code_phase_early(runner):
    clock = ManualClock()
    phase, ctx = make_phase(), RecordingCtx(runner, clock)
    await phase.on_enter(ctx)
    await phase.on_event(ctx, CodeSubmit("python", "import time\ntime.sleep(0.3)\nprint(-1)"))
    await phase.on_event(ctx, EndAnswer())
    assert ctx.finished == 0                  # the submission in flight completes first
    await ctx.settle()
    await phase.on_event(ctx, Tick(clock.now()))
    assert ctx.finished == 1 and len(ctx.submissions()) == 1
