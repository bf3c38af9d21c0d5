"""The WebSocket's receiving side without a task per message.

Sanic 25.12 hands each received message to the handler through a one-slot assembler: every
``data_received`` creates a task, the assembler pauses reading the socket until the handler takes
the message, and every ``recv()`` creates a future, a task and an ``asyncio.wait``. For a page that
sends audio every 40 ms that is the web tier's largest cost after the VAD (``bench_webtier`` at 100
sessions: a fifth of the event loop's time in ``recv`` and another tenth creating those tasks), and
the paused socket has a second cost: a pong waits behind the message the handler has not taken, so
a live client whose handler is busy for longer than the ping timeout is closed with 1011.

``LeanWebsocket`` keeps Sanic's connection (handshake, sending, pings, closing) and replaces how
frames come in: ``data_received`` parses them at once, pongs are acknowledged there, complete
messages go to an inbox the handler's ``recv`` takes from without waiting when it holds something.
The socket is paused only when the inbox holds ``inbox_messages`` messages or ``inbox_bytes``
bytes (back-pressure on a client far ahead of its handler), and read again at half of that.
After the peer's close ``recv`` returns every message that came before it, then ``None``; the close
is answered (and the connection ended) once the handler has taken them (Sanic cancels the handler
when the connection is gone). After a lost connection the handler is cancelled as before.

``LeanWebSocketProtocol`` is the server protocol that installs it (``protocol=`` of ``app.run`` /
``app.create_server``; ``sanic_app.SERVER_PROTOCOL``).
"""
from __future__ import annotations

import asyncio
import codecs
from collections import deque

from sanic.exceptions import ServerError
from sanic.server.protocols.websocket_protocol import WebSocketProtocol
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import CLOSED, OPEN

UTF8 = codecs.getincrementaldecoder("utf-8")

INBOX_MESSAGES = 100           # 4 s of a page's audio messages
INBOX_BYTES = 4_000_000


class LeanWebsocket(WebsocketImplProtocol):
    """A Sanic WebSocket whose received messages wait in an inbox (see the module's text)."""

    @classmethod
    def adopt(cls, ws: WebsocketImplProtocol, inbox_messages: int = INBOX_MESSAGES,
              inbox_bytes: int = INBOX_BYTES) -> bool:
        """Make the just-opened ``ws`` lean, before it received anything; False (left as it is) when
        its assembler already holds part of a message."""
        assembler = ws.assembler
        if assembler.chunks or assembler.message_complete.is_set() or assembler.get_in_progress:
            return False
        ws.__class__ = cls
        ws._inbox = deque()
        ws._inbox_bytes = 0
        ws._inbox_limits = (max(2, int(inbox_messages)), max(1, int(inbox_bytes)))
        ws._parts = []
        ws._decoder = None
        ws._waiter = None
        ws._ended = False
        ws._reading_paused = False
        ws._replies = set()
        ws._held_replies = []
        return True

    # -- receiving -------------------------------------------------------------------------------

    def data_received(self, data) -> None:
        self.ws_proto.receive_data(data)
        replies = self.ws_proto.data_to_send()       # pongs to the peer's pings, the close echo
        events = self.ws_proto.events_received()
        if events:
            self._take(events)
        if replies:
            if self._ended and self._inbox:
                # the peer closed: its close is answered (and the connection ended) once the handler
                # has taken every message that came before it
                self._held_replies.extend(replies)
            else:
                self._reply(replies)

    def _reply(self, replies: list) -> None:
        task = asyncio.get_running_loop().create_task(self.send_data(replies))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def process_events(self, events) -> None:
        """(Sanic calls this for the frames that come with the end of the stream.)"""
        self._take(events)

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        self._held_replies = []
        self._end()

    def _take(self, events) -> None:
        for event in events:
            if not isinstance(event, Frame):
                continue
            if event.opcode is Opcode.PONG:
                self._acknowledge(bytes(event.data))
            elif event.opcode is Opcode.CLOSE:
                self._end()
            elif event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                self._part(event)

    def _part(self, frame: Frame) -> None:
        if frame.opcode is Opcode.TEXT:
            self._decoder = UTF8(errors="strict")
        elif frame.opcode is Opcode.BINARY:
            self._decoder = None
        try:
            part = self._decoder.decode(frame.data, frame.fin) if self._decoder else bytes(frame.data)
        except UnicodeDecodeError:
            self.fail_connection(1007, "invalid UTF-8")
            self._end()
            return
        self._parts.append(part)
        if not frame.fin:
            return
        parts, self._parts = self._parts, []
        message = parts[0] if len(parts) == 1 else ("" if self._decoder else b"").join(parts)
        self._decoder = None
        self._inbox.append(message)
        self._inbox_bytes += len(message)
        self._wake()
        most, most_bytes = self._inbox_limits
        if not self._reading_paused and (len(self._inbox) >= most or self._inbox_bytes >= most_bytes):
            if self.io_proto and self.io_proto.transport:
                self.io_proto.transport.pause_reading()
                self._reading_paused = True

    def _acknowledge(self, data: bytes) -> None:
        """A pong answers its ping and every ping sent before it."""
        if data not in self.pings:
            return
        answered = []
        for ping_id, ping in self.pings.items():
            answered.append(ping_id)
            if not ping.done():
                ping.set_result(None)
            if ping_id == data:
                break
        for ping_id in answered:
            del self.pings[ping_id]

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _pop(self):
        message = self._inbox.popleft()
        self._inbox_bytes -= len(message)
        if self._reading_paused:
            most, most_bytes = self._inbox_limits
            if len(self._inbox) <= most // 2 and self._inbox_bytes <= most_bytes // 2:
                self._reading_paused = False
                # (a connection being closed stays paused: fail/end_connection paused it)
                if self.ws_proto.state is OPEN and self.io_proto and self.io_proto.transport:
                    self.io_proto.transport.resume_reading()
        if not self._inbox and self._held_replies:
            held, self._held_replies = self._held_replies, []
            self._reply(held)
        return message

    # -- what the handler calls ------------------------------------------------------------------

    def take(self):
        """The next message already received, without waiting; ``None`` when the inbox is empty
        (also once the connection is gone: what it received before stays to be taken)."""
        return self._pop() if self._inbox else None

    async def recv(self, timeout: float | None = None):
        """The next message; ``None`` after ``timeout`` seconds without one, or once the peer closed
        (or the connection is gone) and every message before that was taken."""
        if self._inbox:
            # one turn of the loop first: a handler working through a full inbox must not hold the
            # loop for all of it (other sessions, their speech events, the timers)
            await asyncio.sleep(0)
            if self._inbox:
                return self._pop()
        if self._ended or self.ws_proto.state is CLOSED:
            return None
        if self._waiter is not None:
            raise ServerError("cannot call recv while another task is already waiting for the next message")
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            if timeout is None:
                await self._waiter
            else:
                await asyncio.wait((self._waiter,), timeout=timeout)
        finally:
            self._waiter = None
        return self._pop() if self._inbox else None

    async def recv_burst(self, max_recv: int = 256) -> list:
        """The messages that have arrived (waiting for the first when there are none); an empty list
        once the connection ended."""
        first = await self.recv()
        if first is None:
            return []
        burst = [first]
        while self._inbox and len(burst) < max_recv:
            burst.append(self._pop())
        return burst

    async def recv_streaming(self):
        """The next message, whole (frames are joined as they arrive)."""
        message = await self.recv()
        if message is not None:
            yield message

    async def __aiter__(self):
        while (message := await self.recv()) is not None:
            yield message


class LeanWebSocketProtocol(WebSocketProtocol):
    """Sanic's WebSocket protocol with ``LeanWebsocket`` connections, unless the app's configuration
    says ``[server] ws_lean_receive = false`` (Sanic's own receiving path); the inbox limits are
    ``[server] ws_inbox_messages`` / ``ws_inbox_bytes``."""

    async def websocket_handshake(self, request, subprotocols=None):
        ws = await super().websocket_handshake(request, subprotocols)
        server = getattr(request.app.ctx, "config", {}).get("server", {})
        if server.get("ws_lean_receive", True):
            LeanWebsocket.adopt(ws, server.get("ws_inbox_messages", INBOX_MESSAGES),
                                server.get("ws_inbox_bytes", INBOX_BYTES))
        return ws
