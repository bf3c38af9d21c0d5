"""LLM and report benchmark.

    .venv/bin/python bench/bench_llm.py            # heuristic scorer, fallback latencies
    .venv/bin/python bench/bench_llm.py --llama    # plus llama-cpp-python + Gemma 3 270M (slow on a busy CPU)

Prints: heuristic report time for a 10-question interview; how long the question plan takes to
fall back to the bank when the model server is down, returns garbage, or hangs (generation timeout
2 s); with --llama, wall time of question generation (3 questions), one follow-up and a 2-question
report against the local server.
"""
from __future__ import annotations

import argparse
import importlib.util  # noqa: F401  (core.plugins uses importlib.util without importing it)
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from core.clock import SystemClock  # noqa: E402
from core.interfaces import FollowUpRequest, Question, QuestionRequest  # noqa: E402
from core.plugins import collect, make_plugin_manager  # noqa: E402
from llm_support import LlamaServer, Reply, ScriptedServer, free_port, plugin_context, source_and_scorer  # noqa: E402
from phases.question import plan_questions  # noqa: E402
from plugins.scorer_heuristic import HeuristicScorer  # noqa: E402

RESUME = {"name": "张三", "skills": ["Python", "Django", "Redis", "MySQL"],
          "projects": [{"name": "订单系统", "description": "用 Django 和 Redis 实现高并发下单，接口延迟降低 40%"}]}
INTERVIEW = {"position_name": "后端开发工程师", "position_type": "backend", "company_name": "示例公司",
             "position_description": "负责后端开发", "position_requirements": "熟悉 Python/Django"}


def record(n: int = 10) -> dict:
    questions, transcript = [], []
    for i in range(1, n + 1):
        questions.append({"index": i, "text": f"第{i}题：请讲讲 Redis 缓存穿透、击穿和雪崩的区别以及你在订单系统中的做法",
                          "kind": "skill", "topic": "Redis", "reference_points": ["布隆过滤器", "互斥锁", "过期时间加随机值"]})
        transcript.append({"phase": "question", "question_index": i,
                           "text": "缓存穿透是查询不存在的数据，我们用布隆过滤器拦截；击穿是热点 key 过期，用互斥锁重建；"
                                   "雪崩是大量 key 同时过期，过期时间加随机值。" * (1 + i % 3)})
    return {"questions": questions, "transcript": transcript,
            "code": {"problem": {"title": "两数之和"}, "submissions": [{"language": "python", "passed": 7, "total": 8}]},
            "cheat_events": [{"kind": "tab_hidden", "started_at": 1.0, "ended_at": 3.0}]}


class Ctx:
    def __init__(self, sources):
        self.resume, self.interview, self.question_sources = RESUME, INTERVIEW, sources


async def fallback_ms(bank, kind: str) -> float:
    scripts = {"garbage": [Reply.ok("胡言乱语")], "hang": [Reply(200, b"{}", delay=60)]}
    if kind == "down":
        llm, _ = source_and_scorer(f"http://127.0.0.1:{free_port()}/v1")
        t0 = time.perf_counter()
        questions, source, _ = await plan_questions(Ctx([llm, bank]), 5, 2.0)
    else:
        async with ScriptedServer(scripts[kind]) as server:
            llm, _ = source_and_scorer(server.base_url, timeout_seconds=30)
            t0 = time.perf_counter()
            questions, source, _ = await plan_questions(Ctx([llm, bank]), 5, 2.0)
    assert source == "bank" and len(questions) == 5
    return (time.perf_counter() - t0) * 1000


async def main(args) -> None:
    print("Note: measured on a shared 2-core machine with other jobs running; treat as rough.")
    scorer = HeuristicScorer()
    rec = record()
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        await scorer.score(rec)
        times.append((time.perf_counter() - t0) * 1000)
    print(f"heuristic report, 10 questions: median {statistics.median(times):.2f} ms, "
          f"p95 {sorted(times)[int(len(times) * 0.95) - 1]:.2f} ms ({args.repeat} runs)")

    registries = collect(make_plugin_manager(load_entry_points=False, default_plugins=("plugins.question_bank",)))
    bank = registries["question_source"].get("bank").factory(plugin_context("bank", {}))
    await fallback_ms(bank, "down")          # warm-up: imports, first connection
    for kind in ("down", "garbage", "hang"):
        print(f"question plan falls back to the bank, model server {kind}: {await fallback_ms(bank, kind):.0f} ms "
              f"(generation timeout 2000 ms, 2 retries with 50 ms backoff)")

    if args.llama:
        tiny = {"json_mode": "json_object", "json_object_schema": True, "system_role": False,
                "schema_max_length": False, "require_chinese": False, "timeout_seconds": 900.0,
                "max_retries": 1, "temperature": 0.8, "max_tokens": 300, "question_max_chars": 60}
        with tempfile.TemporaryDirectory() as tmp:
            server = LlamaServer(threads=2).start(Path(tmp))
            try:
                source, llm = source_and_scorer(server.base_url, **tiny)
                t0 = time.perf_counter()
                qs = await source.generate(QuestionRequest(RESUME, INTERVIEW, 3))
                print(f"llama-cpp + Gemma 3 270M: 3 questions in {time.perf_counter() - t0:.1f} s ({len(qs)} returned)")
                t0 = time.perf_counter()
                fu = await source.follow_up(FollowUpRequest(RESUME, INTERVIEW, Question("你怎么用 Redis？", "project"),
                                                            "做缓存。", []))
                print(f"llama-cpp + Gemma 3 270M: follow-up in {time.perf_counter() - t0:.1f} s "
                      f"({'asked' if fu else 'none'})")
                t0 = time.perf_counter()
                await llm.score(record(2))
                print(f"llama-cpp + Gemma 3 270M: 2-question report in {time.perf_counter() - t0:.1f} s")
            finally:
                server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--llama", action="store_true", help="also time the local llama-cpp server")
    parser.add_argument("--repeat", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
