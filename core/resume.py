"""Small helpers over the stored resume (content fields of api.md)."""
from __future__ import annotations


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


def resume_terms(resume: dict, limit: int = 40) -> list[str]:
    """Terms worth biasing speech recognition towards: skills, project and company names, tech."""
    terms: list[str] = []
    terms += [s.strip() for s in resume.get("skills") or [] if isinstance(s, str) and s.strip()]
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
