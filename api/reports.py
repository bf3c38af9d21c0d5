"""``GET /interviews/<interview_id>/report/``: the report written when the interview ended
(``report.json`` and ``report.pdf``: the same, exported as a file).

* 200 ``{"success": true, "status": "ready", "overall_score", "summary", "questions": [...], "code",
  "cheat_events", "scorer", "degraded", ...}`` once written (``degraded`` = written by a fallback
  scorer such as ``heuristic``; a better one may still replace it);
* 202 ``{"success": true, "status": "pending" | "generating" | "retrying", "attempts", "error",
  "next_retry_at", "msg"}`` while it is being written (``Retry-After`` says when to ask again);
  a report that is not being worked on (e.g. its task was lost) is scheduled again by this request;
* 409 ``{"success": false, "msg": "面试尚未结束…", "status": <interview status>}`` for an interview
  that has not ended: there is nothing to write a report about yet;
* 503 ``{"success": false, "status": "failed", "msg": …}`` once every attempt failed;
* 404 for an unknown interview or another user's.

Every utterance of the evidence whose recording is kept carries ``recording_url`` and every cheat
episode whose frame is kept ``frame_url`` (api/media.py serves them to the owner only).
"""
from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, raw
from sanic_ext import openapi

from api.auth import authenticated
from api.errors import ApiError, json_response
from api.interviews import NOT_FOUND
from core.report import UNFINISHED_REPORT_STATES

bp = Blueprint("reports")

STATE_TEXT = {"pending": "面试报告排队中，请稍后再试", "generating": "面试报告生成中，请稍后再试",
              "retrying": "面试报告生成暂时失败，稍后会自动重试"}


@bp.get("/interviews/<interview_id>/report/")
@openapi.summary("面试报告：每题得分与点评、总分与总结；生成中返回 202")
@openapi.secured("token")
@authenticated
async def get_report(request, interview_id: str):
    found = await ready_report(request, interview_id)
    return found if isinstance(found, HTTPResponse) else json_response(found)


@bp.get("/interviews/<interview_id>/report.json", name="export_report_json")
@bp.get("/interviews/<interview_id>/report.pdf", name="export_report_pdf")
@openapi.summary("导出面试报告（report.json：JSON 文件；report.pdf：Chromium 打印的 PDF）；未生成时同 /report/")
@openapi.secured("token")
@authenticated
async def export_report(request, interview_id: str):
    found = await ready_report(request, interview_id)
    if isinstance(found, HTTPResponse):
        return found
    as_pdf = request.path.endswith(".pdf")
    headers = {"Content-Disposition": f'attachment; filename="report-{found["interview_id"]}.{"pdf" if as_pdf else "json"}"'}
    if not as_pdf:
        return json_response(found, headers=headers)
    from api.report_export import PdfError, report_pdf
    frames = {}
    for event in found.get("cheat_events") or []:
        if event.get("frame_url"):
            got = await request.app.ctx.store.media.get(request.ctx.user_id, found["interview_id"],
                                                       event["frame_id"], "frame")
            if got is not None:
                frames[event["frame_id"]] = got[1]
    try:
        pdf = await report_pdf(found, frames, request.app.ctx.config.get("report", {}))
    except PdfError as exc:
        raise ApiError(503, f"PDF 导出暂不可用：{exc}") from None
    return raw(pdf, content_type="application/pdf", headers=headers)


async def with_media_urls(store, interview_id: str, report: dict) -> dict:
    """The report with ``recording_url`` on every utterance whose recording is kept and ``frame_url``
    on every cheat episode whose frame is kept (the owner's routes, api/media.py)."""
    kept: dict[str, set] = {}
    for doc in await store.media.list_interview(interview_id):
        kept.setdefault((doc.get("metadata") or {}).get("kind"), set()).add(doc["_id"])
    recordings, frames = kept.get("recording", set()), kept.get("frame", set())

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "utterance" and node.get("id") in recordings:
                node["recording_url"] = f"/interviews/{interview_id}/recordings/{node['id']}/"
            if node.get("frame_id") in frames:
                node["frame_url"] = f"/interviews/{interview_id}/frames/{node['frame_id']}/"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(report)
    return report


async def ready_report(request, interview_id: str):
    """The body of a ready report (a dict), or the response to give instead (not yours: 404, not
    ended: 409, being written: 202, failed: 503)."""
    store = request.app.ctx.store
    interview = await store.load_interview(request.ctx.user_id, interview_id)
    if interview is None:
        raise ApiError(404, NOT_FOUND, "interview_id")
    if interview.get("status") != "finished":
        return json_response({"success": False, "msg": "面试尚未结束，结束后才会生成报告",
                              "field": "interview_id", "status": interview.get("status")}, status=409)
    status = interview.get("report_status") or "pending"
    report = interview.get("report")
    reports = getattr(getattr(request.app.ctx, "engine", None), "reports", None)
    if status == "ready" and isinstance(report, dict):
        body = {"success": True, "status": "ready", "interview_id": interview["id"],
                "position_name": interview.get("position_name"), "company_name": interview.get("company_name"),
                "position_type": interview.get("position_type"), **report,
                "scorer": interview.get("report_scorer") or report.get("scorer"),
                "degraded": bool(interview.get("report_degraded")),
                "generated_at": interview.get("report_ready_at")}
        return await with_media_urls(store, interview["id"], body)
    if status == "failed":
        return json_response({"success": False, "status": "failed", "attempts": interview.get("report_attempts"),
                              "msg": "面试报告生成失败：" + str(interview.get("report_error") or "未知原因")},
                             status=503)
    if reports is not None and not reports.is_running(interview["id"]):
        reports.schedule(interview["id"])
    status = status if status in UNFINISHED_REPORT_STATES else "pending"
    body = {"success": True, "status": status, "interview_id": interview["id"],
            "attempts": int(interview.get("report_attempts") or 0), "msg": STATE_TEXT[status]}
    if status == "retrying":
        body["error"] = interview.get("report_error")
        body["next_retry_at"] = interview.get("report_next_retry_at")
    return json_response(body, status=202, headers={"Retry-After": "5" if status != "retrying" else "30"})
