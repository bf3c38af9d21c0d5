"""The heuristic scorer: a deterministic report without any language model.

The fallback of ``[engine] scorers`` (and the report writer when no LLM is configured). Same input and
output as every scorer (``core.interfaces.Scorer``). Per question, from 0 to 10:

* ``length``   — how much the candidate said: min(1, characters / ``full_answer_chars``), where a
  Chinese character or a Latin word counts as one;
* ``terms``    — share of the question's key terms (Latin words such as Redis/TCP, the topic, and the
  Chinese content words left after removing question phrasing) that the answer mentions;
* ``points``   — share of the question bank's ``reference_points`` (要点) the answer covers (a point
  counts as covered when most of its key terms appear), when the question has any.

score = 10 × (0.35·length + 0.25·terms + 0.40·points) with reference points, else
10 × (0.6·length + 0.4·terms); an empty answer scores 0 and a bare "不知道/不会" at most 1. Overall:
the mean question score (follow-ups weigh half), mixed 80/20 with the code score (best submission's
passed/total × 10) when the code phase was attempted. Cheat events are listed for human review and
never change a score. Each question ``cites`` the utterances its score rests on (those saying a key
term or a covered point; all of the answer's when none does) and ``code_cites`` the final and the best
submission (core/report.py, "evidence").
Everything the candidate says is only counted, never obeyed, so an answer saying "给我满分" earns
nothing for it.
"""
from __future__ import annotations

import re

from core.settings import Setting
from core.hookspecs import hookimpl
from core.interfaces import PluginContext
from core.report import cheat_section, code_summary, qa_items, scored_sections

LATIN = re.compile(r"[A-Za-z][A-Za-z0-9+#.\-]*[A-Za-z0-9+#]|[A-Za-z]")
CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
# Question phrasing and function words: never key terms.
STOP_PHRASES = sorted("""
请 你 您 我 我们 他 她 它 的 了 吗 呢 吧 啊 是 在 和 与 及 或 并 对 把 被 给 从 到 为 以 之 其 这 那 这个 那个 哪些 哪个
什么 怎么 怎样 如何 为什么 为何 是否 有没有 能否 可以 能不能 一下 一些 一个 一次 一种 介绍 说说 谈谈 讲讲 聊聊 描述 解释
简单 具体 详细 举例 例子 自己 你的 在你 你在 时候 过程 中的 中 里 上 下 有 没有 会 要 能 去 来 做 用 使用 哪 么 多 少 些 个
时 后 前 当 如果 就 都 也 还 又 很 最 更 比较 区别 理解 看法 认为 觉得 经历 遇到 曾经 过 呀 哦 嗯 等 等等 方面 情况 问题
""".split(), key=len, reverse=True)
DONT_KNOW = re.compile(r"^(我)?(不知道|不会|不清楚|不太清楚|不了解|没做过|没有|忘了|跳过)[。.!！,，\s]*$")
LATIN_STOP = {"a", "an", "the", "of", "to", "in", "and", "or", "is", "are", "what", "how", "why"}

KIND_REFERENCE = {
    "project": "建议按 STAR 展开：项目背景与目标、你的具体职责、关键技术方案及取舍、遇到的难点和解决办法、可量化的结果与复盘。",
    "skill": "建议说明该技术的核心原理、适用场景与局限、你在项目中的具体用法，以及踩过的坑和优化手段。",
    "fundamental": "建议先给出准确定义，再讲清原理和关键细节，对比相近概念，最后结合实际场景或例子说明。",
    "behavioral": "建议用 STAR 结构：具体情境、你的任务、你采取的行动（重点）、结果以及从中学到了什么。",
    "follow_up": "建议直接回应追问的关键点，补充具体细节、数据或例子，说明原因和取舍。",
}


def _count_units(text: str) -> int:
    return sum(len(run) for run in CJK_RUN.findall(text)) + len(LATIN.findall(text))


STOP_RE = re.compile("|".join(re.escape(p) for p in STOP_PHRASES))   # longest first


def _strip_stop(run: str) -> list[str]:
    """Split a run of Chinese characters on question phrasing; keep the content pieces."""
    return [p for p in STOP_RE.split(run) if len(p) >= 2]


def key_terms(text: str, bigrams: bool = True) -> list[str]:
    """Latin words and Chinese content words of ``text``; pieces longer than four characters are
    matched as their bigrams (``bigrams=False`` leaves them out: for display)."""
    terms: list[str] = []
    for word in LATIN.findall(text):
        if word.lower() not in LATIN_STOP and (len(word) > 1 or word.isupper()):
            terms.append(word.lower())
    for run in CJK_RUN.findall(text):
        for piece in _strip_stop(run):
            if len(piece) <= 4:
                terms.append(piece)
            elif bigrams:
                terms.extend(piece[i:i + 2] for i in range(len(piece) - 1))
    seen, out = set(), []
    for t in terms:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def _covered(term: str, answer_lower: str) -> bool:
    if term in answer_lower:
        return True
    # a 3–4 character Chinese term also counts when one of its bigrams is said ("缓存穿透" vs "穿透")
    return len(term) >= 3 and CJK_RUN.fullmatch(term) is not None and any(
        term[i:i + 2] in answer_lower for i in range(len(term) - 1))


def coverage(terms: list[str], answer: str) -> tuple[float, list[str], list[str]]:
    if not terms:
        return 0.0, [], []
    low = answer.lower()
    hit = [t for t in terms if _covered(t, low)]
    miss = [t for t in terms if t not in hit]
    return len(hit) / len(terms), hit, miss


class HeuristicScorer:
    name = "heuristic"
    available = True

    def __init__(self, settings: dict | None = None) -> None:
        settings = settings or {}
        self.full_answer_chars = int(settings.get("full_answer_chars", 150))
        if self.full_answer_chars <= 0:
            raise ValueError("[plugins.heuristic] full_answer_chars must be positive")

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "HeuristicScorer":
        return cls(ctx.settings)

    def score_question(self, item: dict) -> dict:
        answer = item["answer"].strip()
        terms = key_terms(item["question"] + " " + item.get("topic", ""))
        points = item.get("reference_points") or []
        t_cov, t_hit, t_miss = coverage(terms, answer)
        display = set(key_terms(item["question"] + " " + item.get("topic", ""), bigrams=False))
        covered_points, missing_points = [], []
        for point in points:
            p_terms = key_terms(point)
            p_cov = coverage(p_terms, answer)[0] if p_terms else (1.0 if point in answer else 0.0)
            (covered_points if p_cov >= 0.5 else missing_points).append(point)
        length = min(1.0, _count_units(answer) / self.full_answer_chars)
        if not answer:
            score = 0.0
        elif DONT_KNOW.match(answer):
            score = min(1.0, 10 * 0.6 * length)
        elif points:
            score = 10 * (0.35 * length + 0.25 * t_cov + 0.40 * len(covered_points) / len(points))
        else:
            score = 10 * (0.6 * length + 0.4 * t_cov)
        score = int(round(max(0.0, min(10.0, score))))

        good, missing = [], []
        if not answer:
            missing.append("没有作答。")
        else:
            if covered_points:
                good.append("覆盖了要点：" + "；".join(covered_points) + "。")
            if t_hit:
                good.append("回答涉及了题目的关键词：" + "、".join(t_hit[:6]) + "。")
            if length >= 0.8:
                good.append("回答较为充分，有一定展开。")
            if missing_points:
                missing.append("未覆盖的要点：" + "；".join(missing_points) + "。")
            shown = [t for t in t_miss if t in display]
            if shown and t_cov < 0.5:
                missing.append("没有提到：" + "、".join(shown[:6]) + "。")
            if length < 0.4:
                missing.append("回答过短，缺少细节、原理或实例。")
        kind = item.get("kind") or "fundamental"
        if points:
            reference = "参考要点：" + "；".join(points) + "。"
        else:
            reference = KIND_REFERENCE.get(kind, KIND_REFERENCE["fundamental"])
            if display:
                reference += "应围绕：" + "、".join(t for t in terms if t in display)[:60] + "。"
        return {"index": item["index"], "question": item["question"], "kind": kind, "answer": answer,
                "score": score, "cites": self.cites(item, t_hit, covered_points), "good": " ".join(good) or "无明显亮点。",
                "missing": " ".join(missing) or "无明显遗漏。", "reference_answer": reference}

    @staticmethod
    def cites(item: dict, hit_terms: list[str], covered_points: list[str]) -> list[str]:
        """The utterances the score rests on: those that say a key term or a covered point's term;
        every utterance of the answer when none does (the score is then its length)."""
        evidence = [e for e in item.get("evidence") or [] if isinstance(e, dict) and e.get("id")]
        terms = set(hit_terms) | {t for p in covered_points for t in key_terms(p)}
        said = [e["id"] for e in evidence if any(_covered(t, str(e.get("text") or "").lower()) for t in terms)]
        return said or [e["id"] for e in evidence]

    async def score(self, record: dict) -> dict:
        return self.build(record)

    def build(self, record: dict) -> dict:
        items = qa_items(record)
        questions = [dict(self.score_question(it), phase=it.get("phase")) for it in items]
        weights = [0.5 if it.get("kind") == "follow_up" or it.get("follow_up_of") is not None else 1.0
                   for it in items]
        q_mean = (sum(q["score"] * w for q, w in zip(questions, weights)) / sum(weights)) if questions else 0.0
        code = code_summary(record)
        cheats = cheat_section(record)
        overall = q_mean
        if code.get("attempted"):
            overall = 0.8 * q_mean + 0.2 * code.get("score", 0.0) if questions else code.get("score", 0.0)
        overall = round(max(0.0, min(10.0, overall)), 1)
        code_cites = [code[k] for k in ("final_id", "best_id") if code.get(k)]
        return {"overall_score": overall, "summary": self.summary(questions, code, cheats, overall),
                "questions": questions, "code": code, "code_cites": list(dict.fromkeys(code_cites)),
                "cheat_events": cheats, "scorer": self.name,
                "sections": scored_sections(record, questions)}

    @staticmethod
    def summary(questions: list[dict], code: dict, cheats: list[dict], overall: float) -> str:
        parts = [f"综合得分 {overall:g}/10（规则评分，未使用大模型）。"]
        if questions:
            answered = [q for q in questions if q["answer"]]
            parts.append(f"共 {len(questions)} 道题，作答 {len(answered)} 道。")
            if answered:
                best = max(answered, key=lambda q: q["score"])
                worst = min(questions, key=lambda q: q["score"])
                parts.append(f"表现最好的是“{best['question'][:30]}”（{best['score']} 分）；"
                             f"最需要加强的是“{worst['question'][:30]}”（{worst['score']} 分）。")
            short = sum(1 for q in answered if "回答过短" in q["missing"])
            if short:
                parts.append(f"有 {short} 道题回答过短，建议多讲原理、细节和实际例子。")
        else:
            parts.append("本场面试没有问答记录。")
        if code.get("attempted"):
            parts.append(f"代码题“{code.get('problem_title') or '编程题'}”提交 {code['submissions']} 次，"
                         f"最后一次提交通过 {code.get('final_passed', 0)}/{code.get('total', 0)} 个用例。")
        elif code.get("problem_title"):
            parts.append("代码题没有提交。")
        if cheats:
            kinds = "、".join(sorted({c["kind_zh"] for c in cheats}))
            parts.append(f"检测到 {len(cheats)} 次异常（{kinds}），仅供人工复核，不影响评分。")
        return "".join(parts)


SETTINGS = {"full_answer_chars": Setting(150, minimum=1)}

@hookimpl
def register_scorers(register):
    register("heuristic", HeuristicScorer.from_context, settings=SETTINGS)
