"""Sound-alike correction of recognised text towards the interview's own vocabulary.

Whisper base often hears a domain term as ordinary words that sound the same or nearly so
("不浓过力气" for 布隆过滤器, "空置" for 空值).  Putting such terms into the decoding prompt helps, but a
prompt can also make the model *say* them (an answer that strays from the question got the
question's words appended).  This pass cannot add anything: it only swaps a span of the recognised
text for a context term whose toneless pinyin is (nearly) the same, so words that were not spoken
cannot appear.

Candidate terms come from the ASR context: the resume's terms as given, and the words of the
question and its reference points (jieba), alone and joined with one or two neighbours (so
"布隆" + "过滤器" is a candidate too).  A span matches a term of the same length when every
syllable is the same or a near miss (n/l, z/zh, c/ch, s/sh, f/h, r/l initials; in/ing, en/eng,
an/ang, i/ü, … finals, each costing half) and the total cost is at most a quarter of the
syllables.  Two-character terms must sound exactly the same and either share a character with the
span or replace a span that is no word at all (韩束 -> 函数, 接偶 -> 解耦; never the word 用力 -> 用例).
Longer terms win over shorter ones; spans never overlap.

The same pass then runs with the domain lexicon (plugins/_lexicon.py: thousands of interview terms
of the session's position type), looked up by a coarse pinyin key instead of scanned; the
context's terms win, and the guards are the same (tests/test_lexicon.py: sound-alike domain
terms fixed, a set of ordinary sentences left without a single change).
"""
from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_NEAR_INITIALS = {frozenset(p) for p in (("n", "l"), ("z", "zh"), ("c", "ch"), ("s", "sh"), ("f", "h"),
                                         ("r", "l"))}
_NEAR_FINALS = {frozenset(p) for p in (("in", "ing"), ("en", "eng"), ("an", "ang"), ("i", "v"), ("u", "v"),
                                       ("ian", "iang"), ("uan", "uang"), ("o", "uo"), ("ong", "eng"))}
MIN_LEN, MAX_LEN = 2, 6
_jieba_lock = threading.Lock()


def _pinyin():
    from pypinyin import Style, lazy_pinyin
    return Style, lazy_pinyin


@lru_cache(maxsize=8192)
def syllables(text: str) -> tuple[tuple[str, str, str], ...]:
    """(syllable, initial, final) per character, toneless."""
    Style, lazy_pinyin = _pinyin()
    full = lazy_pinyin(text)
    ini = lazy_pinyin(text, style=Style.INITIALS, strict=False)
    fin = lazy_pinyin(text, style=Style.FINALS, strict=False)
    return tuple(zip(full, ini, fin))


def syllable_cost(a: tuple[str, str, str], b: tuple[str, str, str]) -> float:
    if a[0] == b[0]:
        return 0.0
    same_i, same_f = a[1] == b[1], a[2] == b[2]
    if same_f and frozenset((a[1], b[1])) in _NEAR_INITIALS:
        return 0.5
    if same_i and frozenset((a[2], b[2])) in _NEAR_FINALS:
        return 0.5
    return 1.0


_jieba_ready = False


def _jieba():
    """jieba with its dictionary loaded (once, under a lock; its log chatter silenced)."""
    global _jieba_ready
    import jieba
    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return jieba


def _segments(run: str) -> list[str]:
    return [w for w in _jieba().lcut(run, HMM=False) if w]


RARE_FREQ = 100      # jieba dictionary count below which a word is domain vocabulary
COMMON_FREQ = 1000   # a recognised span that is a word this common is never rewritten
FUNCTION_FREQ = 30000  # single characters this common (是 有 里 及 和 的) are not homophone slips


def _freq(word: str) -> int:
    return _jieba().dt.FREQ.get(word) or 0


def _rare(word: str) -> bool:
    return len(word) >= 2 and _freq(word) < RARE_FREQ


@lru_cache(maxsize=512)
def _terms_of_sentence(text: str) -> frozenset[str]:
    """Distinctive spans of ``text``: up to MAX_LEN characters holding at least one whole word that
    is rare or unknown to jieba's dictionary (空值, 过滤器, 限流 -- never 使用 or 实现 alone), beginning
    and ending at word boundaries or inside a two-character word next to a single character: jieba
    glues an unknown term's first character to the word before it ("可用布隆过滤器" -> 可/用布/隆/过滤器).
    A two-character candidate must be a whole word."""
    out: set[str] = set()
    for run in _CJK_RUN.findall(text):
        spans = _word_spans(run)
        starts = {0} | {e for _, e, _ in spans}
        ends = set(starts)
        for k, (s, e, w) in enumerate(spans):
            # a span may begin inside a two-character word followed by a single character
            # (用布|隆) and end inside one preceded by a single character: jieba's glue pattern
            if len(w) == 2 and k + 1 < len(spans) and len(spans[k + 1][2]) == 1:
                starts.add(s + 1)
            if len(w) == 2 and k > 0 and len(spans[k - 1][2]) == 1:
                ends.add(s + 1)
        words = [(s, e, _rare(w)) for s, e, w in spans]
        for a in starts:
            for b in ends:
                if not MIN_LEN <= b - a <= MAX_LEN:
                    continue
                if not any(rare and a <= s and e <= b for s, e, rare in words):
                    continue
                if b - a > 2 or any(s == a and e == b for s, e, _ in words):
                    out.add(run[a:b])
    return frozenset(out)


def common_word(span: str) -> bool:
    return _freq(span) >= COMMON_FREQ


# Near misses collapsed into classes: two syllables that ``syllable_cost`` rates 0 or 0.5 have the
# same coarse key, so a term list can be looked up by the coarse key of a span instead of scanned
# (the domain lexicon has thousands of terms).
_COARSE_INITIAL = {"n": "l", "r": "l", "zh": "z", "ch": "c", "sh": "s", "f": "h"}
_COARSE_FINAL = {"ing": "in", "eng": "en", "ong": "en", "ang": "an", "v": "i", "u": "i", "iang": "ian",
                 "uang": "uan", "uo": "o"}


def coarse_key(syl: tuple) -> tuple:
    return tuple((_COARSE_INITIAL.get(i, i), _COARSE_FINAL.get(f, f)) for _, i, f in syl)


class TermSet:
    """The candidate vocabulary of one ASR context (or of the domain lexicon), ready to correct
    text with."""

    def __init__(self, terms: list[str], sentences: list[str]):
        vocab: set[str] = set()
        for t in terms:
            for run in _CJK_RUN.findall(t or ""):
                if MIN_LEN <= len(run) <= MAX_LEN:
                    vocab.add(run)
        for s in sentences:
            if s:
                vocab |= _terms_of_sentence(s)
        # longest first; per length, the terms with their syllables, indexed by coarse key
        self.by_len: dict[int, list[tuple[str, tuple]]] = {}
        self.index: dict[int, dict[tuple, list[tuple[str, tuple]]]] = {}
        for t in sorted(vocab):
            syl = syllables(t)
            self.by_len.setdefault(len(t), []).append((t, syl))
            self.index.setdefault(len(t), {}).setdefault(coarse_key(syl), []).append((t, syl))
        self.exact = {n: {t for t, _ in terms} for n, terms in self.by_len.items()}
        self.size = len(vocab)

    def correct(self, text: str, taken: list[bool] | None = None) -> str:
        """Replace sound-alike spans of ``text`` with terms (longest first, no overlaps).
        ``taken`` (one flag a character, updated) marks characters no term may rewrite: those of
        an earlier pass."""
        if not text or not self.by_len:
            return text
        out = list(text)
        taken = taken if taken is not None else [False] * len(text)
        for m in _CJK_RUN.finditer(text):
            run, base = m.group(), m.start()
            syl = syllables(run)
            words = _word_spans(run)
            cut_ok = _cuttable(run, words)
            for n in sorted(self.by_len, reverse=True):
                if n > len(run):
                    continue
                exact = self.exact[n]
                index = self.index[n]
                for i in range(len(run) - n + 1):
                    if run[i:i + n] in exact:   # already right: no other term may rewrite part of it
                        taken[base + i: base + i + n] = [True] * n
                found: list[tuple[float, int, str]] = []
                for i in range(len(run) - n + 1):
                    span = run[i:i + n]
                    if any(taken[base + i: base + i + n]) or not (cut_ok[i] and cut_ok[i + n]) \
                            or common_word(span):
                        continue
                    for term, tsyl in index.get(coarse_key(syl[i:i + n]), ()):
                        cost = _match_cost(span, syl[i:i + n], term, tsyl)
                        if cost is not None and _plausible_slip(span, i, term, words):
                            found.append((cost, i, term))
                for cost, i, term in sorted(found):
                    j = base + i
                    if any(taken[j:j + n]):
                        continue
                    out[j:j + n] = list(term)
                    taken[j:j + n] = [True] * n
        return "".join(out)


def _word_spans(run: str) -> list[tuple[int, int, str]]:
    out, pos = [], 0
    for w in _segments(run):
        out.append((pos, pos + len(w), w))
        pos += len(w)
    return out


def _cuttable(run: str, words: list[tuple[int, int, str]]) -> list[bool]:
    """Per position 0..len(run): may a replaced span begin/end here?  Not inside a dictionary
    word of the recognised text (用户 in "用户反馈" must not lose 户 to 负反馈)."""
    ok = [True] * (len(run) + 1)
    for s, e, w in words:
        if e - s >= 2 and _freq(w) > 0:
            for k in range(s + 1, e):
                ok[k] = False
    return ok


def _plausible_slip(span: str, i: int, term: str, words: list[tuple[int, int, str]]) -> bool:
    """Does replacing ``span`` (at ``i`` of the run) by ``term`` look like undoing a recognition
    slip rather than rewriting what was said?  Either most of a 3+ character span is wrong
    (不浓过力气 for 布隆过滤器: Whisper spelled an unknown term with everyday characters), or every
    changed character sits in a rare word of the span that the term swaps for another dictionary
    word (空置 -> 空值) or in an uncommon single character -- never in 是, 有, 里, 及 or an everyday
    word like 一步."""
    n = len(term)
    changed = [k for k in range(n) if span[k] != term[k]]
    if n >= 3 and 2 * len(changed) >= n:
        return True
    for k in changed:
        for s, e, w in words:
            if s <= i + k < e:
                break
        else:
            return False
        if e - s == 1:
            if _freq(w) >= FUNCTION_FREQ:
                return False
            continue
        if not (i <= s and e <= i + n and _rare(w) and _freq(term[s - i:e - i]) > 0):
            return False
    return True


def _match_cost(span: str, a: tuple, term: str, b: tuple) -> float | None:
    n = len(term)
    total = 0.0
    for x, y in zip(a, b):
        c = syllable_cost(x, y)
        if c > 0.5:
            return None
        total += c
    if n == 2:
        return total if total == 0 and (span[0] == term[0] or span[1] == term[1] or _freq(span) == 0) else None
    return total if total <= n / 4 else None


@lru_cache(maxsize=64)
def term_set(terms: tuple[str, ...], sentences: tuple[str, ...]) -> TermSet:
    """Cached per context (the same question and resume are used for many utterances)."""
    return TermSet(list(terms), list(sentences))


def fix_terms(text: str, context, lexicon: bool = False) -> str:
    """``correct`` with an AsrContext's vocabulary: the resume terms, the question and its
    reference points (hints); then, with ``lexicon``, with the domain lexicon of the context's
    position type (plugins/_lexicon.py), which may not touch what the first pass replaced or
    found right."""
    if not text or context is None:
        return text
    taken = [False] * len(text)
    sentences = tuple(s for s in (context.question, *context.hints) if s)
    if sentences or context.terms:
        text = term_set(tuple(context.terms), sentences).correct(text, taken)
    if lexicon:
        from plugins._lexicon import term_set as lexicon_set
        text = lexicon_set(getattr(context, "domain", "") or "").correct(text, taken)
    return text


def warm_up(lexicon: bool = False) -> None:
    """Load jieba's dictionary and pypinyin's tables now (about 1-2 s) rather than in the first
    utterance; with ``lexicon`` also the domain lexicon of every position type (a few seconds)."""
    term_set(("布隆过滤器",), ("缓存空值",)).correct("不浓过力气")
    if lexicon:
        from plugins._lexicon import POSITION_TYPES, term_set as lexicon_set
        for t in ("", *POSITION_TYPES):
            lexicon_set(t)
