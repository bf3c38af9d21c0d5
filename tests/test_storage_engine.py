"""The embedded database's engine (storage/mongoeco_server.py): an insert of an ``_id`` holding no
number no longer loads the whole collection, and ids are still unique (strings, ObjectIds, and the
numeric ids whose equal values have different storage keys, 1 == 1.0)."""
import json
import subprocess
from pathlib import Path

import pytest
from bson import ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError

from storage import embedded

ROOT = Path(__file__).resolve().parents[1]

# Runs in the embedded server's own venv (Python >= 3.13, mongoeco): the engine as the server builds
# it, and mongoeco's plain one, each counting the documents it decodes by whole-collection loads
# while one more document goes into a collection of 40.
COUNT_LOADS = r"""
import asyncio, json, sys, tempfile, threading
sys.path.insert(0, sys.argv[1])
import mongoeco_server
from mongoeco.engines.sqlite import SQLiteEngine
from mongoeco.wire import AsyncMongoEcoProxyServer
from pymongo import MongoClient
from bson import ObjectId

def counting(base):
    class Counting(base):
        loaded = 0
        def _load_documents(self, *args, **kwargs):
            for item in base._load_documents(self, *args, **kwargs):
                Counting.loaded += 1
                yield item
    return Counting

async def measure(base):
    engine_cls = counting(base)
    server = AsyncMongoEcoProxyServer(engine=engine_cls(tempfile.mktemp(suffix=".sqlite")), host="127.0.0.1", port=0)
    address = await server.start()
    def work():
        client = MongoClient(f"mongodb://127.0.0.1:{address.port}/?directConnection=true")
        db = client["t"]
        out = {}
        for name, make in (("str", lambda i: f"id{i}"), ("objectid", lambda i: ObjectId()), ("int", lambda i: i)):
            db[name].insert_many([{"_id": make(i), "x": "y" * 100} for i in range(40)])
            before = engine_cls.loaded
            db[name].insert_one({"_id": make(1000), "x": "z"})
            out[name] = engine_cls.loaded - before
        client.close()
        return out
    try:
        return await asyncio.to_thread(work)
    finally:
        await server.close()

async def main():
    print(json.dumps({"server": await measure(mongoeco_server.engine_class()),
                      "plain": await measure(SQLiteEngine)}))
asyncio.run(main())
"""


def test_an_insert_decodes_the_collection_only_for_numeric_ids():
    python = embedded.ensure_venv()
    done = subprocess.run([str(python), "-c", COUNT_LOADS, str(ROOT / "storage")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loads = json.loads(done.stdout.strip().splitlines()[-1])
    assert loads["plain"]["str"] >= 40 and loads["plain"]["objectid"] >= 40     # mongoeco as it comes
    assert loads["server"]["str"] == 0 and loads["server"]["objectid"] == 0     # ours: no scan
    assert loads["server"]["int"] >= 40                                           # numbers keep it


@pytest.fixture
async def db(store):
    return store.db


async def test_ids_stay_unique(db):
    col = db["engine_ids"]
    oid = ObjectId()
    await col.insert_many([{"_id": "a"}, {"_id": oid}, {"_id": 1}, {"_id": {"k": "v"}}])
    for dup in ("a", oid, 1.0, {"k": "v"}):
        with pytest.raises(DuplicateKeyError):
            await col.insert_one({"_id": dup})
        with pytest.raises(BulkWriteError):
            await col.insert_many([{"_id": f"new-{dup!s}"}, {"_id": dup}], ordered=False)
    assert await col.count_documents({}) == 4 + 4        # the batches' new ids went in, nothing else
    assert await col.count_documents({"_id": "a"}) == 1
