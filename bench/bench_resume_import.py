"""Accuracy of the rule-based resume parser per layout, and the cost of an import.

    .venv/bin/python bench/bench_resume_import.py

Generates the test resumes (tests/resume_samples.py: 3 candidates x 3 layouts), prints them to PDF
with Debian's Chromium and writes them as DOCX, runs each through the real extraction process and the
rule-based parser, and prints fields right / fields total per layout and format (the README's table),
then the time per extraction + parse."""
from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from resume_samples import PEOPLE, docx_bytes, measure, pdf_bytes, table  # noqa: E402


async def main() -> None:
    from playwright.async_api import async_playwright

    from docimport.extract import Limits, extract
    from docimport.resume_rules import parse_resume_text
    from browser_support import CHROMIUM

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = await browser.new_page()
        results = await measure(page)
        pdf = await pdf_bytes(page, PEOPLE[0], "single")
        await browser.close()
    print(table(results))
    right = sum(c["right"] for c in results.values())
    total = sum(c["total"] for c in results.values())
    print(f"\nall: {right}/{total} ({100 * right / total:.1f} %) over {sum(c['files'] for c in results.values())} files")
    for key, cell in results.items():
        for w in cell["wrong"]:
            print("  wrong:", "/".join(key), w)
    for name, data in (("PDF", pdf), ("DOCX", docx_bytes(PEOPLE[0], "single"))):
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            parse_resume_text((await extract(data, Limits())).text)
            times.append(time.perf_counter() - t0)
        print(f"{name} ({len(data) // 1024} KB): extraction process + parse median "
              f"{1000 * statistics.median(times):.0f} ms, max {1000 * max(times):.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
