"""Resumes: create, read, update, delete, and the guide's ``GET /users/resume/list/``."""
from __future__ import annotations

from sanic import Blueprint
from sanic_ext import openapi

from api.auth import authenticated
from api.errors import ApiError, bad_request, json_body, json_response
from api.validation import reject_unknown, require_list, require_str
from storage.resumes import CONTENT_FIELDS, to_public, to_summary

bp = Blueprint("resumes")

READ_ONLY = {"resume_id", "completed", "created_at", "updated_at", "success"}
RESUME_SCHEMA = {"type": "object", "properties": {
    "resume_name": {"type": "string"}, "expected_position": {"type": "string"}, "name": {"type": "string"},
    "education": {"type": "array"}, "work_experience": {"type": "array"}, "projects": {"type": "array"},
    "skills": {"type": "array", "items": {"type": "string"}}, "self_evaluation": {"type": "string"},
    "upload_id": {"type": "string", "description": "POST /users/resume/ only: the upload_id of an import"}}}
NOT_FOUND = "简历不存在"


def parse_resume(body: dict, *, partial: bool) -> dict:
    reject_unknown(body, set(CONTENT_FIELDS), READ_ONLY)
    out: dict = {}
    value = require_str(body, "resume_name", "简历名称", max_len=100, required=not partial)
    if value is not None:
        if not value:
            raise bad_request("resume_name（简历名称）不能为空", "resume_name")
        out["resume_name"] = value
    for field, label, max_len in (("expected_position", "期望职位", 100), ("name", "姓名", 100),
                                  ("self_evaluation", "自我评价", 5000)):
        value = require_str(body, field, label, max_len=max_len, required=False)
        if value is not None:
            out[field] = value
    for field, label, types in (("education", "教育经历", (dict, str)), ("work_experience", "工作经历", (dict, str)),
                                ("projects", "项目经历", (dict, str)), ("skills", "技能", (str,))):
        value = require_list(body, field, label, item_types=types)
        if value is not None:
            out[field] = [v.strip() for v in value] if types == (str,) else value
    if partial and not out:
        raise bad_request("请求体中没有可更新的简历字段")
    return out


def resume_id_of(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(404, NOT_FOUND, "resume_id") from None
    if value <= 0 or value >= 2 ** 63:
        raise ApiError(404, NOT_FOUND, "resume_id")
    return value


@bp.get("/users/resume/list/")
@openapi.summary("简历列表（按更新时间倒序）")
@openapi.secured("token")
@authenticated
async def list_resumes(request):
    docs = await request.app.ctx.store.resumes.list(request.ctx.user_id)
    resumes = [to_summary(d) for d in docs]
    return json_response({"success": True, "resumes": resumes, "total": len(resumes)})


@bp.post("/users/resume/")
@openapi.summary("创建简历")
@openapi.body({"application/json": RESUME_SCHEMA})
@openapi.secured("token")
@authenticated
async def create_resume(request):
    body = json_body(request)
    upload_id = body.pop("upload_id", None)     # the file of POST /users/resume/import/, kept with it
    fields = parse_resume(body, partial=False)
    store = request.app.ctx.store
    if upload_id is not None:
        if not isinstance(upload_id, str) or await store.resumes.files.pending(request.ctx.user_id, upload_id) is None:
            raise bad_request("upload_id（导入的简历文件）不存在或已过期，请重新导入", "upload_id")
    doc = await store.resumes.create(request.ctx.user_id, fields)
    if upload_id is not None:
        doc = await store.resumes.attach_file(request.ctx.user_id, doc["resume_id"], upload_id) or doc
    return json_response({"success": True, "resume_id": doc["resume_id"], "resume": to_public(doc)}, status=201)


@bp.get("/users/resume/<resume_id>/")
@openapi.summary("读取简历")
@openapi.secured("token")
@authenticated
async def get_resume(request, resume_id: str):
    doc = await request.app.ctx.store.resumes.get(request.ctx.user_id, resume_id_of(resume_id))
    if doc is None:
        raise ApiError(404, NOT_FOUND, "resume_id")
    return json_response({"success": True, "resume": to_public(doc)})


@bp.put("/users/resume/<resume_id>/")
@openapi.summary("修改简历（只改请求体中给出的字段）")
@openapi.body({"application/json": RESUME_SCHEMA})
@openapi.secured("token")
@authenticated
async def update_resume(request, resume_id: str):
    rid = resume_id_of(resume_id)
    fields = parse_resume(json_body(request), partial=True)
    doc = await request.app.ctx.store.resumes.update(request.ctx.user_id, rid, fields)
    if doc is None:
        raise ApiError(404, NOT_FOUND, "resume_id")
    return json_response({"success": True, "resume": to_public(doc)})


@bp.delete("/users/resume/<resume_id>/")
@openapi.summary("删除简历")
@openapi.secured("token")
@authenticated
async def delete_resume(request, resume_id: str):
    rid = resume_id_of(resume_id)
    if not await request.app.ctx.store.resumes.delete(request.ctx.user_id, rid):
        raise ApiError(404, NOT_FOUND, "resume_id")
    return json_response({"success": True, "resume_id": rid, "msg": "简历已删除"})
