"""The page and corrected finals, in a real Chromium against the real app: from a server that corrects
finals the page asks for them (create_stream asr_corrections) and shows the corrected text in place
of what was heard; from one that does not, its create_stream stays the guide's (test_browser_pages).
The microphone is a fake capture file of tones that the test's recogniser reads as words."""
from __future__ import annotations

import numpy as np
import pytest

import media
from browser_support import Shots, WsRecorder, chromium_page, requires_chromium, sign_in
from engine_support import tone
from test_asr_correction import Corrector, CorrectorPlugin

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.asyncio]


async def test_the_page_shows_the_corrected_final(app_server_factory, api_client, tmp_path):
    plugin = CorrectorPlugin(Corrector("scripted", {"韩束": "函数"}))
    server = await app_server_factory({"engine": {"vad": "tone", "asr": "tone", "correctors": ["scripted"],
                                                  "question_sources": ["bank"], "scorers": ["heuristic"],
                                                  "cheat_detectors": [], "tts": []}},
                                      extra_plugins=(plugin,))
    # the tone the recogniser reads as 韩束 (digit 3), between silences; Chromium loops the file
    samples = np.concatenate([media.silence(1.0), np.frombuffer(tone(3, 1.2), dtype=np.int16), media.silence(2.5)])
    wav = media.write_wav(tmp_path / "tones.wav", samples)
    client = await api_client(server)
    resume_id, interview_id = await client.create_resume(), await client.create_interview()
    errors: list[str] = []
    async with chromium_page(wav, errors=errors) as page:
        rec = WsRecorder(page)
        page.set_default_timeout(60000)
        await sign_in(page, server.base_url, client)
        await page.goto(f"{server.base_url}/#/room/{interview_id}?resume={resume_id}")
        line = await page.wait_for_selector("#transcript .final.me.corrected")
        assert await line.inner_text() == "函数"
        assert "韩束" in await line.get_attribute("title")
        await Shots("corrections").take(page, "corrected")
        assert rec.sent_of("create_stream")[0]["asr_corrections"] is True
        assert rec.received_of("asr_correction")[0] == {"type": "asr_correction", "text": "函数", "raw_text": "韩束"}
    transcript = (await client.get(f"/interviews/{interview_id}/")).json()["interview"]["transcript"]
    assert (transcript[0]["text"], transcript[0]["raw_text"]) == ("函数", "韩束")
    assert not [e for e in errors if e.startswith("pageerror")], errors
