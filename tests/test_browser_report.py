"""The evidence-linked report page in a real Chromium against the real app (issue 17): an interview
answered by voice with the Mandarin recordings, a cheat episode and two code submissions; the report
page plays an answer's clip from a clicked transcript line (the audio element's currentTime advances),
shows the cheat frame as a thumbnail and the submissions one after another with what changed."""
from __future__ import annotations

import pytest

from browser_support import Shots, chromium_page, requires_chromium, sign_in
from test_recordings_ws import FLOW, run_interview

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.asyncio]

WITH_CODE = {**FLOW, "engine": {**FLOW["engine"], "phases": ["intro", "question", "code"], "code_runner": "bubblewrap"}}
FIRST = "n = int(input())\nprint(n)\n"
SECOND = "n = int(input())\nprint(n + 1)\nprint('done')\n"


async def test_report_page_plays_clips_and_shows_frames_and_submissions(app_server_factory, api_client):
    server = await app_server_factory(WITH_CODE)
    client = await api_client(server)
    interview_id = await run_interview(server, client, code=(FIRST, SECOND))
    shots = Shots("report-evidence")
    errors: list[str] = []
    async with chromium_page(errors=errors) as page:
        page.set_default_timeout(30000)
        await sign_in(page, server.base_url, client)
        await page.goto(f"{server.base_url}/#/report/{interview_id}")
        await page.wait_for_selector(".report-question .evidence-line.playable")
        question = page.locator(".report-question", has=page.locator(".evidence-line.playable")).first
        lines = question.locator(".evidence-line.playable")
        start_line = lines.nth(await lines.count() - 1)        # play from the answer's last line
        await start_line.click()
        audio = question.locator("audio.answer-audio")
        await audio.evaluate("a => new Promise((ok, fail) => { const t = setTimeout(() => fail('no playback'), 20000);"
                             " const check = () => { if (a.currentTime > 0.3) { clearTimeout(t); ok(); } else setTimeout(check, 50); };"
                             " check(); })")
        assert "playing" in (await start_line.get_attribute("class"))
        assert (await audio.evaluate("a => a.src")).startswith("blob:")
        await shots.take(page, "playing")

        thumb = page.locator("#report-cheats img.cheat-thumb").first
        await thumb.wait_for()
        await page.wait_for_function("() => { const i = document.querySelector('#report-cheats img.cheat-thumb');"
                                     " return i && i.complete && i.naturalWidth > 0; }")
        width = await thumb.evaluate("i => i.naturalWidth")
        assert 0 < width <= 320

        subs = page.locator(".code-submission")
        assert await subs.count() == 2
        second = subs.nth(1)
        added = await second.locator(".diff-add").all_inner_texts()
        removed = await second.locator(".diff-del").all_inner_texts()
        assert [t.strip() for t in added] == ["+ print(n + 1)", "+ print('done')"]
        assert [t.strip() for t in removed] == ["- print(n)"]
        assert "通过" in await second.inner_text() and await second.locator(".case-results li").count() > 0
        await shots.take(page, "report")
    assert not [e for e in errors if "pageerror" in e], errors
