"""Field checks that answer with a Chinese message naming the field at fault."""
from __future__ import annotations

from datetime import datetime, timezone

from api.errors import bad_request

_TYPE_NAMES = {str: "字符串", list: "数组", dict: "对象", int: "整数"}


def require_str(body: dict, field: str, label: str, *, max_len: int, required: bool = True,
                allow_empty: bool = False) -> str | None:
    if field not in body or body[field] is None:
        if required:
            raise bad_request(f"缺少必填字段 {field}（{label}）", field)
        return None
    value = body[field]
    if not isinstance(value, str):
        raise bad_request(f"{field}（{label}）必须是字符串", field)
    value = value.strip()
    if not value and required and not allow_empty:
        raise bad_request(f"{field}（{label}）不能为空", field)
    if len(value) > max_len:
        raise bad_request(f"{field}（{label}）不能超过 {max_len} 个字符", field)
    return value


def require_list(body: dict, field: str, label: str, *, item_types: tuple[type, ...], max_items: int = 100,
                 max_item_chars: int = 5000) -> list | None:
    if field not in body or body[field] is None:
        return None
    value = body[field]
    if not isinstance(value, list):
        raise bad_request(f"{field}（{label}）必须是数组", field)
    if len(value) > max_items:
        raise bad_request(f"{field}（{label}）最多 {max_items} 项", field)
    names = "或".join(_TYPE_NAMES[t] for t in item_types)
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, item_types):
            raise bad_request(f"{field}（{label}）的第 {i + 1} 项必须是{names}", f"{field}[{i}]")
        if len(str(item)) > max_item_chars:
            raise bad_request(f"{field}（{label}）的第 {i + 1} 项过长", f"{field}[{i}]")
    return value


def parse_time(body: dict, field: str, label: str) -> datetime | None:
    if field not in body or body[field] is None:
        return None
    value = body[field]
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{field}（{label}）必须是 ISO 8601 时间字符串，例如 2024-03-20T14:30:00Z", field)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"{field}（{label}）不是合法的时间，应为 ISO 8601 格式，例如 2024-03-20T14:30:00Z",
                          field) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)     # the guide's times are UTC
    parsed = parsed.astimezone(timezone.utc)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def reject_unknown(body: dict, allowed: set[str], ignored: set[str] = frozenset()) -> None:
    for key in body:
        if key not in allowed and key not in ignored:
            raise bad_request(f"不支持的字段 {key}", key)
