"""The self-introduction phase: "请开始自我介绍吧", ended by silence, "说完了" or end_answer."""
from __future__ import annotations

from core.events import TEXT_INTRO_START
from core.hookspecs import hookimpl
from core.interfaces import AsrContext, PluginContext
from core.resume import resume_terms
from core.turns import Turn


class IntroPhase:
    name = "intro"

    def __init__(self, settings: dict) -> None:
        self.settings = settings
        self.turn: Turn | None = None

    def _start_turn(self, ctx) -> None:
        """Bias ASR towards the resume and (re)start the silence timer."""
        ctx.set_asr_context(AsrContext(question=TEXT_INTRO_START, terms=resume_terms(ctx.resume)))
        self.turn = Turn(float(ctx.timing.get("intro_silence_seconds", 15.0)),
                         str(ctx.timing.get("done_phrase", "说完了")))
        self.turn.start(ctx.clock.now())

    async def on_enter(self, ctx) -> None:
        self._start_turn(ctx)
        await ctx.say(TEXT_INTRO_START)

    async def on_resume(self, ctx) -> None:
        self._start_turn(ctx)

    async def on_event(self, ctx, event) -> None:
        if self.turn is None:
            return
        reason = self.turn.feed(event, ctx.clock.now())
        if reason:
            ctx.state["ended_by"] = reason
            await ctx.finish()

    async def on_exit(self, ctx) -> None:
        return None


class IntroFactory:
    def __init__(self, ctx: PluginContext) -> None:
        self.settings = ctx.settings

    def create(self) -> IntroPhase:
        return IntroPhase(self.settings)


@hookimpl
def register_phases(register):
    register("intro", IntroFactory)
