"""A resume draft from the configured LLM (plugins/llm.py's client: schema-checked JSON, retries),
with the rule-based parser as the fallback on any failure.

The file's text is handed to the model only as data (``{"resume_text": ...}`` inside the client's
``<data>`` block, after the preamble saying nothing in it is an instruction); the prompt is
``prompts/resume_import.<version>.md``. What comes back is checked against ``resume_schema()``,
then normalised (strings trimmed and clipped, dates as 2016.09 / 至今, empty entries dropped)."""
from __future__ import annotations

import asyncio
import logging

from docimport.resume_rules import default_resume_name, norm_date, parse_resume_text

log = logging.getLogger("mianshi.docimport")

_STR = {"type": "string", "maxLength": 200}
_LONG = {"type": "string", "maxLength": 2000}
ENTRY_FIELDS = {
    "education": ("school", "major", "degree", "start", "end"),
    "work_experience": ("company", "position", "start", "end", "description"),
    "projects": ("name", "role", "tech_stack", "description"),
}
_LONG_FIELDS = {"description"}


def resume_schema() -> dict:
    def entries(fields):
        return {"type": "array", "maxItems": 20,
                "items": {"type": "object",
                          "properties": {f: (_LONG if f in _LONG_FIELDS else _STR) for f in fields},
                          "required": list(fields), "additionalProperties": False}}
    return {"type": "object",
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 50},
                           "expected_position": {"type": "string", "maxLength": 100},
                           "education": entries(ENTRY_FIELDS["education"]),
                           "work_experience": entries(ENTRY_FIELDS["work_experience"]),
                           "projects": entries(ENTRY_FIELDS["projects"]),
                           "skills": {"type": "array", "maxItems": 60, "items": {"type": "string", "maxLength": 40}},
                           "self_evaluation": {"type": "string", "maxLength": 2000}},
            "required": ["name", "expected_position", "education", "work_experience", "projects", "skills",
                         "self_evaluation"],
            "additionalProperties": False}


def _clip(value, limit: int) -> str:
    return str(value or "").strip()[:limit]


def normalise_llm_resume(obj: dict, file_name: str = "") -> dict:
    out = {"resume_name": "", "name": _clip(obj.get("name"), 100),
           "expected_position": _clip(obj.get("expected_position"), 100)}
    for section, fields in ENTRY_FIELDS.items():
        items = []
        for raw in obj.get(section) or []:
            item = {f: _clip(raw.get(f), 5000 if f in _LONG_FIELDS else 200) for f in fields}
            for f in ("start", "end"):
                if item.get(f):
                    item[f] = norm_date(item[f])
            if any(item.values()):
                items.append(item)
        out[section] = items[:100]
    skills, seen = [], set()
    for skill in obj.get("skills") or []:
        skill = _clip(skill, 60)
        if skill and skill.lower() not in seen:
            seen.add(skill.lower())
            skills.append(skill)
    out["skills"] = skills[:100]
    out["self_evaluation"] = _clip(obj.get("self_evaluation"), 5000)
    out["resume_name"] = default_resume_name(out, file_name)
    return out


def _check(obj: dict) -> list[str]:
    draft = normalise_llm_resume(obj)
    filled = [k for k in ("name", "expected_position", "self_evaluation", "education", "work_experience",
                          "projects", "skills") if draft.get(k)]
    return [] if filled else ["$: every field is empty"]


async def parse_resume(text: str, client=None, *, file_name: str = "", timeout: float = 90.0,
                       max_chars: int = 12000, max_tokens: int = 3000) -> tuple[dict, str, list[str]]:
    """(draft, "llm" | "rules", warnings). With no usable client, or when the model fails in any
    way (not configured, timeout, invalid or empty reply), the rule-based parser answers."""
    warnings: list[str] = []
    if client is not None and getattr(client, "configured", False):
        try:
            obj = await asyncio.wait_for(
                client.chat_json("resume_import", {"resume_text": text[:max_chars]}, resume_schema(),
                                 check=_check, max_tokens=max_tokens),
                timeout)
            draft = normalise_llm_resume(obj, file_name)
            if len(text) > max_chars:
                warnings.append(f"简历文字超过 {max_chars} 字，只解析了前 {max_chars} 字")
            return draft, "llm", warnings + _missing(draft)
        except asyncio.CancelledError:
            raise
        except Exception as exc:           # any failure of the model: the rules answer instead
            log.info("resume import: LLM failed, using the rule-based parser: %s", exc)
            warnings.append("大模型解析失败，已改用规则解析")
    # in a thread: cheap for a resume (~10 ms), but the event loop never waits on hostile text
    draft, rule_warnings = await asyncio.to_thread(parse_resume_text, text, file_name=file_name)
    return draft, "rules", warnings + rule_warnings


def _missing(draft: dict) -> list[str]:
    out = []
    for key, label in (("name", "姓名"), ("education", "教育经历"), ("skills", "专业技能")):
        if not draft.get(key):
            out.append(f"未识别到{label}，请手动填写")
    if not draft.get("work_experience") and not draft.get("projects"):
        out.append("未识别到工作经历或项目经历，请手动填写")
    return out


