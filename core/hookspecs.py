"""The hooks through which every capability of mianshi plugs in.

All hooks are *registration* hooks and are synchronous (pluggy does not await): a plugin receives a
``register`` callable and hands it a name and a factory. The engine calls the factories once per
process at start-up (``Engine.start``), passing a ``PluginContext``; the objects they return are what
the engine awaits or runs in its thread pools later. A plugin module is registered the same way
whether it ships with mianshi (``core.plugins.DEFAULT_PLUGINS``) or comes from another package
through the ``mianshi`` entry-point group::

    [project.entry-points.mianshi]
    my_detector = "my_package.my_detector"

Which registered factories are used, and their settings, is chosen in ``plugins.toml``. Every
``register`` also takes ``settings={key: default | core.settings.Setting}``: the keys its
``[plugins.<name>]`` table may hold, checked at start-up (an unknown key or a wrong type stops the
server, naming both) and handed to the factory, defaults filled in, as ``ctx.settings``.
What the factories must return: phases in ``core/phase.py`` (base classes ``Phase`` and
``PhaseFactory``), everything else in ``core/interfaces.py``. ``tests/test_plugin_docs.py`` checks
these docstrings against the code.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("mianshi")
hookimpl = pluggy.HookimplMarker("mianshi")


@hookspec
def register_phases(register):
    """Register interview phases.

    Called once at engine start-up. Call ``register(name, factory)`` for each phase this plugin
    provides; ``factory(ctx: PluginContext) -> PhaseFactory`` (usually a ``core.phase.PhaseFactory``
    subclass, the class itself being the factory) whose ``create() -> Phase`` gives one
    ``core.phase.Phase`` per interview session and whose ``report_section(record) -> dict | None`` is
    the phase's part of the report. The phase order comes from ``plugins.toml`` ``[engine] phases``;
    the built-ins are ``intro``, ``question`` and ``code``. Returns nothing.
    """


@hookspec
def register_vad(register):
    """Register voice-activity detectors.

    Called once at start-up. ``register(name, factory)``; ``factory(ctx) -> Vad`` (see
    ``core.interfaces.Vad``). The model is loaded once by the factory and shared by every session;
    ``Vad.open_stream()`` gives the per-session state. Selected by ``[engine] vad``. Returns nothing.
    """


@hookspec
def register_asr(register):
    """Register speech recognisers.

    Called once at start-up. ``register(name, factory)``; ``factory(ctx) -> AsrEngine`` (see
    ``core.interfaces.AsrEngine``), loaded once per process. Selected by ``[engine] asr``.
    Returns nothing.
    """


@hookspec
def register_question_sources(register):
    """Register interview-question sources.

    Called once at start-up. ``register(name, factory)``; ``factory(ctx) -> QuestionSource`` (see
    ``core.interfaces.QuestionSource``). ``[engine] question_sources`` lists the sources in order of
    preference: the engine uses the first that returns questions in time and falls back to the next.
    Returns nothing.
    """


@hookspec
def register_scorers(register):
    """Register report writers (scorers).

    Called once at start-up. ``register(name, factory)``; ``factory(ctx) -> Scorer`` (see
    ``core.interfaces.Scorer``). ``[engine] scorers`` lists them in order of preference.
    Returns nothing.
    """


@hookspec
def register_cheat_detectors(register):
    """Register cheat detectors run on video frames.

    Called once at start-up. ``register(name, factory)``; ``factory(ctx) -> CheatDetector`` (see
    ``core.interfaces.CheatDetector``): ``detect(image, state) -> list[CheatSignal]`` and ``kinds``,
    the ``CheatKind``s (name, the candidate's text, the report's label) its signals may carry. Every
    detector listed in ``[engine] cheat_detectors`` runs on each accepted frame, off the event loop;
    the engine merges their ``CheatSignal``s into episodes. Returns nothing.
    """


@hookspec
def register_code_runners(register):
    """Register sandboxes that run candidate code.

    Called once at start-up. ``register(name, factory)``; ``factory(ctx) -> CodeRunner`` (see
    ``core.interfaces.CodeRunner``). Selected by ``[engine] code_runner``. Returns nothing.
    """


@hookspec
def register_tts(register):
    """Register text-to-speech engines (the interviewer's voice).

    Called once at start-up. ``register(name, factory)``; ``factory(ctx) -> TtsEngine`` (see
    ``core.interfaces.TtsEngine``): ``synthesize(sentence) -> TtsAudio``, one sentence of mono PCM
    s16le at its ``sample_rate``. The engine splits each ``interview_message`` into sentences and
    streams their audio one by one to clients that asked for it (``create_stream`` with ``"tts":
    true``). ``[engine] tts`` lists the engines in order of preference: one that cannot start is
    reported and skipped (the server then has no voice and says so), one that fails on a sentence
    falls back to the next, and after the last the message stays text only. Returns nothing.
    """


@hookspec
def register_correctors(register):
    """Register transcript correctors (fix what the recogniser misheard).

    Called once at start-up. ``register(name, factory)``; ``factory(ctx) -> TranscriptCorrector``
    (see ``core.interfaces.TranscriptCorrector``): ``correct(request) -> str | None`` for each
    recognised final, with the question and the resume's terms. ``[engine] correctors`` lists them in
    order of preference; one that is not ``available`` (or cannot start) is skipped. The engine keeps
    what was heard unless the guard (``core.correction.check_correction``) accepts the correction
    within ``[correction] timeout_seconds``; both texts are stored. Returns nothing.
    """


@hookspec
def interview_event(interview_id, kind, data):
    """Observe what happens in interviews (for logging, metrics, webhooks).

    Called synchronously by the engine after each event has been stored: ``kind`` is one of
    ``phase``, ``utterance``, ``question``, ``cheat``, ``end``; ``data`` is the stored record (a
    dict; do not mutate it). Must be fast and must not raise; an exception is logged and ignored.
    Return value ignored.
    """
