"""Embedded MongoDB-compatible server: mongoeco's wire proxy over its SQLite engine.

Run by a Python >= 3.13 interpreter in its own virtual environment (see storage/embedded.py).
It never imports project code. It prints one JSON line ``{"port": N}`` on stdout once it
listens, then serves until it receives SIGTERM/SIGINT or its stdin is closed (the parent died).
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import threading


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True, help="SQLite file holding the data")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    from mongoeco.engines.sqlite import SQLiteEngine
    from mongoeco.wire import AsyncMongoEcoProxyServer

    os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)
    server = AsyncMongoEcoProxyServer(engine=SQLiteEngine(args.db), host=args.host, port=args.port)
    address = await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def _watch_stdin() -> None:
        # The parent holds our stdin open; EOF means it is gone and we must not linger.
        try:
            sys.stdin.buffer.read()
        finally:
            loop.call_soon_threadsafe(stop.set)

    # A daemon thread: a blocked read must not keep the process alive after SIGTERM.
    threading.Thread(target=_watch_stdin, name="stdin-watch", daemon=True).start()
    print(json.dumps({"port": address.port}), flush=True)
    await stop.wait()
    await server.close()


if __name__ == "__main__":
    asyncio.run(main())
