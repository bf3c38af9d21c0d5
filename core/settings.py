"""Declared settings: what a ``plugins.toml`` table may hold, checked once at start-up.

A plugin declares its settings when it registers (``register(name, factory, settings={...})``): each
key maps to its default value (the type follows from it) or to a ``Setting`` for what a default cannot
say (no default, a choice of values, a lower bound). ``apply`` merges a table over the defaults and
refuses, with the table and key named, a key nobody declared or a value of the wrong type, so a
mistyped setting stops the server instead of being ignored. Plugins then read ``ctx.settings[key]``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a table"}
_PLURALS = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


class SettingsError(ValueError):
    """A configuration table holds an undeclared key or a value of the wrong type."""


@dataclass(frozen=True)
class Setting:
    """One declared setting. ``type`` defaults to the type of ``default`` (a tuple of types: any
    of them); ``default=None`` needs a
    ``type`` and means "unset" (the plugin decides what that does). ``items`` is the element type of
    a list; ``choices`` the allowed values; ``minimum`` a lower bound for numbers."""
    default: Any = None
    type: type | None = None
    items: type | None = None
    choices: tuple | None = None
    minimum: float | None = None

    @property
    def kind(self) -> type | tuple:
        kind = self.type or type(self.default)
        if kind is type(None):
            raise TypeError("a setting with no default must name its type")
        return kind


def declare(spec: Mapping[str, Any]) -> dict[str, Setting]:
    """``{key: default | Setting}`` -> ``{key: Setting}``."""
    out = {}
    for key, value in spec.items():
        setting = value if isinstance(value, Setting) else Setting(
            value, items=type(value[0]) if isinstance(value, list) and value else None)
        setting.kind        # a missing type is the plugin author's error: fail at registration
        out[key] = setting
    return out


def _check(where: str, key: str, setting: Setting, value: Any) -> Any:
    if value is None and setting.default is None:
        return None
    kind = setting.kind
    if isinstance(kind, tuple):           # one of several types, e.g. (str, list): a name or names
        if isinstance(value, bool) or not isinstance(value, kind):
            names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kind)
            raise SettingsError(f"{where} {key}: expected {names}, got {value!r}")
        kind = type(value) if type(value) in kind else kind[0]
        setting = Setting(setting.default, kind, setting.items, setting.choices, setting.minimum)

    def wrong(expected: str) -> SettingsError:
        return SettingsError(f"{where} {key}: expected {expected}, got {value!r}")

    if kind is bool:
        if not isinstance(value, bool):
            raise wrong(_TYPE_NAMES[bool])
    elif kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and isinstance(value, float)):
            raise wrong(_TYPE_NAMES[kind])
        value = kind(value)
        if setting.minimum is not None and value < setting.minimum:
            raise SettingsError(f"{where} {key}: must be at least {setting.minimum:g}, got {value!r}")
    elif not isinstance(value, kind):
        raise wrong(_TYPE_NAMES.get(kind, kind.__name__))
    if kind is list and setting.items is not None:
        for item in value:
            item_ok = isinstance(item, setting.items) and not (setting.items is not bool and isinstance(item, bool))
            if setting.items is float and isinstance(item, int) and not isinstance(item, bool):
                item_ok = True
            if not item_ok:
                raise wrong(f"a list of {_PLURALS.get(setting.items, setting.items.__name__)}")
    if setting.choices is not None and value not in setting.choices:
        raise SettingsError(f"{where} {key}: must be one of {', '.join(map(repr, setting.choices))}, got {value!r}")
    return value


def apply(where: str, declared: Mapping[str, Setting], given: Mapping[str, Any] | None) -> dict:
    """The table ``given`` (named ``where``, e.g. ``[plugins.whisper]``) checked against
    ``declared`` and merged over its defaults."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise SettingsError(f"{where}: unknown setting{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(unknown)} (known: {known})")
    out = {key: copy.deepcopy(setting.default) for key, setting in declared.items()}
    for key, value in given.items():
        out[key] = _check(where, key, declared[key], value)
    return out
