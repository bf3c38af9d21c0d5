"""The self-introduction phase: "请开始自我介绍吧", ended by silence, "说完了" or end_answer."""
from __future__ import annotations

from core.hookspecs import hookimpl
from core.interfaces import AsrContext
from core.phase import Phase, PhaseFactory
from core.resume import resume_terms
from core.turns import Turn

TEXT_START = "请开始自我介绍吧"          # the guide's


class IntroPhase(Phase):
    name = "intro"
    title = "自我介绍"
    input = "speech"
    opening = TEXT_START
    closing = "自我介绍结束"

    def __init__(self, settings: dict | None = None) -> None:
        super().__init__(settings)
        self.turn: Turn | None = None

    def _start_turn(self, ctx) -> None:
        """Bias ASR towards the resume and (re)start the silence timer."""
        ctx.set_asr_context(AsrContext(question=TEXT_START, terms=resume_terms(ctx.resume),
                                       domain=str((ctx.interview or {}).get("position_type") or "")))
        self.turn = Turn(float(ctx.timing.get("intro_silence_seconds", 15.0)),
                         str(ctx.timing.get("done_phrase", "说完了")))
        self.turn.start(ctx.clock.now())

    async def on_enter(self, ctx) -> None:
        self._start_turn(ctx)          # the engine has said TEXT_START (the opening)

    async def on_resume(self, ctx) -> None:
        self._start_turn(ctx)

    async def on_event(self, ctx, event) -> None:
        if self.turn is None:
            return
        reason = self.turn.feed(event, ctx.clock.now())
        if reason:
            ctx.state["ended_by"] = reason
            await ctx.finish()


class IntroFactory(PhaseFactory):
    phase_class = IntroPhase


SETTINGS: dict = {}            # [plugins.intro] has no settings: timing is [timing] intro_silence_seconds

@hookimpl
def register_phases(register):
    register("intro", IntroFactory, settings=SETTINGS)
