"""The documentation a plugin author reads is checked against the code (in the manner of datasette's
test of its plugin-hook docs): the hook signatures the README lists, the phase methods and context
attributes ``core/phase.py`` documents, the ``interview_event`` kinds ``core/hookspecs.py`` names,
and that the engine calls every phase method with the documented arguments."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from core import hookspecs
from core import events as ev
from core.clock import ManualClock
from core.hookspecs import hookimpl
from core.phase import Phase, PhaseContext, PhaseFactory
from core.plugins import REGISTRATION_HOOKS
from engine_support import Client, engine_config, seed, settle, start_engine

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PHASE_DOC = inspect.getdoc(__import__("core.phase", fromlist=["x"]))


def hookspec_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, "mianshi_spec")]


def test_every_hook_is_in_the_readme_with_its_signature():
    documented = dict(re.findall(r"`(\w+)\(([\w, ]*)\)`", README))
    for name in hookspec_names():
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert name in documented, f"README does not document the hook {name}"
        assert documented[name] == params, f"README says {name}({documented[name]}), the code has {name}({params})"


def test_every_registration_hook_is_handled_by_the_plugin_loader():
    assert set(REGISTRATION_HOOKS) == {n for n in hookspec_names() if n.startswith("register_")}


def test_phase_methods_are_documented_with_their_signatures():
    documented = dict(re.findall(r"``(\w+)\((ctx(?:, event)?)\)``", PHASE_DOC))
    methods = {name for name, _ in inspect.getmembers(Phase, inspect.isfunction) if not name.startswith("_")}
    assert methods == set(documented), f"documented {sorted(documented)}, defined {sorted(methods)}"
    for name, params in documented.items():
        code = ", ".join(list(inspect.signature(getattr(Phase, name)).parameters)[1:])
        assert code == params, f"{name}: documented ({params}), defined ({code})"
    for attribute in ("input", "title", "opening", "closing"):
        assert f"``{attribute}``" in PHASE_DOC and hasattr(Phase, attribute)
    assert "``report_section(record)``" in PHASE_DOC and hasattr(PhaseFactory, "report_section")
    assert list(inspect.signature(PhaseFactory.create).parameters) == ["self"]


def test_the_interview_event_kinds_are_exactly_those_emitted():
    doc = inspect.getdoc(hookspecs.interview_event)
    documented = set(re.findall(r"``(\w+)``", doc.split("``kind`` is one of", 1)[1].split(";", 1)[0]))
    source = "".join((ROOT / "core" / name).read_text(encoding="utf-8") for name in ("engine.py", "session.py"))
    emitted = set(re.findall(r'\.emit\(self\.interview_id, "(\w+)"', source))
    assert documented == emitted


class Probe(Phase):
    """Records how the engine calls it; answers one typed answer."""
    name = "probe"
    opening = "请说一句话"
    calls: list = []

    def _record(self, method, ctx, *rest):
        missing = [a for a in PhaseContext.__annotations__ if not hasattr(ctx, a)]
        assert not missing, f"ctx lacks documented attributes {missing}"
        for a in ("send", "say", "save", "store", "set_asr_context", "background", "finish"):
            assert callable(getattr(ctx, a))
        Probe.calls.append((method, len(rest)))

    async def prepare(self, ctx):
        self._record("prepare", ctx)

    async def on_enter(self, ctx):
        self._record("on_enter", ctx)

    async def on_resume(self, ctx):
        self._record("on_resume", ctx)

    async def on_event(self, ctx, event):
        self._record("on_event", ctx, event)
        if isinstance(event, ev.TextAnswer):
            await ctx.finish()

    async def on_exit(self, ctx):
        self._record("on_exit", ctx)

    def attribution(self, ctx):
        self._record("attribution", ctx)
        return {"probe_turn": 1}


class ProbeFactory(PhaseFactory):
    phase_class = Probe
    created_with = None

    def __init__(self, ctx):
        super().__init__(ctx)
        ProbeFactory.created_with = ctx


class ProbePlugin:
    @hookimpl
    def register_phases(self, register):
        register("probe", ProbeFactory)


async def test_the_engine_calls_phases_as_documented(store):
    from core.interfaces import PluginContext
    Probe.calls = []
    config = engine_config(engine={"phases": ["intro", "probe"]}, plugins={"probe": {"x": 1}})
    engine = await start_engine(store, config, ProbePlugin(), ManualClock())
    assert isinstance(ProbeFactory.created_with, PluginContext)
    assert ProbeFactory.created_with.name == "probe" and ProbeFactory.created_with.settings == {"x": 1}
    user_id, resume_id, interview_id = await seed(store)
    client = Client()
    session = await engine.open_session(user_id, ev.CreateStream(interview_id, resume_id), client.send)
    await session.start()
    assert Probe.calls == [("prepare", 0)]                  # not current: prepared in the background
    await session.handle(ev.TextAnswer("我叫李明，说完了"))     # ends the intro
    await settle(session)
    transition = client.of("interview_message")[-1]
    assert transition["text"] == "自我介绍结束，请说一句话" and transition["phase"] == "probe"
    await session.handle(ev.TextAnswer("一句话"))
    await settle(session)
    methods = [m for m, _ in Probe.calls]
    assert methods[:2] == ["prepare", "on_enter"] and "on_exit" in methods
    assert ("on_event", 1) in Probe.calls and ("attribution", 0) in Probe.calls
    transcript = await store.load_transcript(interview_id)
    assert transcript[-1]["phase"] == "probe" and transcript[-1]["probe_turn"] == 1
    assert client.of("interview_message")[-1]["phase"] == "end"
    await session.close()
    await engine.close()


async def test_a_phase_that_is_not_a_phase_is_a_start_up_error(store):
    from core.engine import EngineStartError

    class NotAPhase:
        async def on_enter(self, ctx):
            return None

    class Bad:
        @hookimpl
        def register_phases(self, register):
            register("bad", lambda ctx: type("F", (), {"create": lambda self: NotAPhase()})())

    with pytest.raises(EngineStartError, match="core.phase.Phase"):
        await start_engine(store, engine_config(engine={"phases": ["bad"]}), Bad(), ManualClock())
