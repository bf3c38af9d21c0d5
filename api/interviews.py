"""``POST /interviews/create/`` (exactly the guide), ``GET /interviews/``, ``GET /interviews/<id>/``."""
from __future__ import annotations

from sanic import Blueprint
from sanic_ext import openapi

from api.auth import authenticated
from api.errors import ApiError, bad_request, json_body, json_response
from api.validation import parse_time, reject_unknown, require_str
from core.events import POSITION_TYPE_LABELS, POSITION_TYPES
from storage.common import iso, utcnow
from storage.interviews import to_summary

bp = Blueprint("interviews")

CREATE_FIELDS = {"position_name", "position_type", "company_name", "position_description",
                 "position_requirements", "interview_time"}
CREATE_SCHEMA = {"type": "object", "required": ["position_name", "position_type", "position_description"],
                 "properties": {"position_name": {"type": "string"},
                                "position_type": {"type": "string", "enum": list(POSITION_TYPES)},
                                "company_name": {"type": "string"}, "position_description": {"type": "string"},
                                "position_requirements": {"type": "string"},
                                "interview_time": {"type": "string", "format": "date-time"}}}
CREATED_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "string"}, "interview_time": {"type": "string"}, "position_name": {"type": "string"},
    "company_name": {"type": "string"}, "position_type": {"type": "string"}, "msg": {"type": "string"}}}
NOT_FOUND = "面试不存在"


def parse_create(body: dict) -> dict:
    reject_unknown(body, CREATE_FIELDS)
    fields = {"position_name": require_str(body, "position_name", "职位名称", max_len=200)}
    position_type = body.get("position_type")
    if position_type is None:
        raise bad_request("缺少必填字段 position_type（职位类型）", "position_type")
    if position_type not in POSITION_TYPES:
        raise bad_request("position_type（职位类型）必须是以下之一：backend（后端开发）、frontend（前端开发）、"
                          "pm（产品经理）、qa（测试）、algo（算法）", "position_type")
    fields["position_type"] = position_type
    fields["company_name"] = require_str(body, "company_name", "公司名称", max_len=200, required=False)
    fields["position_description"] = require_str(body, "position_description", "职位描述", max_len=5000)
    fields["position_requirements"] = require_str(body, "position_requirements", "职位要求", max_len=5000,
                                                  required=False)
    fields["interview_time"] = parse_time(body, "interview_time", "面试时间") or utcnow()
    return fields


@bp.post("/interviews/create/")
@openapi.summary("创建面试")
@openapi.body({"application/json": CREATE_SCHEMA})
@openapi.response(201, {"application/json": CREATED_SCHEMA}, "面试创建成功")
@openapi.secured("token")
@authenticated
async def create_interview(request):
    fields = parse_create(json_body(request))
    doc = await request.app.ctx.store.interviews.create(request.ctx.user_id, fields)
    return json_response({
        "id": doc["_id"],
        "interview_time": iso(doc["interview_time"]),
        "position_name": doc["position_name"],
        "company_name": doc["company_name"],
        "position_type": doc["position_type"],
        "msg": "面试创建成功",
    }, status=201)


def _int_arg(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} 必须是整数", name) from None
    if not low <= value <= high:
        raise bad_request(f"{name} 必须在 {low} 到 {high} 之间", name)
    return value


@bp.get("/interviews/")
@openapi.summary("我的面试列表（最新在前）")
@openapi.secured("token")
@authenticated
async def list_interviews(request):
    limit = _int_arg(request, "limit", 100, 1, 500)
    offset = _int_arg(request, "offset", 0, 0, 10 ** 9)
    docs, total = await request.app.ctx.store.interviews.list(request.ctx.user_id, limit=limit, offset=offset)
    return json_response({"success": True, "interviews": [to_summary(d) for d in docs], "total": total})


@bp.get("/interviews/options/")
@openapi.summary("新建面试和面试页所需的选项：职位类型、面试阶段、作弊类型（名称与中文）")
async def interview_options(request):
    """What the page shows by name, as data: position types, this server's phases (title and the
    input they take) and the cheat kinds its detectors declare."""
    engine = request.app.ctx.engine
    return json_response({
        "success": True,
        "position_types": [{"value": k, "label": v} for k, v in POSITION_TYPE_LABELS.items()],
        "phases": [*engine.phase_catalog, {"name": "end", "title": "面试结束", "input": "none"}],
        "cheat_kinds": [{"kind": k.name, "text": k.text, "label": k.label} for k in engine.cheat_kinds.values()],
        "asr_corrections": engine.corrections is not None,     # create_stream may ask for asr_correction
    })


@bp.get("/interviews/<interview_id>/")
@openapi.summary("面试详情：阶段、状态、已问问题、完整转写、作弊事件")
@openapi.secured("token")
@authenticated
async def get_interview(request, interview_id: str):
    store = request.app.ctx.store
    interview = await store.load_interview(request.ctx.user_id, interview_id)
    if interview is None:
        raise ApiError(404, NOT_FOUND, "interview_id")
    interview.pop("user_id", None)
    interview.pop("transcript_count", None)
    interview["transcript"] = await store.load_transcript(interview_id)
    return json_response({"success": True, "interview": interview})
