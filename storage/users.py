"""Accounts: ``users`` documents ``{_id: str, username, password, created_at}``."""
from __future__ import annotations

import uuid

from storage.common import utcnow
from storage.db import DuplicateKeyError


class UsernameTaken(Exception):
    pass


class UserRepository:
    def __init__(self, db) -> None:
        self.col = db.users

    async def create(self, username: str, password_hash: str) -> str:
        user_id = uuid.uuid4().hex
        try:
            await self.col.insert_one({"_id": user_id, "username": username,
                                       "password": password_hash, "created_at": utcnow()})
        except DuplicateKeyError:
            raise UsernameTaken(username) from None
        return user_id

    async def by_username(self, username: str) -> dict | None:
        return await self.col.find_one({"username": username})

    async def by_id(self, user_id: str) -> dict | None:
        return await self.col.find_one({"_id": user_id})
