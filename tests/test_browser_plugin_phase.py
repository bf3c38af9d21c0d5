"""The shipped page with a phase it has never seen: the example ``behavioral`` phase (examples/,
installed through its entry point) between the questions and the code task. The page takes what to
offer from ``interview_message.input``: the answer controls during the behavioral phase, the editor
(and no answer controls) in the code phase, and the report renders the phase's section."""
from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from browser_support import Shots, chromium_page, requires_chromium, sign_in

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.asyncio,
              pytest.mark.skipif("behavioral" not in {ep.name for ep in entry_points(group="mianshi")},
                                 reason="the example plugins are not installed (scripts/install_test_extras.sh)")]

PROMPT = "请讲一次你和同事意见不一致的经历。"
CONFIG = {"engine": {"phases": ["intro", "question", "behavioral", "code"], "vad": "", "asr": "",
                     "question_sources": ["bank"], "scorers": ["heuristic"], "cheat_detectors": []},
          "timing": {"question_count": 1, "intro_silence_seconds": 600.0, "answer_silence_seconds": 600.0},
          "plugins": {"question": {"max_follow_ups": 0}, "behavioral": {"prompts": [PROMPT]}}}


async def answer(page, text: str) -> None:
    await page.fill("#text-answer", text)
    await page.click("#send-text")
    await page.wait_for_function(
        "t => [...document.querySelectorAll('.transcript .final.me')].some(e => e.textContent === t)", arg=text)
    await page.click("#end-answer")


async def test_the_page_offers_what_an_unknown_phase_asks_for(app_server_factory, api_client):
    server = await app_server_factory(CONFIG)
    client = await api_client(server)
    resume_id, interview_id = await client.create_resume(), await client.create_interview()
    shots = Shots("plugin-phase")
    errors: list[str] = []
    async with chromium_page(errors=errors) as page:
        page.set_default_timeout(30000)
        page.on("dialog", lambda d: d.accept())
        await sign_in(page, server.base_url, client)
        await page.goto(f"{server.base_url}/#/room/{interview_id}?resume={resume_id}")
        await page.wait_for_function("document.querySelector('#phase')?.dataset.phase === 'intro'")
        await page.click("#mute-btn")
        await answer(page, "我是张三，做了四年后端开发")
        await page.wait_for_function("document.querySelector('#phase').dataset.phase === 'question'")
        await answer(page, "用 Redis 做缓存，注意缓存穿透和雪崩")

        await page.wait_for_function("document.querySelector('#phase').dataset.phase === 'behavioral'")
        await page.wait_for_function("p => document.querySelector('#question').textContent === p", arg=PROMPT)
        assert await page.inner_text("#phase") == "行为面试"                 # its title, from the server
        assert await page.get_attribute("#phase", "data-input") == "speech"
        assert await page.is_visible("#answer-tools") and await page.is_enabled("#end-answer")
        assert not await page.is_visible("#code-panel")
        assert await page.inner_text("#progress") == "第 1 / 1 题"
        assert "问答环节结束，下面进入行为面试环节。" in await page.inner_text("#transcript")
        await shots.take(page, "behavioral-phase")
        await answer(page, "我先听对方的理由，再用数据对比两个方案，最后选了更稳的方案")

        await page.wait_for_function("document.querySelector('#phase').dataset.phase === 'code'")
        await page.wait_for_selector("#problem-title")
        assert await page.get_attribute("#phase", "data-input") == "code"
        assert await page.is_visible("#code-panel") and not await page.is_visible("#answer-tools")
        assert "行为面试结束，下面进入代码题环节。" in await page.inner_text("#transcript")
        await shots.take(page, "code-phase")
        await page.click("#finish-code")
        await page.wait_for_selector("#end-screen:not([hidden])")

        await page.goto(f"{server.base_url}/#/report/{interview_id}")
        section = page.locator(".report-section[data-phase='behavioral']")
        await section.wait_for()
        text = await section.inner_text()
        assert "行为面试（1 题）" in text and PROMPT in text and "用数据对比两个方案" in text
        await shots.take(page, "report")
    assert not [e for e in errors if e.startswith("pageerror")], errors
