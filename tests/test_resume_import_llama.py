"""The LLM path of the resume import against a real OpenAI-compatible server: llama-cpp-python's
server with Gemma 3 270M (tests/llm_support.py), schema-constrained JSON. The model is tiny: the
structure of the draft is asserted (it came from the model, in the resume shape the API saves),
never its quality."""
from __future__ import annotations

import time

import pytest

from core.clock import SystemClock
from docimport.resume_llm import parse_resume
from llm_support import settings
from plugins.llm import LlmClient

pytestmark = pytest.mark.asyncio

TEXT = "张伟\n求职意向：后端开发工程师\n教育经历\n2016.09 - 2020.06 浙江大学 计算机 本科\n专业技能\nJava、Redis\n"
TINY = {"json_mode": "json_object", "json_object_schema": True, "system_role": False, "schema_max_length": False,
        "require_chinese": False, "timeout_seconds": 500.0, "max_retries": 2, "backoff_seconds": 0.5,
        "temperature": 0.2}


async def test_resume_draft_from_a_real_model(llama):
    client = LlmClient(settings(llama.base_url, **TINY), SystemClock(), env={})
    try:
        started = time.monotonic()
        draft, source, warnings = await parse_resume(TEXT, client, file_name="zw.pdf", timeout=900,
                                                     max_tokens=600)
        print(f"llama resume import: {time.monotonic() - started:.0f} s, source {source}, draft {draft}")
    finally:
        await client.aclose()
    assert source == "llm", warnings
    assert set(draft) == {"resume_name", "name", "expected_position", "education", "work_experience",
                          "projects", "skills", "self_evaluation"}
    assert draft["resume_name"] == "zw"
    for key in ("name", "expected_position", "self_evaluation"):
        assert isinstance(draft[key], str)
    for key, fields in (("education", {"school", "major", "degree", "start", "end"}),
                        ("work_experience", {"company", "position", "start", "end", "description"}),
                        ("projects", {"name", "role", "tech_stack", "description"})):
        assert isinstance(draft[key], list)
        for item in draft[key]:
            assert set(item) == fields and all(isinstance(v, str) for v in item.values())
    assert isinstance(draft["skills"], list) and all(isinstance(s, str) and s for s in draft["skills"])
    # it passes the API's own resume checks, so it can be saved as it is
    from api.resumes import parse_resume as api_check
    api_check(dict(draft), partial=False)


async def test_job_description_from_a_real_model(llama):
    from docimport.jd import POSITION_TYPES, parse_jd_text
    client = LlmClient(settings(llama.base_url, **TINY), SystemClock(), env={})
    try:
        fields, source, warnings = await parse_jd_text(
            "后端开发工程师\n岗位职责：负责订单系统开发\n任职要求：熟悉Java和Redis", client, timeout=900, max_tokens=300)
    finally:
        await client.aclose()
    print(f"llama job description: source {source}, {fields}, {warnings}")
    assert set(fields) == {"position_name", "company_name", "position_description", "position_requirements",
                           "position_type"}
    assert fields["position_type"] in POSITION_TYPES and all(isinstance(v, str) for v in fields.values())
    if source == "rules":
        # the tiny model may leave both texts empty; then the rules answer, and say so
        assert warnings and warnings[0].startswith("大模型")
    else:
        assert source == "llm" and fields["position_name"].strip()
