"""Resume import and job-description paste in a real Chromium against the real app: a resume printed
to PDF (Chinese text) is chosen on the resumes page, the parsed draft opens in the form, one field is
corrected, the resume is saved (with its original file), a job description is pasted into the new
interview form, the interview starts, and after the self-introduction the interviewer asks about a
project named in the imported resume. A picture dropped on the import box shows the server's
Chinese message."""
from __future__ import annotations

import pytest

from browser_support import Shots, WsRecorder, chromium_page, requires_chromium, sign_in
from import_support import png_bytes
from resume_samples import PEOPLE, pdf_bytes

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.asyncio]

CONFIG = {"engine": {"question_sources": ["bank"], "cheat_detectors": [], "code_runner": ""},
          "timing": {"question_count": 3}}
JD = """资深后端开发工程师 30-50K
杭州鲸选科技有限公司
岗位职责：
1. 负责订单与支付系统的设计和开发；
任职要求：
1. 熟悉Java、Spring Boot和Kafka；
"""


async def test_import_pdf_correct_save_and_interview(app_server_factory, api_client, tmp_path):
    server = await app_server_factory(CONFIG)
    client = await api_client(server)
    person = PEOPLE[0]
    shots = Shots("resume_import")
    errors: list[str] = []
    async with chromium_page(errors=errors) as page:
        page.set_default_timeout(60000)
        pdf = tmp_path / "张伟-简历.pdf"
        pdf.write_bytes(await pdf_bytes(page, person, "two_column"))
        rec = WsRecorder(page)
        await sign_in(page, server.base_url, client)
        await page.goto(f"{server.base_url}/#/resumes")
        await page.wait_for_selector("#resume-drop")
        # a picture dropped on the box: the server's message is shown, nothing is saved
        await page.evaluate("""(bytes) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], 'photo.pdf', { type: 'application/pdf' }));
            document.querySelector('#resume-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
        }""", list(png_bytes()))
        await page.wait_for_selector("#import-status.error")
        assert "图片" in await page.inner_text("#import-status")
        await shots.take(page, "dropped-picture")
        # choose the PDF
        await page.set_input_files("#resume-file", str(pdf))
        await page.wait_for_selector("#import-notice")
        assert "张伟-简历.pdf" in await page.inner_text("#import-notice")
        assert await page.input_value("#f-name") == "张伟"
        assert await page.input_value("#f-resume_name") == "张伟-简历"
        names = await page.eval_on_selector_all("#list-projects [data-key=name]", "els => els.map(e => e.value)")
        assert names == [p["name"] for p in person["projects"]]
        schools = await page.eval_on_selector_all("#list-education [data-key=school]", "els => els.map(e => e.value)")
        assert schools == [e["school"] for e in person["education"]]
        assert "Kafka" in await page.input_value("#f-skills")
        await shots.take(page, "draft")
        # correct one field, then save
        await page.fill("#f-expected_position", "资深后端开发工程师")
        await page.click("#save-resume")
        await page.wait_for_selector("#resume-table")
        resumes = (await client.get("/users/resume/list/")).json()["resumes"]
        assert len(resumes) == 1 and resumes[0]["expected_position"] == "资深后端开发工程师"
        resume_id = resumes[0]["resume_id"]
        saved = (await client.get(f"/users/resume/{resume_id}/")).json()["resume"]
        assert saved["file"]["filename"] == "张伟-简历.pdf" and saved["completed"] is True
        assert (await client.get(f"/users/resume/{resume_id}/file/")).content == pdf.read_bytes()
        await shots.take(page, "saved")
        # the edit page offers the original file
        await page.goto(f"{server.base_url}/#/resume/{resume_id}")
        await page.wait_for_selector("#download-original")
        async with page.expect_download() as download:
            await page.click("#download-original")
        downloaded = await (await download.value).path()
        assert downloaded.read_bytes() == pdf.read_bytes()
        # new interview: paste the job description
        await page.goto(f"{server.base_url}/#/interview/new?resume={resume_id}")
        await page.wait_for_selector("#jd-box")
        await page.click("#jd-box summary")
        await page.fill("#jd-text", JD)
        await page.click("#jd-parse")
        await page.wait_for_function("document.querySelector('#f-position_name').value !== ''")
        assert await page.input_value("#f-position_name") == "资深后端开发工程师"
        assert await page.input_value("#f-position_type") == "backend"
        assert await page.input_value("#f-company_name") == "杭州鲸选科技有限公司"
        assert "Kafka" in await page.input_value("#f-position_requirements")
        await shots.take(page, "jd-filled")
        await page.click("#create-interview")
        # the room: end the self-introduction, then the first question names an imported project
        await page.wait_for_function("document.querySelector('#phase') && "
                                     "document.querySelector('#phase').dataset.phase === 'intro'")
        await page.wait_for_selector("#end-answer:not([disabled])")
        await page.click("#end-answer")
        await page.wait_for_function("document.querySelector('#phase').dataset.phase === 'question'")
        await page.wait_for_function(
            "names => names.some(n => document.querySelector('#question').textContent.includes(n))",
            arg=[p["name"] for p in person["projects"]])
        question = await page.inner_text("#question")
        await shots.take(page, "project-question")
        creates = rec.sent_of("create_stream")
        assert creates and creates[0]["resume_id"] == str(resume_id)
        print("first question:", question)
    assert not [e for e in errors if e.startswith("pageerror")], errors
