"""The WebSocket of the guide: ``/ws/webrtc/?token=<token>``.

This module only moves text frames: parsing and validation are ``core.events.parse_client_message``,
the interview is ``core.engine.Session``. Bad input of any kind gets an ``error`` naming the problem
and the connection goes on; a bad token gets an ``error`` and close code 4401.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid

from sanic import Blueprint

from api.auth import AuthError, decode_token
from core import events as ev
from core.engine import SessionError

log = logging.getLogger("mianshi.ws")
bp = Blueprint("ws")


class FloodGuard:
    """Token bucket over messages per second (audio at 25/s plus video and control fit easily)."""

    def __init__(self, rate: float, clock) -> None:
        self.rate = rate
        self.capacity = rate * 2
        self.tokens = self.capacity
        self.clock = clock
        self.last = clock.now()
        self.dropped = 0

    def allow(self) -> bool:
        now = self.clock.now()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.dropped += 1
        return False


@bp.websocket("/ws/webrtc/")
async def webrtc(request, ws):
    app = request.app
    engine = app.ctx.engine
    send_lock = asyncio.Lock()

    async def send(message: dict) -> None:
        async with send_lock:
            await ws.send(json.dumps(message, ensure_ascii=False))

    try:
        user_id = decode_token(app, request.args.get("token"))
    except AuthError as exc:
        await send(ev.error(exc.msg, code=4401))
        await ws.close(code=4401, reason="unauthorized")
        return

    session_id = uuid.uuid4().hex
    await send(ev.connection_established(session_id))
    limits = app.ctx.config.get("limits", {})
    guard = FloodGuard(float(limits.get("messages_per_second", 200)), engine.clock)
    max_bytes = int(app.ctx.config.get("server", {}).get("max_ws_message_bytes", ev.MAX_MESSAGE_BYTES))
    session = None
    flood_reported_at = None
    try:
        while True:
            raw = await ws.recv()
            if raw is None:
                break
            if not guard.allow():
                now = engine.clock.now()
                if flood_reported_at is None or now - flood_reported_at >= 1.0:   # one error a second at most
                    await send(ev.error("消息过于频繁，已丢弃部分消息（音频每40ms一帧，视频每秒一帧）"))
                    flood_reported_at = now
                continue
            if len(raw) > max_bytes:
                await send(ev.error(f"消息过大（上限 {max_bytes} 字节），已丢弃"))
                continue
            try:
                message = ev.parse_client_message(raw)
            except ev.ProtocolError as exc:
                await send(ev.error(exc.text, field=exc.field) if exc.field else ev.error(exc.text))
                continue
            if isinstance(message, ev.Disconnect):
                break
            if isinstance(message, ev.CreateStream):
                if session is not None:
                    await session.close()
                    session = None
                try:
                    session = await engine.open_session(user_id, message, send)
                except SessionError as exc:
                    await send(ev.error(exc.text, field=exc.field))
                    continue
                await send(ev.stream_created(session.stream_id, message.title or "面试视频流",
                                             session.interview_id))
                await session.start()
                continue
            if session is None or session.closed:
                await send(ev.error("请先发送 create_stream 创建视频流"))
                continue
            await session.handle(message)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the connection broke; the interview is in the store
        log.info("websocket %s ended: %s", session_id, exc)
    finally:
        if session is not None:
            await session.close()
        try:
            await ws.close(code=1000, reason="bye")
        except Exception:
            pass
