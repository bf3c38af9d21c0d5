"""Questions, follow-ups and reports from any OpenAI-compatible chat model.

One plugin serves hosted models (OpenAI, DeepSeek, Qwen/DashScope, Moonshot …) and local servers
(Ollama, vLLM, llama.cpp / llama-cpp-python): they all speak the OpenAI chat API. Registers the
question source ``llm`` and the scorer ``llm``; settings live in ``[plugins.llm]`` of plugins.toml:

    base_url          endpoint, e.g. "https://api.deepseek.com/v1" or "http://127.0.0.1:8080/v1".
                      Unset = no model configured: ``generate``/``score`` raise "未配置大模型" at once
                      and the engine falls back to the next source/scorer.
    model             model name sent to the endpoint
    api_key_env       environment variable holding the key (default MIANSHI_LLM_API_KEY; local
                      servers accept any key)
    timeout_seconds   per request (default 30)
    max_retries       extra attempts after a failure (default 2)
    backoff_seconds   first retry delay, doubled each time (default 1.0), capped by backoff_max_seconds
    temperature       default 0.3
    json_mode         "json_schema" (OpenAI structured outputs), "json_object" (JSON mode; with
                      json_object_schema = true the schema rides along as llama-cpp-python and
                      some servers support, constraining decoding), or "none" (prompt only)
    schema_max_length false: leave maxLength out of the schema sent (faster llama.cpp grammars);
                      long texts are clipped after parsing either way
    require_chinese   reject (and retry) questions/summaries without Chinese characters (default true)
    require_mix       with 3+ questions, reject a plan without a behavioural question or without a
                      question on the candidate's projects/skills (default true)
    prompt_version    which prompts/<task>.<version>.md to use (default "v1")
    system_role       false for models without a system role (Gemma): the instructions then open
                      the user message, still ahead of and apart from the data block
    max_tokens        reply budget (default 2048); the *_max_chars settings clip texts

Prompts are files in ``prompts/``. The resume, position and answers are passed as a JSON data block
in the user message (``<data>…</data>``, with ``<``, ``>`` and backquotes escaped so the data cannot
close the block); nothing the candidate wrote is ever part of the instructions. Every reply is parsed
and checked against the task's JSON schema; a failure (timeout, 429/5xx, connection error, invalid
JSON or schema) is retried with exponential backoff, then raised, so the engine falls back to the
built-in question bank / the heuristic scorer.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.events import POSITION_TYPE_LABELS
from core.hookspecs import hookimpl
from core.interfaces import CorrectionRequest, FollowUpRequest, PluginContext, Question, QuestionRequest
from core.settings import Setting, SettingsError, apply

log = logging.getLogger("mianshi.plugins.llm")

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
JSON_MODES = ("json_schema", "json_object", "none")
QUESTION_KINDS = ["project", "skill", "fundamental", "behavioral"]
CJK = re.compile(r"[\u4e00-\u9fff]")


class LlmError(RuntimeError):
    """The model could not give a usable answer; the message says why (Chinese first)."""


class LlmNotConfigured(LlmError):
    pass


class LlmConfigError(SettingsError):
    pass


# --- a small JSON-schema validator (the subset our schemas use) ------------------------------------
_TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
}


def _type_ok(value: Any, expected: str) -> bool:
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[expected])


def validate(instance: Any, schema: dict, path: str = "$") -> list[str]:
    """Errors of ``instance`` against ``schema`` (type, enum, properties, required,
    additionalProperties, items, minItems, maxItems, minLength, minimum, maximum). ``maxLength`` is
    not an error: long strings are clipped by the caller, since hosted models do not all honour it."""
    errors: list[str] = []
    if "enum" in schema and instance not in schema["enum"]:
        return [f"{path}: {instance!r} is not one of {schema['enum']}"]
    expected = schema.get("type")
    if expected is not None:
        types = expected if isinstance(expected, list) else [expected]
        if not any(_type_ok(instance, t) for t in types):
            return [f"{path}: expected {expected}, got {type(instance).__name__}"]
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in instance:
                errors.append(f"{path}: missing property {key!r}")
        if schema.get("additionalProperties") is False:
            for key in instance:
                if key not in props:
                    errors.append(f"{path}: unexpected property {key!r}")
        for key, sub in props.items():
            if key in instance:
                errors += validate(instance[key], sub, f"{path}.{key}")
    elif isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            errors.append(f"{path}: {len(instance)} items, at least {schema['minItems']} required")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            errors.append(f"{path}: {len(instance)} items, at most {schema['maxItems']} allowed")
        if "items" in schema:
            for i, item in enumerate(instance):
                errors += validate(item, schema["items"], f"{path}[{i}]")
    elif isinstance(instance, str):
        if len(instance.strip()) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
    elif isinstance(instance, (int, float)) and not isinstance(instance, bool):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: {instance} < {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: {instance} > {schema['maximum']}")
    return errors


def strip_keys(schema: Any, key: str) -> Any:
    """A copy of ``schema`` without ``key`` anywhere (e.g. maxLength, which makes llama.cpp's
    grammar-constrained decoding much slower)."""
    if isinstance(schema, dict):
        return {k: strip_keys(v, key) for k, v in schema.items() if k != key}
    if isinstance(schema, list):
        return [strip_keys(v, key) for v in schema]
    return schema


def clip(text: Any, limit: int) -> str:
    text = str(text or "").strip()
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


# --- prompts and data ------------------------------------------------------------------------------
def load_prompt(task: str, version: str, prompts_dir: Path = PROMPTS_DIR) -> str:
    path = prompts_dir / f"{task}.{version}.md"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise LlmConfigError(f"[plugins.llm] prompt file not found: {path}") from None
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S).strip()  # notes for maintainers, not the model
    if not text:
        raise LlmConfigError(f"[plugins.llm] prompt file is empty: {path}")
    return text


def data_block(data: Any) -> str:
    """The task's input as JSON inside ``<data>…</data>``. ``<``, ``>``, ``&`` and backquotes are
    \\u-escaped (still valid JSON, same meaning), so no resume or answer can close the block or open a
    code fence: it can only ever be read as data."""
    text = json.dumps(data, ensure_ascii=False, indent=1, default=str)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("`", "\\u0060")):
        text = text.replace(ch, esc)
    return f"<data>\n{text}\n</data>"


def parse_json_reply(content: str | None) -> Any:
    """The JSON object in a reply; tolerates a ```json fence or text around one object."""
    if not content or not content.strip():
        raise ValueError("empty reply")
    text = content.strip()
    fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
    if fence:
        text = fence.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(text[start:end + 1])
            except json.JSONDecodeError:
                pass
        raise ValueError(f"invalid JSON ({first.msg} at {first.pos})") from None


# --- settings --------------------------------------------------------------------------------------
@dataclass
class LlmSettings:
    base_url: str = ""
    model: str = ""
    api_key_env: str = "MIANSHI_LLM_API_KEY"
    timeout_seconds: float = 30.0
    max_retries: int = 2
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 20.0
    temperature: float = 0.3
    json_mode: str = "json_object"
    json_object_schema: bool = True
    json_schema_strict: bool = False
    schema_max_length: bool = True
    prompt_version: str = "v1"
    system_role: bool = True
    max_tokens: int = 2048
    require_chinese: bool = True
    require_mix: bool = True
    question_max_chars: int = 120
    follow_up_max_chars: int = 100
    report_field_max_chars: int = 120
    reference_max_chars: int = 300
    summary_max_chars: int = 300
    answer_max_chars: int = 1500

    @classmethod
    def declared(cls) -> dict[str, Setting]:
        """The ``[plugins.llm]`` table as declared settings: every field, numbers not negative."""
        out = {}
        for key in cls.__dataclass_fields__:
            default = getattr(cls, key)
            number = isinstance(default, (int, float)) and not isinstance(default, bool)
            out[key] = Setting(default, minimum=0 if number else None,
                               choices=JSON_MODES if key == "json_mode" else None)
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> "LlmSettings":
        try:
            values = apply("[plugins.llm]", cls.declared(), raw)
        except SettingsError as exc:
            raise LlmConfigError(str(exc)) from None
        settings = cls(**values)
        if settings.timeout_seconds <= 0:
            raise LlmConfigError("[plugins.llm] timeout_seconds must be positive")
        if settings.base_url and not settings.model:
            raise LlmConfigError("[plugins.llm] base_url is set but model is not")
        return settings


# --- the client ------------------------------------------------------------------------------------
class LlmClient:
    """Chat calls that return schema-checked JSON, with retries and backoff."""

    def __init__(self, settings: LlmSettings, clock, env: dict | None = None,
                 prompts_dir: Path = PROMPTS_DIR) -> None:
        self.settings = settings
        self.clock = clock
        self.prompts_dir = prompts_dir
        self.configured = bool(settings.base_url)
        self._client = None
        self._prompts: dict[str, str] = {}
        self.preamble = ""
        if not self.configured:
            return
        import openai  # imported lazily: a server without an LLM never needs it

        self._openai = openai
        env = os.environ if env is None else env
        api_key = env.get(settings.api_key_env) or os.environ.get(settings.api_key_env) or "not-needed"
        self._client = openai.AsyncOpenAI(base_url=settings.base_url, api_key=api_key,
                                          timeout=settings.timeout_seconds, max_retries=0)
        self.preamble = self.prompt("data_preamble")

    def prompt(self, task: str) -> str:
        if task not in self._prompts:
            self._prompts[task] = load_prompt(task, self.settings.prompt_version, self.prompts_dir)
        return self._prompts[task]

    def prompt_id(self, task: str) -> str:
        return f"{task}.{self.settings.prompt_version}"

    def messages(self, task: str, data: Any) -> list[dict]:
        data_message = f"{self.preamble}\n\n{data_block(data)}"
        if not self.settings.system_role:
            # Models without a system role (Gemma: llama.cpp's "gemma" chat format drops system
            # messages): the instructions open the user turn, the data block follows them.
            return [{"role": "user", "content": f"{self.prompt(task)}\n\n{data_message}"}]
        return [{"role": "system", "content": self.prompt(task)},
                {"role": "user", "content": data_message}]

    def response_format(self, name: str, schema: dict) -> dict | None:
        mode = self.settings.json_mode
        if not self.settings.schema_max_length:
            schema = strip_keys(schema, "maxLength")
        if mode == "json_schema":
            return {"type": "json_schema",
                    "json_schema": {"name": name, "schema": schema, "strict": self.settings.json_schema_strict}}
        if mode == "json_object":
            out: dict = {"type": "json_object"}
            if self.settings.json_object_schema:
                out["schema"] = schema
            return out
        return None

    def _retry_delay(self, attempt: int, exc: BaseException | None) -> float:
        s = self.settings
        delay = min(s.backoff_seconds * (2 ** attempt), s.backoff_max_seconds)
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                retry_after = float(response.headers.get("retry-after", ""))
                delay = min(max(delay, retry_after), s.backoff_max_seconds)
            except (TypeError, ValueError):
                pass
        return delay

    def _retryable(self, exc: BaseException) -> bool:
        o = self._openai
        if isinstance(exc, (o.APITimeoutError, o.APIConnectionError, o.RateLimitError,
                            o.InternalServerError, ValueError, asyncio.TimeoutError)):
            return True
        if isinstance(exc, o.APIStatusError):
            return exc.status_code in (408, 409, 425, 429) or exc.status_code >= 500
        return False

    @staticmethod
    def _describe(exc: BaseException) -> str:
        status = getattr(exc, "status_code", None)
        name = type(exc).__name__
        text = str(exc).splitlines()[0] if str(exc) else name
        return f"{name}{f' {status}' if status else ''}: {text[:200]}"

    async def chat_json(self, task: str, data: Any, schema: dict, *, check=None,
                        max_tokens: int | None = None) -> dict:
        """Ask for ``task`` with ``data``; return the reply parsed and validated against ``schema``
        (and by ``check(obj) -> list[str]`` if given). Raises LlmError after the last retry."""
        if not self.configured:
            raise LlmNotConfigured("未配置大模型（[plugins.llm] base_url 为空）")
        s = self.settings
        kwargs: dict = {"model": s.model, "messages": self.messages(task, data),
                        "temperature": s.temperature, "max_tokens": max_tokens or s.max_tokens}
        fmt = self.response_format(task, schema)
        if fmt is not None:
            kwargs["response_format"] = fmt
        errors: list[str] = []
        attempts = s.max_retries + 1
        for attempt in range(attempts):
            exc: BaseException | None = None
            try:
                reply = await self._client.chat.completions.create(**kwargs)
                if not getattr(reply, "choices", None):
                    raise ValueError("reply has no choices")
                content = reply.choices[0].message.content
                obj = parse_json_reply(content)
                problems = validate(obj, schema)
                if not problems and check is not None:
                    problems = check(obj)
                if problems:
                    raise ValueError("reply does not match the schema: " + "; ".join(problems[:5]))
                return obj
            except asyncio.CancelledError:
                raise
            except Exception as e:  # classified below: retry or give up
                exc = e
                errors.append(self._describe(e))
                log.info("llm %s attempt %d/%d failed: %s", task, attempt + 1, attempts, errors[-1])
                if not self._retryable(e):
                    break
            if attempt + 1 < attempts:
                await self.clock.sleep(self._retry_delay(attempt, exc))
        raise LlmError(f"大模型调用失败（{self.prompt_id(task)}，{len(errors)} 次尝试）：" + " | ".join(errors))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


# --- data handed to the prompts ---------------------------------------------------------------------
RESUME_FIELDS = ("name", "expected_position", "education", "work_experience", "projects", "skills",
                 "self_evaluation")
POSITION_FIELDS = ("position_name", "position_type", "company_name", "position_description",
                   "position_requirements")


def position_data(interview: dict) -> dict:
    out = {k: interview.get(k) for k in POSITION_FIELDS if interview.get(k)}
    if interview.get("position_type") in POSITION_TYPE_LABELS:
        out["position_type_zh"] = POSITION_TYPE_LABELS[interview["position_type"]]
    return out


def resume_data(resume: dict) -> dict:
    return {k: resume.get(k) for k in RESUME_FIELDS if resume.get(k)}


def _chinese_problems(items: list[tuple[str, str]], required: bool) -> list[str]:
    if not required:
        return []
    return [f"{where}: not Chinese" for where, text in items if text and not CJK.search(text)]


def _unique_questions(questions: list[dict]) -> list[dict]:
    """Drop repeated questions (same text ignoring punctuation and spaces); order kept."""
    seen, out = set(), []
    for q in questions:
        key = re.sub(r"[\W_]", "", q["text"]).lower()
        if key and key not in seen:
            seen.add(key)
            out.append(q)
    return out


# --- the question source --------------------------------------------------------------------------
class _LlmPlugin:
    """What the question source and the scorer share: one client per configuration."""
    name = "llm"

    def __init__(self, client: LlmClient) -> None:
        self.client = client
        self.settings = client.settings

    @classmethod
    def from_context(cls, ctx: PluginContext):
        return cls(shared_client(ctx))

    async def aclose(self) -> None:
        await self.client.aclose()

    @property
    def available(self) -> bool:
        return self.client.configured


class LlmQuestionSource(_LlmPlugin):
    def questions_schema(self, count: int) -> dict:
        return {
            "type": "object",
            "properties": {"questions": {
                "type": "array", "minItems": count, "maxItems": count,
                "items": {"type": "object",
                          "properties": {
                              "text": {"type": "string", "minLength": 4,
                                       "maxLength": self.settings.question_max_chars},
                              "kind": {"type": "string", "enum": QUESTION_KINDS},
                              "topic": {"type": "string", "maxLength": 20}},
                          "required": ["text", "kind", "topic"], "additionalProperties": False}}},
            "required": ["questions"], "additionalProperties": False}

    async def generate(self, request: QuestionRequest) -> list[Question]:
        count = max(1, int(request.count))
        data = {"position": position_data(request.interview), "resume": resume_data(request.resume),
                "question_count": count}

        def check(obj: dict) -> list[str]:
            texts = [(f"questions[{i}].text", q["text"]) for i, q in enumerate(obj["questions"])]
            problems = _chinese_problems(texts, self.settings.require_chinese)
            unique = len(_unique_questions(obj["questions"]))
            if unique < (count + 1) // 2:
                problems.append(f"$.questions: only {unique} different question(s) of {count}")
            kinds = [q["kind"] for q in obj["questions"]]
            if self.settings.require_mix and count >= 3:
                if "behavioral" not in kinds:
                    problems.append("$.questions: no behavioral question")
                if not {"project", "skill"} & set(kinds):
                    problems.append("$.questions: no question on the candidate's projects or skills")
            return problems

        obj = await self.client.chat_json("questions", data, self.questions_schema(count), check=check)
        chosen = _unique_questions(obj["questions"])[:count]
        # behavioural questions close the plan, as the prompt asks (stable order otherwise)
        chosen.sort(key=lambda q: q["kind"] == "behavioral")
        return [Question(text=clip(q["text"], self.settings.question_max_chars), kind=q["kind"],
                         topic=clip(q.get("topic", ""), 20), source=self.name) for q in chosen]

    def follow_up_schema(self) -> dict:
        return {"type": "object",
                "properties": {"follow_up": {"type": "boolean"},
                               "question": {"type": "string", "maxLength": self.settings.follow_up_max_chars}},
                "required": ["follow_up", "question"], "additionalProperties": False}

    async def follow_up(self, request: FollowUpRequest) -> str | None:
        # how many follow-ups a question gets is the phase's call ([plugins.question] max_follow_ups)
        if not self.client.configured:
            return None
        if not request.answer or not request.answer.strip():
            return None
        data = {"position": position_data(request.interview),
                "resume": resume_data(request.resume),
                "question": {"text": request.question.text, "kind": request.question.kind,
                             "topic": request.question.topic},
                "answer": clip(request.answer, self.settings.answer_max_chars),
                "earlier_questions": [e.get("question") if isinstance(e, dict) else str(e)
                                      for e in (request.history or [])][-10:]}

        def check(obj: dict) -> list[str]:
            if obj["follow_up"] and len(obj["question"].strip()) < 4:
                return ["$.question: empty although follow_up is true"]
            if obj["follow_up"]:
                return _chinese_problems([("$.question", obj["question"])], self.settings.require_chinese)
            return []

        obj = await self.client.chat_json("follow_up", data, self.follow_up_schema(), check=check,
                                          max_tokens=400)
        if not obj["follow_up"]:
            return None
        return clip(obj["question"], self.settings.follow_up_max_chars)


# --- the scorer -----------------------------------------------------------------------------------
class LlmScorer(_LlmPlugin):
    def report_schema(self, count: int) -> dict:
        s = self.settings
        text = lambda n: {"type": "string", "maxLength": n}  # noqa: E731
        cites = {"type": "array", "items": text(40), "maxItems": 20}     # evidence ids (core/report.py)
        return {
            "type": "object",
            "properties": {
                "questions": {"type": "array", "minItems": count, "maxItems": count,
                              "items": {"type": "object",
                                        "properties": {"good": text(s.report_field_max_chars),
                                                       "missing": text(s.report_field_max_chars),
                                                       "reference_answer": text(s.reference_max_chars),
                                                       "score": {"type": "integer", "enum": list(range(11))},
                                                       "cites": cites},
                                        "required": ["good", "missing", "reference_answer", "score", "cites"],
                                        "additionalProperties": False}},
                "summary": text(s.summary_max_chars),
                "overall_score": {"type": "integer", "enum": list(range(11))},
                "code_cites": cites},
            "required": ["questions", "summary", "overall_score", "code_cites"], "additionalProperties": False}

    async def score(self, record: dict) -> dict:
        from core.report import cheat_section, code_summary, qa_items, scored_sections

        if not self.client.configured:
            raise LlmNotConfigured("未配置大模型（[plugins.llm] base_url 为空）")
        items = qa_items(record)
        code = code_summary(record)
        cheats = cheat_section(record)
        data = {"position": position_data(record),
                "questions": [{"n": i + 1, "question": it["question"], "kind": it["kind"],
                               "answer": clip(it["answer"], self.settings.answer_max_chars),
                               "reference_points": it["reference_points"],
                               "utterances": [{"id": e["id"], "text": clip(e.get("text"), self.settings.answer_max_chars)}
                                              for e in it.get("evidence") or []]} for i, it in enumerate(items)],
                "code": {**{k: code[k] for k in ("problem_title", "attempted", "final_passed", "best_passed", "total",
                                                 "language") if k in code},
                         "submissions": [{"id": e["id"], "passed": e["passed"], "total": e["total"]}
                                         for e in code.get("evidence") or []]},
                "cheat_events": [{"id": c["id"], "kind": c["kind"], "seconds": c.get("seconds")} for c in cheats]}
        if not items:
            raise LlmError("没有可评分的问题")

        def check(obj: dict) -> list[str]:
            texts = [("$.summary", obj["summary"])]
            return _chinese_problems(texts, self.settings.require_chinese)

        obj = await self.client.chat_json("report", data, self.report_schema(len(items)), check=check)
        s = self.settings
        questions = []
        for it, q in zip(items, obj["questions"]):
            # An empty answer cannot earn points whatever the model says.
            score = q["score"] if it["answer"].strip() else 0
            questions.append({"index": it["index"], "question": it["question"], "kind": it["kind"],
                              "phase": it.get("phase"), "answer": it["answer"], "score": score,
                              "good": clip(q["good"], s.report_field_max_chars),
                              "missing": clip(q["missing"], s.report_field_max_chars),
                              "reference_answer": clip(q["reference_answer"], s.reference_max_chars),
                              "cites": list(q["cites"])})      # unknown ids are dropped by core/report.py
        return {"overall_score": obj["overall_score"], "summary": clip(obj["summary"], s.summary_max_chars),
                "questions": questions, "code": code, "code_cites": list(obj["code_cites"]), "cheat_events": cheats,
                "sections": scored_sections(record, questions),
                "scorer": self.name, "prompt_version": self.client.prompt_id("report")}


# --- the transcript corrector ----------------------------------------------------------------------
class LlmCorrector(_LlmPlugin):
    """Fixes sound-alike errors of a recognised final against the question and the resume's terms
    (``core.correction`` guards what it may change)."""

    def correction_schema(self, text: str) -> dict:
        return {"type": "object",
                "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 2 * len(text) + 20}},
                "required": ["text"], "additionalProperties": False}

    async def correct(self, request: CorrectionRequest) -> str | None:
        if not self.client.configured or not request.text.strip():
            return None
        data = {"question": clip(request.question, self.settings.question_max_chars * 2),
                "terms": [clip(t, 40) for t in request.terms[:80]],
                "text": clip(request.text, self.settings.answer_max_chars)}
        obj = await self.client.chat_json("correct_final", data, self.correction_schema(request.text),
                                          max_tokens=max(64, 3 * len(request.text) + 32))
        return obj["text"].strip()


# --- registration ---------------------------------------------------------------------------------
def shared_client(ctx: PluginContext) -> LlmClient:
    """A client for ``[plugins.llm]`` (the question source and the scorer are both named ``llm``, so
    they read the same table; each gets its own connection pool)."""
    settings = LlmSettings.from_dict(dict(ctx.settings or {}))
    env = dict(ctx.config.get("_env", {})) if isinstance(ctx.config, dict) else None
    client = LlmClient(settings, ctx.clock, env=env)
    if not client.configured:
        log.info("[plugins.llm] base_url is not set: the llm question source and scorer are off")
    return client


@hookimpl
def register_question_sources(register):
    register("llm", LlmQuestionSource.from_context, settings=LlmSettings.declared())


@hookimpl
def register_scorers(register):
    register("llm", LlmScorer.from_context, settings=LlmSettings.declared())


@hookimpl
def register_correctors(register):
    register("llm", LlmCorrector.from_context, settings=LlmSettings.declared())
