"""A job description (pasted text or a file's text) split into the fields of the interview form:
``position_name``, ``company_name``, ``position_description`` (duties), ``position_requirements``
(qualifications) and a suggested ``position_type`` (backend / frontend / pm / qa / algo): by rules, or
by the configured LLM (``prompts/jd_parse.<version>.md``, schema-checked) falling back to the rules."""
from __future__ import annotations

import asyncio
import logging
import re

from docimport.resume_rules import _BULLET, _DECOR_LEAD, _DECOR_TAIL, normalise, split_sections

DUTY_HEADINGS = ["岗位职责", "工作职责", "职位职责", "职位描述", "岗位描述", "工作内容", "职责描述", "主要职责",
                 "你将负责", "你的职责", "你要做的事", "岗位内容", "职位详情", "职责"]
REQUIREMENT_HEADINGS = ["任职要求", "岗位要求", "职位要求", "任职资格", "任职条件", "技能要求", "我们希望你",
                        "你需要具备", "希望你", "加分项", "优先条件", "要求"]
OTHER_HEADINGS = ["福利待遇", "薪资福利", "公司福利", "公司介绍", "关于我们", "公司简介", "工作地点", "工作地址",
                  "薪资待遇", "联系方式", "投递方式", "团队介绍"]
NAME_KEYS = ["职位名称", "岗位名称", "招聘职位", "招聘岗位", "职位", "岗位"]
COMPANY_KEYS = ["公司名称", "公司", "企业名称", "招聘单位"]
_HEAD = {**{h: "duties" for h in DUTY_HEADINGS}, **{h: "requirements" for h in REQUIREMENT_HEADINGS},
         **{h: "other" for h in OTHER_HEADINGS}}
_REQUIREMENT_LINE = re.compile(r"^(?:熟悉|精通|掌握|了解|具备|具有|有.{0,20}经验|本科|硕士|大专|学历|\d+\s*年以上|"
                               r"计算机|良好的|较强的|优先|能够|英语)")

# keyword -> weight per position type; the position name counts three times
TYPE_KEYWORDS = {
    "frontend": ["前端", "web前端", "react", "vue", "javascript", "typescript", "css", "html", "小程序", "浏览器",
                 "webpack", "h5", "angular", "node.js"],
    "backend": ["后端", "服务端", "后台开发", "java", "golang", "go", "c++", "php", "spring", "微服务", "mysql",
                "redis", "分布式", "高并发", "kafka", "服务器端", "django", "python"],
    "pm": ["产品经理", "产品", "需求分析", "prd", "原型", "axure", "用户研究", "产品规划", "竞品", "用户体验"],
    "qa": ["测试", "质量", "qa", "自动化测试", "selenium", "测试用例", "性能测试", "jmeter", "缺陷"],
    "algo": ["算法", "机器学习", "深度学习", "推荐", "nlp", "自然语言", "计算机视觉", "cv", "大模型", "pytorch",
             "tensorflow", "模型训练", "搜索排序", "llm"],
}
NAME_TYPES = [("前端", "frontend"), ("测试", "qa"), ("qa", "qa"), ("产品", "pm"), ("算法", "algo"),
              ("机器学习", "algo"), ("后端", "backend"), ("服务端", "backend"), ("java", "backend"),
              ("golang", "backend"), ("go开发", "backend"), ("c++", "backend"), ("php", "backend")]


def _heading(line: str) -> tuple[str | None, str]:
    core = _DECOR_TAIL.sub("", _DECOR_LEAD.sub("", line)).strip()
    if core in _HEAD:
        return _HEAD[core], ""
    m = re.match(r"^([\u4e00-\u9fff]{2,6})\s*[:|]\s*(.*)$", core)
    if m and m.group(1) in _HEAD:
        return _HEAD[m.group(1)], m.group(2).strip()
    return None, line


def _count(word: str, text: str) -> int:
    if re.fullmatch(r"[a-z0-9.+#]+", word):
        return len(re.findall(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", text))
    return text.count(word)


def suggest_type(name: str, text: str) -> tuple[str, dict]:
    lname = name.lower()
    for word, ptype in NAME_TYPES:
        if word in lname:
            return ptype, {}
    ltext = text.lower()
    scores = {t: sum(_count(w, ltext) + 3 * _count(w, lname) for w in words) for t, words in TYPE_KEYWORDS.items()}
    best = max(scores, key=lambda t: (scores[t], t == "backend"))
    return (best if scores[best] > 0 else "backend"), scores


def _clean_name(value: str) -> str:
    value = re.split(r"\s*[|/]\s*|\s{2,}|\t", value.strip())[0]
    value = re.sub(r"\s*[\d.]+\s*[-~至]\s*[\d.]+\s*[kK千万wW].*$", "", value)      # 15-25K·14薪
    value = re.sub(r"\s*[(（\[【][^)）\]】]*[)）\]】]\s*$", "", value)              # (北京)
    return value.strip(" :,，")[:100]


def parse_jd(text: str) -> dict:
    lines = normalise(text)
    parts = split_sections(lines, _heading, ("duties", "requirements", "other"))
    name = company = ""
    for line in parts["head"]:
        m = re.match(r"^(" + "|".join(NAME_KEYS + COMPANY_KEYS) + r")\s*[:|]\s*(.+)$", line)
        if m:
            if m.group(1) in NAME_KEYS and not name:
                name = _clean_name(m.group(2))
            elif m.group(1) in COMPANY_KEYS and not company:
                company = _clean_name(m.group(2))
    head_rest = [l for l in parts["head"] if not re.match(r"^(" + "|".join(NAME_KEYS + COMPANY_KEYS) + r")\s*[:|]", l)]
    if not name:
        for line in head_rest:
            if len(line) <= 40 and not re.search(r"[。；;]", line):
                name = _clean_name(line)
                head_rest.remove(line)
                break
    if not company:
        for line in head_rest:
            m = re.search(r"[\u4e00-\u9fffA-Za-z]{2,30}(?:有限公司|公司|集团|科技)", line)
            if m and len(line) <= 40:
                company = m.group(0)
                break
    duties, requirements = parts["duties"], parts["requirements"]
    if not duties and not requirements:
        # no headings: qualification-like lines are requirements, the rest duties
        for line in head_rest:
            (requirements if _REQUIREMENT_LINE.match(_BULLET.sub("", line)) else duties).append(line)
    elif not duties:
        duties = head_rest
    ptype, _ = suggest_type(name, "\n".join(lines))
    return {"position_name": name, "company_name": company,
            "position_description": "\n".join(duties).strip()[:5000],
            "position_requirements": "\n".join(requirements).strip()[:5000],
            "position_type": ptype}


log = logging.getLogger("mianshi.docimport")
POSITION_TYPES = ["backend", "frontend", "pm", "qa", "algo"]
JD_FIELDS = ("position_name", "company_name", "position_description", "position_requirements")


def jd_schema() -> dict:
    text = lambda n: {"type": "string", "maxLength": n}  # noqa: E731
    return {"type": "object",
            "properties": {"position_name": {"type": "string", "minLength": 1, "maxLength": 100},
                           "company_name": text(100), "position_description": text(5000),
                           "position_requirements": text(5000),
                           "position_type": {"type": "string", "enum": POSITION_TYPES}},
            "required": [*JD_FIELDS, "position_type"], "additionalProperties": False}


async def parse_jd_text(text: str, client=None, *, timeout: float = 60.0,
                        max_tokens: int = 1500) -> tuple[dict, str, list[str]]:
    """(fields, "llm" | "rules", warnings); any failure of the model falls back to ``parse_jd``."""
    warnings: list[str] = []
    if client is not None and getattr(client, "configured", False):
        try:
            obj = await asyncio.wait_for(
                client.chat_json("jd_parse", {"jd_text": text[:8000]}, jd_schema(), max_tokens=max_tokens),
                timeout)
            out = {k: str(obj.get(k) or "").strip()[:100 if k in ("position_name", "company_name") else 5000]
                   for k in JD_FIELDS}
            out["position_type"] = obj["position_type"]
            if out["position_description"] or out["position_requirements"]:
                return out, "llm", warnings
            warnings.append("大模型没有给出职位描述或要求，已改用规则解析")
        except asyncio.CancelledError:
            raise
        except Exception as exc:           # any failure of the model: the rules answer instead
            log.info("job description: LLM failed, using the rules: %s", exc)
            warnings.append("大模型解析失败，已改用规则解析")
    return await asyncio.to_thread(parse_jd, text), "rules", warnings
