"""What the stream's segmentation costs in CER, without playing the audio in real time.

The set is laid out as ``bench_asr.py`` plays it (1 s of silence, then each recording followed by
1.5 s of silence), the VAD cuts it into utterances exactly as in a session (40 ms frames), and each
utterance is decoded once as a final (``final`` of a fresh Whisper stream: the whole utterance,
numbers normalised, sound-alike fix on). A 15-minute real-time run takes ~40 s this way, so settings
of the VAD and the decoder can be compared on the same segments quickly. What it leaves out: the
pre-finals at pauses (decoded with less silence after the speech) and the ``whole_max_s`` split
of long utterances. Measured against the real-time run: zh-dev-tune degraded, beam 1, whole_max_s
12: the same finals on 118 of 120 clips (11.7 % here, 11.9 % there); zh-dev-heldout degraded, the
shipped settings: 9.6 % here, 9.0 % there. Use it to compare settings, then confirm in real time.

Experiments (not product behaviour):
* ``--merge S``: decode utterances of the same recording less than S seconds apart as one (what
  a VAD that never cut inside a sentence would give);
* ``--lead S``: S seconds of audio before the VAD's start added to each utterance.

    .venv/bin/python bench/bench_segments.py --audio-set zh-dev-tune --degrade \\
        [--set whisper.beam_size=5] [--set fsmn.max_end_silence_time=700] [--show 10]
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_asr import (SETS, apply_override, build_stream, context_for, degrade,  # noqa: E402
                       load_set, make_plugins)
from core.config import load_config  # noqa: E402
from plugins._speech_util import edit_distance, normalize_for_cer  # noqa: E402
from tests.asr_support import segments, vad_events  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--audio-set", default="zh-dev-tune", choices=SETS)
    ap.add_argument("--degrade", action="store_true", help="sox-degraded copies (as bench_asr.py)")
    ap.add_argument("--vad", default="fsmn")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--merge", type=float, default=0.0, help="experiment: merge utterances this close")
    ap.add_argument("--lead", type=float, default=0.0, help="experiment: audio before the VAD start (s)")
    ap.add_argument("--show", type=int, default=0, help="print the N recordings with most errors")
    args = ap.parse_args()
    config = load_config()
    for item in args.set:
        apply_override(config, item)
    vad, asr = make_plugins(args.vad, "whisper", config)
    items = load_set(None, args.audio_set)
    if args.degrade:
        tmp = Path(tempfile.mkdtemp(prefix="mianshi-degraded-"))
        items = load_set(None, "zh", degrade(items, tmp))
    audio, segs = build_stream(items, 1.5)
    t0 = time.process_time()
    utts = segments(vad_events(vad, audio))     # the utterances, fed 40 ms at a time

    def owner(u):
        return max(segs, key=lambda s: min(u[1], s["end"]) - max(u[0], s["start"]))["name"]

    groups: list[list[tuple[int, int]]] = []
    for u in utts:
        if groups and args.merge > 0 and u[0] - groups[-1][-1][1] < args.merge * 16000 \
                and owner(u) == owner(groups[-1][-1]):
            groups[-1].append(u)
        else:
            groups.append([u])
    lead = int(args.lead * 16000)
    hyps = collections.defaultdict(list)
    for g in groups:
        name = owner(g[0])
        hyps[name].append(asr.open_stream().final(audio[max(0, g[0][0] - lead):g[-1][1]], context_for(name)))
    by = collections.defaultdict(lambda: [0, 0])
    rows = []
    for s in segs:
        name, ref = s["name"], normalize_for_cer(s["ref"])
        errors = edit_distance(normalize_for_cer("".join(hyps[name])), ref)
        tag = name.split("@")[1] if "@" in name else "clean"
        for key in (tag, "all"):
            by[key][0] += errors
            by[key][1] += len(ref)
        rows.append((errors, name, s["ref"], " | ".join(hyps[name])))
    split = sum(1 for k in hyps.values() if len(k) > 1)
    print(f"set {args.audio_set}{' (degraded)' if args.degrade else ''}: {len(segs)} recordings, "
          f"{len(utts)} utterances ({split} recordings cut in more than one), {len(groups)} decodes, "
          f"{time.process_time() - t0:.0f} CPU s")
    print("CER " + "  ".join(f"{k} {e / n * 100:.1f} %" for k, (e, n) in sorted(by.items())))
    for errors, name, ref, hyp in sorted(rows, reverse=True)[:args.show]:
        print(f"{errors:3d} {name}\n    ref {ref}\n    hyp {hyp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
