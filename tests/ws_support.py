"""A WebSocket client for tests: reads every server message in the background."""
from __future__ import annotations

import asyncio
import json

import websockets


class Received:
    """Messages read from the server in the background, in order."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.changed = asyncio.Event()

    def received(self, message: dict) -> None:
        self.messages.append(message)
        self.changed.set()

    async def wait_for(self, predicate, timeout=60.0, start=0) -> dict:
        """The first message from index ``start`` on that satisfies ``predicate``."""
        async def loop():
            seen = start
            while True:
                for m in self.messages[seen:]:
                    if predicate(m):
                        return m
                seen = len(self.messages)
                self.changed.clear()
                await self.changed.wait()
        return await asyncio.wait_for(loop(), timeout)

    def of(self, mtype: str, **match) -> list[dict]:
        return [m for m in self.messages if m["type"] == mtype and all(m.get(k) == v for k, v in match.items())]


class Inbox(Received):
    def __init__(self, ws) -> None:
        super().__init__()
        self.ws = ws
        self.task = asyncio.ensure_future(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                self.received(json.loads(raw))
        except websockets.ConnectionClosed:
            pass


class SilentPeer(Received):
    """A WebSocket client that goes quiet like a vanished peer (a laptop lid shut, a dead network).
    Until ``go_silent()`` it reads in the background and answers pings; after it, it sends what it
    is told but never reads again, so it answers no ping and sends no close frame. ``abort()``
    drops the TCP connection without a close handshake."""

    def __init__(self, reader, writer) -> None:
        super().__init__()
        self.reader = reader
        self.writer = writer
        self.task = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, ws_url: str) -> "SilentPeer":
        import base64 as b64
        import os
        from urllib.parse import urlsplit
        url = urlsplit(ws_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        key = b64.b64encode(os.urandom(16)).decode()
        path = url.path + (f"?{url.query}" if url.query else "")
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                     .encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def _read(self) -> None:
        try:
            while True:
                first, second = await self.reader.readexactly(2)
                length = second & 0x7F
                if length == 126:
                    length = int.from_bytes(await self.reader.readexactly(2), "big")
                elif length == 127:
                    length = int.from_bytes(await self.reader.readexactly(8), "big")
                payload = await self.reader.readexactly(length)
                opcode = first & 0x0F
                if opcode == 0x9:
                    self._write(0xA, payload)
                elif opcode == 0x1:
                    self.received(json.loads(payload))
                elif opcode == 0x8:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    async def wait_for(self, predicate, timeout=60.0, start=0) -> dict:
        """As ``Received.wait_for``, but a connection the server closed fails at once, saying so."""
        waiting = asyncio.ensure_future(super().wait_for(predicate, timeout, start))
        await asyncio.wait([waiting, self.task], return_when=asyncio.FIRST_COMPLETED)
        if waiting.done():
            return waiting.result()
        waiting.cancel()
        raise ConnectionError(f"the server closed the connection; last messages: {self.messages[-3:]}")

    async def go_silent(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def send_text(self, text: str) -> None:
        self._write(0x1, text.encode())
        await self.writer.drain()

    def _write(self, opcode: int, payload: bytes) -> None:
        import os
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                         bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 65536 else
                                         bytes([0x80 | 127]) + n.to_bytes(8, "big"))
        self.writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def abort(self) -> None:
        self.task.cancel()
        self.writer.transport.abort()


def video_frame(jpeg: bytes) -> str:
    """A ``video_frame`` message carrying ``jpeg``."""
    import base64
    return json.dumps({"type": "video_frame", "frame_data": base64.b64encode(jpeg).decode(),
                       "frame_type": "keyframe"})


async def until(predicate, timeout: float = 30.0) -> None:
    """Poll ``predicate`` every 10 ms until it is true (AssertionError after ``timeout`` s)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the server")
        await asyncio.sleep(0.01)
