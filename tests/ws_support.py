"""A WebSocket client for tests: reads every server message in the background."""
from __future__ import annotations

import asyncio
import json

import websockets


class Inbox:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.messages: list[dict] = []
        self.changed = asyncio.Event()
        self.task = asyncio.ensure_future(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
                self.changed.set()
        except websockets.ConnectionClosed:
            pass

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
