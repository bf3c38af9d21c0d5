"""Page flows around the interview room in a real Chromium against the real app: a report asked for
before the interview ended, entering an interview that never started (the resume is picked in the
page), and a stale token (the socket is refused with 4401, the page goes back to the login)."""
from __future__ import annotations

import pytest

from browser_support import Shots, WsRecorder, chromium_page, requires_chromium, sign_in

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.asyncio]


async def test_unfinished_report_leads_into_the_room(app_server_factory, api_client):
    server = await app_server_factory({"engine": {"question_sources": ["bank"]}})
    client = await api_client(server)
    await client.create_resume(resume_name="简历甲")
    second = await client.create_resume(resume_name="简历乙")
    interview_id = await client.create_interview()
    shots = Shots("pages")
    errors: list[str] = []
    async with chromium_page(errors=errors) as page:
        rec = WsRecorder(page)
        page.set_default_timeout(30000)
        await sign_in(page, server.base_url, client)
        await page.goto(f"{server.base_url}/#/report/{interview_id}")
        await page.wait_for_selector("#continue-interview")
        assert "面试尚未结束" in await page.inner_text("#report-status")
        await shots.take(page, "report-not-ready")
        await page.click("#continue-interview")
        # never started: the interview has no resume yet, so the page asks for one
        await page.wait_for_selector("#pick-resume")
        names = await page.eval_on_selector_all("#pick-resume option", "os => os.map(o => o.textContent)")
        assert sorted(names) == ["简历乙", "简历甲"]
        await page.select_option("#pick-resume", str(second))
        await shots.take(page, "pick-resume")
        await page.click("text=进入面试")
        await page.wait_for_function("document.querySelector('#phase') && "
                                     "document.querySelector('#phase').dataset.phase === 'intro'")
        assert await page.inner_text("#question") == "请开始自我介绍吧"
        creates = rec.sent_of("create_stream")
        assert creates == [{"type": "create_stream", "title": "面试视频流", "description": "实时面试",
                            "interview_id": interview_id, "resume_id": str(second)}]
        await shots.take(page, "room-from-report")
        # leaving the room closes the socket with the guide's "disconnect"
        page.on("dialog", lambda d: d.accept())
        await page.click("#leave-btn")
        await page.wait_for_selector("#interview-table")
        assert rec.sent_of("disconnect")
        assert "自我介绍" in await page.inner_text("#interview-table")
    assert not [e for e in errors if e.startswith("pageerror")], errors


async def test_stale_token_returns_to_login(app_server_factory, api_client):
    server = await app_server_factory({"engine": {"question_sources": ["bank"]}})
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    client.token = client.token[:-4] + ("AAAA" if not client.token.endswith("AAAA") else "BBBB")
    async with chromium_page() as page:
        rec = WsRecorder(page)
        await sign_in(page, server.base_url, client)
        await page.goto(f"{server.base_url}/#/room/{interview_id}?resume={resume_id}")
        await page.wait_for_selector("#login-btn", timeout=30000)
        assert "登录已过期" in await page.inner_text("#flash")
        assert await page.evaluate("localStorage.getItem('mianshi.auth')") is None
        assert rec.sockets == 1, "the page must not retry a refused token"
        assert rec.received_of("error")
