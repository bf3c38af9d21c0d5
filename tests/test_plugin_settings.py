"""Declared plugin settings: a mistyped key or a value of the wrong type in a ``[plugins.<name>]``
table stops the engine at start-up with the table and key named; every setting of the shipped
plugins.toml is declared by its plugin; plugins read their defaults from the declaration."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from core.engine import Engine, EngineStartError
from core.hookspecs import hookimpl
from core.plugins import BUILTIN, PluginError, collect, declared_settings, make_plugin_manager
from core.settings import Setting, SettingsError, apply, declare
from core.testing import MemoryStore
from engine_support import engine_config

ROOT = Path(__file__).resolve().parent.parent


def test_apply_merges_defaults_and_names_the_table_and_key():
    declared = declare({"rate": 1.5, "count": 3, "on": True, "name": "x", "ids": [1, 2],
                        "path": Setting(None, str), "mode": Setting("a", choices=("a", "b")),
                        "limit": Setting(10, minimum=1)})
    got = apply("[plugins.t]", declared, {"rate": 2, "ids": [5]})
    assert got == {"rate": 2.0, "count": 3, "on": True, "name": "x", "ids": [5], "path": None,
                   "mode": "a", "limit": 10}
    assert isinstance(got["rate"], float)
    bad = {"colour": ("[plugins.t]: unknown setting colour (known: count, ids, limit, mode, name, on, path, rate)"),
           }
    with pytest.raises(SettingsError) as info:
        apply("[plugins.t]", declared, {"colour": 1})
    assert str(info.value) == bad["colour"]
    for table, message in [({"count": 2.5}, "[plugins.t] count: expected an integer, got 2.5"),
                           ({"count": True}, "[plugins.t] count: expected an integer, got True"),
                           ({"rate": "2"}, "[plugins.t] rate: expected a number, got '2'"),
                           ({"on": 1}, "[plugins.t] on: expected true or false, got 1"),
                           ({"ids": ["x"]}, "[plugins.t] ids: expected a list of integers, got ['x']"),
                           ({"path": 3}, "[plugins.t] path: expected a string, got 3"),
                           ({"mode": "c"}, "[plugins.t] mode: must be one of 'a', 'b', got 'c'"),
                           ({"limit": 0}, "[plugins.t] limit: must be at least 1, got 0")]:
        with pytest.raises(SettingsError) as info:
            apply("[plugins.t]", declared, table)
        assert str(info.value) == message


def test_defaults_are_not_shared_between_tables():
    declared = declare({"ids": [1, 2]})
    first = apply("[plugins.t]", declared, {})
    first["ids"].append(3)
    assert apply("[plugins.t]", declared, {})["ids"] == [1, 2]


def test_a_setting_without_default_or_type_is_refused_at_registration():
    class Bad:
        @hookimpl
        def register_scorers(self, register):
            register("bad", lambda ctx: None, settings={"x": None})
    with pytest.raises(PluginError, match="settings of scorer 'bad'"):
        collect(make_plugin_manager([Bad()], load_entry_points=False, default_plugins=()))


def _registries_of_all_builtins():
    return collect(make_plugin_manager(load_entry_points=False))


def test_every_builtin_declares_its_settings_and_the_shipped_file_passes():
    registries = _registries_of_all_builtins()
    for module, provides in BUILTIN.items():
        for names in provides.values():
            for name in names:
                assert declared_settings(registries, name) is not None, f"{module}: {name} declares nothing"
    shipped = tomllib.loads((ROOT / "plugins.toml").read_text(encoding="utf-8"))
    for name, table in shipped["plugins"].items():
        declared = declared_settings(registries, name)
        assert declared is not None, f"[plugins.{name}] in plugins.toml belongs to no built-in"
        apply(f"[plugins.{name}]", declared, table)         # raises on any drift


async def _start(config: dict, extra=()) -> Engine:
    engine = Engine(config, store=MemoryStore(), extra_plugins=extra, load_entry_points=False)
    await engine.start()
    return engine


@pytest.mark.parametrize("table, message", [
    ({"question": {"max_follow_up": 2}}, "[plugins.question]: unknown setting max_follow_up"),
    ({"question": {"max_follow_ups": "2"}}, "[plugins.question] max_follow_ups: expected an integer, got '2'"),
    ({"heuristic": {"full_answer_chars": -5}}, "[plugins.heuristic] full_answer_chars: must be at least 1"),
    ({"intro": {"silence": 3}}, "[plugins.intro]: unknown setting silence"),
    ({"bank": "extra"}, "[plugins.bank] must be a table"),
])
async def test_a_wrong_setting_stops_the_engine_naming_table_and_key(table, message):
    with pytest.raises(EngineStartError) as info:
        await _start(engine_config(plugins=table))
    assert message in str(info.value)


async def test_plugins_receive_their_defaults_and_undeclared_plugins_their_table():
    seen = {}

    class Declared:
        @hookimpl
        def register_scorers(self, register):
            def factory(ctx):
                seen["declared"] = ctx.settings
                return object()
            register("declared", factory, settings={"depth": 2, "style": Setting(None, str)})

    class Free:
        @hookimpl
        def register_scorers(self, register):
            def factory(ctx):
                seen["free"] = ctx.settings
                return object()
            register("free", factory)

    config = engine_config(engine={"scorers": ["declared", "free", "heuristic"]},
                           plugins={"declared": {"style": "terse"}, "free": {"anything": [1, "x"]},
                                    "question": {"max_follow_ups": 0}})
    engine = await _start(config, extra=(Declared(), Free()))
    try:
        assert seen["declared"] == {"depth": 2, "style": "terse"}
        assert seen["free"] == {"anything": [1, "x"]}                 # declares nothing: passed through
        question = dict(engine.plugin_context("question").settings)
        assert question == {"max_follow_ups": 0, "follow_up_timeout_seconds": 8.0}
        assert engine.plugin_context("heuristic").settings == {"full_answer_chars": 150}
    finally:
        await engine.close()


# --- the service's own sections ---------------------------------------------------------------------
def test_the_shipped_file_uses_only_declared_sections_and_keys():
    from core.config import CORE_SETTINGS, check_config
    shipped = tomllib.loads((ROOT / "plugins.toml").read_text(encoding="utf-8"))
    check_config(shipped)
    assert set(shipped) - {"plugins"} <= set(CORE_SETTINGS)


def test_core_defaults_match_what_their_readers_use():
    from core import events, frames
    from core.config import CORE_SETTINGS
    from core.speech import DEFAULT_SETTINGS
    cheat = {k: s.default for k, s in CORE_SETTINGS["cheat"].items()}
    assert (cheat["max_width"], cheat["max_height"], cheat["max_frame_bytes"], cheat["min_side"],
            cheat["work_width"], cheat["work_height"]) == \
        (frames.DEFAULT_MAX_WIDTH, frames.DEFAULT_MAX_HEIGHT, frames.DEFAULT_MAX_FRAME_BYTES,
         frames.DEFAULT_MIN_SIDE, frames.DEFAULT_WORK_WIDTH, frames.DEFAULT_WORK_HEIGHT)
    assert CORE_SETTINGS["server"]["max_ws_message_bytes"].default == events.MAX_MESSAGE_BYTES
    assert DEFAULT_SETTINGS == {k: s.default for k, s in CORE_SETTINGS["speech"].items()}


@pytest.mark.parametrize("overrides, message", [
    ({"timming": {"tick_seconds": 1.0}}, "unknown section [timming]"),
    ({"timing": {"tick_second": 1.0}}, "[timing]: unknown setting tick_second"),
    ({"limits": {"ws_connections_per_user": "4"}}, "[limits] ws_connections_per_user: expected an integer, got '4'"),
    ({"engine": {"phases": "intro"}}, "[engine] phases: expected a list"),
    ({"server": {"trusted_proxies": [1]}}, "[server] trusted_proxies: expected a list of strings"),
])
def test_a_wrong_core_setting_is_refused_at_load(overrides, message):
    from core.config import ConfigError, load_config
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides, env={})
    assert message in str(info.value)


def test_numbers_are_normalised_and_absent_keys_stay_absent():
    from core.config import load_config
    config = load_config(overrides={"timing": {"tick_seconds": 1}}, env={})
    assert config["timing"]["tick_seconds"] == 1.0 and isinstance(config["timing"]["tick_seconds"], float)
    assert "blocking_workers" not in config["engine"]
