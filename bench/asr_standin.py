"""A fast stand-in for a remote ASR server and a media server, for bench/bench_webtier.py ONLY: it
answers the OpenAI ``POST /v1/audio/transcriptions`` route with a fixed sentence (cut to the
length the audio would read, ``reply_for``) after ``--delay`` seconds, without recognising anything, so that the web-tier benchmark measures the web tier
(WebSocket, VAD, pipeline, the remote plugin's requests) and not a recogniser sharing its 2 cores. It
checks that the upload is a 16 kHz mono 16-bit WAV and counts requests (``GET /stats``).

With ``bench_webtier.py --media standin`` it stands in for ``media_server.py`` too (the protocol of
``core/media_remote.py``): every frame (checked to be base64 JPEG) gets "one face, looking ahead"
from each detector asked, every utterance (checked to be whole s16 samples) the same Ogg/Opus second
of silence, encoded once at start. Again: the web tier's cost of sending them away, not detection.

    .venv/bin/python bench/asr_standin.py --port 8011 --delay 0.15
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import io
import sys
import wave
from pathlib import Path

import numpy as np
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.recording import encode_opus  # noqa: E402

REPLY = "我负责过订单服务的接口开发"     # a fixed answer, not taken from any test recording
CHARS_PER_SECOND = 4.5                 # about the rate of spoken Mandarin


def reply_for(seconds: float) -> str:
    """The fixed answer cut (or repeated) to the length speech of ``seconds`` would give: a partial
    over more audio reads longer, as a real recogniser's would, so every partial is news to the page
    and the web tier sends it, as it would for real speech."""
    n = max(1, round(CHARS_PER_SECOND * seconds))
    return (REPLY * (n // len(REPLY) + 1))[:n]


def make_app(delay: float) -> web.Application:
    counts = {"requests": 0, "audio_s": 0.0, "bad": 0}

    async def transcriptions(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        try:
            with wave.open(io.BytesIO(upload.file.read())) as w:
                ok = (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
                seconds = w.getnframes() / 16000
        except (AttributeError, wave.Error, EOFError):
            ok, seconds = False, 0.0
        if not ok:
            counts["bad"] += 1
            return web.json_response({"error": {"message": "expected a 16 kHz mono s16 WAV"}}, status=400)
        counts["requests"] += 1
        counts["audio_s"] += seconds
        await asyncio.sleep(delay)
        return web.json_response({"text": reply_for(seconds)})

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(counts)

    # --- the media server's routes (core/media_remote.py) ---
    silence = encode_opus(np.zeros(16000, np.int16))
    kinds = {"blazeface": ["multiple_faces", "no_face"], "facemesh_pose": ["looking_away"]}

    async def media_info(_request: web.Request) -> web.Response:
        return web.json_response({"detectors": kinds, "audio": {"format": "ogg/opus", "sample_rate": 16000}})

    async def analyse(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            ok = base64.b64decode(body["jpeg"])[:2] == b"\xff\xd8" and all(d in kinds for d in body["detectors"])
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            counts["bad"] += 1
            return web.json_response({"error": "bad_request", "message": "expected a JPEG"}, status=400)
        counts["frames"] = counts.get("frames", 0) + 1
        signals = [{"detector": d, "kind": None, "score": 0.9, "detail": {"faces": 1}} for d in body["detectors"]]
        return web.json_response({"signals": signals, "states": body.get("states") or {}, "ms": 0.0})

    async def encode(request: web.Request) -> web.Response:
        pcm = await request.read()
        if not pcm or len(pcm) % 2:
            counts["bad"] += 1
            return web.json_response({"error": "bad_request", "message": "expected s16 PCM"}, status=400)
        counts["encoded"] = counts.get("encoded", 0) + 1
        return web.Response(body=silence, content_type="audio/ogg")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_get("/stats", stats)
    app.router.add_get("/v1/media/info", media_info)
    app.router.add_post("/v1/vision/analyse", analyse)
    app.router.add_post("/v1/audio/encode", encode)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay", type=float, default=0.15, help="seconds before each answer")
    args = ap.parse_args()
    if args.delay < 0:
        ap.error("--delay must be >= 0")
    web.run_app(make_app(args.delay), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
