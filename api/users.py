"""``POST /users/register/`` and ``POST /users/login/``, both under the limits of api/throttle.py."""
from __future__ import annotations

import re

from sanic import Blueprint
from sanic_ext import openapi

from api.auth import hash_password_async, issue_token, verify_password_async
from api.errors import ApiError, bad_request, json_body, json_response
from api.netaddr import client_address
from storage.users import UsernameTaken

bp = Blueprint("users")

USERNAME_RE = re.compile(r"^[\w\-.@\u4e00-\u9fff]{3,32}$")
CREDENTIALS = {"type": "object", "required": ["username", "password"],
               "properties": {"username": {"type": "string", "minLength": 3, "maxLength": 32},
                              "password": {"type": "string", "minLength": 6, "maxLength": 128}}}
AUTH_OK = {"type": "object", "properties": {"success": {"type": "boolean"}, "user_id": {"type": "string"},
                                            "token": {"type": "string"}}}


def _credentials(request) -> tuple[str, str]:
    body = json_body(request)
    username, password = body.get("username"), body.get("password")
    if username is None:
        raise bad_request("缺少必填字段 username（用户名）", "username")
    if not isinstance(username, str):
        raise bad_request("username（用户名）必须是字符串", "username")
    if password is None:
        raise bad_request("缺少必填字段 password（密码）", "password")
    if not isinstance(password, str):
        raise bad_request("password（密码）必须是字符串", "password")
    return username.strip(), password


@bp.post("/users/register/")
@openapi.summary("注册")
@openapi.body({"application/json": CREDENTIALS})
@openapi.response(201, {"application/json": AUTH_OK}, "注册成功")
async def register(request):
    throttle, address = request.app.ctx.throttle, client_address(request)
    throttle.check_registration(address)
    username, password = _credentials(request)
    if not USERNAME_RE.match(username):
        raise bad_request("用户名需为 3 到 32 个字符，只能包含字母、数字、汉字和 _ - . @", "username")
    if not 6 <= len(password) <= 128:
        raise bad_request("密码长度需为 6 到 128 个字符", "password")
    throttle.registered(address)        # a valid attempt costs a password hash, taken name or not
    password_hash = await hash_password_async(password)
    try:
        user_id = await request.app.ctx.store.users.create(username, password_hash)
    except UsernameTaken:
        raise ApiError(409, "用户名已被注册", "username") from None
    return json_response({"success": True, "user_id": user_id, "token": issue_token(request.app, user_id)},
                         status=201)


@bp.post("/users/login/")
@openapi.summary("登录")
@openapi.body({"application/json": CREDENTIALS})
@openapi.response(200, {"application/json": AUTH_OK}, "登录成功")
async def login(request):
    username, password = _credentials(request)
    throttle, address = request.app.ctx.throttle, client_address(request)
    throttle.check_login(username, address)     # before the password check: a locked name stays locked
    user = await request.app.ctx.store.users.by_username(username)
    ok = await verify_password_async(password, user["password"] if user else None)
    if not ok:
        throttle.login_failed(username, address)
        raise ApiError(401, "用户名或密码错误", "password")
    throttle.login_succeeded(username)
    return json_response({"success": True, "user_id": user["_id"], "token": issue_token(request.app, user["_id"])})
