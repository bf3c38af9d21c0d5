"""The problem bank: its shape, and every problem's reference solutions (Python and JavaScript) pass
all cases through the real sandbox while the wrong solutions fail at least one hidden case."""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from core.interfaces import RunLimits
from phases.code import PROBLEMS_DIR, ProblemBank, ProblemBankError, judge, public_problem
from plugins.sandbox_bwrap import BubblewrapRunner

SOLUTIONS = Path(__file__).resolve().parent / "code_solutions"
BANK = ProblemBank.load()
ALL = sorted(BANK.by_id)
LIMITS = RunLimits(cpu_seconds=4, wall_seconds=15, memory_mb=256, max_processes=32, max_output_bytes=1 << 20)

pytestmark = pytest.mark.skipif(BubblewrapRunner({}).check() is not None, reason="bubblewrap cannot run here")


@pytest.fixture(scope="module")
def runner():
    return BubblewrapRunner({"max_concurrent": 2})


def test_bank_shape():
    assert set(BANK.by_position) == {"backend", "frontend", "pm", "qa", "algo"}
    for position, problems in BANK.by_position.items():
        assert len(problems) >= 4, position
        for p in problems:
            assert re.search(r"[\u4e00-\u9fff]", p["description"]) and re.search(r"[\u4e00-\u9fff]", p["input_format"])
            assert len(p["examples"]) >= 2 and len(p["hidden"]) >= 5
            for case in p["examples"] + p["hidden"]:
                assert case["output"].strip(), (p["id"], "empty expected output")
            # reference solutions live in the test tree only
            for name in ("correct.py", "correct.js", "wrong.py"):
                assert (SOLUTIONS / p["id"] / name).is_file(), (p["id"], name)
    shipped = "".join(path.read_text(encoding="utf-8") for path in PROBLEMS_DIR.glob("*.json"))
    assert "import sys" not in shipped and "readFileSync" not in shipped


def test_public_problem_hides_hidden_cases():
    p = BANK.by_id["backend-lru-cache"]
    pub = public_problem(p, ["python", "javascript"], 1200)
    text = json.dumps(pub, ensure_ascii=False)
    assert "hidden" not in pub and "tags" not in pub
    for case in p["hidden"]:
        if len(case["input"]) > 30:
            assert case["input"] not in text
    assert pub["time_limit_seconds"] == 1200 and len(pub["examples"]) == 2


def test_bank_rejects_bad_files(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"position_type": "backend", "problems": [
        {"id": "a", "title": "t", "description": "只有一个示例", "input_format": "i", "output_format": "o",
         "examples": [{"input": "1\n", "output": "1\n"}], "hidden": []}]}), encoding="utf-8")
    with pytest.raises(ProblemBankError, match="examples"):
        ProblemBank.load(tmp_path)
    (tmp_path / "x.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ProblemBankError):
        ProblemBank.load(tmp_path)


def test_choice_follows_position_and_resume():
    # every position type gets one of its own problems, stable per interview id
    for position, problems in BANK.by_position.items():
        ids = {p["id"] for p in problems}
        first = BANK.choose(position, {}, "interview-1")
        assert first["id"] in ids
        assert BANK.choose(position, {}, "interview-1")["id"] == first["id"]
    # resume skills steer the choice within the position
    assert BANK.choose("backend", {"skills": ["Redis", "Python"]}, "x")["id"] == "backend-lru-cache"
    assert BANK.choose("backend", {"skills": ["Kubernetes", "Docker"]}, "y")["id"] == "backend-service-order"
    assert BANK.choose("algo", {"projects": [{"name": "OpenCV 缺陷检测", "tech": ["opencv"]}]}, "z")["id"] == "algo-islands"
    assert BANK.choose("pm", {"skills": ["A/B 实验设计", "AB测试"]}, "w")["id"] == "pm-ab-test"
    # different interviews without resume hints spread over the problems
    assert len({BANK.choose("qa", {}, f"i{i}")["id"] for i in range(40)}) >= 3
    # an unknown position type falls back to backend problems
    assert BANK.choose("designer", {}, "q")["id"] in {p["id"] for p in BANK.by_position["backend"]}


async def _results(runner, problem, language, code):
    cases = problem["examples"] + problem["hidden"]
    outcomes = await asyncio.gather(*(runner.run(language, code, c["input"], LIMITS) for c in cases))
    return [judge(o, c["output"], LIMITS) for o, c in zip(outcomes, cases)], outcomes


@pytest.mark.parametrize("pid", ALL)
async def test_reference_solutions_pass_and_wrong_ones_fail(runner, pid):
    problem = BANK.by_id[pid]
    n_examples = len(problem["examples"])
    for lang, ext in (("python", "py"), ("javascript", "js")):
        code = (SOLUTIONS / pid / f"correct.{ext}").read_text(encoding="utf-8")
        results, outcomes = await _results(runner, problem, lang, code)
        failed = [(i, err, o.stderr[-300:]) for i, ((ok, err), o) in enumerate(zip(results, outcomes)) if not ok]
        assert not failed, (pid, lang, failed)
    checked_wrong = 0
    for lang, ext in (("python", "py"), ("javascript", "js")):
        path = SOLUTIONS / pid / f"wrong.{ext}"
        if not path.exists():
            continue
        results, _ = await _results(runner, problem, lang, path.read_text(encoding="utf-8"))
        hidden_failures = [err for ok, err in results[n_examples:] if not ok]
        assert hidden_failures, (pid, lang, "wrong solution passed every hidden case")
        checked_wrong += 1
    assert checked_wrong >= 1
