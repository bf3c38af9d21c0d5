"""The built-in question bank: data quality, resume-driven selection, determinism, plugin wiring."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.clock import SystemClock
from core.interfaces import FollowUpRequest, PluginContext, Question, QuestionRequest
from core.plugins import collect, make_plugin_manager
from plugins.question_bank import (POSITION_TYPES, Bank, BankError, analyse, default_bank,
                                   select_questions)

CJK = re.compile(r"[\u4e00-\u9fff]")

BACKEND_RESUME = {
    "resume_id": 11, "resume_name": "后端开发简历", "expected_position": "Java后端工程师", "name": "张伟",
    "education": [{"school": "华中科技大学", "major": "计算机科学与技术", "degree": "本科"}],
    "skills": ["精通Java", "Spring Boot", "Redis", "Kafka", "mysql", "k8s"],
    "projects": [{"name": "鲸选电商订单中台", "role": "后端负责人", "tech": ["Java", "Redis", "Kafka"],
                  "description": "负责订单服务拆分，用 Redis 缓存热点商品，Kafka 异步处理支付回调，峰值 QPS 2 万"}],
    "work_experience": [{"company": "星河科技", "title": "高级后端开发工程师", "start": "2021-07", "end": "2024-03",
                         "description": "负责交易链路的高并发优化和分库分表"}],
    "self_evaluation": "热爱技术，注重代码质量",
}
FRONTEND_RESUME = {
    "resume_id": 12, "resume_name": "前端简历", "expected_position": "前端工程师", "name": "李娜",
    "education": ["浙江大学 软件工程 本科"],
    "skills": ["React", "TypeScript", "Webpack", "熟悉CSS3"],
    "projects": [{"name": "青鸟低代码平台", "role": "前端开发", "technologies": "React + TypeScript + Zustand",
                  "description": "拖拽式表单编辑器，支持上千个组件的画布渲染"}],
    "work_experience": [],
}
PM_RESUME = {
    "resume_id": 13, "name": "王芳", "skills": ["Axure", "数据分析", "SQL", "A/B测试"],
    "projects": [{"name": "会员成长体系改版", "role": "产品经理",
                  "description": "通过用户访谈和漏斗分析重做会员等级，次月留存提升 6%"}],
    "work_experience": [{"company": "拼好物", "title": "产品经理", "description": "负责电商优惠券和营销工具"}],
}
QA_RESUME = {
    "resume_id": 14, "name": "赵磊", "skills": ["Pytest", "Selenium", "JMeter", "Linux"],
    "projects": [{"name": "支付网关质量保障", "role": "测试负责人",
                  "description": "搭建接口自动化框架并接入 Jenkins，负责压测"}],
    "work_experience": [],
}
ALGO_RESUME = {
    "resume_id": 15, "name": "陈晨", "skills": ["PyTorch", "Transformer", "LoRA", "推荐系统"],
    "projects": ["基于大模型的法律问答助手：用 LoRA 微调 Qwen 并用 RAG 检索法条，负责训练和评测"],
    "work_experience": ["深瞳智能 算法实习生 2023.07-2023.12"],
}
RESUMES = {"backend": BACKEND_RESUME, "frontend": FRONTEND_RESUME, "pm": PM_RESUME, "qa": QA_RESUME,
           "algo": ALGO_RESUME}
OWN_NAMES = {"backend": "鲸选电商订单中台", "frontend": "青鸟低代码平台", "pm": "会员成长体系改版",
             "qa": "支付网关质量保障", "algo": "基于大模型的法律问答助手"}
OWN_SKILLS = {"backend": ["Java", "Redis", "Kafka", "MySQL", "mysql", "k8s", "Spring Boot"],
              "frontend": ["React", "TypeScript", "Webpack", "CSS3", "Zustand"],
              "pm": ["Axure", "数据分析", "SQL", "A/B测试"],
              "qa": ["Pytest", "Selenium", "JMeter", "Linux", "Jenkins"],
              "algo": ["PyTorch", "Transformer", "LoRA", "推荐系统", "RAG", "大模型", "Qwen"]}


def interview(ptype: str, iid: str = "iv-1", **extra) -> dict:
    return {"id": iid, "position_type": ptype, "position_name": "工程师", "company_name": "某公司",
            "position_description": "", "position_requirements": "", **extra}


def is_chinese(text: str) -> bool:
    """Natural Chinese: mostly Chinese characters, English only for technical names."""
    words = len(re.findall(r"[A-Za-z][A-Za-z0-9_.+#/-]*", text))
    cjk = len(CJK.findall(text))
    return cjk >= 8 and cjk > 2 * words


@pytest.fixture(scope="module")
def bank() -> Bank:
    return default_bank()


# --- the data ----------------------------------------------------------------------------------
def test_every_position_has_forty_questions_with_reference_points(bank):
    for ptype in POSITION_TYPES:
        qs = bank.questions[ptype]
        assert len(qs) >= 40, ptype
        assert {q.kind for q in qs} == {"skill", "fundamental", "behavioral"}
        assert len({q.text for q in qs}) == len(qs)
        for q in qs:
            assert 2 <= len(q.points) <= 4 and all(CJK.search(p) for p in q.points), q.text
            assert q.topics and q.difficulty in (1, 2, 3)
            assert is_chinese(q.text), q.text
            assert q.text.endswith(("？", "。")), q.text


def test_aliases_normalise_case_and_spelling(bank):
    profile = analyse(bank, {"skills": ["Golang", "k8s", "mysql", "MySQL", "ES", "vue3", "熟悉redis"]}, {})
    assert {"Go", "Kubernetes", "MySQL", "Elasticsearch", "Vue", "Redis"} <= set(profile.terms)
    assert profile.terms["Redis"].display == "redis"
    # Word boundaries: an English word containing a short alias is not that term.
    profile = analyse(bank, {"self_evaluation": "google ES6 tests"}, {})
    assert not {"Go", "Elasticsearch", "TypeScript"} & set(profile.terms)


# --- selection ---------------------------------------------------------------------------------
@pytest.mark.parametrize("ptype", POSITION_TYPES)
def test_questions_name_the_candidates_own_projects_and_skills(bank, ptype):
    qs = select_questions(bank, RESUMES[ptype], interview(ptype), 5)
    assert len(qs) == 5
    texts = [q.text for q in qs]
    assert any(OWN_NAMES[ptype] in t for t in texts), texts
    skill_qs = [q for q in qs if q.kind == "skill"]
    assert len(skill_qs) == 2, texts
    for q in skill_qs:
        assert any(s in q.text for s in OWN_SKILLS[ptype]), q.text
    assert [q.kind for q in qs] == ["project", "skill", "skill", "fundamental", "behavioral"]
    role = {"backend": "后端负责人", "frontend": "前端开发", "pm": "产品经理"}.get(ptype)
    if role:                                   # the opener names the candidate's role in the project
        assert role in qs[0].text, qs[0].text
    for q in qs:
        assert q.source == "bank" and 2 <= len(q.reference_points) <= 4 and is_chinese(q.text)


def test_backend_and_frontend_resumes_get_different_questions(bank):
    be = select_questions(bank, BACKEND_RESUME, interview("backend"), 5)
    fe = select_questions(bank, FRONTEND_RESUME, interview("backend"), 5)
    assert {q.text for q in be}.isdisjoint({q.text for q in fe})
    # Same position, different skills: the skill questions follow the resume.
    go_resume = {**BACKEND_RESUME, "skills": ["Golang", "gRPC", "Kubernetes"],
                 "projects": [{"name": "云原生日志平台", "role": "开发", "tech": "Go, k8s"}]}
    go = select_questions(bank, go_resume, interview("backend"), 5)
    assert any("云原生日志平台" in q.text for q in go)
    assert {q.topic for q in go if q.kind == "skill"} <= {"Go", "gRPC", "Kubernetes", "Docker"}
    assert {q.text for q in go if q.kind == "skill"}.isdisjoint({q.text for q in be})


def test_every_skill_and_project_question_names_something_from_the_resume(bank):
    """Property check over generated resumes: skill and project questions quote the resume."""
    import random
    rng = random.Random(7)
    aliases = json.loads((Path(__file__).parent.parent / "plugins/question_bank/aliases.json").read_text("utf-8"))
    spellings = [s for k, v in aliases.items() if not k.startswith("_") for s in [k, *v]]
    words = ["负责", "系统", "优化", "设计", "渲染", "需求", "排序", "推荐", "订单", "测试"]
    for i in range(60):
        resume = {"skills": rng.sample(spellings, rng.randint(0, 5)),
                  "projects": [{"name": f"项目{i}号", "role": rng.choice(["", "负责人"]),
                                "tech": rng.sample(spellings, rng.randint(0, 3)),
                                "description": "".join(rng.sample(words + spellings, 6))}],
                  "work_experience": [{"company": f"公司{i}", "description": "".join(rng.sample(words, 4))}]}
        raw = json.dumps(resume, ensure_ascii=False)
        for ptype in POSITION_TYPES:
            for q in select_questions(bank, resume, interview(ptype, str(i)), 6):
                if q.kind == "project":
                    assert f"项目{i}号" in q.text or f"公司{i}" in q.text, q.text
                    tech = re.findall(r"中用到了([^，]+)，", q.text)
                    assert not tech or tech[0] in resume["projects"][0]["tech"] or re.search(r"[A-Za-z]", tech[0])
                elif q.kind == "skill":
                    quoted = re.findall(r"(?:写了(?:熟悉)?|技能里有|用到了)([^，]+)，", q.text)
                    assert quoted and quoted[0] in raw, (q.text, resume)
                    # ... and it is a listed skill/tech or a technical name, not a generic word
                    listed = resume["skills"] + resume["projects"][0]["tech"]
                    assert quoted[0] in listed or re.search(r"[A-Za-z]", quoted[0]), q.text


def test_stable_for_same_input_and_varies_with_interview(bank):
    first = select_questions(bank, BACKEND_RESUME, interview("backend", "abc"), 6)
    again = select_questions(bank, json.loads(json.dumps(BACKEND_RESUME)), interview("backend", "abc"), 6)
    assert first == again
    sets = {tuple(q.text for q in select_questions(bank, BACKEND_RESUME, interview("backend", f"iv-{i}"), 6))
            for i in range(8)}
    assert len(sets) > 1


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6, 7, 10, 15, 40])
def test_count_respected_without_duplicates(bank, count):
    for ptype in POSITION_TYPES:
        qs = select_questions(bank, RESUMES[ptype], interview(ptype, f"c{count}"), count)
        assert len(qs) == count
        texts = [q.text for q in qs]
        assert len(set(texts)) == count
        # A bank question is never asked twice, with or without a prefix naming the skill.
        for bq in bank.questions[ptype]:
            assert sum(t.endswith(bq.text) for t in texts) <= 1
    six = select_questions(bank, BACKEND_RESUME, interview("backend"), 6)
    assert [q.kind for q in six].count("project") == 2
    assert any("星河科技" in q.text for q in six)      # the second one is about the job


@pytest.mark.parametrize("ptype", POSITION_TYPES)
def test_empty_resume_falls_back_to_position_fundamentals(bank, ptype):
    for resume in ({}, None, {"name": "", "skills": [], "projects": None, "work_experience": ""}):
        qs = select_questions(bank, resume, {"id": "e", "position_type": ptype}, 5)
        assert len(qs) == 5 and len({q.text for q in qs}) == 5
        kinds = [q.kind for q in qs]
        assert "project" not in kinds and "behavioral" in kinds and kinds.count("fundamental") >= 3
        assert all(is_chinese(q.text) for q in qs)


def test_position_requirements_steer_the_choice(bank):
    qs = select_questions(bank, {}, interview("backend", position_requirements="熟悉Python/Django，了解k8s"), 5)
    topics = {q.topic for q in qs}
    assert "Django" in topics and "Kubernetes" in topics


def test_unknown_skill_gets_a_question_naming_it(bank):
    qs = select_questions(bank, {"skills": ["Erlang/OTP"]}, interview("backend"), 5)
    assert any("Erlang/OTP" in q.text and q.kind == "skill" for q in qs)
    # a phrase of several skills names each one, without the proficiency words around them
    profile = analyse(bank, {"skills": ["熟悉Erlang/OTP、Elixir；有Rust使用经验"]}, interview("backend"))
    assert profile.unknown_skills == ["Erlang/OTP", "Elixir"]
    assert profile.terms["Rust"].source == "skill"


def test_resume_terms_for_asr_biasing():
    # what the intro and question phases hand to ASR (core.resume)
    from core.resume import resume_terms
    terms = resume_terms(BACKEND_RESUME)
    assert {"Redis", "Kafka", "鲸选电商订单中台", "星河科技"} <= set(terms)


def test_resume_terms_drop_proficiency_words():
    # skills written as phrases give the names in them, not "精通Java" (which would put 精通 into the
    # recogniser's vocabulary); a name that merely starts like such a word stays whole
    from core.resume import resume_terms, skill_terms
    resume = {"skills": ["精通Java、熟悉MySQL", "熟练使用 Spring Boot 等框架", "了解Kubernetes；有Docker使用经验",
                         "具有Kafka相关的开发经验", "3年以上Go经验", "Erlang/OTP", "有机化学", "应用性能监控", "熟悉", 7]}
    assert resume_terms(resume) == ["Java", "MySQL", "Spring Boot", "Kubernetes", "Docker", "Kafka", "Go",
                                    "Erlang/OTP", "有机化学", "应用性能监控"]
    assert skill_terms("会用Git, 掌握Python") == ["Git", "Python"]


def test_bad_input_gets_a_chinese_error(bank):
    with pytest.raises(BankError, match="岗位类型"):
        select_questions(bank, {}, {"position_type": "sales"}, 5)
    with pytest.raises(BankError, match="岗位类型"):
        select_questions(bank, {}, {"position_name": "销售代表"}, 5)
    for bad in (0, -1, 41, "5", 2.5, True, None):
        with pytest.raises(BankError, match="题目数量"):
            select_questions(bank, {}, interview("qa"), bad)
    with pytest.raises(BankError, match="简历"):
        select_questions(bank, "not a resume", interview("qa"), 5)
    with pytest.raises(BankError, match="skills"):
        select_questions(bank, {"skills": 42}, interview("qa"), 5)
    # A missing position type is inferred from the position name when it is clear.
    qs = select_questions(bank, {}, {"position_name": "前端开发工程师"}, 3)
    assert all(q.text in {b.text for b in bank.questions["frontend"]} for q in qs)


# --- the plugin --------------------------------------------------------------------------------
def make_source(tmp_path: Path, settings: dict | None = None):
    registries = collect(make_plugin_manager(load_entry_points=False, default_plugins=("plugins.question_bank",)))
    reg = registries["question_source"].get("bank")
    ctx = PluginContext(name="bank", settings=settings or {}, config={}, data_dir=tmp_path, clock=SystemClock())
    return reg.factory(ctx)


@pytest.mark.asyncio
async def test_registered_plugin_generates_and_has_no_follow_ups(tmp_path):
    source = make_source(tmp_path)
    assert source.name == "bank"
    qs = await source.generate(QuestionRequest(resume=BACKEND_RESUME, interview=interview("backend"), count=5))
    assert len(qs) == 5 and all(isinstance(q, Question) for q in qs)
    assert await source.follow_up(FollowUpRequest(BACKEND_RESUME, interview("backend"), qs[0], "不知道", [])) is None


@pytest.mark.asyncio
async def test_extra_dir_adds_questions_and_rejects_bad_data(tmp_path):
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "backend.json").write_text(json.dumps({"questions": [
        {"text": "Erlang 的 OTP 监督树是怎么实现容错的？", "kind": "skill", "difficulty": 2, "topics": ["Erlang"],
         "points": ["监督者按策略重启子进程", "让它崩溃的设计哲学"]}]}, ensure_ascii=False), encoding="utf-8")
    source = make_source(tmp_path, {"extra_dir": str(extra)})
    qs = await source.generate(QuestionRequest(resume={"skills": ["erlang"]}, interview=interview("backend")))
    assert any(q.text.endswith("Erlang 的 OTP 监督树是怎么实现容错的？") and q.topic == "Erlang" for q in qs)
    (extra / "backend.json").write_text(json.dumps({"questions": [
        {"text": "Erlang 的 OTP 监督树是怎么实现容错的？", "kind": "skill", "topics": ["Erlang"],
         "points": ["只有一条"]}]}, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(BankError, match="points"):
        make_source(tmp_path, {"extra_dir": str(extra)})
    with pytest.raises(BankError, match="目录不存在"):
        make_source(tmp_path, {"extra_dir": str(tmp_path / "missing")})
