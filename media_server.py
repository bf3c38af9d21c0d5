"""mianshi media server: cheat detection on video frames and Opus encoding of recordings, for web-tier
instances that should spend their cores on WebSockets and audio (README, "Media server"; the
protocol is in ``core/media_remote.py``).

    .venv/bin/python media_server.py --host 0.0.0.0 --port 8100 --workers 4

It reads the same ``plugins.toml`` (``MIANSHI_CONFIG``) as the web tier: ``[engine]
cheat_detectors`` say which detectors it runs, their ``[plugins.<name>]`` tables how, ``[cheat]``
the frame limits. ``MIANSHI_MEDIA_API_KEY`` set = every request must carry it as a bearer token.
It keeps no session state (the detectors' per-session state comes and goes with each frame), so
several servers can stand behind one balancer.

Work runs on ``--workers`` threads (default: the CPU count) for frames and as many for audio. A
frame that would wait behind more than ``--max-waiting-frames`` others is refused at once with 503
(the web tier drops it: a late frame is worth less than the next one); audio beyond
``--max-pending-audio-seconds`` waiting is refused the same way (the web tier encodes it itself).
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import itertools
import json
import logging
import os
import time

import numpy as np
from sanic import Sanic, response

from core.cheat import VisionPool, analyse_frame, declared_kinds, frame_limits
from core.clock import SystemClock
from core.config import data_dir, load_config
from core.frames import FrameError
from core.interfaces import PluginContext
from core.media_remote import ANALYSE_PATH, ENCODE_PATH, INFO_PATH, signals_to_json
from core.plugins import builtin_modules_for, check_plugin_tables, collect, make_plugin_manager
from core.recording import MediaEncoder, encode_opus

log = logging.getLogger("mianshi.media_server")
MAX_AUDIO_SECONDS = 600          # one utterance; [speech] max_utterance_s is 60
_names = itertools.count()


def _jsonable(value):
    """numpy scalars and arrays in detector details and states."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_jsonable)


def build_detectors(config: dict, names: list[str] | None = None) -> list:
    """The cheat detectors ``names`` (default ``[engine] cheat_detectors``), built as the engine
    builds them."""
    names = list(names if names is not None else config.get("engine", {}).get("cheat_detectors", []))
    pm = make_plugin_manager(default_plugins=builtin_modules_for({"cheat_detector": names}))
    registries = collect(pm)
    settings = check_plugin_tables(registries, config.get("plugins", {}) or {})
    clock = SystemClock()
    out = []
    for name in names:
        registration = registries["cheat_detector"].get(name)
        out.append(registration.factory(PluginContext(name=name, settings=settings.get(name, {}), config=config,
                                                      data_dir=data_dir(config), clock=clock)))
    return out


def _error(status: int, code: str, message: str, **headers) -> response.HTTPResponse:
    return response.json({"error": code, "message": message}, status=status, headers=headers or None,
                         dumps=_dumps)


def create_media_app(config_overrides: dict | None = None, *, detectors: list | None = None,
                     workers: int | None = None, max_waiting_frames: int | None = None,
                     max_pending_audio_seconds: float = 600.0, api_key: str | None = None) -> Sanic:
    config = load_config(overrides=config_overrides)
    workers = int(workers or os.cpu_count() or 1)
    max_waiting = int(max_waiting_frames if max_waiting_frames is not None else 4 * workers)
    key = api_key if api_key is not None else os.environ.get("MIANSHI_MEDIA_API_KEY") or None
    detectors = detectors if detectors is not None else build_detectors(config)
    by_name = {d.name: d for d in detectors}
    kinds = declared_kinds(detectors)
    frame_kinds = tuple(k for k in kinds if k != "tab_hidden")
    limits = frame_limits(config.get("cheat", {}))
    n = next(_names)
    app = Sanic("mianshi_media" if n == 0 else f"mianshi_media_{n}")
    app.config.REQUEST_MAX_SIZE = max(24_000_000, int(limits["max_frame_bytes"] * 1.4) + 100_000)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    counts = {"frames": 0, "frames_invalid": 0, "frames_busy": 0, "detector_errors": 0, "frame_ms": 0.0,
              "audio": 0, "audio_seconds": 0.0, "audio_busy": 0, "bad_requests": 0}
    state = {"waiting_frames": 0}

    @app.before_server_start
    async def _start(app_):
        app_.ctx.vision = VisionPool(workers=workers, nice=0)
        app_.ctx.encoder = MediaEncoder(workers=workers, nice=0, max_pending_seconds=max_pending_audio_seconds)

    @app.after_server_stop
    async def _stop(app_):
        app_.ctx.vision.close()
        app_.ctx.encoder.close()

    @app.on_request
    async def _auth(request):
        if key is None:
            return None
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            return _error(401, "unauthorized", "missing or wrong bearer token (MIANSHI_MEDIA_API_KEY)")
        return None

    @app.get(INFO_PATH)
    async def info(request):
        return response.json({"detectors": {d.name: sorted(k.name for k in getattr(d, "kinds", ()) or ())
                                            for d in detectors},
                              "audio": {"format": "ogg/opus", "sample_rate": 16000},
                              "workers": {"vision": workers, "audio": workers,
                                          "max_waiting_frames": max_waiting,
                                          "max_pending_audio_seconds": max_pending_audio_seconds},
                              "stats": {**counts, "waiting_frames": state["waiting_frames"],
                                        "pending_audio_seconds": round(request.app.ctx.encoder.pending, 2)}},
                             dumps=_dumps)

    @app.post(ANALYSE_PATH)
    async def analyse(request):
        try:
            body = json.loads(request.body)
            jpeg = base64.b64decode(body["jpeg"], validate=True)
            names = body["detectors"]
            states = body.get("states") or {}
            if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
                raise ValueError("detectors must be a list of names")
            if not isinstance(states, dict) or not all(isinstance(v, dict) for v in states.values()):
                raise ValueError("states must map detector names to objects")
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            counts["bad_requests"] += 1
            return _error(400, "bad_request", f"expected {{jpeg: base64, detectors: [...], states: {{}}}}: {exc}")
        unknown = [x for x in names if x not in by_name]
        if unknown:
            return _error(404, "unknown_detector", f"not run here: {', '.join(unknown)} "
                                                   f"(running: {', '.join(by_name) or 'none'})")
        if len(jpeg) > limits["max_frame_bytes"]:
            counts["frames_invalid"] += 1
            return _error(422, "frame_invalid", f"视频帧过大（{len(jpeg)} 字节，上限 {limits['max_frame_bytes']} 字节）")
        if state["waiting_frames"] >= max_waiting:
            counts["frames_busy"] += 1
            return _error(503, "busy", f"{state['waiting_frames']} frames already wait", **{"Retry-After": "1"})
        chosen = [by_name[x] for x in names]
        work_states = {x: dict(states.get(x) or {}) for x in names}
        state["waiting_frames"] += 1
        try:
            signals, ms, errors = await request.app.ctx.vision.run(analyse_frame, chosen, work_states, jpeg,
                                                                   limits, frame_kinds)
        except FrameError as exc:
            counts["frames_invalid"] += 1
            return _error(422, "frame_invalid", exc.text)
        finally:
            state["waiting_frames"] -= 1
        counts["frames"] += 1
        counts["detector_errors"] += errors
        counts["frame_ms"] += ms
        return response.json({"signals": signals_to_json(signals), "states": work_states, "ms": round(ms, 2),
                              "detector_errors": errors}, dumps=_dumps)

    @app.post(ENCODE_PATH)
    async def encode(request):
        try:
            rate = int(request.args.get("sample_rate", "16000"))
        except ValueError:
            rate = 0
        if not 8000 <= rate <= 48000:
            counts["bad_requests"] += 1
            return _error(400, "bad_request", "sample_rate must be 8000-48000")
        pcm = request.body or b""
        if not pcm or len(pcm) % 2:
            counts["bad_requests"] += 1
            return _error(400, "bad_request", "the body must be s16le mono PCM (an even, non-zero byte count)")
        seconds = len(pcm) / 2 / rate
        if seconds > MAX_AUDIO_SECONDS:
            return _error(413, "too_long", f"{seconds:.0f} s of audio; at most {MAX_AUDIO_SECONDS} s")
        encoder = request.app.ctx.encoder
        if not encoder.reserve(seconds):
            counts["audio_busy"] += 1
            return _error(503, "busy", f"{encoder.pending:.0f} s of audio already wait", **{"Retry-After": "1"})
        try:
            data = await encoder.run(encode_opus, np.frombuffer(pcm, dtype="<i2"), rate)
        finally:
            encoder.release(seconds)
        counts["audio"] += 1
        counts["audio_seconds"] += seconds
        return response.raw(data, content_type="audio/ogg")

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8100)
    ap.add_argument("--workers", type=int, default=0, help="threads for frames (and for audio); 0 = CPU count")
    ap.add_argument("--max-waiting-frames", type=int, default=None, help="default: 4 x workers")
    ap.add_argument("--max-pending-audio-seconds", type=float, default=600.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    app = create_media_app(workers=args.workers or None, max_waiting_frames=args.max_waiting_frames,
                           max_pending_audio_seconds=args.max_pending_audio_seconds)
    log.info("media server ready in %.1f s", time.perf_counter() - t0)
    app.run(host=args.host, port=args.port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
