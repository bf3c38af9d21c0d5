"""Resume import from a file and job-description parsing (the parsing itself lives in docimport/).

    POST /users/resume/import/[?save=true]   multipart, field ``file``: PDF, DOCX, text or Markdown
    GET  /users/resume/<id>/file/            the original file of an imported resume (owner only)
    POST /interviews/jd/parse/               {"text": ...} or multipart ``file`` / ``text``

Extraction runs in a separate, resource-limited process (docimport/extract.py), at most
``[resume_import] max_concurrent`` at once; the event loop only waits for it."""
from __future__ import annotations

import asyncio
import json
import logging
import re
from urllib.parse import quote

from sanic import Blueprint
from sanic.response import raw
from sanic_ext import openapi

from api.auth import authenticated
from api.errors import ApiError, bad_request, json_response
from api.resumes import parse_resume, resume_id_of
from docimport.errors import ImportFailure
from docimport.extract import Limits, extract
from docimport.jd import parse_jd_text
from docimport.resume_llm import parse_resume as parse_resume_file
from storage.resumes import to_public

log = logging.getLogger("mianshi.api.import")
bp = Blueprint("resume_import")

CONTENT_TYPES = {"pdf": "application/pdf", "text": "text/plain; charset=utf-8",
                 "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
MAX_JD_CHARS = 20_000
FILE_BODY = {"multipart/form-data": {"type": "object", "required": ["file"],
                                     "properties": {"file": {"type": "string", "format": "binary"}}}}
JD_BODY = {"application/json": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
           "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"},
                                                                    "text": {"type": "string"}}}}


def settings(app) -> dict:
    return dict(app.ctx.config.get("resume_import", {}) or {})


def limits(app) -> Limits:
    cached = getattr(app.ctx, "import_limits", None)
    if cached is None:
        cached = app.ctx.import_limits = Limits.from_settings(settings(app))
    return cached


def _semaphore(app) -> asyncio.Semaphore:
    sem = getattr(app.ctx, "import_semaphore", None)
    if sem is None:
        sem = app.ctx.import_semaphore = asyncio.Semaphore(int(settings(app).get("max_concurrent", 2)))
    return sem


def llm_client(app):
    """The LLM client of the running ``llm`` question source (plugins/llm.py), or one built from
    ``[plugins.llm]`` when that source is not in use; None when ``[resume_import] llm = false``."""
    if not settings(app).get("llm", True):
        return None
    engine = getattr(app.ctx, "engine", None)
    for source in getattr(engine, "question_sources", None) or []:
        if getattr(source, "name", "") == "llm" and getattr(source, "client", None) is not None:
            return source.client
    client = getattr(app.ctx, "import_llm_client", None)
    if client is None:
        from core.config import data_dir
        from core.interfaces import PluginContext
        from plugins.llm import shared_client
        try:
            client = shared_client(PluginContext(name="llm", settings=app.ctx.config.get("plugins", {}).get("llm", {}),
                                                 config=app.ctx.config, data_dir=data_dir(app.ctx.config),
                                                 clock=app.ctx.clock))
        except Exception as exc:          # a bad [plugins.llm] table: the rules still work
            log.warning("resume import: no LLM client (%s)", exc)
            client = False
        app.ctx.import_llm_client = client
    return client or None


@bp.after_server_stop
async def _close_client(app, _loop=None) -> None:
    client = getattr(app.ctx, "import_llm_client", None)
    if client:
        await client.aclose()


MULTIPART_OVERHEAD = 64 * 1024


async def read_body(request) -> None:
    """Upload routes are streamed (``stream=True``), so the app-wide REQUEST_MAX_SIZE does not apply:
    read the body here, up to the import's file limit plus room for the multipart framing, and
    refuse a larger one from its Content-Length before reading anything."""
    cap = limits(request.app).max_bytes + MULTIPART_OVERHEAD
    too_large = ApiError(413, f"文件过大：最大 {limits(request.app).max_bytes / 1024 / 1024:g} MB", "file")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_large
    chunks, size = [], 0
    while True:
        chunk = await request.stream.read()
        if chunk is None:
            break
        size += len(chunk)
        if size > cap:
            raise too_large
        chunks.append(chunk)
    request.body = b"".join(chunks)


def _upload(request, *, required: bool = True):
    """The uploaded ``file`` part: (bytes, file name) or a 400 that says what is wrong."""
    ctype = (request.content_type or "").lower()
    if not ctype.startswith("multipart/form-data"):
        if not required:
            return None
        raise bad_request("请用 multipart/form-data 上传文件，字段名为 file", "file")
    try:
        files = request.files
    except Exception:
        raise bad_request("上传的表单格式不正确", "file") from None
    part = files.get("file") if files else None
    if part is None:
        if not required:
            return None
        raise bad_request("缺少上传文件：字段名应为 file", "file")
    name = re.sub(r"[\x00-\x1f\x7f]", "", (part.name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()[:200]
    return bytes(part.body or b""), name


async def _extract(request, data: bytes):
    try:
        async with _semaphore(request.app):
            return await extract(data, limits(request.app))
    except ImportFailure as exc:
        raise ApiError(exc.status, exc.msg, "file") from None


def _flag(request, name: str) -> bool:
    value = request.args.get(name)
    if value is None or value.lower() in ("", "0", "false", "no"):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    raise bad_request(f"{name} 只能是 true 或 false", name)


@bp.post("/users/resume/import/", stream=True)
@openapi.summary("从 PDF / Word / 文本文件导入简历（返回草稿；?save=true 直接保存）")
@openapi.body(FILE_BODY)
@openapi.secured("token")
@authenticated
async def import_resume(request):
    save = _flag(request, "save")
    await read_body(request)
    data, file_name = _upload(request)
    extracted = await _extract(request, data)
    draft, source, warnings = await parse_resume_file(
        extracted.text, llm_client(request.app), file_name=file_name,
        timeout=float(settings(request.app).get("llm_timeout_seconds", 90.0)),
        max_tokens=int(settings(request.app).get("llm_max_tokens", 3000)))
    warnings = extracted.warnings + warnings
    fields = parse_resume(draft, partial=False)        # the same checks as POST /users/resume/
    store = request.app.ctx.store
    user_id = request.ctx.user_id
    content_type = CONTENT_TYPES[extracted.kind]
    if save:
        doc = await store.resumes.create(user_id, fields)
        try:
            file_id = await store.resumes.files.add(user_id, data=data, filename=file_name,
                                                    content_type=content_type, kind=extracted.kind)
            doc = await store.resumes.attach_file(user_id, doc["resume_id"], file_id) or doc
        except BaseException:
            await store.resumes.delete(user_id, doc["resume_id"])      # nothing half-saved
            raise
        return json_response({"success": True, "resume_id": doc["resume_id"], "resume": to_public(doc),
                              "source": source, "warnings": warnings}, status=201)
    upload_id = await store.resumes.files.add(user_id, data=data, filename=file_name,
                                              content_type=content_type, kind=extracted.kind)
    return json_response({"success": True, "resume": {k: fields.get(k, draft.get(k)) for k in draft},
                          "source": source, "warnings": warnings, "upload_id": upload_id,
                          "file": {"filename": file_name, "kind": extracted.kind, "size": len(data),
                                   "pages": extracted.pages}})


@bp.get("/users/resume/<resume_id>/file/")
@openapi.summary("下载导入简历时上传的原始文件（仅本人）")
@openapi.secured("token")
@authenticated
async def download_original(request, resume_id: str):
    doc = await request.app.ctx.store.resumes.original_file(request.ctx.user_id, resume_id_of(resume_id))
    if doc is None:
        raise ApiError(404, "该简历没有原始文件", "resume_id")
    name = doc.get("filename") or f"resume-{resume_id}"
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "resume"
    return raw(doc["data"], content_type=doc.get("content_type") or "application/octet-stream",
               headers={"Content-Disposition": f"attachment; filename=\"{ascii_name}\"; "
                                               f"filename*=UTF-8''{quote(name)}",
                        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


@bp.post("/interviews/jd/parse/", stream=True)
@openapi.summary("解析职位描述：职位名称、职位描述、任职要求、建议的职位类型")
@openapi.body(JD_BODY)
@openapi.secured("token")
@authenticated
async def parse_job_description(request):
    await read_body(request)
    text = None
    upload = _upload(request, required=False)
    if upload is not None:
        text = (await _extract(request, upload[0])).text
    elif (request.content_type or "").lower().startswith(("multipart/form-data",
                                                         "application/x-www-form-urlencoded")):
        text = request.form.get("text") if request.form else None
    else:
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise bad_request("请求体不是合法的 JSON", None) from None
        if not isinstance(body, dict):
            raise bad_request("请求体必须是一个 JSON 对象，例如 {\"text\": \"职位描述…\"}")
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            raise bad_request("text（职位描述）必须是字符串", "text")
    if not text or not text.strip():
        raise bad_request("职位描述不能为空：请粘贴职位描述文字或上传文件", "text")
    if len(text) > MAX_JD_CHARS:
        raise bad_request(f"职位描述过长：最多 {MAX_JD_CHARS} 个字符", "text")
    fields, source, warnings = await parse_jd_text(
        text, llm_client(request.app), timeout=float(settings(request.app).get("llm_timeout_seconds", 90.0)))
    return json_response({"success": True, **fields, "source": source, "warnings": warnings})
