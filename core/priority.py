"""Background threads that must yield to the audio path: ``lower_thread_priority`` renices the thread
it runs in (a ``ThreadPoolExecutor`` initializer). The vision pool (core/cheat.py) and the recording
encoder (core/recording.py) use it: under CPU contention the event loop, the VAD and the ASR threads
are scheduled first, and JPEG checks and recordings wait."""
from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("mianshi.priority")


def lower_thread_priority(nice: int) -> None:
    """On Linux ``setpriority`` with a thread id renices only that thread (elsewhere: a no-op)."""
    if nice <= 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError, PermissionError):
        log.debug("could not lower the priority of thread %s", threading.current_thread().name, exc_info=True)
