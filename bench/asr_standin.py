"""A fast stand-in for a remote ASR server, for bench/bench_webtier.py ONLY: it answers the OpenAI
``POST /v1/audio/transcriptions`` route with a fixed sentence after ``--delay`` seconds, without
recognising anything, so that the web-tier benchmark measures the web tier (WebSocket, VAD,
pipeline, vision, the remote plugin's requests) and not a recogniser sharing its 2 cores. It checks
that the upload is a 16 kHz mono 16-bit WAV and counts requests (``GET /stats``).

    .venv/bin/python bench/asr_standin.py --port 8011 --delay 0.15
"""
from __future__ import annotations

import argparse
import asyncio
import io
import wave

from aiohttp import web

REPLY = "我负责过订单服务的接口开发"     # a fixed answer, not taken from any test recording


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
        return web.json_response({"text": REPLY})

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(counts)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_get("/stats", stats)
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
