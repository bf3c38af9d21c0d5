"""Inverse text normalisation (ITN) of Mandarin transcripts: one written form for numbers.

Recognisers write the same spoken number in different ways (Whisper: "300毫秒" or "三百毫秒",
"6%" or "百分之六"; the reference transcripts spell everything out). ``itn`` maps both to one form,
used for what the page shows, what is stored and what the benchmark scores:

* numbers with a place value (十 百 千 万 亿) or a decimal point become digits: 三百毫秒 -> 300毫秒,
  两百五十六 -> 256, 十二台 -> 12台, 一点五秒 -> 1.5秒, 三万 -> 3万, 一千万 -> 1000万 (a whole
  number of 万/亿 keeps the unit), 三万五千 -> 35000;
* percentages: 百分之四十 -> 40%, 百分之三点二 -> 3.2%, 百分之6 -> 6%;
* digit-by-digit readings: 二零二二年 -> 2022年 (four or more digits, or two or three before 年);
* a lone digit stays a word, and a lone Arabic digit before Chinese text becomes one: 三个 stays,
  "3个" -> 三个, "2期" -> 两期 (Chinese prose writes small counts in words);
* everything else is left alone: 一起, 一定, 万一, 十分, 千万, 一点儿, 几十, 三四个, 百度.

The rules only rewrite a stretch that parses completely as a number; the round trip
(``itn(spoken(n))`` is ``n``'s canonical form) is tested in tests/test_itn.py.
"""
from __future__ import annotations

import re

DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
         "八": 8, "九": 9}
SMALL_UNIT = {"十": 10, "百": 100, "千": 1000}
BIG_UNIT = {"万": 10_000, "亿": 100_000_000}
_D = "零〇一二两三四五六七八九"
_NUM_CHARS = _D + "十百千万亿"
_CN_DIGITS = "零一二三四五六七八九"
# words after which a lone 十 is a number (十个, 十台) - never 十分 (very), 十足, 十字
_AFTER_TEN = set("个台年天次秒人条家倍名位种项周月万亿块元米步层")
# classifiers after which a lone Arabic 2 reads 两
_LIANG = set("个台年天次秒人条家倍名位种项周月期轮步层批组款套张份门部")
_RUN = re.compile(rf"[{_NUM_CHARS}]+(?:点[{_D}]+)?")
_PERCENT = re.compile(rf"百分之([{_NUM_CHARS}]+(?:点[{_D}]+)?|百|\d+(?:\.\d+)?)")
_DIGIT_SEQ = re.compile(rf"(?<![{_NUM_CHARS}\d])([{_D}]{{4,}}|[{_D}]{{2,3}}(?=年))(?![十百千万亿点])")
_LONE_ARABIC = re.compile(r"(?<![\d.%A-Za-z])(\d)(?![\d.%A-Za-z])(?=[\u4e00-\u9fff])")


def _parse_section(s: str) -> int | None:
    """A number below 10000 written with 十百千 (零 allowed between): 三百零五, 十二, 两千."""
    if not s:
        return None
    total, digit, last_unit = 0, None, 10_000
    i = 0
    while i < len(s):
        ch = s[i]
        if ch in DIGIT:
            if digit is not None and DIGIT[ch] != 0:
                return None                 # two digits in a row: 三四 (an estimate), not a number
            digit = DIGIT[ch] if DIGIT[ch] != 0 else None
            if DIGIT[ch] == 0 and (i == 0 or i == len(s) - 1):
                return None
        elif ch in SMALL_UNIT:
            unit = SMALL_UNIT[ch]
            if unit >= last_unit:
                return None
            if digit is None:
                if ch != "十" or i != 0:
                    return None             # 百 / 千 need a digit; only a leading 十 stands alone
                digit = 1
            total += digit * unit
            digit, last_unit = None, unit
        else:
            return None
        i += 1
    if digit is not None:
        total += digit
    return total


def _parse_int(s: str) -> int | None:
    """A whole number in words: sections joined by 亿 and 万 (三万五千, 一千二百万)."""
    total = 0
    rest = s
    for ch, value in (("亿", BIG_UNIT["亿"]), ("万", BIG_UNIT["万"])):
        if ch in rest:
            head, _, rest = rest.partition(ch)
            if ch in rest or not head:
                return None
            v = _parse_section(head) if len(head) > 1 or head not in DIGIT else DIGIT[head]
            if v is None or v == 0:
                return None
            total += v * value
    if rest:
        if rest[0] == "零":
            rest = rest[1:]
        v = _parse_section(rest) if len(rest) > 1 or rest not in DIGIT else DIGIT[rest]
        if v is None:
            return None
        total += v
    return total


def _canonical_int(s: str) -> str | None:
    """Digits for a worded whole number; a whole number of 万/亿 keeps the unit (3万)."""
    n = _parse_int(s)
    if n is None:
        return None
    for ch, value in (("亿", BIG_UNIT["亿"]), ("万", BIG_UNIT["万"])):
        if n >= value and n % value == 0 and s.endswith(ch):
            return f"{n // value}{ch}"
    return str(n)


def _number(run: str) -> str | None:
    """The written form of a run of number characters, or None when it is not (only) a number."""
    whole, dot, frac = run.partition("点")
    if dot:
        if not frac or not all(c in DIGIT for c in frac):
            return None
        if all(c in DIGIT for c in whole) and len(whole) == 1:
            head = str(DIGIT[whole])
        else:
            n = _parse_int(whole)
            if n is None:
                return None
            head = str(n)
        return head + "." + "".join(str(DIGIT[c]) for c in frac)
    if len(run) == 1:
        return None                          # a lone digit word stays a word (三个, 第一)
    if all(c in DIGIT for c in run):
        return None                          # 三四 (an estimate), 一一; long sequences: _DIGIT_SEQ
    if run[0] not in DIGIT and run[0] != "十":
        return None                          # 万一, 千万, 百度
    if run[0] == "两" and len(run) > 1 and run[1] not in "百千万亿":
        return None
    return _canonical_int(run)


def _convert_run(m: re.Match) -> str:
    run = m.group(0)
    start, end = m.start(), m.end()
    text = m.string
    # 三四十个 / 几十 / 十几 / 一万多: part of an estimate, leave it
    if start > 0 and text[start - 1] in "几多余来数" + _D:
        return run
    after = text[end] if end < len(text) else ""
    if after and after in "几多余来":
        return run
    if run == "十":
        return "10" if after in _AFTER_TEN else run
    out = _number(run)
    if out is not None:
        return out
    return run


def _percent(m: re.Match) -> str:
    body = m.group(1)
    if body == "百":
        return "100%"
    if body[0].isdigit():
        return body + "%"
    if len(body) == 1 and body in DIGIT:
        return f"{DIGIT[body]}%"
    if "点" in body and len(body.partition("点")[0]) == 1 and body[0] in DIGIT:
        return _number(body) + "%" if _number(body) else m.group(0)
    out = _number(body)
    if out is None and body == "十":
        out = "10"
    return out + "%" if out is not None else m.group(0)


def _lone_arabic(m: re.Match) -> str:
    d = int(m.group(1))
    after = m.string[m.end()] if m.end() < len(m.string) else ""
    if after and after in "万亿":
        return m.group(1)                    # 3万 is already the written form
    if d == 2 and after in _LIANG:
        return "两"
    return _CN_DIGITS[d]


def itn(text: str) -> str:
    """``text`` with its numbers in the one written form (see the module docstring)."""
    if not text:
        return text
    text = _PERCENT.sub(_percent, text)
    text = _DIGIT_SEQ.sub(lambda m: "".join(str(DIGIT[c]) for c in m.group(1)), text)
    text = _RUN.sub(_convert_run, text)
    text = _LONE_ARABIC.sub(_lone_arabic, text)
    return text


def spoken(n: int | float | str) -> str:
    """How a number is read out (for tests and round trips): 256 -> 二百五十六, 3.2 -> 三点二."""
    s = str(n)
    whole, _, frac = s.partition(".")
    out = _spoken_int(int(whole))
    if frac:
        out += "点" + "".join(_CN_DIGITS[int(c)] for c in frac)
    return out


def _spoken_int(n: int) -> str:
    if n == 0:
        return "零"
    parts = []
    for value, name in ((100_000_000, "亿"), (10_000, "万"), (1, "")):
        q, n = divmod(n, value)
        if q:
            parts.append((q, name))
        elif parts and n:
            parts.append((0, ""))
    out = ""
    for q, name in parts:
        if q == 0:
            if not out.endswith("零"):
                out += "零"
            continue
        sec = _spoken_section(q)
        if out and q < 1000 and not out.endswith("零"):
            out += "零"
        out += sec + name
    if out.startswith("一十"):
        out = out[1:]
    return out


def _spoken_section(n: int) -> str:
    out = ""
    zero = False
    for value, name in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        q, n = divmod(n, value)
        if q:
            if zero and out:
                out += "零"
            out += _CN_DIGITS[q] + name
            zero = False
        elif out:
            zero = True
    return out
