"""A behavioural-interview phase for mianshi, as a third-party plugin: one module, one entry point.

Enable it with one line of plugins.toml, e.g. ``phases = ["intro", "question", "behavioral", "code"]``.
Settings, ``[plugins.behavioral]`` (all optional):

* ``prompts``   — the questions to ask (default: three STAR questions below);
* ``silence_seconds`` — an answer ends after this long without speech (default: ``[timing]
  answer_silence_seconds``). An answer also ends on "说完了" or the "回答完毕" button, as elsewhere.

Every utterance and typed answer is stored with ``prompt_index`` (its ``attribution``); the report
gets a ``qa`` section "行为面试" with each prompt and its answer, which the scorers score and the
report page renders like any other.
"""
from __future__ import annotations

from core.hookspecs import hookimpl
from core.interfaces import AsrContext
from core.phase import Phase, PhaseFactory
from core.resume import resume_terms
from core.settings import Setting
from core.turns import Turn

DEFAULT_PROMPTS = (
    "请讲一次你和同事意见不一致的经历：当时的情况、你的做法和最后的结果。",
    "请讲一个你在压力很大、时间很紧的情况下完成任务的例子。",
    "请讲一次你犯过的错误，你是怎么发现和弥补的，学到了什么。",
)


class BehavioralPhase(Phase):
    name = "behavioral"
    title = "行为面试"
    input = "speech"
    opening = "下面进入行为面试环节。"
    closing = "行为面试结束"

    def __init__(self, settings: dict | None = None) -> None:
        super().__init__(settings)
        self.prompts = [str(p) for p in self.settings.get("prompts", DEFAULT_PROMPTS) if str(p).strip()]
        self.turn: Turn | None = None

    def attribution(self, ctx) -> dict:
        index = ctx.state.get("index", 0)
        return {"prompt_index": index + 1} if index < len(self.prompts) else {}

    async def on_enter(self, ctx) -> None:
        ctx.state["index"] = 0
        await self._ask(ctx)

    async def on_resume(self, ctx) -> None:
        if ctx.state.get("index", 0) >= len(self.prompts):
            await ctx.finish()
        else:
            self._start_turn(ctx)

    async def on_event(self, ctx, event) -> None:
        if self.turn is not None and self.turn.feed(event, ctx.clock.now()):
            ctx.state["index"] = ctx.state.get("index", 0) + 1
            await ctx.save()
            await self._ask(ctx)

    async def _ask(self, ctx) -> None:
        index = ctx.state.get("index", 0)
        if index >= len(self.prompts):
            self.turn = None
            await ctx.finish()
            return
        self._start_turn(ctx)
        await ctx.say(self.prompts[index], question_index=index + 1, total=len(self.prompts))

    def _start_turn(self, ctx) -> None:
        prompt = self.prompts[ctx.state.get("index", 0)]
        ctx.set_asr_context(AsrContext(question=prompt, terms=resume_terms(ctx.resume)))
        silence = self.settings.get("silence_seconds")
        silence = float(silence if silence is not None else ctx.timing.get("answer_silence_seconds", 15.0))
        self.turn = Turn(silence, str(ctx.timing.get("done_phrase", "说完了")))
        self.turn.start(ctx.clock.now())


class BehavioralFactory(PhaseFactory):
    phase_class = BehavioralPhase

    def report_section(self, record: dict) -> dict | None:
        """Each prompt with the answer stored against it (``prompt_index``) during this phase."""
        phase = self.ctx.name
        prompts = BehavioralPhase(self.settings).prompts
        answers: dict[int, list[str]] = {}
        for entry in record.get("transcript") or []:
            if isinstance(entry, dict) and entry.get("phase") == phase and entry.get("prompt_index"):
                answers.setdefault(int(entry["prompt_index"]), []).append(str(entry.get("text") or "").strip())
        if not answers and record.get("phase_state", {}).get(phase) is None:
            return None                       # the interview never reached this phase
        items = [{"index": i + 1, "question": text, "kind": "behavioral", "topic": "行为面试",
                  "reference_points": [], "answer": " ".join(a for a in answers.get(i + 1, []) if a)}
                 for i, text in enumerate(prompts)]
        return {"type": "qa", "title": BehavioralPhase.title, "items": items}


@hookimpl
def register_phases(register):
    # declared settings: a mistyped key or a wrong type in [plugins.behavioral] stops the server
    # at start-up with the table and key named (core/settings.py)
    register("behavioral", BehavioralFactory,
             settings={"prompts": list(DEFAULT_PROMPTS), "silence_seconds": Setting(None, float)})
