"""The embedded MongoDB-compatible server used when ``MONGODB_URI`` is not set.

mongoeco (https://pypi.org/project/mongoeco/) needs Python >= 3.13 while the service runs on 3.11,
so the server lives in its own virtual environment (``<repo>/.venv-mongoeco``), made with a Python
>= 3.13 interpreter found on this machine, and runs as a child process (``storage/mongoeco_server.py``)
that speaks the MongoDB wire protocol on a free loopback port. Its data is one SQLite file under the
data directory. The child exits when we send SIGTERM or when its stdin (a pipe we keep open) reaches
EOF, so it never outlives the service.
"""
from __future__ import annotations

import asyncio
import fcntl
import glob
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("mianshi.storage.embedded")

ROOT = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = Path(__file__).resolve().parent / "mongoeco_server.py"
MONGOECO_REQUIREMENT = "mongoeco[wire]==4.11.0"
DEFAULT_VENV = ROOT / ".venv-mongoeco"
STAMP_NAME = ".mianshi-stamp"
PATH_CANDIDATES = ("python3.13", "python3.14", "python3.15", "python3")
MIN_VERSION = (3, 13)
FIXED_LOCATIONS = ("/usr/local/bin/python3.13", "/usr/bin/python3.13", "/usr/local/bin/python3.14",
                   "/usr/bin/python3.14")


class EmbeddedMongoError(RuntimeError):
    """The embedded server cannot be provided; the message says what to do."""


NO_INTERPRETER_HELP = (
    "The embedded database (mongoeco) needs a Python 3.13 or newer interpreter, and none was found "
    "(tried: {tried}). Install Python 3.13, for example with `pyenv install 3.13` (then it is found "
    "under ~/.pyenv/versions) or `uv python install 3.13`, or point MIANSHI_MONGOECO_PYTHON at a "
    "python3.13 binary, or set MONGODB_URI to use an existing MongoDB server instead."
)


def _is_recent_python(path: str) -> bool:
    try:
        out = subprocess.run(
            [path, "-c", "import sys; print(sys.version_info >= (3, 13))"],
            capture_output=True, text=True, timeout=20,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == "True"


def candidate_interpreters() -> list[str]:
    """Every place a Python >= 3.13 may live, in order of preference (not yet verified)."""
    seen: list[str] = []

    def add(path: str | None) -> None:
        if path and path not in seen:
            seen.append(path)

    add(os.environ.get("MIANSHI_MONGOECO_PYTHON"))
    for name in PATH_CANDIDATES:
        add(shutil.which(name))
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = glob.glob(os.path.join(pyenv_root, "versions", "*", "bin", "python3.1[3-9]"))
    found += glob.glob(os.path.join(pyenv_root, "versions", "*", "bin", "python3.[2-9][0-9]"))
    for path in sorted(found, reverse=True):
        add(path)
    for path in FIXED_LOCATIONS:
        if os.path.exists(path):
            add(path)
    return seen


def find_interpreter() -> str:
    """The first candidate that really runs and is >= 3.13 (a pyenv shim that fails is skipped)."""
    tried = candidate_interpreters()
    for path in tried:
        if _is_recent_python(path):
            return path
    raise EmbeddedMongoError(NO_INTERPRETER_HELP.format(tried=", ".join(tried) or "nothing on PATH"))


def default_venv() -> Path:
    """``MIANSHI_MONGOECO_VENV`` or ``<repo>/.venv-mongoeco``."""
    return Path(os.environ.get("MIANSHI_MONGOECO_VENV") or DEFAULT_VENV)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def venv_ready(venv: Path) -> bool:
    stamp = venv / STAMP_NAME
    return (venv_python(venv).exists() and stamp.exists()
            and stamp.read_text().strip() == MONGOECO_REQUIREMENT)


def ensure_venv(venv: Path | None = None, *, quiet: bool = True) -> Path:
    """Create the mongoeco virtual environment if it is missing or stale; return its python.
    Safe to call from several processes at once (file lock)."""
    venv = Path(venv) if venv is not None else default_venv()
    if venv_ready(venv):
        return venv_python(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / (venv.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if venv_ready(venv):
            return venv_python(venv)
        interpreter = find_interpreter()
        log.warning("creating %s with %s and installing %s (first start only)", venv, interpreter,
                    MONGOECO_REQUIREMENT)
        if venv.exists():
            shutil.rmtree(venv)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        steps = [
            [interpreter, "-m", "venv", str(venv)],
            [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check",
             *(["-q"] if quiet else []), MONGOECO_REQUIREMENT],
        ]
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise EmbeddedMongoError(
                    f"could not prepare the embedded database environment: `{' '.join(cmd)}` failed:\n"
                    f"{proc.stderr.strip()[-2000:]}\nFix the error above, or set MONGODB_URI.")
        (venv / STAMP_NAME).write_text(MONGOECO_REQUIREMENT + "\n")
        return venv_python(venv)


class EmbeddedMongo:
    """One mongoeco wire server over ``<data_dir>/mongo/mianshi.sqlite``."""

    def __init__(self, data_dir: str | os.PathLike, *, venv: str | os.PathLike | None = None,
                 startup_timeout: float = 60.0) -> None:
        self.data_dir = Path(data_dir)
        self.venv = Path(venv) if venv is not None else default_venv()
        self.startup_timeout = startup_timeout
        self.db_path = self.data_dir / "mongo" / "mianshi.sqlite"
        self.log_path = self.data_dir / "mongo" / "server.log"
        self.process: asyncio.subprocess.Process | None = None
        self.port: int | None = None

    @property
    def uri(self) -> str:
        if self.port is None:
            raise EmbeddedMongoError("the embedded database is not running")
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    async def start(self) -> str:
        python = await asyncio.to_thread(ensure_venv, self.venv)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_path, "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                str(python), str(SERVER_SCRIPT), "--db", str(self.db_path), "--host", "127.0.0.1",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log_file,
                env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                start_new_session=True,
            )
        finally:
            log_file.close()
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), self.startup_timeout)
            self.port = int(json.loads(line)["port"])
        except (asyncio.TimeoutError, ValueError, KeyError, TypeError) as exc:
            await self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise EmbeddedMongoError(
                f"the embedded database did not start ({type(exc).__name__}); its log "
                f"{self.log_path} ends with:\n{tail}") from None
        log.info("embedded database on 127.0.0.1:%s, data in %s", self.port, self.db_path)
        return self.uri

    async def stop(self, timeout: float = 10.0) -> None:
        """Close the server's stdin (EOF is its signal to shut down cleanly; its stdin-watching
        thread must end for the process to exit), then SIGTERM, then SIGKILL as last resorts."""
        proc, self.process = self.process, None
        self.port = None
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        for action in ("eof", "term", "kill"):
            try:
                if action == "term":
                    proc.send_signal(signal.SIGTERM)
                elif action == "kill":
                    proc.kill()
            except ProcessLookupError:
                break
            try:
                await asyncio.wait_for(proc.wait(), timeout / 2 if action != "kill" else None)
                break
            except asyncio.TimeoutError:
                log.warning("embedded database did not stop after %s; escalating", action)
        if proc.returncode is None:
            await proc.wait()


if __name__ == "__main__":
    # `python -m storage.embedded`: prepare the environment (used by scripts/bootstrap.sh).
    logging.basicConfig(level=logging.INFO)
    try:
        print(ensure_venv(quiet=False))
    except EmbeddedMongoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
