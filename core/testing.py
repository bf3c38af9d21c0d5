"""A kit for plugin authors' unit tests, shipped with mianshi (in the manner of pipecat's
``run_test``): build the plugins of a configuration, feed scripted events, read the messages out.
Integration tests use the real database; the in-memory store here is for unit tests only.

* ``report_source(record, phases)`` — an interview record as the report service hands it to the
  scorers: with the report sections of the given phases.
"""
from __future__ import annotations

import functools
from pathlib import Path

from core.clock import SystemClock
from core.interfaces import PluginContext


def plugin_context(name: str, settings: dict | None = None, *, config: dict | None = None,
                   data_dir: str | Path | None = None, clock=None) -> PluginContext:
    """The context a factory gets from the engine, for calling a factory directly."""
    return PluginContext(name=name, settings=dict(settings or {}), config=config or {"_env": {}},
                         data_dir=Path(data_dir or "./data"), clock=clock or SystemClock())


@functools.lru_cache(maxsize=8)
def _phase_factories(phases: tuple[str, ...]) -> tuple:
    from core.plugins import collect, make_plugin_manager
    registry = collect(make_plugin_manager(load_entry_points=True))["phase"]
    return tuple((name, registry.get(name).factory(plugin_context(name))) for name in phases)


def report_source(record: dict, phases: tuple[str, ...] = ("intro", "question", "code")) -> dict:
    """``record`` with the ``sections`` the phases ``phases`` contribute to its report, in order."""
    sections = []
    for name, factory in _phase_factories(tuple(phases)):
        section = factory.report_section(record)
        if isinstance(section, dict):
            sections.append({**section, "phase": name})
    return dict(record, sections=sections)


def report_sections(phases: tuple[str, ...] = ("intro", "question", "code")):
    """The ``sections`` callable an engine hands its ``ReportService``, for the given phases."""
    return lambda record: report_source(record, phases)["sections"]
