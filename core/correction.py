"""Correcting recognised finals against the question and the resume, and the guard that refuses a
correction changing what the candidate said.

A transcript corrector (``register_correctors``, e.g. the ``llm`` plugin) proposes a corrected text
for each final; ``Corrections.correct`` asks the selected correctors in order, under a timeout, and
``check_correction`` decides whether the proposal may replace what was heard. The guard allows what
a recogniser gets wrong and nothing else:

* sound-alike replacements only: each replaced span must read like the original (toneless pinyin,
  with the usual confusions: zh/z, ch/c, sh/s, n/l, f/h, an/ang, en/eng, in/ing), or be a term of
  the context (the question's and resume's terms) replacing Chinese that sounds like it, or differ in
  letter case only;
* nothing added or dropped but punctuation, spaces and fillers (嗯, 啊, 呃, 那个, ...);
* the same numbers (compared after ITN) and the same negations (不, 没, 无, 非, 未, 别);
* at most ``max_change`` of the characters changed.

The raw final is stored first; an accepted correction updates the stored entry (``text`` becomes the
corrected text, ``raw_text`` keeps what was heard), so a crash during correction loses nothing.
"""
from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache

from core.interfaces import AsrContext, CorrectionRequest

log = logging.getLogger("mianshi.correction")

_PUNCT = re.compile(r"[\s，。！？、；：,.!?;:\"'“”‘’（）()《》<>【】\[\]…—-]+")
_FILLERS = ("那个", "就是", "然后", "嗯", "啊", "呃", "哦", "额", "吧", "呢", "的", "了")
_NEGATIONS = "不没无非未别"
_NUMBER = re.compile(r"\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万亿]+")
_ASCII_TERM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+#/_-]*$")
_FUZZY_INITIALS = {"zh": "z", "ch": "c", "sh": "s", "n": "l", "f": "h", "r": "l"}
_FUZZY_FINALS = {"ang": "an", "eng": "en", "ing": "in", "iang": "ian", "uang": "uan", "ong": "on"}


def _core(text: str) -> str:
    return _PUNCT.sub("", text)


@lru_cache(maxsize=1)
def _pinyin():
    from pypinyin import Style, lazy_pinyin
    return Style, lazy_pinyin


def _syllables(text: str) -> list[str]:
    """Toneless, fuzzy-folded syllables of the Chinese in ``text`` (other characters as they are)."""
    style, lazy_pinyin = _pinyin()
    out = []
    for ch in text:
        if "\u4e00" <= ch <= "\u9fff":
            initial = lazy_pinyin(ch, style=style.INITIALS, strict=False)[0]
            final = lazy_pinyin(ch, style=style.FINALS, strict=False)[0]
            out.append(_FUZZY_INITIALS.get(initial, initial) + _FUZZY_FINALS.get(final, final))
        else:
            out.append(ch.lower())
    return out


def _sounds_alike(a: str, b: str) -> bool:
    sa, sb = _syllables(a), _syllables(b)
    if len(sa) != len(sb):
        return False
    differing = sum(1 for x, y in zip(sa, sb) if x != y)
    # one syllable off is tolerated in longer spans (a recogniser's near miss); none in short ones
    return differing == 0 or (len(sa) >= 3 and differing <= len(sa) // 3)


def _is_filler(span: str) -> bool:
    rest = span
    while rest:
        for filler in _FILLERS:
            if rest.startswith(filler):
                rest = rest[len(filler):]
                break
        else:
            return False
    return True


def _numbers(text: str) -> list[str]:
    from core.itn import itn
    return _NUMBER.findall(itn(text))


def check_correction(raw: str, corrected: str, terms: list[str] | tuple[str, ...] = (),
                     max_change: float = 0.34) -> str | None:
    """None when ``corrected`` may replace ``raw`` (see the module doc); else why not (English, for
    the log and the stored entry)."""
    if not corrected or not corrected.strip():
        return "empty correction"
    if corrected == raw:
        return None
    a, b = _core(raw), _core(corrected)
    if not a:
        return "nothing to correct"
    if _numbers(raw) != _numbers(corrected):
        return "numbers changed"
    if sum(a.count(c) for c in _NEGATIONS) != sum(b.count(c) for c in _NEGATIONS):
        return "negation changed"
    known = {t.lower() for t in terms if t}
    changed = 0
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        old, new = a[i1:i2], b[j1:j2]
        if op in ("insert", "delete"):
            if not _is_filler(old or new):
                return f"words {'added' if op == 'insert' else 'dropped'}: {(old or new)[:20]}"
            changed += len(old or new)
        elif old.lower() == new.lower():
            continue                    # letter case only
        elif _ASCII_TERM.match(new) and new.lower() in known and not _ASCII_TERM.match(old):
            changed += len(old)         # 瑞迪斯 -> Redis, a term of the question or resume
        elif _sounds_alike(old, new):
            changed += max(len(old), len(new))
        else:
            return f"not a sound-alike: {old[:20]} -> {new[:20]}"
    if changed > max(2.0, max_change * len(a)):    # a short final may have one word misheard
        return f"too much changed ({changed} of {len(a)} characters)"
    return None


@dataclass
class Outcome:
    """What became of one final: ``text`` is what is used from now on."""
    text: str
    raw_text: str
    corrector: str | None = None
    refused: str | None = None          # why a proposal was refused (the guard, a timeout, an error)

    @property
    def changed(self) -> bool:
        return self.text != self.raw_text

    def record(self) -> dict:
        """The fields stored on the transcript entry."""
        fields = {"raw_text": self.raw_text, "correction": {"by": self.corrector}}
        if self.changed:
            fields["text"] = self.text
        if self.refused:
            fields["correction"]["refused"] = self.refused
        return fields


@dataclass
class Corrections:
    """The selected correctors, in order, under ``timeout`` seconds for the whole final."""
    correctors: list
    timeout: float = 2.0
    max_change: float = 0.34
    stats: dict = field(default_factory=lambda: {"asked": 0, "accepted": 0, "refused": 0, "timeouts": 0,
                                                "errors": 0})

    async def correct(self, raw: str, context: AsrContext) -> Outcome:
        self.stats["asked"] += 1
        terms = list(dict.fromkeys([*context.terms, *context.hints]))
        request = CorrectionRequest(text=raw, question=context.question, terms=terms, domain=context.domain)
        try:
            return await asyncio.wait_for(self._ask(request, terms), self.timeout)
        except asyncio.TimeoutError:
            self.stats["timeouts"] += 1
            return Outcome(raw, raw, refused=f"timeout after {self.timeout:g} s")

    async def _ask(self, request: CorrectionRequest, terms: list[str]) -> Outcome:
        last = Outcome(request.text, request.text)
        for corrector in self.correctors:
            name = getattr(corrector, "name", type(corrector).__name__)
            try:
                proposal = await corrector.correct(request)
            except asyncio.CancelledError:
                raise
            except Exception as exc:        # a failing corrector keeps the raw text
                self.stats["errors"] += 1
                log.info("corrector %s failed: %s", name, exc)
                last = Outcome(request.text, request.text, name, f"error: {str(exc)[:200]}")
                continue
            if proposal is None:
                return Outcome(request.text, request.text, name)
            why = check_correction(request.text, proposal, terms, self.max_change)
            if why is None:
                if proposal != request.text:
                    self.stats["accepted"] += 1
                return Outcome(proposal, request.text, name)
            self.stats["refused"] += 1
            log.info("correction by %s refused (%s): %r -> %r", name, why, request.text, proposal)
            return Outcome(request.text, request.text, name, why)
        return last
