"""A candidate's whole interview in a real Chromium against the real app (real database, VAD,
ASR, question bank, code sandbox, cheat detectors and scorer), the way the front end is used:

register -> create a resume -> create an interview -> the intro by speech (Chromium's fake
microphone plays recorded Mandarin ending in "说完了"; the fake camera shows scikit-image's
astronaut) -> two questions answered by typing and "回答完毕" -> the code phase: the problem is
shown, a correct solution is submitted and its run result shown -> the end screen -> the report.

Each step asserts what the page shows and saves a screenshot under test-output/browser/e2e/.
"""
from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest

import media
from browser_support import OUTPUT_DIR, Shots, WsRecorder, chromium_page, requires_chromium

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.asyncio]

SOLUTIONS = Path(__file__).resolve().parent / "code_solutions"
CODE_SECONDS = 30          # the code phase's time allowed; it ends the interview when it runs out
CONFIG = {
    "engine": {"question_sources": ["bank"], "scorers": ["heuristic"]},
    "timing": {"question_count": 2},
    "plugins": {"question": {"max_follow_ups": 0}, "code": {"time_allowed_seconds": CODE_SECONDS}},
}
# words of intro_01..03 / intro_end (transcripts.tsv) the recognizer should get right
INTRO_WORDS = ("李明", "华中科技大学", "软件工程", "电商", "后端开发", "订单系统", "支付系统", "高并发", "数据库", "说完了")
ANSWERS = [
    "缓存穿透可以用布隆过滤器拦截不存在的键，也可以把空结果缓存一小段时间；缓存雪崩要给过期时间加随机值。",
    "数据库索引一般用 B+ 树，非叶子节点只存键，树很矮，范围查询沿着叶子链表顺序读取，减少磁盘读取次数。",
    "我会先复现问题，再看监控和日志定位瓶颈，然后给出方案并灰度验证。",
]


def intro_wav(tmp_path: Path) -> Path:
    # 2 s of silence while the page connects, the self-introduction, then a long silence so the
    # looping fake microphone does not start over during the rest of the interview
    samples = media.assemble([2.0, "intro_01", 0.6, "intro_02", 0.6, "intro_03", 0.6, "intro_end", 60.0])
    return media.write_wav(tmp_path / "intro.wav", samples)


async def phase_of(page) -> str:
    return await page.get_attribute("#phase", "data-phase") or ""


async def test_whole_interview_in_the_browser(app_server_factory, tmp_path):
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    server = await app_server_factory(CONFIG)
    wav = intro_wav(tmp_path)
    y4m = media.write_face_y4m(tmp_path / "face.y4m")
    shots = Shots("e2e")
    errors: list[str] = []
    username = f"cand_{uuid.uuid4().hex[:8]}"

    async with chromium_page(wav, y4m, errors=errors) as page:
        rec = WsRecorder(page)
        page.set_default_timeout(20000)

        # --- register ----------------------------------------------------------------------------
        await page.goto(server.base_url + "/")
        await page.wait_for_selector("#login-btn")
        assert await page.inner_text("h1") == "登录 / 注册"
        await shots.take(page, "login")
        await page.fill("#username", username)
        await page.fill("#password", "short")
        await page.click("#register-btn")           # the server's Chinese message for a bad password
        await page.wait_for_function("document.querySelector('#login-error').textContent.length > 0")
        assert re.search(r"[\u4e00-\u9fff]", await page.inner_text("#login-error"))
        await page.fill("#password", "s3cret-pass-1")
        await page.click("#register-btn")
        await page.wait_for_selector("#no-resumes")
        assert "还没有简历" in await page.inner_text("#no-resumes")
        assert username in await page.inner_text("#nav-user")
        await shots.take(page, "registered")

        # --- create a resume -------------------------------------------------------------------------
        await page.click("#new-resume")
        await page.wait_for_selector("#resume-form")
        await page.fill("#f-resume_name", "后端开发简历")
        await page.fill("#f-expected_position", "后端工程师")
        await page.fill("#f-name", "李明")
        await page.click("#add-education")
        await page.fill("[name='education.school']", "华中科技大学")
        await page.fill("[name='education.major']", "软件工程")
        await page.fill("[name='education.degree']", "本科")
        await page.click("#add-work_experience")
        await page.fill("[name='work_experience.company']", "某电商公司")
        await page.fill("[name='work_experience.position']", "后端开发工程师")
        await page.fill("[name='work_experience.description']", "负责订单系统和支付系统，使用 Python、Redis 和 MySQL")
        await page.click("#add-projects")
        await page.fill("[name='projects.name']", "订单系统重构")
        await page.fill("[name='projects.description']", "拆分服务，引入消息队列削峰，接口延迟降低 40%")
        await page.fill("#f-skills", "Python\nRedis, MySQL，消息队列")
        await page.fill("#f-self_evaluation", "擅长高并发系统设计")
        await shots.take(page, "resume-form")
        await page.click("#save-resume")
        await page.wait_for_selector("#resume-table")
        row = page.locator("#resume-table tbody tr").first
        assert await row.locator(".resume-name").inner_text() == "后端开发简历"
        assert "已完善" in await row.inner_text()
        await shots.take(page, "resume-list")

        # --- edit it: the form comes back filled, the change is saved ---------------------------------
        await row.locator("button", has_text="编辑").click()
        await page.wait_for_selector("#resume-form")
        assert await page.input_value("[name='education.school']") == "华中科技大学"
        assert await page.input_value("#f-skills") == "Python\nRedis\nMySQL\n消息队列"
        await page.fill("#f-expected_position", "高级后端工程师")
        await page.click("#save-resume")
        await page.wait_for_selector("#resume-table")
        row = page.locator("#resume-table tbody tr").first
        assert "高级后端工程师" in await row.inner_text()

        # --- create the interview ---------------------------------------------------------------------
        await row.locator(".start-interview").click()
        await page.wait_for_selector("#interview-form")
        options = await page.eval_on_selector_all("#f-position_type option", "os => os.map(o => o.value)")
        assert options == ["backend", "frontend", "pm", "qa", "algo"]
        await page.fill("#f-position_name", "后端开发工程师")
        await page.select_option("#f-position_type", "backend")
        await page.fill("#f-company_name", "示例公司")
        await page.click("#create-interview")          # no description: the server names the field
        await page.wait_for_function("document.querySelector('#interview-error').textContent.length > 0")
        error_text = await page.inner_text("#interview-error")
        assert "职位描述" in error_text and "position_description" in error_text, error_text
        await page.fill("#f-position_description", "负责订单与支付后端开发")
        await page.fill("#f-position_requirements", "熟悉 Python、Redis、MySQL")
        await shots.take(page, "interview-form")
        await page.click("#create-interview")

        # --- the room: intro by speech ------------------------------------------------------------------
        await page.wait_for_selector("#preview")
        await page.wait_for_function("document.querySelector('#phase').dataset.phase === 'intro'", timeout=60000)
        assert await page.inner_text("#question") == "请开始自我介绍吧"
        assert await page.inner_text("#conn-status") == "已连接"
        await page.wait_for_function("document.querySelector('#preview').videoWidth > 0")
        timings["room_ready_s"] = time.monotonic() - t0
        await page.wait_for_function("window.__mianshi.audio.framesSent > 25")
        await shots.take(page, "intro-started")
        # the intro ends on the final transcript containing "说完了"
        await page.wait_for_function("document.querySelector('#phase').dataset.phase === 'question'",
                                     timeout=90000)
        timings["intro_done_s"] = time.monotonic() - t0
        finals = await page.eval_on_selector_all(".transcript .final.me", "els => els.map(e => e.textContent)")
        heard = "".join(finals)
        hits = [w for w in INTRO_WORDS if w in heard]
        assert len(hits) >= 4, f"transcript shown: {finals}"
        assert rec.received_of("asr_result", is_final=False), "no partial transcripts were shown"
        assert "自我介绍结束，下面开始问问题。" in await page.inner_text("#transcript")
        await shots.take(page, "intro-transcribed")

        # --- questions: typed answers, ended with "回答完毕" -----------------------------------------------
        await page.click("#mute-btn")                 # the fake microphone would loop the intro
        assert await page.inner_text("#mic-status") == "已静音"
        asked = []
        for n in range(1, 4):
            await page.wait_for_function(
                "n => document.querySelector('#progress').textContent.startsWith(`第 ${n} /`)"
                " || document.querySelector('#phase').dataset.phase !== 'question'", arg=n, timeout=30000)
            if await phase_of(page) != "question":
                break
            assert await page.inner_text("#progress") == f"第 {n} / 2 题"
            question = await page.inner_text("#question")
            assert question and question != "自我介绍结束，下面开始问问题。"
            asked.append(question)
            if n == 1:
                # the network drops: the page reconnects with backoff and the interview resumes
                # where it was (the server re-sends the current question)
                await page.evaluate("window.__mianshi.room.ws.close(4000, 'test: network drop')")
                await page.wait_for_function(
                    "document.querySelector('#conn-status').textContent === '已重新连接，面试继续'")
                assert rec.sockets == 2
                creates = rec.sent_of("create_stream")
                assert len(creates) == 2 and creates[0] == creates[1]
                assert await page.inner_text("#question") == question
                assert await page.inner_text("#progress") == "第 1 / 2 题"
                await shots.take(page, "reconnected")
            if n == 2:
                # the candidate switches to another tab and back (Page Visibility API)
                await page.evaluate("""() => {
                    Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
                    document.dispatchEvent(new Event('visibilitychange')); }""")
                await page.wait_for_selector(".cheat[data-kind='tab_hidden']")
                assert "检测到切换页面或窗口" in await page.inner_text("#cheat-list")
                await page.evaluate("""() => { delete document.visibilityState;
                    document.dispatchEvent(new Event('visibilitychange')); }""")
                await page.wait_for_function("document.visibilityState === 'visible'")
                await shots.take(page, "tab-hidden-warning")
            await page.fill("#text-answer", ANSWERS[n - 1])
            await page.click("#send-text")
            await page.wait_for_function(
                "t => [...document.querySelectorAll('.transcript .final.me')].some(e => e.textContent === t)",
                arg=ANSWERS[n - 1])
            await shots.take(page, f"question-{n}-answered")
            await page.click("#end-answer")
        assert len(asked) == 2

        # --- the code phase ----------------------------------------------------------------------------
        await page.wait_for_function("document.querySelector('#phase').dataset.phase === 'code'")
        timings["code_phase_s"] = time.monotonic() - t0
        await page.wait_for_selector("#problem-title")
        assert "问答环节结束，下面进入代码题环节。" in await page.inner_text("#transcript")
        problem_id = await page.get_attribute("#problem", "data-problem-id")
        title = await page.inner_text("#problem-title")
        assert title and problem_id
        assert await page.inner_text("#question") == f"代码题：{title}（见下方题目与编辑器）"
        languages = await page.eval_on_selector_all("#code-language option", "os => os.map(o => o.value)")
        assert "python" in languages
        await shots.take(page, "code-problem")
        # a wrong submission first: the page shows the failing visible case
        await page.select_option("#code-language", "python")
        await page.fill("#code-editor", "print(42)\n")
        await page.click("#submit-code")
        await page.wait_for_selector("#code-summary", timeout=60000)
        summary = await page.inner_text("#code-summary")
        m = re.fullmatch(r"通过 (\d+) / (\d+) 个测试用例", summary)
        assert m and int(m.group(1)) < int(m.group(2)), summary
        assert await page.locator("#code-cases .case-fail").count() >= 1
        await shots.take(page, "code-wrong")
        solution = SOLUTIONS / problem_id / "correct.py"
        assert solution.exists(), f"no reference solution for {problem_id} in {SOLUTIONS}"
        await page.fill("#code-editor", solution.read_text(encoding="utf-8"))
        await page.click("#submit-code")
        await page.wait_for_function(
            "document.querySelector('#code-summary') && !document.querySelector('#code-running')"
            " && /通过 (\\d+) \\/ \\1 个测试用例/.test(document.querySelector('#code-summary').textContent)",
            timeout=60000)
        assert "全部通过" in await page.inner_text("#code-text")
        await shots.take(page, "code-passed")
        timings["code_passed_s"] = time.monotonic() - t0

        # --- the end ------------------------------------------------------------------------------------
        await page.wait_for_selector("#end-screen:not([hidden])", timeout=(CODE_SECONDS + 30) * 1000)
        assert "面试已结束" in await page.inner_text("#end-screen")
        assert await phase_of(page) == "end"
        await shots.take(page, "end-screen")

        # --- the report ----------------------------------------------------------------------------------
        await page.click("#view-report")
        await page.wait_for_selector("#overall-score", timeout=60000)
        timings["report_s"] = time.monotonic() - t0
        score = float(await page.inner_text("#overall-score"))
        assert 0 <= score <= 10
        assert (await page.inner_text("#report-summary")).strip()
        report_questions = page.locator("#report-questions .report-question")
        assert await report_questions.count() == 2
        for i, q in enumerate(asked):
            text = await report_questions.nth(i).inner_text()
            assert q[:20] in text
            assert ANSWERS[i][:20] in text
        code_text = await page.inner_text("#report-code")
        assert title in code_text and re.search(r"提交 2 次，最后一次通过 (\d+) / \1 个用例", code_text), code_text
        assert "切换了页面" in await page.inner_text("#report-cheats")
        await shots.take(page, "report")

        # the interview list shows it finished
        await page.click("text=面试记录")
        await page.wait_for_selector("#interview-table")
        assert "已结束" in await page.inner_text("#interview-table")
        await shots.take(page, "interview-list")

        sent_types = {m.get("type") for _, m in rec.sent}
        frames = rec.sent_of("audio_frame")

    assert {"create_stream", "audio_frame", "video_frame", "text_answer", "end_answer",
            "code_submit", "client_event", "disconnect"} <= sent_types
    assert [m["event"] for m in rec.sent_of("client_event")] == ["tab_hidden", "tab_visible"]
    assert {len(m["audio_data"]) for m in frames if m["audio_data"]} == {1708}   # base64 of 1 280 bytes
    assert any(m.get("end") is True for m in frames), "the page never sent the end-of-audio frame"
    assert not [e for e in errors if e.startswith("pageerror")], errors
    timings["total_s"] = time.monotonic() - t0
    (OUTPUT_DIR / "e2e_timings.json").write_text(json.dumps({k: round(v, 1) for k, v in timings.items()},
                                                            indent=2))
