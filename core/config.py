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

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = ROOT / "plugins.toml"


class ConfigError(RuntimeError):
    pass


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
