"""Embedded MongoDB-compatible server: mongoeco's wire proxy over its SQLite engine.

Run by a Python >= 3.13 interpreter in its own virtual environment (see storage/embedded.py).
It never imports project code. It prints one JSON line ``{"port": N}`` on stdout once it
listens, then serves until it receives SIGTERM/SIGINT or its stdin is closed (the parent died).
"""
import argparse
import asyncio
import inspect
import json
import os
import signal
import sys
import threading


def engine_class():
    """mongoeco's SQLite engine, without its whole-collection scan on every insert of an ``_id``
    holding no number.

    mongoeco 4.11.0 checks a new document's ``_id`` twice: by its storage key (an indexed lookup:
    the key is the repr of the canonical id) and then by loading and decoding every document of
    the collection to compare ids by BSON equality (``scan_payload_id``), which only matters for
    numeric ids (1 == 1.0 == Int64(1) have different storage keys). For any other id (a string, an
    ObjectId) the storage key is exact, so the scan can only find what the lookup already found
    (mongoeco's own batch insert skips it by the same test, ``id_contains_numeric_value``), and it made
    every insert cost time proportional to the collection's size in bytes (README, "What mongoeco
    costs"): a 20 KB document into a collection of 300 took ~29 ms against ~3 ms into 10. Numeric
    ids keep the scan; unique indexes other than ``_id`` are checked as before."""
    from mongoeco.engines.sqlite import SQLiteEngine
    try:
        from mongoeco.core.identity import id_contains_numeric_value
    except ImportError:
        id_contains_numeric_value = None

    original = getattr(SQLiteEngine, "_validate_document_against_unique_indexes", None)
    if (original is None or id_contains_numeric_value is None
            or "scan_payload_id" not in inspect.signature(original).parameters):
        print("mongoeco: unexpected engine internals, inserts keep their id scan", file=sys.stderr, flush=True)
        return SQLiteEngine

    class Engine(SQLiteEngine):
        def _validate_document_against_unique_indexes(self, db_name, coll_name, document, **kwargs):
            if (kwargs.get("scan_payload_id") and "_id" in document
                    and not id_contains_numeric_value(document["_id"])):
                kwargs["scan_payload_id"] = False
            return original(self, db_name, coll_name, document, **kwargs)

    return Engine


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True, help="SQLite file holding the data")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    from mongoeco.wire import AsyncMongoEcoProxyServer

    os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)
    server = AsyncMongoEcoProxyServer(engine=engine_class()(args.db), host=args.host, port=args.port)
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
