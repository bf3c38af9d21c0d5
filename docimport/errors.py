"""The one failure type of the import: a code (stable, for tests and logs) and a Chinese message."""
from __future__ import annotations

MESSAGES = {
    "empty": "文件是空的，请重新选择简历文件",
    "too_large": "文件过大：最大 {max_mb} MB",
    "unsupported": "不支持的文件类型：请上传 PDF、Word（.docx）或纯文本 / Markdown 文件",
    "legacy_doc": "不支持旧版 Word（.doc）文件：请在 Word 中另存为 .docx 后再上传",
    "image": "这是一张图片，无法识别其中的文字：请上传含文字的 PDF、Word（.docx）或文本文件",
    "encrypted": "PDF 已加密（设置了打开密码），无法读取：请上传未加密的 PDF",
    "no_text": "PDF 中没有可提取的文字（可能是扫描件或图片）：请上传可以选中复制文字的 PDF，或上传 Word / 文本文件",
    "bad_pdf": "PDF 文件已损坏或格式不正确，无法读取",
    "bad_docx": "Word 文件已损坏或格式不正确，无法读取",
    "docx_bomb": "Word 文件解压后过大或结构异常，已拒绝处理",
    "bad_text": "文本文件无法识别编码：请使用 UTF-8 编码保存后再上传",
    "timeout": "文件解析超时（文件过于复杂），已停止处理：请上传更简单的文件",
    "memory": "文件解析占用内存超出限制，已停止处理：请上传更简单的文件",
    "no_content": "文件中没有找到文字内容",
    "too_many_pages": "PDF 页数过多：最多 {max_pages} 页",
    "failed": "文件解析失败，请换一个文件再试",
}


class ImportFailure(Exception):
    """A file that cannot be imported. ``status`` is the HTTP status the API answers with."""

    def __init__(self, code: str, status: int = 400, **params) -> None:
        self.code = code
        self.status = status
        self.msg = MESSAGES.get(code, MESSAGES["failed"]).format(**params)
        super().__init__(f"{code}: {self.msg}")
