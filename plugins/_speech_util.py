"""Helpers shared by the speech plugins: FunASR models loaded once per process, traditional -> simplified, Whisper failure-mode guards,
text normalisation and the character error rate (CER) used by the tests and the benchmark."""
from __future__ import annotations

import re
import threading
import unicodedata

import numpy as np

_cc = None
_cc_lock = threading.Lock()
_funasr_models: dict[tuple, tuple[object, threading.Lock]] = {}
_funasr_lock = threading.Lock()


def load_funasr_model(**kwargs) -> tuple[object, threading.Lock]:
    """``funasr.AutoModel(**kwargs)``, loaded once per process for the same arguments, with the lock
    every caller holds around ``generate()``.

    FunASR keeps per-call state on the model object, so two calls must not overlap, whichever
    plugin instance (a second ``[plugins]`` entry, a test's own) makes them: the lock belongs to
    the shared model, not to an instance."""
    key = tuple(sorted(kwargs.items()))
    with _funasr_lock:
        entry = _funasr_models.get(key)
        if entry is None:
            from funasr import AutoModel
            entry = _funasr_models[key] = (AutoModel(**kwargs), threading.Lock())
    return entry


def to_simplified(text: str) -> str:
    """Traditional Chinese -> simplified (OpenCC t2s tables, pure Python)."""
    global _cc
    if not text:
        return text
    if _cc is None:
        with _cc_lock:
            if _cc is None:
                import opencc
                _cc = opencc.OpenCC("t2s")
    return _cc.convert(text)


_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_CJK = re.compile(rf"(?<=[{_CJK}，。！？、：；])\s+|\s+(?=[{_CJK}，。！？、：；])")
_ASCII_PUNCT = {",": "，", "?": "？", "!": "！", ";": "；", ":": "："}


def tidy(text: str) -> str:
    """Simplified characters, no spaces between Chinese characters, full-width punctuation
    after Chinese text, trimmed."""
    text = to_simplified(unicodedata.normalize("NFKC", text or "")).replace("\ufffd", "").strip()
    text = _SPACE_CJK.sub("", text)
    out = []
    for i, ch in enumerate(text):
        if ch in _ASCII_PUNCT and i > 0 and re.match(rf"[{_CJK}]", text[i - 1]):
            out.append(_ASCII_PUNCT[ch])
        elif ch == "." and i > 0 and re.match(rf"[{_CJK}]", text[i - 1]):
            out.append("。")
        else:
            out.append(ch)
    return "".join(out).strip()


# --- Whisper failure modes -----------------------------------------------------------------------
# Texts Whisper produces on silence or noise (subtitle credits from its training data).
HALLUCINATIONS = (
    "请不吝点赞订阅转发打赏支持明镜与点点栏目", "明镜与点点栏目", "字幕由amara.org社区提供", "amara.org",
    "字幕志愿者", "中文字幕", "谢谢观看", "感谢观看", "谢谢大家观看", "优优独播剧场", "yoyo television series exclusive",
    "请订阅我的频道", "订阅我的频道", "点赞订阅", "小编字幕", "字幕by", "字幕制作", "本字幕", "以下是普通话的句子",
)


def collapse_repetitions(text: str, min_repeats: int = 3) -> str:
    """Cut Whisper's repetition loops: a unit repeated ``min_repeats`` times or more in a row
    (one character repeated four times or more) is kept once."""
    if not text:
        return text
    text = re.sub(r"(.)(?:[\s，。、,.]*\1){3,}", r"\1", text)
    # multi-character units (2..30 chars), allowing punctuation/spaces between copies
    pattern = re.compile(r"(.{2,30}?)(?:[\s，。、,.!?！？]*\1){%d,}" % (min_repeats - 1), re.S)
    prev = None
    while prev != text:
        prev = text
        text = pattern.sub(r"\1", text)
    # a phrase of 5+ characters said twice in a row is a loop too
    long_unit = re.compile(r"(.{5,40}?)[\s，。、,.!?！？]*\1", re.S)
    prev = None
    while prev != text:
        prev = text
        text = long_unit.sub(r"\1", text)
    text = re.sub(r"(.)\1{3,}", r"\1", text)
    return text


def strip_restart(text: str, min_chars: int = 3, max_chars: int = 10) -> str:
    """Cut a "restart" at the end: Whisper, reaching the end of the audio, sometimes starts the
    utterance over ("主要负责订单系统和支付系统主要负"). The trailing copy of the text's own first
    ``min_chars``..``max_chars`` characters is dropped when the rest is at least twice as long; after
    a sentence end, a trailing sentence of 6 or more characters that begins the text again is too."""
    # a long restart after a sentence end ("…降到了八十毫秒左右。接口的平均响应时间从三百"): the last
    # sentence is the beginning of the text again, 6 characters or more
    m = re.search(r"[。？！?!]\s*([^。？！?!]+)[。？！?!]?\s*$", text or "")
    if m:
        tail, head = norm_for_match(m.group(1)), norm_for_match(text[:m.start(1)])
        if len(tail) >= 6 and head.startswith(tail):
            return text[:m.start(1)].rstrip()
    n = norm_for_match(text)
    for k in range(min(max_chars, (len(n) - 2) // 2), min_chars - 1, -1):
        if n.endswith(n[:k]):
            keep = len(n) - k
            count = 0
            for i, ch in enumerate(text):           # map back to the raw text (punctuation kept)
                if norm_for_match(ch):
                    count += 1
                    if count == keep:
                        return text[: i + 1]
    return text


def strip_prompt_tail(text: str, prompt: str) -> str:
    """Cut a Latin-letter tail after the last sentence end that only repeats words of the prompt:
    on the quiet after an answer Whisper may "continue" with English words from the hints
    ("…处理订单超时？select.com?select.")."""
    m = re.search(r"[。？！?!]([^\u4e00-\u9fff]*)$", text or "")
    if not m or not re.search(r"[\u4e00-\u9fff]", text[: m.start()]):
        return text
    words = re.findall(r"[A-Za-z_]{2,}", m.group(1))
    low = (prompt or "").lower()
    if words and any(w.lower() in low for w in words):
        return text[: m.start() + 1]
    return text


def norm_for_match(text: str) -> str:
    return re.sub(r"[\W_]+", "", to_simplified(text or "").lower())


def is_hallucination(text: str) -> bool:
    n = norm_for_match(text)
    if not n:
        return True
    return any(norm_for_match(h) in n for h in HALLUCINATIONS) and len(n) <= 40


def strip_prompt_echo(text: str, prompt_parts: list[str]) -> str:
    """Remove an echo of the biasing prompt: Whisper sometimes repeats the prompt (the question,
    the term list) instead of transcribing. Returns "" when the text is nothing but an echo."""
    n = norm_for_match(text)
    if not n:
        return ""
    for part in prompt_parts:
        p = norm_for_match(part)
        if len(p) < 4:
            continue
        # the whole question (or prompt) again, or a long stretch of it; a short phrase that
        # happens to be in the prompt (a resume term the candidate says) is real speech
        if n == p or (len(n) >= 12 and n in p):
            return ""
        if len(p) >= 6 and abs(len(n) - len(p)) <= len(p) // 3 and edit_distance(n, p) <= 0.35 * len(p):
            return ""                                   # a near-copy ("这次是…" for "以下是…")
        # the hypothesis starts with the whole (long) prompt part: drop that prefix
        if len(p) >= 8 and n.startswith(p) and len(n) > len(p):
            idx = _raw_index_after(text, p)
            if idx is not None:
                text = text[idx:].lstrip(" ，。,.:：？！?!、；;")
                n = norm_for_match(text)
    return text


def _raw_index_after(text: str, normalised_prefix: str) -> int | None:
    got = ""
    for i, ch in enumerate(text):
        got = norm_for_match(text[: i + 1])
        if got == normalised_prefix:
            return i + 1
    return None


def dbfs(pcm: np.ndarray) -> float:
    """RMS level of int16 (or float in [-1, 1]) samples in dBFS."""
    if pcm.size == 0:
        return -120.0
    x = pcm.astype(np.float32)
    if pcm.dtype == np.int16:
        x = x / 32768.0
    rms = float(np.sqrt(np.mean(x * x)))
    return 20.0 * np.log10(max(rms, 1e-6))


# --- normalisation for scoring --------------------------------------------------------------------
_DIGITS = "零一二三四五六七八九"


def _int_to_chinese(n: int) -> str:
    if n == 0:
        return "零"
    units = [(100000000, "亿"), (10000, "万"), (1000, "千"), (100, "百"), (10, "十")]
    out = ""
    zero = False
    for value, name in units:
        q, n = divmod(n, value)
        if q:
            if zero and out:
                out += "零"
            out += (_int_to_chinese(q) if q >= 10 else _DIGITS[q]) + name
            zero = False
        elif out:
            zero = True
    if n:
        if zero and out:
            out += "零"
        out += _DIGITS[n]
    if out.startswith("一十"):
        out = out[1:]
    return out


def numbers_to_chinese(text: str) -> str:
    """Arabic numerals read out in Chinese ("50" -> "五十", "3.5" -> "三点五"); long digit
    strings (phone numbers, years) are read digit by digit."""
    def repl(m: re.Match) -> str:
        whole, frac = m.group(1), m.group(2)
        if len(whole) > 9 or (len(whole) == 4 and not frac):
            head = "".join(_DIGITS[int(c)] for c in whole)
        else:
            head = _int_to_chinese(int(whole))
        if frac:
            head += "点" + "".join(_DIGITS[int(c)] for c in frac)
        return head
    return re.sub(r"(\d+)(?:\.(\d+))?", repl, text)


def normalize_for_cer(text: str) -> str:
    """The text CER is computed on: simplified, lower case, numbers in the one written form of
    ``core.itn`` (三百毫秒 and 300毫秒 both read 300毫秒; applied to hypothesis and reference
    alike), no punctuation or spaces (the usual normalisation of Chinese ASR scoring)."""
    from core.itn import itn
    text = to_simplified(unicodedata.normalize("NFKC", text or "")).lower()
    text = itn(text)
    return re.sub(r"[\W_]+", "", text)


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return prev[-1]


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate of one pair after ``normalize_for_cer``."""
    ref = normalize_for_cer(reference)
    hyp = normalize_for_cer(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(hyp, ref) / len(ref)


def corpus_cer(pairs: list[tuple[str, str]]) -> float:
    """Total edits / total reference characters over (hypothesis, reference) pairs."""
    errors = chars = 0
    for hyp, ref in pairs:
        r, h = normalize_for_cer(ref), normalize_for_cer(hyp)
        errors += edit_distance(h, r)
        chars += len(r)
    return errors / max(1, chars)


def build_prompt(question: str, terms: list[str], default: str, max_chars: int = 240,
                 hints: list[str] | None = None) -> str:
    """Whisper prompt ("previous text") from the biasing context: the question, the resume's
    terms, then the hints if any (what a good answer covers; at most a third of ``max_chars``).
    Over ``max_chars`` the terms go from the front; the question is kept."""
    def clean(items, limit):
        out, seen = [], set()
        for t in items or []:
            t = " ".join(str(t).split())
            if t and t.lower() not in seen and len(t) <= limit:
                seen.add(t.lower())
                out.append(t)
        return out
    q = (question or "").strip()
    q = q if not q or q[-1] in "。？！?!." else q + "。"
    q = q[-max_chars:]
    clean_terms = clean(terms, 30)
    hint_text = "".join(h if h[-1] in "。？！?!." else h + "。" for h in clean(hints, 200))
    hint_text = hint_text[: max(0, min(max_chars // 3, max_chars - len(q)))]
    while clean_terms and len("、".join(clean_terms)) + 1 + len(q) + len(hint_text) > max_chars:
        clean_terms.pop(0)
    text = q + ("、".join(clean_terms) + "。" if clean_terms else "") + hint_text
    return text or default
