"""Code runner "bubblewrap": runs candidate code in a bwrap sandbox.

Each run gets:

* new user, pid, network, ipc, uts and cgroup namespaces (``--unshare-all``): no network at all
  (only a loopback of its own, so the server's port is not reachable), no view of other processes;
* a read-only system: ``/usr`` (with the ``/bin``, ``/lib``, ``/lib64``, ``/sbin`` symlinks or binds
  of the host) and ``/etc/ld.so.cache``; nothing else of the host is mounted, in particular not the
  project, its ``.venv``, the data directory or its secrets; the environment is cleared;
* a private, empty, size-limited tmpfs as working directory (``/box``) and another as ``/tmp``;
  the source file is copied in through a memfd (``--file``), stdin comes from a memfd too;
* resource limits set by ``prlimit`` inside the sandbox: CPU seconds, address space, processes
  (counted per user namespace, so a fork bomb stays inside its own sandbox), file size, open files,
  no core dumps; the program runs at ``nice`` 15, and its session's scheduler autogroup at 5, so that
  it cannot starve the server's audio work;
* a wall-clock limit: on expiry the whole process group is killed (bwrap's ``--die-with-parent``
  and the pid namespace take every descendant with it);
* stdout/stderr are read with a cap; beyond it the run is killed and marked truncated.

When the server runs as root, bwrap is started through ``setpriv`` as an unprivileged uid
(``run_as_uid``, default 65534 "nobody"), because the kernel does not apply the process limit to
root. The subprocess is spawned with vfork (no ``user=``/``preexec_fn``), so starting a run costs the
event loop next to nothing even when the server process is large.

At most ``max_concurrent`` runs execute at once (an ``asyncio.Semaphore``); the rest wait.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from core.settings import Setting
from core.hookspecs import hookimpl
from core.interfaces import PluginContext, RunLimits, RunOutcome

log = logging.getLogger("mianshi.sandbox")

# Language name -> how to run it. "{mem}" is replaced by the memory limit in MB.
LANGUAGE_ALIASES = {
    "python": "python", "python3": "python", "py": "python",
    "javascript": "javascript", "js": "javascript", "node": "javascript", "nodejs": "javascript",
}

BOX = "/box"
_MEMORY_MARKERS = ("MemoryError", "heap out of memory", "std::bad_alloc",
                   "Array buffer allocation failed", "Cannot allocate memory", "RangeError: Array buffer")


@dataclass
class _Language:
    name: str
    interpreter: str
    filename: str
    extra_as_mb: int           # address space the runtime reserves beyond its heap

    def argv(self, memory_mb: int) -> list[str]:
        if self.name == "python":
            return [self.interpreter, "-I", "-B", f"{BOX}/{self.filename}"]
        return [self.interpreter, f"--max-old-space-size={max(16, memory_mb)}",
                "--stack-size=4000", f"{BOX}/{self.filename}"]


def normalize_language(language: str) -> str | None:
    return LANGUAGE_ALIASES.get((language or "").strip().lower())


class BubblewrapRunner:
    name = "bubblewrap"

    def __init__(self, settings: dict | None = None) -> None:
        s = dict(settings or {})
        self.bwrap = s.get("bwrap", "/usr/bin/bwrap")
        self.prlimit = s.get("prlimit", "/usr/bin/prlimit")
        self.nice = s.get("nice", "/usr/bin/nice")
        self.setpriv = s.get("setpriv", "/usr/bin/setpriv")
        self.nice_level = int(s.get("nice_level", 15))
        # weight of the sandbox's autogroup: 5 is ~1/3 of a normal group's CPU share under
        # contention; 10 (~1/10) or more starves runs on a busy machine into wall-clock timeouts
        self.autogroup_nice = max(-20, min(19, int(s.get("autogroup_nice", 5))))
        self.work_size_mb = int(s.get("work_size_mb", 16))
        self.max_concurrent = max(1, int(s.get("max_concurrent", 2)))
        self.run_as_uid = int(s.get("run_as_uid", 65534))
        self.run_as_gid = int(s["run_as_gid"] if s.get("run_as_gid") is not None else self.run_as_uid)
        self.max_open_files = int(s.get("max_open_files", 64))
        python = s.get("python") or ("/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "")
        node = s.get("node") or ("/usr/bin/node" if os.path.exists("/usr/bin/node") else "")
        node_extra = int(s.get("node_extra_address_space_mb", 1280))
        self._langs: dict[str, _Language] = {}
        if python:
            self._langs["python"] = _Language("python", python, "main.py", int(s.get("python_extra_address_space_mb", 64)))
        if node:
            self._langs["javascript"] = _Language("javascript", node, "main.js", node_extra)
        wanted = s.get("languages")
        if wanted:
            self._langs = {k: v for k, v in self._langs.items() if k in wanted}
        self.languages: tuple[str, ...] = tuple(self._langs)
        self._sem = asyncio.Semaphore(self.max_concurrent)
        self._check_result: str | None | bool = False     # False = not checked yet

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "BubblewrapRunner":
        runner = cls(ctx.settings)
        problem = runner.check()
        if problem:
            log.error("代码沙箱不可用 / code sandbox cannot run: %s", problem)
        else:
            log.info("code sandbox bubblewrap ready: languages %s, %d concurrent",
                     ", ".join(runner.languages), runner.max_concurrent)
        return runner

    # --- start-up check ----------------------------------------------------------------------
    def check(self) -> str | None:
        if self._check_result is not False:
            return self._check_result  # type: ignore[return-value]
        self._check_result = self._check()
        return self._check_result

    def _check(self) -> str | None:
        for what, path in (("bubblewrap (apt-get install bubblewrap)", self.bwrap),
                           ("prlimit (util-linux)", self.prlimit), ("nice (coreutils)", self.nice),
                           *([("setpriv (util-linux)", self.setpriv)] if os.geteuid() == 0 else [])):
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                return f"{what} not found at {path}"
        if not self._langs:
            return "no interpreter found (need /usr/bin/python3 or /usr/bin/node)"
        for lang in self._langs.values():
            if not os.access(lang.interpreter, os.X_OK):
                return f"{lang.name} interpreter {lang.interpreter} is not executable"
            if not lang.interpreter.startswith("/usr/"):
                return f"{lang.name} interpreter {lang.interpreter} must live under /usr (only /usr is mounted)"
        # A real run of each language, synchronously (start-up only).
        for lang in self._langs.values():
            code = "print(6*7)" if lang.name == "python" else "console.log(6*7)"
            try:
                argv, fds, cleanup = self._command(lang, code.encode(), RunLimits())
            except OSError as exc:
                return f"cannot prepare sandbox: {exc}"
            try:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
                                      pass_fds=fds, **self._user_kwargs())
            except (OSError, subprocess.SubprocessError) as exc:
                return f"bubblewrap failed to start: {exc}"
            finally:
                cleanup()
            if proc.returncode != 0 or proc.stdout.strip() != b"42":
                err = proc.stderr.decode("utf-8", "replace").strip()[:300]
                return (f"bubblewrap test run of {lang.name} failed (exit {proc.returncode}): {err or 'no output'}"
                        " — are unprivileged user namespaces enabled?")
        return None

    # --- the command line ----------------------------------------------------------------------
    def _user_kwargs(self) -> dict:
        # bwrap itself gets an empty environment too: its pid-1 process inside the sandbox keeps the
        # environment it was started with, readable as /proc/1/environ (secrets must not be there).
        # No user=/group= here: those make CPython fork() the whole server (page tables of a
        # process with the models loaded: tens of ms on the event loop) instead of vfork().
        return {"env": {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}}

    def _drop_privileges(self) -> list[str]:
        """As root the kernel would not apply the process limit: run bwrap as ``run_as_uid``."""
        if os.geteuid() != 0:
            return []
        return [self.setpriv, f"--reuid={self.run_as_uid}", f"--regid={self.run_as_gid}", "--clear-groups", "--"]

    @staticmethod
    def _host_links() -> list[str]:
        args: list[str] = []
        for top in ("/bin", "/lib", "/lib64", "/sbin", "/lib32", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        return args

    def _command(self, lang: _Language, code: bytes, limits: RunLimits) -> tuple[list[str], list[int], callable]:
        code_fd = os.memfd_create("mianshi-code", 0)
        os.write(code_fd, code)
        os.lseek(code_fd, 0, os.SEEK_SET)
        memory_mb = max(16, int(limits.memory_mb))
        cpu_soft = max(1, math.ceil(limits.cpu_seconds))
        address_space = (memory_mb + lang.extra_as_mb) * 1024 * 1024
        fsize = max(1, int(limits.max_output_bytes)) + 1024 * 1024
        work = str(self.work_size_mb * 1024 * 1024)
        argv = [*self._drop_privileges(), self.bwrap,
                "--unshare-all", "--unshare-user", "--disable-userns",
                # no --new-session: start_new_session already gives a session without a terminal,
                # and staying in it keeps the sandbox in the autogroup lowered below
                "--die-with-parent", "--cap-drop", "ALL",
                "--hostname", "sandbox",
                "--ro-bind", "/usr", "/usr", *self._host_links(),
                "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
                "--ro-bind-try", "/etc/localtime", "/etc/localtime",
                "--proc", "/proc", "--dev", "/dev",
                "--size", work, "--tmpfs", "/tmp",
                "--size", work, "--tmpfs", BOX,
                "--perms", "0444", "--file", str(code_fd), f"{BOX}/{lang.filename}",
                "--remount-ro", "/",
                "--chdir", BOX,
                "--clearenv",
                "--setenv", "PATH", "/usr/bin:/bin",
                "--setenv", "HOME", BOX,
                "--setenv", "LANG", "C.UTF-8",
                "--setenv", "PYTHONIOENCODING", "utf-8",
                "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
                "--",
                self.nice, "-n", str(self.nice_level),
                self.prlimit,
                f"--cpu={cpu_soft}:{cpu_soft + 1}",
                f"--as={address_space}",
                f"--nproc={max(2, int(limits.max_processes))}",
                f"--fsize={fsize}",
                f"--nofile={self.max_open_files}",
                "--core=0",
                "--",
                *lang.argv(memory_mb)]

        def cleanup() -> None:
            try:
                os.close(code_fd)
            except OSError:
                pass
        return argv, [code_fd], cleanup

    def _lower_priority(self, pid: int) -> None:
        """With the scheduler's autogroups (sched_autogroup_enabled), ``nice`` only ranks processes
        inside one session; the sandbox is its own session, so its whole group is niced too. The
        group's weight covers every process in it, including those it forks later."""
        try:
            with open(f"/proc/{pid}/autogroup", "w") as fh:
                fh.write(str(self.autogroup_nice))
        except OSError:
            pass                     # no autogroups (or not allowed): plain nice still applies

    # --- running -------------------------------------------------------------------------------
    async def run(self, language: str, code: str, stdin: str, limits: RunLimits) -> RunOutcome:
        lang_name = normalize_language(language)
        lang = self._langs.get(lang_name or "")
        if lang is None:
            return RunOutcome("", "", None, 0.0, error=f"不支持的语言: {language}")
        if self._check_result is False:          # normally done at start-up; never block the loop
            await asyncio.to_thread(self.check)
        problem = self.check()
        if problem:
            return RunOutcome("", "", None, 0.0, error=f"代码沙箱不可用: {problem}")
        async with self._sem:
            return await self._run(lang, code, stdin, limits)

    async def _run(self, lang: _Language, code: str, stdin: str, limits: RunLimits) -> RunOutcome:
        try:
            argv, fds, cleanup = self._command(lang, code.encode("utf-8", "replace"), limits)
        except OSError as exc:
            return RunOutcome("", "", None, 0.0, error=f"沙箱准备失败: {exc}")
        try:
            stdin_fd = os.memfd_create("mianshi-stdin", 0)
        except OSError as exc:
            cleanup()
            return RunOutcome("", "", None, 0.0, error=f"沙箱准备失败: {exc}")
        view = memoryview(stdin.encode("utf-8", "replace"))
        while view:
            n = os.write(stdin_fd, view)
            view = view[n:]
        os.lseek(stdin_fd, 0, os.SEEK_SET)
        cap = max(1, int(limits.max_output_bytes))
        started = time.monotonic()
        proc = None
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=stdin_fd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                pass_fds=fds, start_new_session=True, **self._user_kwargs())
        except OSError as exc:
            return RunOutcome("", "", None, 0.0, error=f"沙箱启动失败: {exc}")
        finally:
            cleanup()
            os.close(stdin_fd)

        self._lower_priority(proc.pid)
        truncated = False

        def kill() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

        async def pump(stream: asyncio.StreamReader, limit: int) -> bytes:
            nonlocal truncated
            buf = bytearray()
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    return bytes(buf)
                room = limit - len(buf)
                if len(chunk) > room:
                    buf += chunk[:max(0, room)]
                    truncated = True
                    kill()
                    # keep draining (the process is dying) so the pipe closes
                    continue
                buf += chunk

        timed_out = False
        out_task = asyncio.ensure_future(pump(proc.stdout, cap))
        err_task = asyncio.ensure_future(pump(proc.stderr, min(cap, 16384)))
        try:
            await asyncio.wait_for(asyncio.gather(out_task, err_task, proc.wait()),
                                   timeout=max(0.1, float(limits.wall_seconds)))
        except asyncio.TimeoutError:
            timed_out = True
            kill()
            try:
                await asyncio.wait_for(proc.wait(), timeout=5)
            except asyncio.TimeoutError:
                log.error("sandbox process %s did not die after SIGKILL", proc.pid)
        except asyncio.CancelledError:
            kill()
            raise
        finally:
            if proc.returncode is None:
                kill()
        wall_ms = (time.monotonic() - started) * 1000.0
        for t in (out_task, err_task):
            if not t.done():
                t.cancel()
        stdout = out_task.result() if out_task.done() and not out_task.cancelled() else b""
        stderr = err_task.result() if err_task.done() and not err_task.cancelled() else b""
        rc = proc.returncode
        err_text = stderr.decode("utf-8", "replace")
        # bwrap reports a signal-killed child as 128 + signo
        if rc is not None and rc > 128 and (rc - 128) in (signal.SIGXCPU, signal.SIGKILL) and not truncated:
            if (rc - 128) == signal.SIGXCPU or wall_ms / 1000.0 >= limits.cpu_seconds:
                timed_out = True
        if rc is not None and rc < 0 and -rc in (signal.SIGXCPU,):
            timed_out = True
        infra = ""
        if rc == 1 and err_text.startswith("bwrap:") and not stdout:
            infra = f"沙箱启动失败: {err_text.strip()[:300]}"
        memory = any(m in err_text for m in _MEMORY_MARKERS)
        return RunOutcome(stdout=stdout.decode("utf-8", "replace"), stderr=err_text,
                          exit_code=None if timed_out else rc, wall_ms=round(wall_ms, 1),
                          timed_out=timed_out, memory_exceeded=memory, output_truncated=truncated,
                          error=infra)


SETTINGS = {
    "bwrap": "/usr/bin/bwrap", "prlimit": "/usr/bin/prlimit", "nice": "/usr/bin/nice", "setpriv": "/usr/bin/setpriv",
    "nice_level": 15, "autogroup_nice": 5, "work_size_mb": Setting(16, minimum=1), "max_concurrent": Setting(2, minimum=1),
    "run_as_uid": 65534, "run_as_gid": Setting(None, int), "max_open_files": Setting(64, minimum=8),
    "python": Setting(None, str), "node": Setting(None, str),          # default: /usr/bin/python3, /usr/bin/node
    "node_extra_address_space_mb": 1280, "python_extra_address_space_mb": 64,
    "languages": Setting(None, list, items=str),                       # default: every interpreter found
}

@hookimpl
def register_code_runners(register):
    register("bubblewrap", BubblewrapRunner.from_context, settings=SETTINGS)
