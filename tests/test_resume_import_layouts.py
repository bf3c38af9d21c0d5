"""The rule-based parser on resumes the test generates: three candidates in three layouts (one
column, two columns with a sidebar, table-based), each printed to PDF by Chromium (Chinese text in
WenQuanYi Micro Hei) and written as DOCX by python-docx, through the real extraction process. Fields
right over fields total per layout (the README's table; bench/bench_resume_import.py prints it)."""
from __future__ import annotations

import json

import pytest

from browser_support import CHROMIUM, OUTPUT_DIR, requires_chromium
from resume_samples import LAYOUTS, PEOPLE, measure, pdf_bytes, score, table

MIN_ACCURACY = 0.9


@requires_chromium
@pytest.mark.asyncio
async def test_rule_parser_accuracy_per_layout_pdf_and_docx():
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            # the PDF really carries Chinese text (not shapes): the extraction reads it back
            from docimport.extract import Limits, extract
            pdf = await pdf_bytes(page, PEOPLE[0], "two_column")
            assert pdf.startswith(b"%PDF-")
            text = (await extract(pdf, Limits())).text
            assert "鲸选电商订单中台" in text and "教育经历" in text
            results = await measure(page)
        finally:
            await browser.close()
    out = OUTPUT_DIR.parent / "resume_import"
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps(
        {f"{layout}/{fmt}": cell for (layout, fmt), cell in results.items()}, ensure_ascii=False, indent=1))
    (out / "accuracy.md").write_text(table(results) + "\n")
    assert len(results) == 2 * len(LAYOUTS)
    for (layout, fmt), cell in results.items():
        assert cell["files"] == len(PEOPLE)
        assert cell["right"] / cell["total"] >= MIN_ACCURACY, (layout, fmt, cell["wrong"])


def test_scoring_counts_wrong_and_invented_fields():
    """The measure can fail: an empty draft scores 0, a wrong school or an invented skill count."""
    person = PEOPLE[0]
    right, total, _ = score({}, person)
    assert right == 0 and total > 30
    perfect = {"name": person["name"], "expected_position": person["expected_position"],
               "self_evaluation": person["self_evaluation"], "education": person["education"],
               "work_experience": [{**w, "description": "\n".join(w["description"])} for w in person["work_experience"]],
               "projects": [{**p, "description": "\n".join(p["description"])} for p in person["projects"]],
               "skills": person["skills"]}
    assert score(perfect, person)[0] == score(perfect, person)[1]
    worse = json.loads(json.dumps(perfect))
    worse["education"][0]["school"] = "清华大学"
    worse["skills"].append("Cobol")
    r, t, wrong = score(worse, person)
    assert t == total + 1 and r == t - 2 and "extra skill cobol" in wrong
