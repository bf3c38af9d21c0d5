"""``GET /interviews/<id>/report.pdf``: the report as a printable HTML page (the same content as the
report page: scores, comments, each answer's transcript lines with their times, the code submissions
with their per-case results, the cheat episodes with their frames as thumbnails), printed to PDF by
Chromium headless (``--print-to-pdf``; Debian's ``chromium``, ``[report] chromium``). One Chromium
process per export, in a temporary directory that is removed afterwards, killed after
``[report] pdf_timeout_seconds``."""
from __future__ import annotations

import asyncio
import base64
import html
import json
import shutil
import tempfile
from pathlib import Path

from api.errors import dumps


class PdfError(RuntimeError):
    pass


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _secs(value) -> str:
    return "" if value is None else f"{float(value):.1f}s"


def _qa_item(q: dict) -> str:
    cited = set(q.get("cites") or [])
    lines = "".join(
        f'<li class="{"cited" if e.get("id") in cited else ""}">'
        f'<span class="t">{_secs(e.get("t_start"))}–{_secs(e.get("t_end"))}</span> {_e(e.get("text"))}'
        f'{" <b>（评分依据）</b>" if e.get("id") in cited else ""}</li>'
        for e in q.get("evidence") or [])
    parts = [f'<h3>第 {_e(q.get("index"))} 题：{_e(q.get("question"))} <span class="score">{_e(q.get("score"))} / 10</span></h3>',
             f'<ul class="lines">{lines}</ul>' if lines else f'<p>{_e(q.get("answer") or "（未作答）")}</p>']
    for key, label in (("good", "亮点"), ("missing", "不足"), ("reference_answer", "参考答案")):
        if q.get(key):
            parts.append(f'<p><span class="muted">{label}：</span>{_e(q[key])}</p>')
    return '<div class="q">' + "".join(parts) + "</div>"


def _code(code: dict, cites: list) -> str:
    out = [f'<p>题目：{_e(code.get("problem_title"))}；提交 {_e(code.get("submissions", 0))} 次</p>']
    for sub in code.get("evidence") or []:
        cases = "".join(f'<li>用例 {_e(c.get("index"))}{"" if c.get("visible") else "（隐藏）"}：'
                        f'{"通过" if c.get("passed") else "未通过"}{"，" + _e(c.get("error")) if c.get("error") else ""}</li>'
                        for c in sub.get("cases") or [])
        mark = " <b>（评分依据）</b>" if sub.get("id") in cites else ""
        out.append(f'<h3>第 {_e(sub.get("index"))} 次提交（{_e(sub.get("language"))}）：通过 {_e(sub.get("passed"))} / '
                   f'{_e(sub.get("total"))}{mark}</h3><pre>{_e(sub.get("code"))}</pre><ul>{cases}</ul>')
    return "".join(out)


def report_html(report: dict, frames: dict[str, bytes]) -> str:
    body = [f'<h1>面试报告</h1><p class="muted">{_e(report.get("position_name"))} {_e(report.get("company_name"))}</p>',
            f'<p>综合得分 <span class="big">{_e(report.get("overall_score"))}</span> / 10</p>',
            f'<h2>总体评价</h2><p>{_e(report.get("summary"))}</p>']
    for section in report.get("sections") or []:
        body.append(f'<h2>{_e(section.get("title") or section.get("phase"))}</h2>')
        if section.get("type") == "code":
            body.append(_code(report.get("code") or section.get("summary") or {}, report.get("code_cites") or []))
        else:
            body.extend(_qa_item(q) for q in section.get("items") or [])
    body.append("<h2>作弊检测</h2>")
    cheats = report.get("cheat_events") or []
    if not cheats:
        body.append("<p>未发现异常。</p>")
    for c in cheats:
        img = ""
        if c.get("frame_id") in frames:
            img = f'<img alt="frame" src="data:image/jpeg;base64,{base64.b64encode(frames[c["frame_id"]]).decode()}">'
        body.append(f'<div class="cheat"><p>{_e(c.get("kind_zh") or c.get("kind"))}：{_e(c.get("started_at"))} – '
                    f'{_e(c.get("ended_at"))}</p>{img}</div>')
    style = ("body{font-family:'Noto Sans CJK SC','WenQuanYi Zen Hei',sans-serif;margin:24px;font-size:12px}"
             ".muted{color:#666}.big{font-size:28px;font-weight:bold}.score{float:right}"
             ".lines li.cited{background:#fff6d5}.t{color:#888;font-size:10px}pre{background:#f4f4f4;padding:6px;"
             "white-space:pre-wrap}.cheat img{max-width:320px}")
    return f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>面试报告</title><style>{style}</style></head>' \
           f'<body>{"".join(body)}</body></html>'


async def report_pdf(report: dict, frames: dict[str, bytes], settings: dict) -> bytes:
    chromium = str(settings.get("chromium") or "chromium")
    binary = shutil.which(chromium) or (chromium if Path(chromium).exists() else None)
    if binary is None:
        raise PdfError(f"找不到 Chromium（{chromium}）")
    timeout = float(settings.get("pdf_timeout_seconds", 60.0))
    report = json.loads(dumps(report))                 # times as ISO strings
    with tempfile.TemporaryDirectory(prefix="mianshi-pdf-") as tmp:
        page, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(report_html(report, frames), encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", f"--user-data-dir={Path(tmp) / 'profile'}",
            "--no-pdf-header-footer", f"--print-to-pdf={out}", page.as_uri(),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise PdfError(f"Chromium 超过 {timeout:g} 秒未完成") from None
        if proc.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            raise PdfError(f"Chromium 退出码 {proc.returncode}：{err.decode(errors='replace')[-300:]}")
        return out.read_bytes()
