"""Typed events: what the client sends, what the speech pipeline reports, what the server sends.

Client messages are parsed and validated here (``parse_client_message``), so the web layer only
moves text frames and the rules live in one place. Outgoing messages are built by the functions at
the bottom; their ``type`` names, field names and Chinese texts are the contract of
``shared/spec/webrtc-interview-ws-guide.zh.md`` and ``shared/spec/api.md``.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Union

# --- limits (overridable by the engine from plugins.toml [limits]) -------------------------------
MAX_MESSAGE_BYTES = 2_000_000          # one WebSocket text message
MAX_AUDIO_FRAME_BYTES = 32_000         # 1 s of 16 kHz s16le; the guide's frame is 1 280 bytes
MAX_VIDEO_FRAME_BYTES = 1_500_000      # one JPEG
MAX_TEXT_ANSWER_CHARS = 5_000
MAX_CODE_CHARS = 64_000
SAMPLE_RATE = 16_000

POSITION_TYPE_LABELS = {"backend": "后端开发", "frontend": "前端开发", "pm": "产品经理", "qa": "测试", "algo": "算法"}
POSITION_TYPES = tuple(POSITION_TYPE_LABELS)
CLIENT_EVENTS = ("tab_hidden", "tab_visible")


class ProtocolError(ValueError):
    """A client message that cannot be accepted; ``text`` is sent back in an ``error`` message."""

    def __init__(self, text: str, field: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.field = field


# --- client -> server --------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateStream:
    interview_id: str
    resume_id: int
    title: str = ""
    description: str = ""
    tts: bool = False           # additive, opt-in: the client wants the interviewer's voice (README)
    asr_corrections: bool = False   # additive, opt-in: the client wants asr_correction messages (README)


@dataclass(frozen=True)
class AudioFrame:
    pcm: bytes                  # 16 kHz mono s16le, whole samples
    end: bool = False


@dataclass(frozen=True)
class VideoFrame:
    jpeg: bytes
    frame_type: str = "keyframe"


@dataclass(frozen=True)
class EndAnswer:
    pass


@dataclass(frozen=True)
class TextAnswer:
    text: str


@dataclass(frozen=True)
class CodeSubmit:
    language: str
    code: str


@dataclass(frozen=True)
class ClientEvent:
    event: str


@dataclass(frozen=True)
class Disconnect:
    pass


@dataclass(frozen=True)
class TtsPlayback:
    """The client's report on playing a message's voice (sessions with ``tts``)."""
    message_id: str
    event: str                  # started | finished | interrupted


TTS_PLAYBACK_EVENTS = ("started", "finished", "interrupted")

ClientMessage = Union[CreateStream, AudioFrame, VideoFrame, EndAnswer, TextAnswer, CodeSubmit,
                      ClientEvent, Disconnect, TtsPlayback]


def _require(msg: dict, name: str, kind: type | tuple, what: str) -> Any:
    if name not in msg or msg[name] is None:
        raise ProtocolError(f"缺少字段 {name}（{what}）", name)
    value = msg[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ProtocolError(f"字段 {name} 类型错误（{what}）", name)
    return value


def _id_field(msg: dict, name: str) -> str:
    value = msg.get(name)
    if value is None or value == "":
        raise ProtocolError(f"缺少字段 {name}", name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ProtocolError(f"字段 {name} 必须是字符串或数字", name)
    return str(value).strip()


def _b64(value: str, name: str, max_bytes: int) -> bytes:
    if len(value) > (max_bytes * 4) // 3 + 8:
        raise ProtocolError(f"{name} 过大（上限 {max_bytes} 字节）", name)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{name} 不是合法的 base64 数据", name) from None


def parse_client_message(raw: str | bytes) -> ClientMessage:
    """Parse one WebSocket message; raise ``ProtocolError`` naming the problem."""
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"消息过大（上限 {MAX_MESSAGE_BYTES} 字节）")
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("消息必须是 UTF-8 编码的 JSON 文本") from None
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"消息过大（上限 {MAX_MESSAGE_BYTES} 字节）")
    try:
        msg = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError("消息不是合法的 JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("消息必须是 JSON 对象")
    mtype = msg.get("type")
    if not isinstance(mtype, str) or not mtype:
        raise ProtocolError("缺少字段 type", "type")

    if mtype == "create_stream":
        iid = _id_field(msg, "interview_id")
        rid = _id_field(msg, "resume_id")
        try:
            resume_id = int(rid)
        except ValueError:
            raise ProtocolError("resume_id 必须是数字", "resume_id") from None
        title = msg.get("title") or ""
        description = msg.get("description") or ""
        if not isinstance(title, str) or not isinstance(description, str):
            raise ProtocolError("title/description 必须是字符串", "title")
        flags = {}
        for name in ("tts", "asr_corrections"):
            value = msg.get(name, False)
            if value is None:
                value = False
            if not isinstance(value, bool):
                raise ProtocolError(f"{name} 必须是布尔值", name)
            flags[name] = value
        return CreateStream(iid, resume_id, title[:200], description[:1000], **flags)

    if mtype == "audio_frame":
        data = msg.get("audio_data", "")
        if data is None:
            data = ""
        if not isinstance(data, str):
            raise ProtocolError("audio_data 必须是 base64 字符串", "audio_data")
        end = msg.get("end", False)
        if end is None:
            end = False
        if not isinstance(end, bool):
            raise ProtocolError("end 必须是布尔值", "end")
        pcm = _b64(data, "audio_data", MAX_AUDIO_FRAME_BYTES) if data else b""
        if len(pcm) > MAX_AUDIO_FRAME_BYTES:
            raise ProtocolError(f"audio_data 过大（上限 {MAX_AUDIO_FRAME_BYTES} 字节）", "audio_data")
        if len(pcm) % 2:
            raise ProtocolError("audio_data 长度必须是完整的16位采样（偶数字节）", "audio_data")
        if not pcm and not end:
            raise ProtocolError("audio_data 为空", "audio_data")
        return AudioFrame(pcm, end)

    if mtype == "video_frame":
        data = _require(msg, "frame_data", str, "base64 编码的 JPEG")
        frame_type = msg.get("frame_type") or "keyframe"
        if not isinstance(frame_type, str):
            raise ProtocolError("frame_type 必须是字符串", "frame_type")
        jpeg = _b64(data, "frame_data", MAX_VIDEO_FRAME_BYTES)
        if not jpeg:
            raise ProtocolError("frame_data 为空", "frame_data")
        if len(jpeg) > MAX_VIDEO_FRAME_BYTES:
            raise ProtocolError(f"frame_data 过大（上限 {MAX_VIDEO_FRAME_BYTES} 字节）", "frame_data")
        return VideoFrame(jpeg, frame_type[:32])

    if mtype == "end_answer":
        return EndAnswer()

    if mtype == "text_answer":
        text = _require(msg, "text", str, "回答文本")
        text = text.strip()
        if not text:
            raise ProtocolError("text 不能为空", "text")
        if len(text) > MAX_TEXT_ANSWER_CHARS:
            raise ProtocolError(f"text 过长（上限 {MAX_TEXT_ANSWER_CHARS} 字）", "text")
        return TextAnswer(text)

    if mtype == "code_submit":
        language = _require(msg, "language", str, "编程语言")
        code = _require(msg, "code", str, "代码")
        if not code.strip():
            raise ProtocolError("code 不能为空", "code")
        if len(code) > MAX_CODE_CHARS:
            raise ProtocolError(f"code 过长（上限 {MAX_CODE_CHARS} 字符）", "code")
        return CodeSubmit(language.strip().lower(), code)

    if mtype == "client_event":
        event = _require(msg, "event", str, "tab_hidden 或 tab_visible")
        if event not in CLIENT_EVENTS:
            raise ProtocolError("event 必须是 tab_hidden 或 tab_visible", "event")
        return ClientEvent(event)

    if mtype == "disconnect":
        return Disconnect()

    if mtype == "tts_playback":
        message_id = _require(msg, "message_id", str, "interview_message 的 message_id")
        event = _require(msg, "event", str, "started、finished 或 interrupted")
        if event not in TTS_PLAYBACK_EVENTS:
            raise ProtocolError("event 必须是 started、finished 或 interrupted", "event")
        return TtsPlayback(message_id[:64], event)

    raise ProtocolError(f"未知的消息类型: {mtype[:40]}", "type")


# --- speech pipeline -> engine (typed turn events) ---------------------------------------------
@dataclass(frozen=True)
class SpeechStarted:
    t: float                    # clock time the speech was detected
    audio_start: float = 0.0    # seconds of stream audio where the utterance starts (as its Transcripts')


@dataclass(frozen=True)
class SpeechEnded:
    t: float
    audio_start: float = 0.0


@dataclass(frozen=True)
class Transcript:
    text: str
    is_final: bool
    t: float
    audio_start: float = 0.0    # seconds of stream audio where the utterance starts
    audio_end: float = 0.0


@dataclass(frozen=True)
class AsrFailed:
    """The recogniser gave no text for an utterance (a remote server down, slow or answering
    garbage): in the place of its final ``Transcript``. ``reason`` as ``RemoteAsrError.reason``."""
    reason: str
    t: float
    audio_start: float = 0.0
    audio_end: float = 0.0
    is_final: bool = True


SpeechEvent = Union[SpeechStarted, SpeechEnded, Transcript, AsrFailed]


@dataclass(frozen=True)
class VoiceStarted:
    """The interviewer's voice began saying message ``message_id`` (sessions with ``tts``)."""
    message_id: str
    t: float


@dataclass(frozen=True)
class VoiceEnded:
    """The voice of ``message_id`` is over: ``reason`` finished | interrupted (the client said so),
    estimated (its audio's length passed without a report), barge_in (the candidate spoke over it)."""
    message_id: str
    t: float
    reason: str = "finished"


@dataclass(frozen=True)
class Tick:
    """Sent to the current phase by the engine's timer; ``t`` is the clock time."""
    t: float


# --- cheat detection -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheatSignal:
    """One detector's reading of one frame.

    ``kind`` names one of the detector's declared ``CheatKind``s when the frame looks suspicious, or
    is ``None`` for a frame the detector considers normal ("ok" evidence that closes an episode).
    ``detail`` is stored.
    """
    detector: str
    kind: str | None
    score: float = 1.0
    detail: dict = field(default_factory=dict)


# --- server -> client ----------------------------------------------------------------------------
def connection_established(session_id: str) -> dict:
    return {"type": "connection_established", "session_id": session_id, "text": "WebRTC连接已建立"}


def stream_created(stream_id: str, title: str, interview_id: str) -> dict:
    return {"type": "stream_created", "stream_id": stream_id, "title": title,
            "interview_id": interview_id, "text": "视频流创建成功"}


def interview_message(phase: str, text: str, **extra: Any) -> dict:
    msg = {"type": "interview_message", "phase": phase, "text": text}
    msg.update({k: v for k, v in extra.items() if v is not None})
    return msg


def asr_result(text: str, is_final: bool) -> dict:
    return {"type": "asr_result", "text": text, "is_final": is_final}


def asr_correction(text: str, raw_text: str) -> dict:
    """A final (``asr_result`` with ``is_final``) corrected after it was sent: ``raw_text`` is the
    final as sent, ``text`` what is stored and used (clients whose create_stream asked for it)."""
    return {"type": "asr_correction", "text": text, "raw_text": raw_text}


def cheat_detected(kind: str, text: str) -> dict:
    return {"type": "cheat_detected", "kind": kind, "text": text}


def code_result(passed: int, total: int, cases: list, text: str, **extra: Any) -> dict:
    msg = {"type": "code_result", "passed": passed, "total": total, "cases": cases, "text": text}
    msg.update(extra)
    return msg


def tts_audio(message_id: str, seq: int, sample_rate: int, pcm: bytes, last: bool, **extra: Any) -> dict:
    msg = {"type": "tts_audio", "message_id": message_id, "seq": seq, "format": "pcm_s16le",
           "sample_rate": sample_rate, "audio_data": base64.b64encode(pcm).decode("ascii"), "last": last}
    msg.update(extra)
    return msg


def tts_stop(message_id: str) -> dict:
    return {"type": "tts_stop", "message_id": message_id}


TEXT_ASR_FAILED = "语音识别暂时不可用，刚才这段话没有识别出来，请重说一遍或打字回答"


def asr_failed(reason: str) -> dict:
    """The ``error`` sent for an utterance the recogniser could not transcribe (``source: "asr"``
    and the ``reason`` are additions a guide-only client can ignore)."""
    return error(TEXT_ASR_FAILED, source="asr", reason=reason)


def error(text: str, **extra: Any) -> dict:
    msg = {"type": "error", "text": text}
    msg.update(extra)
    return msg


# Phase texts fixed by the guide.
TEXT_INTRO_START = "请开始自我介绍吧"
TEXT_INTRO_END = "自我介绍结束，下面开始问问题。"
TEXT_QUESTIONS_END = "问答环节结束，下面进入代码题环节。"
DONE_PHRASE = "说完了"
