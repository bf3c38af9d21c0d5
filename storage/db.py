"""The one module that knows the database driver (motor). Everything else in ``storage/`` gets a
database handle from here and the few driver names it needs re-exported below."""
from __future__ import annotations

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase, AsyncIOMotorGridFSBucket
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from gridfs.errors import NoFile
from pymongo.errors import DuplicateKeyError, PyMongoError

__all__ = ["connect", "create_indexes", "close", "DuplicateKeyError", "PyMongoError", "ASCENDING",
           "DESCENDING", "AFTER", "BEFORE", "Database", "gridfs_bucket", "NoFile"]

AFTER = ReturnDocument.AFTER
BEFORE = ReturnDocument.BEFORE
Database = AsyncIOMotorDatabase


def connect(uri: str, database: str, *, timeout_ms: int = 10_000) -> tuple[AsyncIOMotorClient, AsyncIOMotorDatabase]:
    client = AsyncIOMotorClient(uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms,
                                connectTimeoutMS=timeout_ms, appname="mianshi")
    return client, client[database]


def gridfs_bucket(db: AsyncIOMotorDatabase, name: str) -> AsyncIOMotorGridFSBucket:
    """A GridFS bucket (``<name>.files`` / ``<name>.chunks``); the embedded server supports GridFS
    (tests/test_recordings_store.py checks it)."""
    return AsyncIOMotorGridFSBucket(db, bucket_name=name)


async def ping(db: AsyncIOMotorDatabase) -> None:
    await db.command("ping")


async def create_indexes(db: AsyncIOMotorDatabase) -> None:
    """The indexes created at start-up. Only ``users.username`` is unique: with mongoeco a unique
    index makes every write to its collection scan the collection (see README, "Storage"), and
    registration is rare. Resumes and interviews live in per-owner shards whose ``user_id`` index
    is ensured on a shard's first use (storage/common.py ShardedCollection); everything else is
    looked up by ``_id``."""
    await db.users.create_index([("username", ASCENDING)], unique=True, name="username_unique")


def close(client: AsyncIOMotorClient) -> None:
    client.close()
