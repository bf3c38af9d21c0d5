"""Files for the import tests, built at test time: good ones (tests/resume_samples.py) and bad ones
(an encrypted PDF, a scanned PDF without a text layer, a malformed DOCX, a DOCX zip bomb, a PDF built
to be slow to parse, ...)."""
from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path


def minimal_pdf(content: bytes, pages: int = 1) -> bytes:
    """A hand-built PDF: ``pages`` pages sharing one FlateDecode content stream, Helvetica."""
    stream = zlib.compress(content, 9)
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages)).encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 800] /Resources << /Font << /F1 4 0 R >> >> "
             b"/Contents 3 0 R >>"] * pages
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def text_pdf(text: str = "Resume of Zhang Wei, backend engineer", pages: int = 1) -> bytes:
    return minimal_pdf(b"BT /F1 12 Tf 50 700 Td (" + text.encode("latin-1") + b") Tj ET", pages)


def slow_pdf(operators: int = 3_000_000) -> bytes:
    """~80 KB on disk, millions of text operators once inflated: tens of CPU seconds to extract."""
    return minimal_pdf(b"BT /F1 12 Tf 10 10 Td " + b"(a) Tj 1 0 Td " * operators + b"ET")


def encrypted_pdf(good_pdf: bytes, password: str = "open-sesame") -> bytes:
    from pypdf import PdfReader, PdfWriter
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(good_pdf)))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def scanned_pdf() -> bytes:
    """A page that is only a picture of text (what a scanner produces): no text layer."""
    from PIL import Image, ImageDraw, ImageFont
    img = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(img)
    font_path = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
    font = ImageFont.truetype(str(font_path), 40) if font_path.exists() else ImageFont.load_default()
    for i, line in enumerate(["张伟", "求职意向：后端开发工程师", "教育经历", "2016.09 - 2020.06 浙江大学 本科"]):
        draw.text((100, 100 + 80 * i), line, fill="black", font=font)
    out = io.BytesIO()
    img.save(out, format="PDF", resolution=150)
    return out.getvalue()


def png_bytes() -> bytes:
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(out, format="PNG")
    return out.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def malformed_docx() -> bytes:
    return zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document><w:body><w:p>broken"})


def docx_bomb(unzipped_mb: int = 200) -> bytes:
    """A Word package whose document.xml inflates from ~200 KB to ``unzipped_mb`` MB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", b"<Types/>")
        with zf.open("word/document.xml", "w", force_zip64=True) as fh:
            chunk = b" " * (1024 * 1024)
            for _ in range(unzipped_mb):
                fh.write(chunk)
    return out.getvalue()


def worker_processes() -> list[int]:
    """Live extraction processes (docimport/worker.py) of this machine."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if b"docimport/worker.py" in cmd:
            pids.append(int(entry))
    return pids
