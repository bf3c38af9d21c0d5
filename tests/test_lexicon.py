"""The domain lexicon (plugins/_lexicon.py) in the sound-alike correction: it fixes sound-alike
domain terms, leaves ordinary sentences alone, and never overrides the context's own terms."""
from pathlib import Path

import pytest

from core.interfaces import AsrContext
from plugins import _lexicon
from plugins._term_fix import fix_terms

ORDINARY = [line for line in (Path(__file__).parent / "ordinary_sentences.txt")
            .read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


def test_lexicon_size_and_sources():
    assert len(_lexicon.terms("")) >= 2500
    for t in _lexicon.POSITION_TYPES:
        own = set(_lexicon.read_list(_lexicon.LEXICON_DIR / f"{t}.txt"))
        assert len(own) >= 200
        assert own <= set(_lexicon.terms(t))
        assert _lexicon.bank_terms(t)


@pytest.mark.parametrize("heard, meant, domain", [
    ("韩束的作用预和辩量", "函数的作用域和变量", "frontend"),     # 韩束: no character shared, not a word
    ("两个模块之间要接偶", "两个模块之间要解耦", "backend"),
    ("开发环境可以配一个带离", "开发环境可以配一个代理", "frontend"),
    ("服务要做融断和降机", "服务要做熔断和降级", "backend"),
    ("接口的密等信怎么保证", "接口的幂等性怎么保证", "backend"),
    ("训练了很久模型才收脸", "训练了很久模型才收敛", "algo"),
    ("我们先屏姑魔型的效果", "我们先评估模型的效果", "algo"),
    ("防斗和节溜都能减少请求", "防抖和节流都能减少请求", "frontend"),
    ("虚拟列标只渲染一部分", "虚拟列表只渲染一部分", "frontend"),
    ("北级新制标是日活", "北极星指标是日活", "pm"),
])
def test_fixes_sound_alike_domain_terms(heard, meant, domain):
    assert fix_terms(heard, AsrContext(domain=domain), lexicon=True) == meant
    # without the lexicon (and no context terms) nothing changes
    assert fix_terms(heard, AsrContext(domain=domain), lexicon=False) == heard


@pytest.mark.parametrize("domain", ["", *_lexicon.POSITION_TYPES])
def test_ordinary_sentences_unchanged(domain):
    assert len(ORDINARY) >= 60
    changed = [(s, out) for s in ORDINARY
               if (out := fix_terms(s, AsrContext(domain=domain), lexicon=True)) != s]
    assert changed == []


def test_context_terms_win_over_lexicon():
    # the resume's term sounds like 融断 too; the context pass runs first and its result stays
    ctx = AsrContext(question="介绍一下你的项目", terms=["融端平台"], domain="backend")
    assert fix_terms("我做过荣端平台", ctx, lexicon=True) == "我做过融端平台"


def test_prompt_terms_relate_to_question():
    got = _lexicon.prompt_terms("backend", "什么是缓存穿透？怎么解决？", limit=6)
    assert 0 < len(got) <= 6
    assert all("缓存" in t or "穿透" in t for t in got)
    assert _lexicon.prompt_terms("backend", "", limit=6) == []
