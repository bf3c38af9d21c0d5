"""Small helpers over the stored resume (content fields of api.md)."""
from __future__ import annotations

import re

# a skill is often written as a phrase: "精通Java、熟悉MySQL", "熟练使用 Spring Boot 等框架"
_SKILL_SPLIT = re.compile(r"[、，,；;。\n]+")
_SKILL_LEAD = re.compile(r"^(?:\d+\s*年(?:以上)?的?\s*)?(?:(?:(?:熟练|精通|熟悉|掌握|了解|擅长|深入理解|具备|具有|能够|会用)\s*)+(?:(?:使用|运用)\s*)?)?")
_SKILL_EXPERIENCE = re.compile(r"^(?:有|具有|具备)\s*(.+?)\s*(?:相关)?的?(?:开发|使用|项目|实战)?经验$")
_SKILL_TAIL = re.compile(r"\s*(?:等(?:框架|技术|工具|语言|中间件)?|的使用|的开发|开发经验|使用经验|经验)$")


def _names(items, keys) -> list[str]:
    out = []
    for item in items or []:
        if isinstance(item, dict):
            for key in keys:
                value = item.get(key)
                if isinstance(value, str) and value.strip():
                    out.append(value.strip())
                elif isinstance(value, list):
                    out.extend(v.strip() for v in value if isinstance(v, str) and v.strip())
        elif isinstance(item, str) and item.strip() and len(item) <= 40:
            out.append(item.strip())
    return out


def skill_terms(skill: str) -> list[str]:
    """The names in one skill entry, without proficiency words: "精通Java、熟悉Redis等" → Java, Redis."""
    out = []
    for part in _SKILL_SPLIT.split(skill):
        part = part.strip()
        experience = _SKILL_EXPERIENCE.match(part)
        if experience:
            part = experience.group(1)
        part = _SKILL_TAIL.sub("", _SKILL_LEAD.sub("", part)).strip()
        if part:
            out.append(part)
    return out


def resume_terms(resume: dict, limit: int = 40) -> list[str]:
    """Terms worth biasing speech recognition towards: skills, project and company names, tech."""
    terms: list[str] = []
    for skill in resume.get("skills") or []:
        if isinstance(skill, str):
            terms += skill_terms(skill)
    terms += _names(resume.get("projects"), ("name", "tech", "technologies", "tech_stack"))
    terms += _names(resume.get("work_experience"), ("company", "title", "position"))
    terms += _names(resume.get("education"), ("school", "major"))
    seen, out = set(), []
    for term in terms:
        key = term.lower()
        if key not in seen and len(term) <= 40:
            seen.add(key)
            out.append(term)
    return out[:limit]
