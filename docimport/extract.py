"""Sniff a file's type by its bytes and extract its text, off the event loop and within limits.

PDF and DOCX are parsed by ``docimport/worker.py`` in a child process that limits its own address
space and CPU time before it reads the file; the parent kills it after ``wall_seconds``. Plain text
(UTF-8, UTF-16 with BOM, or GB18030) is decoded here: it costs nothing to parse."""
from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from docimport.errors import ImportFailure

WORKER = Path(__file__).resolve().parent / "worker.py"


@dataclass
class Limits:
    max_bytes: int = 5 * 1024 * 1024        # the upload itself
    max_pages: int = 10                     # PDF pages
    max_chars: int = 60_000                 # text kept
    memory_mb: int = 512                    # address space of the extraction process
    cpu_seconds: int = 10                   # CPU time of the extraction process
    wall_seconds: float = 20.0              # wall clock, then the process is killed
    max_unzipped_mb: int = 40               # DOCX: all parts decompressed

    @classmethod
    def from_settings(cls, raw: dict) -> "Limits":
        out = cls()
        if "max_file_mb" in raw:
            out.max_bytes = int(float(raw["max_file_mb"]) * 1024 * 1024)
        for key in ("max_pages", "max_chars", "memory_mb", "cpu_seconds", "max_unzipped_mb"):
            if key in raw:
                setattr(out, key, int(raw[key]))
        if "wall_seconds" in raw:
            out.wall_seconds = float(raw["wall_seconds"])
        return out


@dataclass
class Extracted:
    kind: str                   # pdf | docx | text
    text: str
    pages: int = 0
    warnings: list[str] = field(default_factory=list)


def sniff(data: bytes) -> str:
    """``pdf``, ``docx`` or ``text`` from the content (never the file name), else ImportFailure."""
    if not data or not data.strip():
        raise ImportFailure("empty")
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except (zipfile.BadZipFile, ValueError, OSError, EOFError):
            raise ImportFailure("bad_docx") from None
        if "word/document.xml" in names:
            return "docx"
        if "[Content_Types].xml" in names and any(n.startswith("word/") for n in names):
            return "docx"               # a Word package without its document part: malformed
        raise ImportFailure("unsupported")
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise ImportFailure("legacy_doc")
    if data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")) or data[8:12] == b"WEBP":
        raise ImportFailure("image")
    return "text"


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode_text(data: bytes) -> str:
    """Plain text or Markdown: UTF-8 (with or without BOM), UTF-16 with a BOM, else GB18030 when it
    reads as Chinese. Binary data is refused as an unsupported type."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ImportFailure("bad_text") from None
    else:
        if b"\x00" in data:
            raise ImportFailure("unsupported")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError:
                raise ImportFailure("unsupported") from None
            if len(re.findall(r"[\u4e00-\u9fff]", text)) < max(1, len(text) // 20):
                raise ImportFailure("bad_text")
    if len(_CONTROL.findall(text)) > max(8, len(text) // 100):
        raise ImportFailure("unsupported")
    return _CONTROL.sub("", text)


async def run_worker(kind: str, data: bytes, limits: Limits) -> dict:
    """Run docimport/worker.py on ``data``; its JSON answer, or ImportFailure (timeout, memory)."""
    args = [sys.executable, "-I", "-B", str(WORKER), kind, str(limits.memory_mb), str(limits.cpu_seconds),
            str(limits.max_pages), str(limits.max_chars), str(limits.max_unzipped_mb)]
    proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL,
                                                start_new_session=True)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(data), limits.wall_seconds)
    except asyncio.TimeoutError:
        _kill(proc)
        await proc.wait()
        raise ImportFailure("timeout", 422) from None
    except BaseException:
        _kill(proc)
        await proc.wait()
        raise
    rc = proc.returncode
    if rc == -signal.SIGXCPU or rc == -signal.SIGKILL:
        raise ImportFailure("timeout", 422)
    try:
        result = json.loads(out.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        # killed by the memory limit inside a C extension, or crashed: never the server
        raise ImportFailure("memory" if rc not in (0, None) else "failed", 422) from None
    return result


def _kill(proc) -> None:
    if proc.returncode is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass


async def extract(data: bytes, limits: Limits) -> Extracted:
    if len(data) > limits.max_bytes:
        raise ImportFailure("too_large", 413, max_mb=_mb(limits.max_bytes))
    kind = sniff(data)
    if kind == "text":
        text = decode_text(data)[: limits.max_chars]
        if not text.strip():
            raise ImportFailure("empty")
        return Extracted("text", text)
    result = await run_worker(kind, data, limits)
    if not result.get("ok"):
        code = result.get("code", "failed")
        status = 422 if code in ("memory", "timeout", "no_text") else 400
        raise ImportFailure(code, status, max_pages=limits.max_pages)
    text = result.get("text") or ""
    meaningful = len(re.findall(r"[\w\u4e00-\u9fff]", text))
    if kind == "pdf" and meaningful < 10:
        raise ImportFailure("no_text", 422)
    if meaningful == 0:
        raise ImportFailure("no_content", 422)
    warnings = []
    if kind == "pdf" and result.get("images") and meaningful < 200:
        warnings.append("PDF 中文字很少而图片较多，部分内容可能在图片里，未能识别")
    return Extracted(kind, text, int(result.get("pages") or 0), warnings)


def _mb(n: int) -> str:
    value = n / 1024 / 1024
    return f"{value:g}" if value == int(value) else f"{value:.1f}"
