"""ASR plugin "funasr": Paraformer streaming (``paraformer-zh-streaming``) through ``funasr.AutoModel``,
with optional punctuation of finals (``ct-punc``).

A true streaming model: each session keeps a FunASR cache; ``partial`` feeds only the audio the
model has not seen yet (in whole ``chunk_size[1] * 60 ms`` strides, the rest waits for the next call)
and returns the text decoded so far; ``final`` feeds the remainder with ``is_final=True`` (the tail
flush) and resets the cache for the next utterance.

``model`` in ``[plugins.funasr]`` is a hub name (downloaded on first use when the machine is
online, ``hub = "ms"`` ModelScope or ``"hf"``) or a local directory holding ``config.yaml``,
``model.pt``, ``tokens.json``/``tokens.txt`` and ``am.mvn``. The models are loaded once per process.
Context: the question and resume terms are handed to FunASR as ``hotword`` (used by hotword-capable
models such as SeACo-Paraformer; the plain streaming Paraformer has no biasing input and ignores it).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from core.settings import apply, declare
from core.hookspecs import hookimpl
from core.interfaces import AsrContext, PluginContext
from plugins._speech_util import load_funasr_model, tidy
from plugins._term_fix import fix_terms

log = logging.getLogger("mianshi.asr.funasr")

DEFAULTS = {
    "model": "paraformer-zh-streaming",   # hub name or local directory
    "hub": "ms",                          # ms (ModelScope) | hf (Hugging Face)
    "punc_model": "",                     # e.g. "ct-punc"; "" = no punctuation
    "chunk_size": [0, 10, 5],             # [0, chunk, lookahead] in 60 ms units
    "encoder_chunk_look_back": 4,
    "decoder_chunk_look_back": 1,
    "ncpu": 1,
    "hotwords": True,                     # pass question/resume terms as FunASR hotword
    "term_fix": True,                     # sound-alike spans -> context terms (plugins/_term_fix.py)
}
SETTINGS = declare(DEFAULTS)

def _load(model: str, hub: str, ncpu: int):
    """A FunASR model by hub name or local directory (once per process) and its call lock."""
    kwargs = dict(model=model, disable_update=True, ncpu=ncpu, disable_pbar=True, disable_log=True)
    if not Path(model).is_dir():
        kwargs["hub"] = hub
    return load_funasr_model(**kwargs)


class FunAsr:
    name = "funasr"

    def __init__(self, settings: dict | None = None) -> None:
        self.settings = s = apply("[plugins.funasr]", SETTINGS, settings)
        cs = list(s["chunk_size"])
        if len(cs) != 3 or not all(isinstance(x, int) and x >= 0 for x in cs) or cs[1] < 1:
            raise ValueError("[plugins.funasr] chunk_size must be three integers like [0, 10, 5]")
        self.chunk_size = cs
        self.stride = cs[1] * 960                        # samples per streaming step
        self.model, self.call_lock = _load(str(s["model"]), str(s["hub"]), int(s["ncpu"]))
        self.punc, self.punc_lock = (_load(str(s["punc_model"]), str(s["hub"]), int(s["ncpu"]))
                                     if s["punc_model"] else (None, None))

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "FunAsr":
        return cls(ctx.settings)

    def open_stream(self) -> "FunAsrStream":
        return FunAsrStream(self)

    def run_chunk(self, audio: np.ndarray, cache: dict, is_final: bool, hotword: str) -> str:
        x = audio.astype(np.float32) / 32768.0 if audio.dtype == np.int16 else audio.astype(np.float32)
        kwargs = dict(input=x, cache=cache, is_final=is_final, chunk_size=self.chunk_size,
                      encoder_chunk_look_back=int(self.settings["encoder_chunk_look_back"]),
                      decoder_chunk_look_back=int(self.settings["decoder_chunk_look_back"]),
                      disable_pbar=True)
        if hotword:
            kwargs["hotword"] = hotword
        with self.call_lock:
            res = self.model.generate(**kwargs)
        return (res[0].get("text") or "") if res else ""

    def punctuate(self, text: str) -> str:
        if not self.punc or not text:
            return text
        with self.punc_lock:
            res = self.punc.generate(input=text, disable_pbar=True)
        return (res[0].get("text") or text) if res else text


class FunAsrStream:
    def __init__(self, engine: FunAsr) -> None:
        self.engine = engine
        self.lock = threading.Lock()       # partial and final of one session never overlap
        self._reset()

    def _reset(self) -> None:
        self.cache: dict = {}
        self.fed = 0                       # samples of the current utterance given to the model
        self.text = ""

    def _hotword(self, context: AsrContext | None) -> str:
        if not context or not self.engine.settings["hotwords"]:
            return ""
        return " ".join(t.strip() for t in context.terms if t and t.strip())

    def _fix(self, text: str, context: AsrContext | None) -> str:
        return fix_terms(text, context) if self.engine.settings["term_fix"] else text

    def partial(self, pcm: np.ndarray, context: AsrContext) -> str:
        with self.lock:
            if pcm.size < self.fed:         # a new utterance without final(): start over
                self._reset()
            new = pcm[self.fed:]
            usable = new.size // self.engine.stride * self.engine.stride
            if usable:
                self.text += self.engine.run_chunk(new[:usable], self.cache, False, self._hotword(context))
                self.fed += usable
            return self._fix(tidy(self.text), context)

    def final(self, pcm: np.ndarray, context: AsrContext) -> str:
        with self.lock:
            try:
                if pcm.size < self.fed:
                    self._reset()
                rest = pcm[self.fed:]
                if rest.size == 0:
                    rest = np.zeros(160, np.int16)
                self.text += self.engine.run_chunk(rest, self.cache, True, self._hotword(context))
                return self._fix(tidy(self.engine.punctuate(self.text.replace(" ", ""))), context)
            finally:
                self._reset()


@hookimpl
def register_asr(register):
    register("funasr", FunAsr.from_context, settings=SETTINGS)
