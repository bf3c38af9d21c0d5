"""One JSON error shape for every failure: ``{"success": false, "msg": <Chinese>, "field": ...}``.

Handlers registered by ``install`` turn every exception into that shape with the right status; an
unexpected exception is logged with its traceback on the server and answered with a 500 that says
nothing about the code."""
from __future__ import annotations

import json
import logging
from datetime import date, datetime

from sanic import Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse
from sanic.response import json as _json

from core.timeutil import iso

log = logging.getLogger("mianshi.api")

INVALID_JSON = "请求体不是合法的 JSON"


def _default(value):
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=_default)


def json_response(body, status: int = 200, headers: dict | None = None) -> HTTPResponse:
    return _json(body, status=status, headers=headers, dumps=dumps)


class ApiError(Exception):
    def __init__(self, status: int, msg: str, field: str | None = None, headers: dict | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.field = field
        self.headers = headers


def bad_request(msg: str, field: str | None = None) -> ApiError:
    return ApiError(400, msg, field)


def error_body(msg: str, field: str | None = None) -> dict:
    body = {"success": False, "msg": msg}
    if field:
        body["field"] = field
    return body


def error_response(status: int, msg: str, field: str | None = None, headers: dict | None = None) -> HTTPResponse:
    return json_response(error_body(msg, field), status=status, headers=headers)


# Sanic's own exceptions, by status, in Chinese.
STATUS_MESSAGES = {
    400: "请求不合法",
    401: "未登录或登录已失效",
    403: "没有权限",
    404: "请求的资源不存在",
    405: "不支持该请求方法",
    408: "请求超时",
    413: "请求体过大",
    415: "不支持的内容类型",
    416: "请求的范围不合法",
    429: "请求过于频繁",
    500: "服务器内部错误",
    503: "服务暂不可用",
}


def install(app: Sanic) -> None:
    async def on_api_error(request, exc: ApiError):
        return error_response(exc.status, exc.msg, exc.field, exc.headers)

    async def on_sanic_exception(request, exc: SanicException):
        status = getattr(exc, "status_code", 500) or 500
        if status >= 500:
            log.error("server error on %s %s", request.method, request.path, exc_info=exc)
        msg = STATUS_MESSAGES.get(status, "请求失败" if status < 500 else "服务器内部错误")
        if status == 400 and "json" in str(exc).lower():
            msg = INVALID_JSON
        if status == 413:
            limit = getattr(getattr(request, "app", None), "config", {}).get("REQUEST_MAX_SIZE")
            if limit:
                msg = f"请求体过大：最大 {limit / 1024 / 1024:.0f} MB"
        headers = getattr(exc, "headers", None) if status == 405 else None
        return error_response(status, msg, headers=headers)

    async def on_exception(request, exc: Exception):
        log.error("unhandled error on %s %s", request.method, request.path if request else "?", exc_info=exc)
        return error_response(500, STATUS_MESSAGES[500])

    app.error_handler.add(ApiError, on_api_error)
    app.error_handler.add(SanicException, on_sanic_exception)
    app.error_handler.add(Exception, on_exception)


def json_body(request) -> dict:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    raw = request.body
    if not raw:
        raise bad_request("请求体不能为空，需要一个 JSON 对象")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request(INVALID_JSON) from None
    if not isinstance(value, dict):
        raise bad_request("请求体必须是一个 JSON 对象")
    return value
