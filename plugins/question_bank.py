"""The built-in question source ``bank``: curated Chinese interview questions chosen from the resume.

No LLM is involved. The questions are data (``plugins/question_bank/<position_type>.json``), each
tagged with topics (canonical terms such as ``Redis`` or ``缓存``), a kind (skill, fundamental,
behavioral), a difficulty (1-3) and 2-4 reference points (要点) for the report writer.
``aliases.json`` maps spellings to canonical terms (``golang`` -> ``Go``, ``k8s`` -> ``Kubernetes``);
``templates.json`` holds questions that name the candidate's own projects, companies and skills.

Selection (see README, "Built-in question bank"): terms are extracted from the resume (skills, project names,
roles, tech and descriptions, work experience) and from the position's description and
requirements; bank questions are scored by overlap; a deterministic RNG seeded by the interview id
and the resume content breaks ties and varies the choice. A plan of ``count`` slots mixes 1-2
questions about the candidate's own projects/experience, 2-3 skill questions prefixed with the
skill or project they came from, one fundamental question for the position type and one
behavioural question. Missing material falls back to position fundamentals.

Settings (``[plugins.bank]`` in plugins.toml):
    extra_dir = "path/to/dir"   # optional: more <position_type>.json files in the same format
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from core.settings import Setting
from core.hookspecs import hookimpl
from core.interfaces import FollowUpRequest, PluginContext, Question, QuestionRequest
from core.resume import skill_terms

DATA_DIR = Path(__file__).with_name("question_bank")
POSITION_TYPES = ("backend", "frontend", "pm", "qa", "algo")
BANK_KINDS = ("skill", "fundamental", "behavioral")
MAX_COUNT = 40
LANGUAGES = {"Java", "Go", "Python", "C++", "Rust", "PHP", "JavaScript", "TypeScript", "SQL", "HTML", "CSS"}

_CJK = re.compile(r"[\u4e00-\u9fff]")
_ASCII_WORD = re.compile(r"^[\x00-\x7f]+$")

# Resume sources and how much a term found there counts.
WEIGHTS = {"skill": 3.0, "project_tech": 3.0, "project": 2.0, "experience": 2.0, "other": 1.0}
POSITION_WEIGHT = 1.5
CROSS_BANK_FACTOR = 0.5        # a skill question from another position type's bank
COVERED_FACTOR = 0.25          # a topic already asked about counts this much again

# Slot plan: for count = 5 this is 1 project, 2 skill, 1 fundamental, 1 behavioural;
# 6 adds a second project question, 7 a third skill question; beyond that skill and
# fundamental alternate, with a behavioural question every fifth slot.
_BASE_PLAN = ["project", "skill", "skill", "fundamental", "behavioral", "project", "skill"]
_KIND_ORDER = {"project": 0, "skill": 1, "fundamental": 2, "behavioral": 3}
_FALLBACK = {
    "project": ["project", "skill", "fundamental", "behavioral", "rest"],
    "skill": ["skill", "fundamental", "behavioral", "rest"],
    "fundamental": ["fundamental", "skill", "behavioral", "rest"],
    "behavioral": ["behavioral", "fundamental", "skill", "rest"],
}


class BankError(ValueError):
    """Bad question data or a bad request; the message is Chinese and names the problem."""


# --- data --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BankQuestion:
    id: str
    position_type: str
    text: str
    kind: str
    difficulty: int
    topics: tuple[str, ...]
    points: tuple[str, ...]


class Vocabulary:
    """Canonical terms and their spellings; finds them in free text."""

    def __init__(self, aliases: dict[str, list[str]]):
        self._canon: dict[str, str] = {}
        for canonical, spellings in aliases.items():
            if canonical.startswith("_"):
                continue
            for spelling in [canonical, *spellings]:
                self.add(spelling, canonical)
        self._regex: re.Pattern | None = None

    def add(self, spelling: str, canonical: str | None = None) -> None:
        key = spelling.strip().lower()
        if not key:
            return
        self._canon.setdefault(key, canonical or spelling.strip())
        self._regex = None

    def canonical(self, term: str) -> str | None:
        return self._canon.get(term.strip().lower())

    def _pattern(self) -> re.Pattern:
        if self._regex is None:
            parts = []
            for key in sorted(self._canon, key=len, reverse=True):
                if _ASCII_WORD.match(key):
                    parts.append(r"(?<![a-z0-9])" + re.escape(key) + r"(?![a-z0-9])")
                elif len(key) >= 2:          # a single Chinese character is too ambiguous
                    parts.append(re.escape(key))
            self._regex = re.compile("|".join(parts))
        return self._regex

    def find(self, text: str) -> list[tuple[str, str]]:
        """(canonical, spelling as written) for each known term in ``text``, first occurrence order."""
        if not text:
            return []
        lowered = text.lower()
        same_length = len(lowered) == len(text)
        found: dict[str, str] = {}
        for m in self._pattern().finditer(lowered):
            canonical = self._canon[m.group(0)]
            written = text[m.start():m.end()] if same_length else canonical
            found.setdefault(canonical, written)
        return list(found.items())


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BankError(f"题库文件 {path} 无法读取：{exc}") from exc


def _validate_question(raw: Any, where: str, ptype: str, idx: int) -> BankQuestion:
    if not isinstance(raw, dict):
        raise BankError(f"{where}：第 {idx + 1} 题不是对象")
    text = raw.get("text")
    if not isinstance(text, str) or len(_CJK.findall(text)) < 6:
        raise BankError(f"{where}：第 {idx + 1} 题的 text 必须是中文问题")
    kind = raw.get("kind")
    if kind not in BANK_KINDS:
        raise BankError(f"{where}：第 {idx + 1} 题的 kind 必须是 {'、'.join(BANK_KINDS)} 之一")
    difficulty = raw.get("difficulty", 2)
    if difficulty not in (1, 2, 3):
        raise BankError(f"{where}：第 {idx + 1} 题的 difficulty 必须是 1、2 或 3")
    topics = raw.get("topics")
    if not isinstance(topics, list) or not topics or not all(isinstance(t, str) and t.strip() for t in topics):
        raise BankError(f"{where}：第 {idx + 1} 题的 topics 必须是非空字符串列表")
    points = raw.get("points")
    if (not isinstance(points, list) or not 2 <= len(points) <= 4
            or not all(isinstance(p, str) and _CJK.search(p) for p in points)):
        raise BankError(f"{where}：第 {idx + 1} 题的 points 必须是 2 到 4 条中文要点")
    qid = raw.get("id") or f"{ptype}-" + hashlib.sha1(text.encode()).hexdigest()[:10]
    return BankQuestion(str(qid), ptype, text.strip(), kind, int(difficulty),
                        tuple(t.strip() for t in topics), tuple(p.strip() for p in points))


@dataclass
class Bank:
    vocab: Vocabulary
    questions: dict[str, list[BankQuestion]]
    templates: dict

    @classmethod
    def load(cls, data_dir: Path = DATA_DIR, extra_dirs: Iterable[Path] = ()) -> "Bank":
        aliases = _load_json(data_dir / "aliases.json")
        templates = _load_json(data_dir / "templates.json")
        vocab = Vocabulary(aliases)
        questions: dict[str, list[BankQuestion]] = {p: [] for p in POSITION_TYPES}
        for directory in [data_dir, *extra_dirs]:
            directory = Path(directory)
            if not directory.is_dir():
                raise BankError(f"题库目录不存在：{directory}")
            for ptype in POSITION_TYPES:
                path = directory / f"{ptype}.json"
                if not path.exists():
                    continue
                data = _load_json(path)
                items = data.get("questions") if isinstance(data, dict) else None
                if not isinstance(items, list):
                    raise BankError(f"{path}：缺少 questions 列表")
                seen = {q.text for q in questions[ptype]}
                for idx, raw in enumerate(items):
                    q = _validate_question(raw, str(path), ptype, idx)
                    if q.text in seen:
                        raise BankError(f"{path}：第 {idx + 1} 题与已有题目重复")
                    seen.add(q.text)
                    questions[ptype].append(q)
        for ptype, qs in questions.items():
            for kind in BANK_KINDS:
                if not any(q.kind == kind for q in qs):
                    raise BankError(f"{ptype} 题库缺少 {kind} 类题目")
            for q in qs:
                for topic in q.topics:
                    vocab.add(topic, vocab.canonical(topic) or topic)
        # Topics are stored canonical so resume terms compare directly.
        for ptype, qs in questions.items():
            questions[ptype] = [
                BankQuestion(q.id, q.position_type, q.text, q.kind, q.difficulty,
                             tuple(dict.fromkeys(vocab.canonical(t) or t for t in q.topics)), q.points)
                for q in qs]
        return cls(vocab, questions, templates)


# --- resume analysis ---------------------------------------------------------------------------
@dataclass
class Term:
    canonical: str
    display: str
    source: str              # skill | project_tech | project | experience | other
    project: str = ""        # the project it came from, for project terms

    @property
    def nameable(self) -> bool:
        """Worth naming back to the candidate: listed as a skill or tech, or a technical name
        (``Kafka``) rather than a generic Chinese word (``渲染``) found in a description."""
        return self.source in ("skill", "project_tech") or bool(re.search(r"[A-Za-z]", self.display))

    @property
    def weight(self) -> float:
        return WEIGHTS[self.source] if self.nameable else WEIGHTS["other"]


@dataclass
class OwnItem:
    """A project or a job from the resume, for the template questions."""
    kind: str                # project | experience
    name: str                # project name or company
    role: str = ""           # role in the project, or job title
    tech: list[str] = field(default_factory=list)


@dataclass
class Profile:
    terms: dict[str, Term]               # canonical -> strongest term
    unknown_skills: list[str]            # skills the vocabulary does not know, as written
    own: list[OwnItem]
    position_terms: set[str]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (list, tuple)):
        return "，".join(t for t in (_text(v) for v in value) if t)
    if isinstance(value, dict):
        return "，".join(t for t in (_text(v) for v in value.values()) if t)
    return str(value).strip()


def _first(d: dict, *keys: str) -> str:
    for key in keys:
        value = _text(d.get(key))
        if value:
            return value
    return ""


def _as_list(value: Any, field_name: str) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (str, dict)):
        return [value]
    raise BankError(f"简历字段 {field_name} 格式不正确，应为列表")


def _short_name(text: str, limit: int = 20) -> str:
    head = re.split(r"[：:，,。；;\n]", text, maxsplit=1)[0].strip()
    return head if head and len(head) <= limit else ""


def analyse(bank: Bank, resume: dict, interview: dict) -> Profile:
    vocab = bank.vocab
    terms: dict[str, Term] = {}
    unknown: list[str] = []

    def note(canonical: str, display: str, source: str, project: str = "") -> None:
        new, old = Term(canonical, display, source, project), terms.get(canonical)
        if old is None or new.weight > old.weight:
            terms[canonical] = new

    for raw in _as_list(resume.get("skills"), "skills"):
        for skill in skill_terms(_text(raw)):
            canonical = vocab.canonical(skill)
            if canonical:
                note(canonical, skill, "skill")
                continue
            found = vocab.find(skill)
            for canonical, written in found:
                note(canonical, written, "skill")
            if not found and len(skill) <= 20:
                unknown.append(skill)

    own: list[OwnItem] = []
    for raw in _as_list(resume.get("projects"), "projects"):
        if isinstance(raw, dict):
            name = _first(raw, "name", "project_name", "title", "project")
            role = _first(raw, "role", "position", "duty")
            tech_text = _first(raw, "tech", "technologies", "tech_stack", "stack", "skills", "technology")
            body = " ".join(_text(raw.get(k)) for k in ("description", "desc", "content", "responsibilities",
                                                        "achievements", "highlights", "details"))
        else:
            body = _text(raw)
            name, role, tech_text = _short_name(body), "", ""
        if not name and not body and not tech_text:
            continue
        tech = []
        for canonical, written in vocab.find(tech_text):
            note(canonical, written, "project_tech", name)
            tech.append(written)
        for canonical, written in vocab.find(f"{name} {body}"):
            note(canonical, written, "project", name)
            if len(tech) < 3 and written not in tech and re.search(r"[A-Za-z]", written):
                tech.append(written)
        if name:
            own.append(OwnItem("project", name, role, tech))

    for raw in _as_list(resume.get("work_experience"), "work_experience"):
        if isinstance(raw, dict):
            company = _first(raw, "company", "company_name", "employer", "organization")
            title = _first(raw, "title", "position", "role", "job_title")
            body = " ".join(_text(raw.get(k)) for k in ("description", "desc", "content", "responsibilities",
                                                        "achievements", "details"))
        else:
            body = _text(raw)
            parts = _short_name(body, 40).split()
            company = parts[0] if parts and len(parts[0]) <= 20 else ""
            title = parts[1] if len(parts) > 1 and len(parts[1]) <= 12 else ""
        for canonical, written in vocab.find(f"{title} {body}"):
            note(canonical, written, "experience")
        if company:
            own.append(OwnItem("experience", company, title))

    for key in ("self_evaluation", "expected_position"):
        for canonical, written in vocab.find(_text(resume.get(key))):
            note(canonical, written, "other")

    position_text = " ".join(_text(interview.get(k)) for k in
                             ("position_name", "position_description", "position_requirements"))
    position_terms = {canonical for canonical, _ in vocab.find(position_text)}
    return Profile(terms, unknown, own, position_terms)


# --- selection ---------------------------------------------------------------------------------
def _seed(resume: dict, interview: dict) -> int:
    interview_id = _text(interview.get("id") or interview.get("interview_id") or interview.get("_id"))
    content = json.dumps(resume, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256(f"{interview_id}\x00{content}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def _position_type(interview: dict) -> str:
    ptype = _text(interview.get("position_type")).lower()
    if ptype in POSITION_TYPES:
        return ptype
    if ptype:
        raise BankError(f"不支持的岗位类型：{ptype}（应为 backend、frontend、pm、qa 或 algo）")
    name = _text(interview.get("position_name"))
    for words, guess in ((("前端", "frontend"), "frontend"), (("产品",), "pm"), (("测试", "质量"), "qa"),
                         (("算法", "机器学习", "模型"), "algo"), (("后端", "服务端", "开发"), "backend")):
        if any(w in name for w in words):
            return guess
    raise BankError("面试缺少岗位类型 position_type（应为 backend、frontend、pm、qa 或 algo）")


def plan_slots(count: int) -> list[str]:
    slots = list(_BASE_PLAN[:count])
    while len(slots) < count:
        n = len(slots)
        slots.append("behavioral" if n % 5 == 4 else ("skill" if n % 2 else "fundamental"))
    return slots


class Selector:
    def __init__(self, bank: Bank, profile: Profile, ptype: str, rng: random.Random):
        self.bank, self.profile, self.ptype, self.rng = bank, profile, ptype, rng
        self.used_ids: set[str] = set()
        self.used_texts: set[str] = set()
        self.covered: set[str] = set()        # resume topics already asked about
        self.asked: set[str] = set()          # every topic already asked about
        self.own_used: set[int] = set()
        self.project_asked = False
        self.unknown_used: set[str] = set()
        self.jitter = {q.id: rng.random() for qs in bank.questions.values() for q in qs}

    # -- scoring
    def _resume_score(self, q: BankQuestion) -> tuple[float, Term | None]:
        score, best = 0.0, None
        for i, topic in enumerate(q.topics):
            term = self.profile.terms.get(topic)
            if term is None:
                continue
            w = term.weight * (1.0 if i == 0 else 0.6)
            if topic in self.covered:
                w *= COVERED_FACTOR
            score += w
            # Name the question's own (first matching) topic in the prefix, if it is nameable.
            if best is None or (term.nameable and not best.nameable):
                best = term
        return score, best

    def _position_score(self, q: BankQuestion) -> float:
        return sum(POSITION_WEIGHT * (COVERED_FACTOR if t in self.asked else 1.0)
                   for t in q.topics if t in self.profile.position_terms)

    def _take(self, q: BankQuestion, text: str, kind: str, topic: str) -> Question:
        self.used_ids.add(q.id)
        self.used_texts.add(text)
        self.covered.update(t for t in q.topics if t in self.profile.terms)
        self.asked.update(q.topics)
        return Question(text=text, kind=kind, topic=topic, source="bank", reference_points=list(q.points))

    # -- the four kinds
    def skill(self) -> Question | None:
        best = None
        for ptype, qs in self.bank.questions.items():
            factor = 1.0 if ptype == self.ptype else CROSS_BANK_FACTOR
            for q in qs:
                if q.kind != "skill" or q.id in self.used_ids or q.text in self.used_texts:
                    continue
                score, term = self._resume_score(q)
                if (term is None or not term.nameable
                        or (ptype != self.ptype and term.source not in ("skill", "project_tech"))):
                    continue
                total = factor * (score + 0.5 * self._position_score(q)) + 0.8 * self.jitter[q.id]
                if best is None or total > best[0]:
                    best = (total, q, term)
        if best is not None:
            _, q, term = best
            return self._take(q, self._prefixed(q.text, term), "skill", term.canonical)
        return self._unknown_skill() or self._position_skill()

    def _position_skill(self) -> Question | None:
        """No resume match left: a skill question the position's requirements ask for."""
        best = None
        for q in self.bank.questions[self.ptype]:
            if q.kind != "skill" or q.id in self.used_ids or q.text in self.used_texts:
                continue
            score = sum(POSITION_WEIGHT for t in q.topics
                        if t in self.profile.position_terms and t not in self.asked)
            if score > 0 and (best is None or score + self.jitter[q.id] > best[0]):
                best = (score + self.jitter[q.id], q)
        if best is None:
            return None
        q = best[1]
        return self._take(q, q.text, "skill", q.topics[0])

    def _prefixed(self, text: str, term: Term) -> str:
        prefixes = self.bank.templates["skill_prefix"]
        if not term.nameable:
            return text
        if term.source == "project_tech" or (term.source == "project" and term.project):
            pattern = self.rng.choice(prefixes["project"])
            return pattern.format(project=term.project, skill=term.display) + text
        if term.source == "skill":
            return self.rng.choice(prefixes["skill"]).format(skill=term.display) + text
        return text

    def _unknown_skill(self) -> Question | None:
        for skill in self.profile.unknown_skills:
            if skill in self.unknown_used:
                continue
            self.unknown_used.add(skill)
            tpl = self.rng.choice(self.bank.templates["skill_generic"])
            text = tpl["text"].format(skill=skill)
            if text in self.used_texts:
                continue
            self.used_texts.add(text)
            return Question(text=text, kind="skill", topic=skill, source="bank",
                            reference_points=list(tpl["points"]))
        return None

    def _from_position(self, kind: str, resume_weight: float) -> Question | None:
        best = None
        for q in self.bank.questions[self.ptype]:
            if q.kind != kind or q.id in self.used_ids or q.text in self.used_texts:
                continue
            score = resume_weight * self._resume_score(q)[0] + self._position_score(q)
            total = score + 2.0 * self.jitter[q.id]
            if best is None or total > best[0]:
                best = (total, q)
        if best is None:
            return None
        q = best[1]
        return self._take(q, q.text, kind, q.topics[0])

    def fundamental(self) -> Question | None:
        return self._from_position("fundamental", 0.5)

    def behavioral(self) -> Question | None:
        return self._from_position("behavioral", 0.2)

    def project(self) -> Question | None:
        own = self.profile.own
        order = [i for i in range(len(own)) if i not in self.own_used]
        if not order:
            return None
        used_kinds = {own[i].kind for i in self.own_used}
        # First a project (the resume's first ones matter most), then a job if there is one.
        projects = [i for i in order if own[i].kind == "project"][:2]
        jobs = [i for i in order if own[i].kind == "experience"][:2]
        if "project" in used_kinds and jobs:
            pick = self.rng.choice(jobs)
        elif projects:
            pick = self.rng.choice(projects)
        else:
            pick = self.rng.choice(jobs)
        self.own_used.add(pick)
        item = own[pick]
        tpls = self.bank.templates["project" if item.kind == "project" else "experience"]
        specific = list(tpls.get(self.ptype, []))
        pool = specific + list(tpls.get("common", []))
        # Asking why a project chose Redis says more than asking why it chose Java.
        tools = [t for t in item.tech if self.bank.vocab.canonical(t) not in LANGUAGES] or item.tech
        values = {"project": item.name, "company": item.name, "role": item.role, "title": item.role,
                  "tech": self.rng.choice(tools[:3]) if tools else ""}
        usable = [t for t in pool if all(values.get(k) for k in re.findall(r"{(\w+)}", t["text"]))]
        self.rng.shuffle(usable)
        # The first project question lets the candidate introduce it (naming the role when known);
        # later ones dig into a project's difficulties, choices and hindsight.
        first = item.kind == "project" and not self.project_asked
        usable.sort(key=lambda t: (bool(t.get("opener")) != first, first and t not in specific,
                                   "{role}" not in t["text"]))
        if item.kind == "project":
            self.project_asked = True
        for tpl in usable:
            text = tpl["text"].format(**values)
            if text not in self.used_texts:
                self.used_texts.add(text)
                return Question(text=text, kind="project", topic=item.name, source="bank",
                                reference_points=list(tpl["points"]))
        return None

    def rest(self) -> Question | None:
        """Everything relevant is used up (a long interview): any unused question of the position."""
        left = [q for q in self.bank.questions[self.ptype]
                if q.id not in self.used_ids and q.text not in self.used_texts]
        if not left:
            return None
        q = max(left, key=lambda q: (q.kind == "skill", self.jitter[q.id]))
        return self._take(q, q.text, q.kind, q.topics[0])

    def any_kind(self, kind: str) -> Question | None:
        return getattr(self, kind)()


def select_questions(bank: Bank, resume: dict, interview: dict, count: int) -> list[Question]:
    if resume is None:                 # no resume content: position fundamentals only
        resume = {}
    if not isinstance(resume, dict):
        raise BankError("简历格式不正确，应为对象")
    if not isinstance(interview, dict):
        raise BankError("面试信息格式不正确，应为对象")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise BankError(f"题目数量必须是 1 到 {MAX_COUNT} 之间的整数")
    ptype = _position_type(interview)
    profile = analyse(bank, resume, interview)
    selector = Selector(bank, profile, ptype, random.Random(_seed(resume, interview)))
    picked: list[tuple[int, int, Question]] = []
    for n, slot in enumerate(plan_slots(count)):
        for kind in _FALLBACK[slot]:
            q = selector.any_kind(kind)
            if q is not None:
                picked.append((_KIND_ORDER[q.kind], n, q))
                break
    picked.sort(key=lambda item: (item[0], item[1]))
    return [q for _, _, q in picked]


# --- the plugin --------------------------------------------------------------------------------
_DEFAULT_BANK: Bank | None = None


def default_bank() -> Bank:
    global _DEFAULT_BANK
    if _DEFAULT_BANK is None:
        _DEFAULT_BANK = Bank.load()
    return _DEFAULT_BANK


class BankQuestionSource:
    name = "bank"

    def __init__(self, bank: Bank):
        self.bank = bank

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "BankQuestionSource":
        extra = ctx.settings.get("extra_dir")
        if extra:
            path = Path(extra)
            if not path.is_absolute():
                path = Path.cwd() / path
            return cls(Bank.load(DATA_DIR, [path]))
        return cls(default_bank())

    async def generate(self, request: QuestionRequest) -> list[Question]:
        return select_questions(self.bank, request.resume, request.interview, request.count)

    async def follow_up(self, request: FollowUpRequest) -> str | None:
        return None          # the bank plans questions only; follow-ups come from the LLM source


SETTINGS = {"extra_dir": Setting(None, str)}     # more <position_type>.json question files

@hookimpl
def register_question_sources(register):
    register("bank", BankQuestionSource.from_context, settings=SETTINGS)
