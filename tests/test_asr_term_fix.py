"""Sound-alike correction towards the context's terms (plugins/_term_fix.py): it undoes Whisper's
spelling of unknown terms, leaves right text alone, and never adds or drops characters."""
import json
from pathlib import Path

import pytest

from core.interfaces import AsrContext
from plugins._term_fix import TermSet, fix_terms, syllables
from tests.asr_support import references

ROOT = Path(__file__).resolve().parent.parent
CACHE_Q = "什么是缓存穿透、缓存击穿和缓存雪崩？分别怎么解决？"


def bank() -> list[dict]:
    items = []
    for f in sorted((ROOT / "plugins" / "question_bank").glob("*.json")):
        data = json.loads(f.read_text(encoding="utf-8"))
        items += data if isinstance(data, list) else data.get("questions", [])
    return items


def cache_context() -> AsrContext:
    q = next(q for q in bank() if q["text"] == CACHE_Q)
    return AsrContext(CACHE_Q, ["Redis", "订单系统"], q["points"])


def test_unknown_terms_spelt_with_everyday_characters_are_restored():
    # what Whisper base wrote for the answer_cache recording with the question as prompt
    heard = "缓存穿透可以通过不浓过力气和缓存空置量种方式来解决。"
    assert fix_terms(heard, cache_context()) == "缓存穿透可以通过布隆过滤器和缓存空值量种方式来解决。"


def test_resume_terms_are_targets_too():
    ctx = AsrContext("讲一个你做过的项目。", ["分库分表", "布隆过滤器"])
    assert fix_terms("后来我们做了分酷分表", ctx) == "后来我们做了分库分表"
    assert fix_terms("加了一个步隆过虑器", ctx) == "加了一个布隆过滤器"
    assert fix_terms("用了布隆过率器", ctx) == "用了布隆过滤器"
    # a term that is no sound-alike of anything said changes nothing
    assert fix_terms("我们用它处理订单超时", ctx) == "我们用它处理订单超时"


def test_everyday_words_and_function_characters_are_never_rewritten():
    # 过拟合时 / 异步的 / 最优 are candidates here; 是, 一步 and 有 were said
    ctx = AsrContext("模型出现过拟合时有哪些表现？", [], ["异步的写法", "最优挑战"])
    for said in ("过拟合是什么关系", "计算每一步的转化率", "你遇到过最有挑战的问题"):
        assert fix_terms(said, ctx) == said
    # a span may not cut a word of what was heard (用户 keeps its 户 against 负反馈)
    assert fix_terms("结合用户反馈做分析", AsrContext("", [], ["负反馈调节"])) == "结合用户反馈做分析"


def test_without_context_nothing_changes():
    heard = "缓存穿透可以通过不浓过力气来解决"
    assert fix_terms(heard, AsrContext()) == heard
    assert fix_terms(heard, None) == heard
    assert fix_terms("", cache_context()) == ""


def test_right_answers_survive_every_other_questions_context():
    """Every transcript and every reference point of the bank, read under the context of other
    questions (a candidate answering beside the question): only whole-word exact homophones may
    change, lengths never do, and such swaps stay rare."""
    items = bank()
    answers = list(references().values()) + [p for q in items for p in q.get("points", [])]
    contexts = items[::10]
    changed, checks = [], 0
    for q in contexts:
        ts = TermSet(["华中科技大学", "订单系统"], [q["text"], *q.get("points", [])])
        for a in answers:
            checks += 1
            out = ts.correct(a)
            assert len(out) == len(a)
            if out != a:
                changed.append((a, out))
    for a, out in changed:
        diff = [k for k in range(len(a)) if a[k] != out[k]]
        span = a[diff[0]: diff[-1] + 1]
        assert syllables(span) == syllables(out[diff[0]: diff[-1] + 1]), (a, out)
    assert checks > 10_000 and len(changed) <= 3, changed


@pytest.mark.parametrize("text", ["Redis 的 key 过期了", "QPS 到了 5000", "。，？"])
def test_latin_digits_and_punctuation_pass_through(text):
    assert fix_terms(text, cache_context()) == text
