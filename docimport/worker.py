"""Text extraction of one untrusted file, run as its own process by ``docimport.extract``.

    python -I docimport/worker.py <pdf|docx> <memory_mb> <cpu_seconds> <max_pages> <max_chars> <max_unzipped_mb>

The file comes on stdin; one JSON object goes to stdout: ``{"ok": true, "text": ..., "pages": n,
"images": n}`` or ``{"ok": false, "code": "<docimport.errors code>"}``. Before reading anything the
process limits itself (address space, CPU seconds, no files written, no core dumps), so a file
built to exhaust memory or CPU only ever kills this process; the parent also enforces a wall clock.
The module imports nothing of the project (it runs with ``-I``)."""
from __future__ import annotations

import io
import json
import resource
import sys
import zipfile


def limit(memory_mb: int, cpu_seconds: int) -> None:
    mem = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# --- PDF ------------------------------------------------------------------------------------------
def pdf_text(data: bytes, max_pages: int, max_chars: int) -> dict:
    import logging

    from pypdf import PdfReader
    from pypdf import PasswordType

    logging.disable(logging.CRITICAL)          # pypdf warns about every oddity of a file
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except MemoryError:
        raise
    except Exception as exc:
        if "password" in str(exc).lower() or "encrypt" in str(exc).lower():
            raise Refused("encrypted") from None
        raise Refused("bad_pdf") from None
    if reader.is_encrypted:
        # An empty user password (only an owner password set) can be opened; anything else cannot.
        try:
            if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                raise Refused("encrypted")
        except Refused:
            raise
        except Exception:
            raise Refused("encrypted") from None
    try:
        pages = reader.pages
        count = len(pages)
    except MemoryError:
        raise
    except Exception:
        raise Refused("bad_pdf") from None
    if count == 0:
        raise Refused("bad_pdf")
    if count > max_pages:
        return {"ok": False, "code": "too_many_pages", "pages": count}
    texts, images, size = [], 0, 0
    for page in pages:
        try:
            text = page.extract_text() or ""
        except MemoryError:
            raise
        except Exception:
            text = ""
        try:
            resources = page.get("/Resources") or {}
            xobjects = resources.get("/XObject") or {}
            images += sum(1 for x in xobjects.values() if x.get_object().get("/Subtype") == "/Image")
        except Exception:
            pass
        texts.append(text)
        size += len(text)
        if size > max_chars:
            break
    return {"ok": True, "text": "\n".join(texts)[:max_chars], "pages": count, "images": images}


# --- DOCX -----------------------------------------------------------------------------------------
def check_zip(data: bytes, max_unzipped: int) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except Exception:
        raise Refused("bad_docx") from None
    if len(infos) > 2000:
        raise Refused("docx_bomb")
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1_000_000 and ratio > 200:
            raise Refused("docx_bomb")
    if total > max_unzipped:
        raise Refused("docx_bomb")
    if "word/document.xml" not in {i.filename for i in infos}:
        raise Refused("bad_docx")


def _cell_lines(cell) -> list[str]:
    lines = []
    for block in cell.iter_inner_content():
        lines += _block_lines(block)
    return lines


def _block_lines(block) -> list[str]:
    from docx.table import Table

    if isinstance(block, Table):
        lines = []
        for row in block.rows:
            seen, cells = set(), []
            for cell in row.cells:                      # merged cells repeat: keep each once
                if id(cell._tc) in seen:
                    continue
                seen.add(id(cell._tc))
                cells.append(_cell_lines(cell))
            if all(len(c) <= 1 for c in cells):
                joined = " | ".join(c[0] for c in cells if c and c[0].strip())
                if joined:
                    lines.append(joined)
            else:
                for c in cells:
                    lines += c
        return lines
    text = block.text.strip()
    return [text] if text else []


def docx_text(data: bytes, max_unzipped: int, max_chars: int) -> dict:
    check_zip(data, max_unzipped)
    try:
        import docx

        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        size = 0
        for block in document.iter_inner_content():
            for line in _block_lines(block):
                lines.append(line)
                size += len(line) + 1
            if size > max_chars:
                break
    except MemoryError:
        raise
    except Refused:
        raise
    except Exception:
        raise Refused("bad_docx") from None
    return {"ok": True, "text": "\n".join(lines)[:max_chars], "pages": 0, "images": 0}


def main(argv: list[str]) -> int:
    kind = argv[1]
    memory_mb, cpu_seconds, max_pages, max_chars, max_unzipped_mb = (int(v) for v in argv[2:7])
    limit(memory_mb, cpu_seconds)
    data = sys.stdin.buffer.read()
    try:
        if kind == "pdf":
            result = pdf_text(data, max_pages, max_chars)
        elif kind == "docx":
            result = docx_text(data, max_unzipped_mb * 1024 * 1024, max_chars)
        else:
            result = {"ok": False, "code": "unsupported"}
    except Refused as exc:
        result = {"ok": False, "code": exc.code}
    except MemoryError:
        result = {"ok": False, "code": "memory"}
    except RecursionError:
        result = {"ok": False, "code": "bad_pdf" if kind == "pdf" else "bad_docx"}
    sys.stdout.write(json.dumps(result, ensure_ascii=False))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
