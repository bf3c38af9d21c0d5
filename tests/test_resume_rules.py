"""The rule-based resume parser and the job-description splitter on hand-written texts in styles the
generated layouts do not use: bracketed headings, `|`-separated header lines with gender and age, a
project's dates in parentheses, a plain comma list of skills, an English resume, Markdown."""
from __future__ import annotations

import pytest

from docimport.jd import parse_jd, suggest_type
from docimport.resume_rules import DATE_RANGE, heading_of, norm_date, parse_resume_text

BRACKETS = """个人简历
刘洋 | 男 | 27岁 | 138-0000-1111 | liuyang@qq.com
求职意向：Java开发工程师    期望城市：上海

【教育背景】
浙江工业大学 | 计算机科学与技术 | 本科 | 2014.9-2018.6
GPA 3.6/4.0，获校一等奖学金

【工作经历】
上海某某信息科技有限公司 | Java开发工程师 | 2018.7-至今
1. 负责会员系统开发，使用 Spring Cloud 微服务架构；
2. 2021年主导了积分系统重构，QPS 提升 3 倍。

【项目经历】
项目一：会员积分系统（2020.03-2021.06）
项目角色：后端开发
项目描述：为 500 万会员提供积分累计与兑换。
技术栈：Spring Boot, MySQL, Redis, RocketMQ

【专业技能】
Java, Spring Boot, MySQL, Redis, RocketMQ, Linux

【自我评价】
积极主动，学习能力强。
"""

ENGLISH = """Education
2015-2019  Tsinghua University  Computer Science  Bachelor
Work Experience
2019.07 - present  ByteDance  Software Engineer
- Built the recommendation feed service in Go.
Skills
Go, Kubernetes, gRPC
"""


def test_bracketed_headings_and_pipe_separated_lines():
    resume, warnings = parse_resume_text(BRACKETS, file_name="刘洋.pdf")
    assert warnings == []
    assert resume["resume_name"] == "刘洋"
    assert (resume["name"], resume["expected_position"]) == ("刘洋", "Java开发工程师")
    assert resume["education"] == [{"school": "浙江工业大学", "major": "计算机科学与技术", "degree": "本科",
                                    "start": "2014.09", "end": "2018.06", "description": "GPA 3.6/4.0，获校一等奖学金"}]
    job = resume["work_experience"][0]
    assert (job["company"], job["position"], job["start"], job["end"]) == \
        ("上海某某信息科技有限公司", "Java开发工程师", "2018.07", "至今")
    assert job["description"].count("\n") == 1 and "2021年主导" in job["description"]   # a year in a bullet is no new entry
    assert resume["projects"] == [{"name": "会员积分系统", "role": "后端开发",
                                   "tech_stack": "Spring Boot, MySQL, Redis, RocketMQ",
                                   "description": "为 500 万会员提供积分累计与兑换。", "start": "2020.03", "end": "2021.06"}]
    assert resume["skills"] == ["Java", "Spring Boot", "MySQL", "Redis", "RocketMQ", "Linux"]
    assert resume["self_evaluation"] == "积极主动，学习能力强。"


def test_english_resume():
    resume, warnings = parse_resume_text(ENGLISH)
    assert resume["education"][0] == {"school": "Tsinghua University", "major": "Computer Science",
                                      "degree": "Bachelor", "start": "2015", "end": "2019"}
    assert resume["work_experience"][0]["company"] == "ByteDance"
    assert resume["work_experience"][0]["position"] == "Software Engineer"
    assert resume["work_experience"][0]["end"] == "至今"
    assert resume["skills"] == ["Go", "Kubernetes", "gRPC"]
    assert "未识别到姓名，请手动填写" in warnings


@pytest.mark.parametrize("text, start, end", [
    ("2016.09 - 2020.06", "2016.09", "2020.06"), ("2016年9月至2020年6月", "2016.09", "2020.06"),
    ("2019/03 – 至今", "2019.03", "至今"), ("2016-09 ~ 2020-06", "2016.09", "2020.06"),
    ("2015-2019", "2015", "2019"), ("2019.7—Present", "2019.07", "至今"), ("2020.1-今", "2020.01", "至今"),
])
def test_date_ranges(text, start, end):
    m = DATE_RANGE.search(text)
    assert m and (norm_date(m.group(1)), norm_date(m.group(2))) == (start, end)


def test_no_date_range_in_plain_numbers():
    assert DATE_RANGE.search("日均订单 100 万，P99 从 180ms 降到 45ms") is None
    assert DATE_RANGE.search("电话 138-0013-8000") is None


@pytest.mark.parametrize("line, section", [
    ("教育经历", "education"), ("【工作经验】", "work"), ("一、项目经历", "projects"), ("## 专业技能", "skills"),
    ("自我评价：", "self_evaluation"), ("教育背景 Education", "education"), ("Work Experience", "work"),
    ("获奖情况", "other"), ("■ 技能特长", "skills"),
])
def test_headings(line, section):
    assert heading_of(line)[0] == section


def test_content_lines_are_no_headings():
    for line in ("项目：订单系统", "负责项目的技术选型", "熟悉 Java 教育行业项目", "工作认真负责"):
        assert heading_of(line)[0] is None, line


def test_empty_and_unstructured_text_gives_warnings_not_errors():
    resume, warnings = parse_resume_text("你好，这是一段与简历无关的文字。")
    assert resume["name"] == "" and resume["education"] == [] and len(warnings) == 4
    assert resume["resume_name"] == "导入的简历"


def test_job_description_without_headings():
    jd = parse_jd("前端开发工程师（北京）\n负责商家后台页面开发\n熟悉 React、TypeScript\n本科及以上学历")
    assert jd["position_name"] == "前端开发工程师"
    assert jd["position_description"] == "负责商家后台页面开发"
    assert jd["position_requirements"] == "熟悉 React、TypeScript\n本科及以上学历"
    assert jd["position_type"] == "frontend"


@pytest.mark.parametrize("name, text, expected", [
    ("测试开发工程师", "", "qa"), ("产品经理", "", "pm"), ("推荐算法工程师", "", "algo"), ("Golang 开发", "", "backend"),
    ("软件工程师", "负责 Vue 页面与 CSS 动画、小程序开发", "frontend"),
    ("研发工程师", "训练深度学习模型，熟悉 PyTorch", "algo"), ("工程师", "", "backend"),
])
def test_position_type_suggestion(name, text, expected):
    assert suggest_type(name, text)[0] == expected


HOSTILE = {"dashes": "-" * 60000 + "x", "letters": "教" + "a " * 30000 + "1", "spaces": "教育" + " " * 60000 + "x",
           "colons": "姓名:" * 20000, "dates": "2016.09-" * 7500, "bullets": "1. " * 20000,
           "short_lines": ("教育" + " " * 290 + "x\n") * 200, "headings": "教育经历\n" * 15000}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_is_parsed_in_bounded_time(name):
    """Patterns that backtrack on long runs (spaces, colons, dashes) would take tens of seconds on a
    60 000-character line; lines are cut at 300 characters, so a whole file stays well under a second
    on a quiet machine (2 s allowed here for a loaded CI)."""
    import time
    started = time.perf_counter()
    parse_resume_text(HOSTILE[name])
    parse_jd(HOSTILE[name])
    assert time.perf_counter() - started < 2.0
