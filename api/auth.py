"""Passwords (scrypt, per-user salt, constant-time compare) and tokens (JWT HS256 with expiry).

``decode_token(app, token) -> user_id`` is shared by the REST routes (``authenticated``) and the
WebSocket route. The signing secret comes from ``MIANSHI_JWT_SECRET`` or, in development, is
generated once and kept in ``<data_dir>/secrets/jwt_secret`` (core.config.secret).

``operator_only`` guards the operator endpoints (``/-/stats``, ``/-/plugins``): the admin token of
``MIANSHI_ADMIN_TOKEN`` when one is set, else only unforwarded requests from loopback."""
from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import os
import time

import jwt

from api.errors import ApiError
from api.netaddr import is_local
from core.config import secret

ALGORITHM = "HS256"
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_LEN = 2 ** 14, 8, 1, 32
ISSUER = "mianshi"


class AuthError(ApiError):
    def __init__(self, msg: str) -> None:
        super().__init__(401, msg, "Authorization", headers={"WWW-Authenticate": "Bearer"})


# --- passwords -------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, *, salt: bytes | None = None, n: int = SCRYPT_N) -> str:
    salt = salt or os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_LEN,
                         maxmem=64 * 1024 * 1024)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# A hash to check against when the username does not exist, so that timing does not tell.
_DUMMY_HASH = hash_password("not a password", salt=b"0123456789abcdef")


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str | None) -> bool:
    if stored is None:
        await asyncio.to_thread(verify_password, password, _DUMMY_HASH)
        return False
    return await asyncio.to_thread(verify_password, password, stored)


# --- tokens ----------------------------------------------------------------------------------------
def jwt_secret(config: dict) -> str:
    return secret(config, "MIANSHI_JWT_SECRET", "jwt_secret")


def issue_token(app, user_id: str) -> str:
    ttl_hours = float(app.ctx.config.get("auth", {}).get("token_ttl_hours", 72))
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + int(ttl_hours * 3600), "iss": ISSUER}
    return jwt.encode(claims, app.ctx.jwt_secret, algorithm=ALGORITHM)


def decode_token(app, token: str | None) -> str:
    """The user id in a valid token; ``AuthError`` (401, Chinese message) otherwise."""
    if not token:
        raise AuthError("缺少登录凭证，请先登录")
    try:
        claims = jwt.decode(token, app.ctx.jwt_secret, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "sub", "iat"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("登录已过期，请重新登录") from None
    except jwt.InvalidTokenError:
        raise AuthError("登录凭证无效，请重新登录") from None
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not user_id:
        raise AuthError("登录凭证无效，请重新登录")
    return user_id


def bearer_token(request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthError("登录凭证格式错误，应为 Authorization: Bearer <token>")
    return value.strip()


def authenticated(handler):
    """Route decorator: a valid ``Authorization: Bearer`` token, its user id in ``request.ctx.user_id``."""
    @functools.wraps(handler)
    async def wrapper(request, *args, **kwargs):
        request.ctx.user_id = decode_token(request.app, bearer_token(request))
        return await handler(request, *args, **kwargs)
    return wrapper


# --- operator endpoints ----------------------------------------------------------------------------
def admin_token(config: dict) -> str | None:
    return config.get("_env", {}).get("MIANSHI_ADMIN_TOKEN") or os.environ.get("MIANSHI_ADMIN_TOKEN") or None


def operator_only(handler):
    """Route decorator: ``Authorization: Bearer <MIANSHI_ADMIN_TOKEN>`` (401 otherwise) or, with no admin
    token configured, a request from this host that no proxy forwarded (403 otherwise)."""
    @functools.wraps(handler)
    async def wrapper(request, *args, **kwargs):
        expected = admin_token(request.app.ctx.config)
        if expected is not None:
            scheme, _, given = (request.headers.get("authorization") or "").strip().partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
                raise ApiError(401, "需要管理员令牌（Authorization: Bearer <MIANSHI_ADMIN_TOKEN>）",
                               "Authorization", headers={"WWW-Authenticate": "Bearer"})
        elif not is_local(request):
            raise ApiError(403, "未配置管理员令牌时只允许本机直接访问", None)
        return await handler(request, *args, **kwargs)
    return wrapper
