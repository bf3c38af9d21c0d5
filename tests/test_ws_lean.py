"""api/ws_lean.py: received WebSocket messages wait in an inbox, pongs are answered while the handler
is busy, a client far ahead of its handler is paused, and the end comes after every message."""
from __future__ import annotations

import asyncio
import contextlib
import itertools

import pytest
import websockets
from sanic import Sanic
from sanic.exceptions import ServerError
from sanic.server.websockets.impl import WebsocketImplProtocol

from api.ws_lean import LeanWebsocket, LeanWebSocketProtocol
from conftest import serve_app

_names = itertools.count()


@contextlib.asynccontextmanager
async def ws_app(handler, **server_config):
    """A bare Sanic app with ``handler`` at /ws (no database), served with the lean protocol; its
    WebSocket URL."""
    Sanic.test_mode = True
    app = Sanic(f"ws_lean_{next(_names)}")
    app.ctx.config = {"server": server_config}
    app.config.WEBSOCKET_PING_INTERVAL = server_config.get("ping_interval", 20)
    app.config.WEBSOCKET_PING_TIMEOUT = server_config.get("ping_timeout", 20)
    app.add_websocket_route(handler, "/ws")
    server = await serve_app(app, LeanWebSocketProtocol)
    try:
        yield server.base_url.replace("http://", "ws://") + "/ws"
    finally:
        await server.stop()


async def test_messages_come_in_order_and_the_end_comes_after_every_one_of_them():
    got, kinds = [], []

    async def handler(request, ws):
        kinds.append(type(ws))
        while (message := await ws.recv()) is not None:
            got.append(message)
        got.append("(end)")

    async with ws_app(handler) as url:
        async with websockets.connect(url) as client:
            for i in range(30):
                await client.send(f"消息{i}")
            await client.send(b"\x00\x01binary")
            await client.send(["分", "片", "的文本"])        # one text message in three frames
        for _ in range(100):
            if len(got) == 33:
                break
            await asyncio.sleep(0.02)
    assert kinds == [LeanWebsocket]
    assert got == [f"消息{i}" for i in range(30)] + [b"\x00\x01binary", "分片的文本", "(end)"]


async def test_a_pong_is_answered_while_the_handler_is_busy_and_the_client_stays():
    """Sanic's own receiving path holds a pong behind the message the handler has not taken: a
    handler busy for longer than the ping timeout lost its live client (1011)."""
    got = []
    done = asyncio.Event()

    async def handler(request, ws):
        first = await ws.recv()
        await asyncio.sleep(1.5)                         # busy with the first message, 5 ping timeouts
        got.append(first)
        while len(got) < 20:
            got.append(await ws.recv())
        await ws.send("all")
        done.set()

    async with ws_app(handler, ping_interval=0.1, ping_timeout=0.3) as url:
        async with websockets.connect(url, ping_interval=None) as client:
            for i in range(20):
                await client.send(str(i))
                await asyncio.sleep(0.05)
            assert await asyncio.wait_for(client.recv(), 10) == "all"
    assert got == [str(i) for i in range(20)]


async def test_a_client_far_ahead_of_its_handler_is_paused_then_read_again():
    seen = {}
    release = asyncio.Event()

    async def handler(request, ws):
        seen["ws"] = ws
        await release.wait()
        messages = []
        while len(messages) < 200:
            messages.append(await ws.recv())
        seen["messages"] = messages
        await ws.send("ok")

    async with ws_app(handler, ws_inbox_messages=8, ws_inbox_bytes=10_000_000) as url:
        async with websockets.connect(url) as client:
            for i in range(200):
                await client.send(f"{i:04d}" + "x" * 2000)
            for _ in range(100):
                if "ws" in seen and seen["ws"]._reading_paused:
                    break
                await asyncio.sleep(0.02)
            ws = seen["ws"]
            # (one read of the socket may hold more than the limit; the rest waits in the socket)
            assert ws._reading_paused and 8 <= len(ws._inbox) < 100
            release.set()
            assert await asyncio.wait_for(client.recv(), 10) == "ok"
    assert [m[:4] for m in seen["messages"]] == [f"{i:04d}" for i in range(200)]
    assert not ws._reading_paused


async def test_invalid_utf8_closes_with_1007():
    async def handler(request, ws):
        while await ws.recv() is not None:
            pass

    async with ws_app(handler) as url:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.split(":")[2].split("/")[0]))
        writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        payload = b"\xff\xfe"                               # not UTF-8, in a text frame (masked)
        mask = b"\x01\x02\x03\x04"
        writer.write(bytes([0x81, 0x80 | len(payload)]) + mask
                     + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        await writer.drain()
        head = await asyncio.wait_for(reader.readexactly(4), 5)
        assert head[0] == 0x88                                # a close frame
        assert int.from_bytes(head[2:4], "big") == 1007
        writer.close()


async def test_recv_times_out_with_none_and_one_receiver_at_a_time():
    results = {}

    async def handler(request, ws):
        results["timeout"] = await ws.recv(timeout=0.05)
        waiting = asyncio.create_task(ws.recv())
        await asyncio.sleep(0)
        with pytest.raises(ServerError):
            await ws.recv()
        results["message"] = await waiting
        await asyncio.sleep(0.3)                       # "two" and "three" have come
        results["burst"] = await ws.recv_burst()
        await ws.send("done")

    async with ws_app(handler) as url:
        async with websockets.connect(url) as client:
            await asyncio.sleep(0.2)
            await client.send("one")
            await asyncio.sleep(0.1)
            await client.send("two")
            await client.send("three")
            assert await asyncio.wait_for(client.recv(), 5) == "done"
    assert results["timeout"] is None and results["message"] == "one"
    assert results["burst"] == ["two", "three"]


async def test_ws_lean_receive_false_keeps_sanics_own_receiving_path():
    kinds, got = [], []

    async def handler(request, ws):
        kinds.append(type(ws))
        got.append(await ws.recv())
        await ws.send("ok")

    async with ws_app(handler, ws_lean_receive=False) as url:
        async with websockets.connect(url) as client:
            await client.send("hello")
            assert await asyncio.wait_for(client.recv(), 5) == "ok"
    assert kinds == [WebsocketImplProtocol] and got == ["hello"]
