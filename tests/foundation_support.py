"""A lightweight engine for the foundation tests: they exercise storage and the REST API, so the
engine runs with no phases, no speech or vision models and one tiny scripted question source."""
from __future__ import annotations

from core.hookspecs import hookimpl
from core.interfaces import Question


class FixedQuestions:
    name = "foundation_fixed"

    async def generate(self, request):
        return [Question(text="请介绍一个你做过的项目。", kind="project", source=self.name)][: request.count]

    async def follow_up(self, request):
        return None


class FoundationPlugin:
    @hookimpl
    def register_question_sources(self, register):
        register("foundation_fixed", lambda ctx: FixedQuestions())


LIGHT_ENGINE = {"engine": {"phases": [], "vad": "", "asr": "", "question_sources": ["foundation_fixed"],
                           "scorers": [], "cheat_detectors": [], "code_runner": ""}}
