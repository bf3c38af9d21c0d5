"""The WebSocket of the guide: ``/ws/webrtc/?token=<token>``.

This module only moves text frames: parsing and validation are ``core.events.parse_client_message``,
the interview is ``core.session.Session``. Bad input of any kind gets an ``error`` naming the problem
and the connection goes on; a bad token gets an ``error`` and close code 4401; a user over
``[limits] ws_connections_per_user`` gets an ``error`` and 4429; a connection whose interview is
taken over by a newer one (on any instance) gets an ``error`` and 4409.

However the connection ends (``disconnect``, close, abort, a peer that stops answering pings, server
shutdown), its session is ended by ``Session.close``, whose cleanup runs to the end even when this
handler is cancelled.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid

from sanic import Blueprint

from api.auth import AuthError, decode_token
from api.ws_lean import LeanWebsocket
from core import events as ev
from core.engine import SessionError

CLOSE_TOO_MANY = 4429

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

    per_user = int(app.ctx.config.get("limits", {}).get("ws_connections_per_user", 4))
    open_connections = app.ctx.ws_connections
    if open_connections.get(user_id, 0) >= per_user:
        await send(ev.error(f"同时打开的面试连接过多（每个用户最多 {per_user} 个），请关闭其他页面后重试",
                            code=CLOSE_TOO_MANY))
        await ws.close(code=CLOSE_TOO_MANY, reason="too many connections")
        return
    open_connections[user_id] = open_connections.get(user_id, 0) + 1
    try:
        await _serve(app, ws, user_id, send)
    finally:
        left = open_connections.get(user_id, 1) - 1
        if left > 0:
            open_connections[user_id] = left
        else:
            open_connections.pop(user_id, None)


async def _serve(app, ws, user_id: str, send) -> None:
    connection = Connection(app, ws, user_id, send)
    await send(ev.connection_established(connection.id))
    try:
        while True:
            raw = await ws.recv()
            if raw is None or not await connection.on_message(raw):
                break
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the connection broke; the interview is in the store
        log.info("websocket %s ended: %s", connection.id, exc)
    finally:
        # The end of a connection runs to its end even when this handler is cancelled (Sanic
        # cancels it when the socket drops): a task of its own, kept until done.
        ending = asyncio.get_running_loop().create_task(connection.end())
        app.ctx.ws_endings.add(ending)
        ending.add_done_callback(app.ctx.ws_endings.discard)
        await asyncio.shield(ending)


class Connection:
    """One WebSocket connection: its messages in order, and at most one session at a time."""

    def __init__(self, app, ws, user_id: str, send) -> None:
        self.id = uuid.uuid4().hex
        self.ws = ws
        self.user_id = user_id
        self.send = send
        self.engine = app.ctx.engine
        limits = app.ctx.config.get("limits", {})
        self.guard = FloodGuard(float(limits.get("messages_per_second", 200)), self.engine.clock)
        self.max_bytes = int(app.ctx.config.get("server", {}).get("max_ws_message_bytes", ev.MAX_MESSAGE_BYTES))
        self.session = None
        self.flood_reported_at = None
        self.disconnected = False
        self.ending = False

    async def hangup(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, reason=reason)

    async def on_message(self, raw) -> bool:
        """Handle one message; False once the client said ``disconnect``."""
        if not self.guard.allow():
            now = self.engine.clock.now()
            if self.flood_reported_at is None or now - self.flood_reported_at >= 1.0:   # one error a second at most
                await self.send(ev.error("消息过于频繁，已丢弃部分消息（音频每40ms一帧，视频每秒一帧）"))
                self.flood_reported_at = now
            return True
        if len(raw) > self.max_bytes:
            await self.send(ev.error(f"消息过大（上限 {self.max_bytes} 字节），已丢弃"))
            return True
        try:
            message = ev.parse_client_message(raw)
        except ev.ProtocolError as exc:
            await self.send(ev.error(exc.text, field=exc.field) if exc.field else ev.error(exc.text))
            return True
        if isinstance(message, ev.Disconnect):
            self.disconnected = True
            return False
        if isinstance(message, ev.CreateStream):
            if self.ending:             # a late create_stream of a connection that is gone
                return False
            await self.create_stream(message)
            return True
        if self.session is None or self.session.closed:
            await self.send(ev.error("请先发送 create_stream 创建视频流"))
            return True
        await self.session.handle(message)
        return True

    async def create_stream(self, message: ev.CreateStream) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
        try:
            self.session = await self.engine.open_session(self.user_id, message, self.send, self.hangup)
        except SessionError as exc:
            await self.send(ev.error(exc.text, field=exc.field))
            return
        created = ev.stream_created(self.session.stream_id, message.title or "面试视频流", self.session.interview_id)
        if message.tts:                 # additive, only for clients that asked: is there a server voice?
            created["tts"] = {"voice": self.engine.tts is not None}
        await self.send(created)
        await self.session.start()

    async def end(self) -> None:
        """What the server received but had not read yet (the socket ended while messages were
        queued) is still heard: hand it to the session, then end the session and the socket."""
        self.ending = True
        if not self.disconnected:
            await self._read_rest()
        if self.session is not None:
            await self.session.close()
        try:
            await self.ws.close(code=1000, reason="bye")
        except Exception:
            pass
        await self._read_rest(handle=False)

    async def _read_rest(self, handle: bool = True) -> None:
        """Handle (or, with ``handle=False``, drop) the messages received and not read yet."""
        async for raw in self._left_over():
            if handle and not self.disconnected and isinstance(raw, str):
                try:
                    handle = await self.on_message(raw) and handle
                except Exception as exc:
                    log.info("websocket %s: a late message failed: %s", self.id, exc)

    async def _left_over(self):
        """The messages received and not read yet: on the lean receiving path (api/ws_lean.py) its
        inbox; on Sanic's own, its frame assembler (Sanic 25.12 hands each received message over in
        a task that waits until it is read: unread ones would keep a task each, and with it the
        connection, forever)."""
        if isinstance(self.ws, LeanWebsocket):
            while (raw := self.ws.take()) is not None:
                yield raw
            return
        assembler = getattr(self.ws, "assembler", None)
        if assembler is None:
            return
        idle_rounds = 0
        while idle_rounds < 3:               # the next waiting message needs a loop turn to arrive
            try:
                raw = await assembler.get(timeout=0)
            except Exception:
                return
            if raw is None:
                idle_rounds += 1
                await asyncio.sleep(0)
                continue
            idle_rounds = 0
            yield raw
