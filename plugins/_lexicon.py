"""The domain lexicon: interview vocabulary of the five position types, for the Whisper prompt and
the sound-alike correction (plugins/_term_fix.py).

Sources (all in this repository):
* ``plugins/lexicon/<name>.txt``: hand-written term lists - CS fundamentals (``cs``) and one per
  position type (``backend``, ``frontend``, ``pm``, ``qa``, ``algo``), from the standard curriculum
  and interview syllabus of each (see each file's header);
* the question bank (``plugins/question_bank/<type>.json``): the distinctive words of its questions
  and reference points (the same extraction the correction applies to the current question);
* the Chinese spellings of ``plugins/question_bank/aliases.json``.

A session's lexicon is CS fundamentals plus its position type (all five when the type is unknown).
The correction uses it after the context's own terms (resume, question), which win; the prompt
takes only the few lexicon terms that share a word with the current question and hints
(``prompt_terms``), as the prompt is short and its words can leak into the text.
"""
from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent
LEXICON_DIR = ROOT / "lexicon"
BANK_DIR = ROOT / "question_bank"
POSITION_TYPES = ("backend", "frontend", "pm", "qa", "algo")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_lock = threading.Lock()


def read_list(path: Path) -> list[str]:
    """Terms of one list file: one a line, ``#`` starts a comment."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


@lru_cache(maxsize=8)
def bank_terms(position_type: str) -> tuple[str, ...]:
    """Distinctive words of the question bank of ``position_type``: jieba words of two or more
    characters in its questions and reference points that are not everyday words (dictionary
    count under ``_term_fix.COMMON_FREQ``), and two such words in a row (布隆 + 过滤器)."""
    from plugins._term_fix import _CJK_RUN, _freq, _segments, COMMON_FREQ, MAX_LEN
    path = BANK_DIR / f"{position_type}.json"
    if not path.is_file():
        return ()
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data if isinstance(data, list) else data.get("questions", [])
    out: set[str] = set()
    for q in items:
        for text in [q.get("text", ""), *q.get("points", [])]:
            for run in _CJK_RUN.findall(text):
                words = [w if len(w) >= 2 and _freq(w) < COMMON_FREQ else None for w in _segments(run)]
                for k, w in enumerate(words):
                    if w:
                        out.add(w)
                        nxt = words[k + 1] if k + 1 < len(words) else None
                        if nxt and len(w) + len(nxt) <= MAX_LEN:
                            out.add(w + nxt)
    return tuple(sorted(out))


@lru_cache(maxsize=1)
def alias_terms() -> tuple[str, ...]:
    path = BANK_DIR / "aliases.json"
    if not path.is_file():
        return ()
    data = json.loads(path.read_text(encoding="utf-8"))
    out = set()
    for key, values in data.items():
        if key.startswith("_"):
            continue
        for v in [key, *values]:
            if _CJK.search(v):
                out.add(v)
    return tuple(sorted(out))


@lru_cache(maxsize=8)
def terms(position_type: str = "") -> tuple[str, ...]:
    """The lexicon of a position type: CS fundamentals + its own list + its question bank; all
    types for an unknown or empty one."""
    types = (position_type,) if position_type in POSITION_TYPES else POSITION_TYPES
    out: dict[str, None] = {}
    for name in ("cs", *types):
        for t in read_list(LEXICON_DIR / f"{name}.txt"):
            out[t] = None
    for t in types:
        for term in bank_terms(t):
            out[term] = None
    for t in alias_terms():
        out[t] = None
    return tuple(out)


@lru_cache(maxsize=8)
def term_set(position_type: str = ""):
    """The lexicon as a ``_term_fix.TermSet`` (built once per position type: ~1 s)."""
    from plugins._term_fix import TermSet
    with _lock:
        return TermSet(list(terms(position_type)), [])


def prompt_terms(position_type: str, text: str, limit: int = 8) -> list[str]:
    """Lexicon terms for the Whisper prompt: those sharing a two-character word with ``text`` (the
    question and its hints) but not already in it, longest first, at most ``limit``."""
    if not text or limit <= 0:
        return []
    grams = {text[i:i + 2] for i in range(len(text) - 1) if _CJK.match(text[i]) and _CJK.match(text[i + 1])}
    scored = []
    for t in terms(position_type):
        if t in text or not (2 <= len(t) <= 8):
            continue
        shared = sum(1 for i in range(len(t) - 1) if t[i:i + 2] in grams)
        if shared:
            scored.append((-shared, -len(t), t))
    return [t for _, _, t in sorted(scored)[:limit]]
