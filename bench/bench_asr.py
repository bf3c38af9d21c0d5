"""Streaming ASR benchmark: the test recordings streamed in 40 ms frames at real-time pace through the
configured VAD and ASR plugins and core.speech.SpeechPipeline.

    .venv/bin/python bench/bench_asr.py                      # plugins.toml's vad/asr, full run
    .venv/bin/python bench/bench_asr.py --vad energy --max-streams 6
    .venv/bin/python bench/bench_asr.py --no-context         # without question/resume biasing
    .venv/bin/python bench/bench_asr.py --no-hints           # question + resume terms, no reference points
    .venv/bin/python bench/bench_asr.py --min-streams 4 --max-streams 5   # only those load levels
    .venv/bin/python bench/bench_asr.py --quick              # 1 stream only (3 passes over the set)
    .venv/bin/python bench/bench_asr.py --quick --passes 1   # 1 stream, the set once (~1.5 min)
    .venv/bin/python bench/bench_asr.py --quick --set whisper.term_fix=false   # try a setting
    .venv/bin/python bench/bench_asr.py --remote http://127.0.0.1:8000/v1 --quick   # through openai_asr

``--remote URL`` recognises through the remote plugin (``openai_asr``, plugins/asr_openai.py) against
the OpenAI-compatible server at URL (e.g. ``faster-whisper-server data/models/whisper-base``, the
same Whisper base weights as the local plugin); it adds the plugin's request latencies and skip
counts. CPU s per audio s is then this (client) process only, not the server's.

Each stream is one session that plays every recording of ../shared/audio/zh (1 s of silence before
the first, ``--gap`` seconds between them). Reported:
  * CER of the finals against transcripts.tsv (normalised: simplified, no punctuation, numerals read
    out); finals are attributed to the recording their audio overlaps most;
  * partial cadence: median/p95 gap between consecutive partials (or speech start -> first partial)
    while speaking;
  * latency of each final: from the moment the last voiced sample of the recording was fed
    ("speech end") and from the VAD's end-of-speech event, p50/p95 (the one-stream run plays the
    set ``--passes`` times, 3 by default, so its p95 is not just the slowest of 11; the max is
    printed too);
  * CPU seconds per audio second (process CPU time / audio streamed);
  * the load sweep: N simultaneous real-time streams (staggered), final p95, until p95 > 1.5 s.
The question and resume terms given as ASR context are the ones an interview would hand over: a
backend candidate's resume terms and, per recording, the question being answered (for the cache
answer a question of the backend bank, whose reference points go along as hints). Also printed:
the scheduler's counts (finals, pre-finals run/withdrawn/skipped, partials run/skipped) and the
worker time by kind. ``--set section.key=value`` tries another setting without editing plugins.toml.
"""
from __future__ import annotations

import argparse
import importlib.util  # noqa: F401  (core.plugins uses importlib.util)
import asyncio
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.clock import SystemClock  # noqa: E402
from core.config import load_config  # noqa: E402
from core.events import SpeechEnded, SpeechStarted, Transcript  # noqa: E402
from core.interfaces import AsrContext, PluginContext  # noqa: E402
from core.plugins import collect, make_plugin_manager  # noqa: E402
from core.speech import AsrScheduler, SpeechPipeline  # noqa: E402
from plugins._speech_util import corpus_cer  # noqa: E402
from core.itn import itn  # noqa: E402
from tests.asr_support import (AUDIO, DEV_AUDIO, dev_split, load_from, references_in,  # noqa: E402
                               voiced_bounds)

FRAME = 640  # 40 ms
VARIANTS: dict[str, tuple[str, str]] = {}   # shown text -> (raw, corrected towards the context only)


def record_variants(asr) -> None:
    """Wrap the engine's sound-alike correction so that each result's uncorrected text (and its
    context-only correction) can be scored too."""
    from plugins._term_fix import fix_terms
    inner = getattr(asr, "fix_terms", None)
    if inner is None:
        return

    def wrapped(text, context):
        out = inner(text, context)
        VARIANTS[itn((out or "").strip())] = (itn((text or "").strip()),
                                              itn(fix_terms(text, context, lexicon=False).strip()))
        return out
    asr.fix_terms = wrapped

# What the engine would hand over: the resume's terms and the question being answered.
RESUME_TERMS = ["华中科技大学", "软件工程", "电商", "后端开发", "订单系统", "支付系统", "高并发",
                "数据库", "性能优化", "Redis", "MySQL", "Kafka"]
QUESTIONS = {
    "intro": "请开始自我介绍吧",
    # a question of the backend bank (plugins/question_bank/backend.json): its reference points go
    # to ASR as hints, as the question phase hands them over
    "answer_cache": "什么是缓存穿透、缓存击穿和缓存雪崩？分别怎么解决？",
    "answer_index": "数据库索引的底层数据结构是什么？",
    "answer_queue": "消息队列在你们的项目里起什么作用？",
    "answer_long": "讲一个你做过的性能优化。",
    "answer_end": "还有什么要补充的吗？",
    "short_yes": "你在项目里用过Redis吗？",
    "shuowanle": "还有什么要补充的吗？",
}


def bank_points() -> dict[str, list[str]]:
    import json
    data = json.loads((ROOT / "plugins" / "question_bank" / "backend.json").read_text(encoding="utf-8"))
    items = data if isinstance(data, list) else data.get("questions", [])
    return {q["text"]: list(q.get("points", [])) for q in items}


BANK_POINTS = bank_points()


def question_for(name: str) -> str:
    for prefix, q in QUESTIONS.items():
        if name.startswith(prefix):
            return q
    return ""


# The development set (../shared/audio/zh-dev) has no question per recording: its context is only
# what the name says about the interview - the position type (domain lexicon) and, for the
# introductions, the intro question. No resume terms, no question text, nothing from its sentences.
DEV_DOMAINS = {"d_be": "backend", "d_fe": "frontend", "d_pm": "pm", "d_qa": "qa", "d_algo": "algo"}


def context_for(name: str, hints: bool = True) -> AsrContext:
    base = name.split("#")[0].split("@")[0]
    if base.startswith("d_"):
        group = base.rsplit("_", 1)[0]
        return AsrContext("请开始自我介绍吧" if group == "d_intro" else "", [], [],
                          DEV_DOMAINS.get(group, ""))
    q = question_for(name)
    return AsrContext(q, RESUME_TERMS, BANK_POINTS.get(q, []) if hints else [], "backend")


SETS = ("zh", "zh-dev", "zh-dev-tune", "zh-dev-heldout")


def load_set(names: list[str] | None, which: str = "zh", audio_dir: Path | None = None):
    """(name, reference, pcm) of a recording set: ``zh`` (the test recordings), ``zh-dev`` or its
    fixed parts ``zh-dev-tune`` / ``zh-dev-heldout`` (tests/asr_support.dev_split)."""
    directory = audio_dir or (AUDIO if which == "zh" else DEV_AUDIO)
    refs = references_in(directory)
    keep = list(refs)
    if which in ("zh-dev-tune", "zh-dev-heldout"):
        tune, held = dev_split([n.split("@")[0] for n in refs])
        part = set(tune if which == "zh-dev-tune" else held)
        keep = [n for n in refs if n.split("@")[0] in part]
    return [(name, refs[name], load_from(directory, name)) for name in keep if not names or name in names]


def degrade(items, out_dir: Path) -> Path:
    """Degraded copies of the recordings made with sox into ``out_dir`` (transcripts.tsv beside):
    speed 0.9 and 1.1 (tempo and pitch, as ``speed``), white noise mixed at about 15 dB SNR,
    reverb (sox ``reverb 50``), and 12 dB quieter. sox runs repeatable (``-R``: fixed seeds for the
    noise and the dither), so every run plays the same copies and two settings compare on the same
    noise (with fresh noise per run, the noise variant's CER moved by ~2 points between runs)."""
    import shutil
    import subprocess
    import wave
    if shutil.which("sox") is None:
        raise SystemExit("--degrade needs sox (apt-get install sox)")
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, ref, pcm in items:
        src = out_dir / f"{name}.src.wav"
        with wave.open(str(src), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
            w.writeframes(pcm.tobytes())
        level = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) / 32768
        effects = {
            "speed09": ["speed", "0.9"], "speed11": ["speed", "1.1"], "reverb": ["reverb", "50"],
            "quiet": ["vol", "-12dB"],
        }
        for tag, eff in effects.items():
            subprocess.run(["sox", "-R", str(src), "-r", "16000", "-c", "1", "-b", "16",
                            str(out_dir / f"{name}@{tag}.wav"), *eff, "rate", "16000"], check=True)
            lines.append(f"{name}@{tag}\t{ref}")
        noise = out_dir / f"{name}.noise.wav"
        dur = len(pcm) / 16000
        subprocess.run(["sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16", str(noise), "synth", f"{dur}",
                        "whitenoise", "vol", f"{level * 10 ** (-15 / 20) * 1.73:.5f}"], check=True)
        subprocess.run(["sox", "-R", "-m", str(src), str(noise), "-b", "16", str(out_dir / f"{name}@noise.wav")],
                       check=True)
        lines.append(f"{name}@noise\t{ref}")
        src.unlink(), noise.unlink()
    (out_dir / "transcripts.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out_dir


def build_stream(items, gap_s: float):
    """One session's audio: 1 s silence, then each recording followed by ``gap_s`` of silence."""
    parts = [np.zeros(16000, np.int16)]
    pos = 16000
    segs = []
    for name, ref, pcm in items:
        a, b = voiced_bounds(pcm)
        segs.append({"name": name, "ref": ref, "start": pos, "end": pos + len(pcm),
                     "voice_start": pos + a, "voice_end": pos + b})
        parts += [pcm, np.zeros(int(gap_s * 16000), np.int16)]
        pos += len(pcm) + int(gap_s * 16000)
    return np.concatenate(parts), segs


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run_stream(vad, asr, scheduler, audio, segs, context_on: bool, delay: float, settings: dict):
    clock = SystemClock()
    events = []

    async def on_event(ev):
        events.append((time.monotonic(), ev))

    pipe = SpeechPipeline(vad, asr, scheduler, clock, on_event, settings)
    await asyncio.sleep(delay)
    fed_at = {}          # sample index -> wall time it was fed
    t0 = time.monotonic()
    seg_i = 0
    n_frames = (len(audio) + FRAME - 1) // FRAME
    for k in range(n_frames):
        target = t0 + k * FRAME / 16000
        now = time.monotonic()
        if target > now:
            await asyncio.sleep(target - now)
        start = k * FRAME
        # the question changes when a new recording begins (the engine sets it per turn)
        while seg_i < len(segs) and start >= segs[seg_i]["start"] - 8000:
            pipe.set_context(context_for(segs[seg_i]["name"], context_on != "no-hints")
                             if context_on else AsrContext())
            seg_i += 1
        await pipe.feed(audio[start:start + FRAME].tobytes())
        fed_at[start + FRAME] = time.monotonic()
    await pipe.drain()
    await pipe.aclose()
    hits = getattr(pipe.asr_stream, "speculative_hits", 0)
    return events, fed_at, pipe.errors, hits


def analyse(events, fed_at, segs):
    finals = [(t, ev) for t, ev in events if isinstance(ev, Transcript) and ev.is_final]
    hyps = {s["name"]: [] for s in segs}
    lat_speech, lat_vad = [], []
    ends = [t for t, ev in events if isinstance(ev, SpeechEnded)]
    for t, ev in finals:
        a, b = ev.audio_start * 16000, ev.audio_end * 16000
        best = max(segs, key=lambda s: min(b, s["end"]) - max(a, s["start"]))
        hyps[best["name"]].append((t, ev))
    for s in segs:
        if not hyps[s["name"]]:
            continue
        t_final = hyps[s["name"]][-1][0]
        frame_end = ((s["voice_end"] + FRAME - 1) // FRAME) * FRAME
        t_fed = fed_at.get(frame_end)
        if t_fed is not None:
            lat_speech.append(t_final - t_fed)
            s["latency"] = t_final - t_fed
        prior = [e for e in ends if e <= t_final]
        if prior:
            lat_vad.append(t_final - prior[-1])
    pairs = [("".join(ev.text for _, ev in hyps[s["name"]]), s["ref"]) for s in segs]
    shown = [" | ".join(ev.text for _, ev in hyps[s["name"]]) for s in segs]   # one final per piece
    # the same finals before the sound-alike correction, and corrected towards the context only
    # (VARIANTS: recorded by the fix_terms wrapper of main())
    for k, label in ((0, "raw"), (1, "context")):
        pairs_k = [("".join(VARIANTS.get(ev.text, (ev.text, ev.text))[k] for _, ev in hyps[s["name"]]), s["ref"])
                   for s in segs]
        if label == "raw":
            pairs_raw = pairs_k
        else:
            pairs_ctx = pairs_k
    # partial cadence while speaking
    gaps = []
    last = None
    for t, ev in events:
        if isinstance(ev, SpeechStarted):
            last = t
        elif isinstance(ev, Transcript) and not ev.is_final and last is not None:
            gaps.append(t - last)
            last = t
        elif isinstance(ev, SpeechEnded):
            last = None
    n_utts = sum(1 for _, ev in events if isinstance(ev, SpeechStarted))
    return {"pairs": pairs, "shown": shown, "pairs_raw": pairs_raw, "pairs_ctx": pairs_ctx, "lat_speech": lat_speech, "lat_vad": lat_vad, "gaps": gaps, "n_utts": n_utts,
            "n_final": len(finals), "n_partial": sum(1 for _, ev in events
                                                     if isinstance(ev, Transcript) and not ev.is_final)}


def pct(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


async def run_load(n, vad, asr, scheduler, audio, segs, context_on, settings):
    c0, w0 = cpu_seconds(), time.monotonic()
    results = await asyncio.gather(*[
        run_stream(vad, asr, scheduler, audio, segs, context_on, delay=i * 0.77, settings=settings)
        for i in range(n)])
    cpu = cpu_seconds() - c0
    wall = time.monotonic() - w0
    merged = {"pairs": [], "shown": [], "pairs_raw": [], "pairs_ctx": [], "lat_speech": [], "lat_vad": [], "gaps": [], "n_utts": 0, "n_final": 0,
              "n_partial": 0, "errors": 0}
    merged["speculative_hits"] = 0
    for events, fed_at, errors, hits in results:
        merged["speculative_hits"] += hits
        r = analyse(events, fed_at, segs)
        for k in ("pairs", "shown", "pairs_raw", "pairs_ctx", "lat_speech", "lat_vad", "gaps"):
            merged[k] += r[k]
        for k in ("n_utts", "n_final", "n_partial"):
            merged[k] += r[k]
        merged["errors"] += len(errors)
    merged["cpu_per_audio_s"] = cpu / (n * len(audio) / 16000)
    merged["wall"] = wall
    return merged


def apply_override(config: dict, item: str) -> None:
    """``section.key=value`` into the loaded config (``speech`` or a plugin's table)."""
    import tomllib
    name, sep, raw = item.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not key:
        raise SystemExit(f"--set {item!r}: expected SECTION.KEY=VALUE")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    table = config.setdefault("speech", {}) if section == "speech" else \
        config.setdefault("plugins", {}).setdefault(section, {})
    table[key] = value
    print(f"override: {section}.{key} = {value!r}")


def print_remote_stats(asr) -> None:
    """The remote plugin's own counts and request latencies (nothing for local plugins); reset."""
    stats = getattr(asr, "stats", None)
    if stats is None:
        return
    st = stats()
    lat = st.pop("latency_s")
    print("remote requests               " + ", ".join(f"{k} {v}" for k, v in st.items()))
    for kind, values in lat.items():
        if values:
            print(f"remote {kind:7s} request p50 / p95  {pct(values, 50):.2f} s / {pct(values, 95):.2f} s"
                  f"   ({len(values)} requests)")
    asr.reset_stats()


def make_plugins(vad_name, asr_name, config):
    pm = make_plugin_manager(load_entry_points=False,
                             default_plugins=("plugins.vad_energy", "plugins.vad_fsmn",
                                              "plugins.asr_whisper", "plugins.asr_funasr",
                                              "plugins.asr_openai"))
    regs = collect(pm)
    from core.clock import SystemClock as _C
    from core.config import data_dir

    def ctx(name):
        return PluginContext(name, dict(config.get("plugins", {}).get(name, {})), config,
                             data_dir(config), _C())
    vad = regs["vad"].get(vad_name).factory(ctx(vad_name))
    asr = regs["asr"].get(asr_name).factory(ctx(asr_name))
    return vad, asr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vad", help="vad plugin (default: plugins.toml [engine] vad)")
    ap.add_argument("--asr", help="asr plugin (default: plugins.toml [engine] asr)")
    ap.add_argument("--no-context", action="store_true", help="no question/resume biasing")
    ap.add_argument("--no-hints", action="store_true", help="question and resume terms, no reference points")
    ap.add_argument("--quick", action="store_true", help="one stream only, no load sweep")
    ap.add_argument("--max-streams", type=int, default=6)
    ap.add_argument("--min-streams", type=int, default=2, help="first load level of the sweep")
    ap.add_argument("--gap", type=float, default=1.5, help="silence between recordings (s)")
    ap.add_argument("--files", nargs="*", help="subset of recordings (names without .wav)")
    ap.add_argument("--audio-set", default="zh", choices=SETS,
                    help="recordings: zh (../shared/audio/zh), zh-dev, or its fixed parts zh-dev-tune / "
                         "zh-dev-heldout (tests/asr_support.dev_split)")
    ap.add_argument("--degrade", action="store_true",
                    help="play sox-degraded copies (speed 0.9/1.1, noise ~15 dB SNR, reverb, -12 dB) of "
                         "the set instead, made in a temporary directory")
    ap.add_argument("--streams", help="load levels to run, comma-separated (e.g. 4,8), instead of the sweep")
    ap.add_argument("--workers", type=int, default=2, help="AsrScheduler workers")
    ap.add_argument("--passes", type=int, default=3,
                    help="one-stream run: play the set this many times (p95 over all of them)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a setting for this run: whisper.whole_max_s=4 (a [plugins.*] table) "
                         "or speech.pause_partial_s=0.2 (the [speech] table); value parsed as TOML")
    ap.add_argument("--remote", metavar="URL",
                    help="recognise through the openai_asr plugin against this /v1 base URL")
    args = ap.parse_args()

    config = load_config()
    if args.remote:
        config.setdefault("plugins", {}).setdefault("openai_asr", {})["base_url"] = args.remote
        args.asr = "openai_asr"
    for item in args.set:
        apply_override(config, item)
    context_mode = False if args.no_context else ("no-hints" if args.no_hints else True)
    vad_name = args.vad or config.get("engine", {}).get("vad", "fsmn")
    asr_name = args.asr or config.get("engine", {}).get("asr", "whisper")
    speech_settings = dict(config.get("speech", {}))
    t = time.monotonic()
    vad, asr = make_plugins(vad_name, asr_name, config)
    print(f"vad={vad_name} asr={asr_name} context={'off' if args.no_context else ('no hints' if args.no_hints else 'on')} "
          f"models loaded in {time.monotonic() - t:.1f}s; cores={os.cpu_count()} "
          f"load average {os.getloadavg()[0]:.2f} (shared machine)")
    items = load_set(args.files, args.audio_set)
    if args.degrade:
        import tempfile
        tmp = Path(tempfile.mkdtemp(prefix="mianshi-degraded-"))
        items = load_set(None, "zh", degrade(items, tmp))
        print(f"degraded copies in {tmp}")
    record_variants(asr)
    print(f"set {args.audio_set}{' (degraded)' if args.degrade else ''}: ", end="")
    audio, segs = build_stream(items, args.gap)
    print(f"{len(items)} recordings, {sum(len(p) for _, _, p in items) / 16000:.1f} s of speech audio, "
          f"{len(audio) / 16000:.1f} s per stream")
    # the one-stream run may play the set several times in a row: 11 recordings give 11 latencies,
    # whose "p95" is simply the slowest; more passes give a p95 that is one
    passes = max(1, args.passes)
    one_audio, one_segs = build_stream([(name if k == 0 else f"{name}#{k + 1}", ref, pcm)
                                        for k in range(passes) for name, ref, pcm in items], args.gap)
    scheduler = AsrScheduler(workers=args.workers)
    try:
        r = asyncio.run(run_load(1, vad, asr, scheduler, one_audio, one_segs, context_mode, speech_settings))
        cer = corpus_cer(r["pairs"])
        print(f"\n== one real-time stream ({passes} pass{'es' if passes > 1 else ''} over the set) ==")
        n_items = len(items)
        for i, (hyp, s) in enumerate(zip(r["shown"][:n_items], one_segs[:n_items])):
            lats = "/".join(f"{one_segs[i + k * n_items].get('latency', float('nan')):.2f}" for k in range(passes))
            print(f"  {s['name']:13s} {lats} s  {hyp}")
        print(f"CER of finals                 {cer * 100:.1f} %   (numbers normalised, core/itn.py)")
        print(f"  before sound-alike fix      {corpus_cer(r['pairs_raw']) * 100:.1f} %")
        print(f"  context terms only          {corpus_cer(r['pairs_ctx']) * 100:.1f} %")
        changed = sum(1 for (a, _), (b, _) in zip(r["pairs_raw"], r["pairs"]) if a != b)
        print(f"  recordings changed by fix   {changed} of {len(r['pairs'])}")
        print(f"utterances / finals / partials {r['n_utts']} / {r['n_final']} / {r['n_partial']}")
        print(f"partial gap median / p95      {statistics.median(r['gaps']) if r['gaps'] else float('nan'):.2f} s"
              f" / {pct(r['gaps'], 95):.2f} s")
        print(f"speech end -> final p50 / p95 {pct(r['lat_speech'], 50):.2f} s / {pct(r['lat_speech'], 95):.2f} s"
              f"   (max {max(r['lat_speech']):.2f} s over {len(r['lat_speech'])} recordings)")
        print(f"VAD end -> final p50 / p95    {pct(r['lat_vad'], 50):.2f} s / {pct(r['lat_vad'], 95):.2f} s")
        print(f"CPU s per audio s             {r['cpu_per_audio_s']:.3f}")
        print(f"finals ready before VAD end   {r['speculative_hits']} of {r['n_final']} (speculative decode at pauses)")
        print(f"pipeline errors               {r['errors']}")
        print(f"scheduler                     {scheduler.stats}")
        print("worker seconds by kind        " + ", ".join(f"{k} {v:.1f}" for k, v in scheduler.busy_seconds.items()))
        print_remote_stats(asr)
        if args.quick:
            return 0
        print("\n== simultaneous real-time streams (target: speech end -> final p95 <= 1.5 s) ==")
        print(" N   final p95 (speech end)   VAD end p95   partial gap med   CER    CPU/audio s")
        best = 1 if pct(r["lat_speech"], 95) <= 1.5 else 0
        levels = [int(x) for x in args.streams.split(",")] if args.streams else \
            list(range(max(2, args.min_streams), args.max_streams + 1))
        for n in levels:
            scheduler.stats = {k: 0 for k in scheduler.stats}
            scheduler.busy_seconds = {k: 0.0 for k in scheduler.busy_seconds}
            rn = asyncio.run(run_load(n, vad, asr, scheduler, audio, segs, context_mode,
                                      speech_settings))
            p95 = pct(rn["lat_speech"], 95)
            print(f"{n:2d}   {p95:8.2f} s               {pct(rn['lat_vad'], 95):6.2f} s"
                  f"      {statistics.median(rn['gaps']) if rn['gaps'] else float('nan'):6.2f} s"
                  f"      {corpus_cer(rn['pairs']) * 100:4.1f} %  {rn['cpu_per_audio_s']:.3f}"
                  f"   (partials run {scheduler.stats['partials_run']} skipped {scheduler.stats['partials_skipped']};"
                  f" pre-finals run {scheduler.stats['prefinals_run']} withdrawn"
                  f" {scheduler.stats['prefinals_withdrawn']} skipped {scheduler.stats['prefinals_skipped']};"
                  f" finals {scheduler.stats['finals']}; hits {rn['speculative_hits']}; worker s "
                  + "/".join(f"{v:.0f}" for v in scheduler.busy_seconds.values()) + ")")
            print_remote_stats(asr)
            if p95 <= 1.5:
                best = n
            elif not args.streams:
                break
        print(f"max simultaneous streams with final p95 <= 1.5 s: {best}")
    finally:
        scheduler.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
