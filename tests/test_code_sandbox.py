"""The bubblewrap sandbox: normal runs, and hostile submissions contained within bounded time while
the event loop (and with it every other session's audio) keeps running."""
from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest

from core.interfaces import PluginContext, RunLimits
from core.clock import SystemClock
from plugins.sandbox_bwrap import BubblewrapRunner

pytestmark = pytest.mark.skipif(BubblewrapRunner({}).check() is not None, reason="bubblewrap cannot run here")

LIMITS = RunLimits(cpu_seconds=1, wall_seconds=2, memory_mb=128, max_processes=16, max_output_bytes=10_000)
BOUND = LIMITS.wall_seconds + 3.0        # every hostile run must be over by then


@pytest.fixture(scope="module")
def runner():
    return BubblewrapRunner({"max_concurrent": 2})


async def run(runner, language, code, stdin="", limits=LIMITS):
    started = time.monotonic()
    outcome = await runner.run(language, code, stdin, limits)
    return outcome, time.monotonic() - started


def sandbox_processes() -> list[int]:
    """Host pids of processes still running a sandboxed program."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"/box/main." in cmd and b"bwrap" not in cmd:
            pids.append(int(entry.name))
    return pids


async def no_leftovers(timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sandbox_processes():
            return True
        await asyncio.sleep(0.1)
    return False


# --- ordinary runs -------------------------------------------------------------------------------
async def test_python_and_javascript_read_stdin_and_write_stdout(runner):
    out, _ = await run(runner, "python", "import sys\nprint(sum(map(int, sys.stdin.read().split())))", "3 4 5\n")
    assert (out.stdout, out.exit_code, out.timed_out, out.error) == ("12\n", 0, False, "")
    js = "const s=require('fs').readFileSync(0,'utf8');console.log(s.trim().split(/\\s+/).map(Number).reduce((a,b)=>a+b))"
    out, _ = await run(runner, "javascript", js, "3 4 5\n")
    assert (out.stdout, out.exit_code) == ("12\n", 0)
    out, _ = await run(runner, "js", "process.stdin.on('data',d=>process.stdout.write(d.toString().toUpperCase()))", "abc")
    assert out.stdout == "ABC"
    out, _ = await run(runner, "python", "print(input()[::-1])", "面试题\n")
    assert out.stdout == "题试面\n"


async def test_errors_exit_codes_and_unsupported_language(runner):
    out, _ = await run(runner, "python", "raise ValueError('boom')")
    assert out.exit_code == 1 and "ValueError: boom" in out.stderr and not out.timed_out
    out, _ = await run(runner, "python", "import sys; sys.exit(3)")
    assert out.exit_code == 3
    out, _ = await run(runner, "javascript", "syntax error here(")
    assert out.exit_code != 0 and "SyntaxError" in out.stderr
    out, _ = await run(runner, "cobol", "DISPLAY 'HI'.")
    assert out.error and "cobol" in out.error and out.exit_code is None
    assert set(runner.languages) == {"python", "javascript"}


async def test_private_empty_working_directory(runner):
    code = ("import os\nprint(os.getcwd(), sorted(os.listdir('.')))\nopen('scratch.txt','w').write('x')\n"
            "print(sorted(os.listdir('/')))")
    out, _ = await run(runner, "python", code)
    first, second = out.stdout.splitlines()
    assert first == "/box ['main.py']"
    assert "work" not in second and "root" not in second and "home" not in second
    out, _ = await run(runner, "python", "import os; print(sorted(os.listdir('.')))")
    assert out.stdout.strip() == "['main.py']"          # nothing left from the previous run


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no scheduler autogroups")
async def test_runs_at_low_cpu_priority(runner):
    out, _ = await run(runner, "python", "import os\nprint(os.nice(0))\nprint(open('/proc/self/autogroup').read())")
    nice, group = out.stdout.splitlines()[:2]
    assert int(nice) == 15 and group.endswith(f"nice {runner.autogroup_nice}")
    assert runner.autogroup_nice > 0


# --- hostile submissions -------------------------------------------------------------------------
@pytest.mark.parametrize("language,code", [
    ("python", "while True:\n    pass"),
    ("javascript", "for(;;){}"),
    ("python", "import time\nwhile True:\n    time.sleep(1)"),   # wall clock, not CPU
])
async def test_infinite_loop_is_stopped(runner, language, code):
    out, took = await run(runner, language, code)
    assert out.timed_out and out.exit_code is None
    assert took < BOUND
    assert await no_leftovers()


@pytest.mark.parametrize("language,code", [
    ("python", "a = []\nwhile True:\n    a.append(bytearray(10**7))"),
    ("javascript", "const a=[];for(;;)a.push(new Array(1e6).fill(1))"),
    ("javascript", "const a=[];for(;;)a.push(Buffer.alloc(1e7,1))"),
])
async def test_memory_bomb_is_contained(runner, language, code):
    out, took = await run(runner, language, code)
    assert out.exit_code != 0 and out.memory_exceeded or out.timed_out
    assert took < BOUND
    assert await no_leftovers()


async def test_fork_bomb_is_contained(runner):
    code = ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
    out, took = await run(runner, "python", code)
    assert out.timed_out and took < BOUND
    assert await no_leftovers(), sandbox_processes()
    # the process limit held: count how many forks succeed
    count = ("import os, time\nn = 0\nfor i in range(100):\n    try:\n        if os.fork() == 0:\n"
             "            time.sleep(2); os._exit(0)\n        n += 1\n    except OSError:\n        break\nprint(n)")
    out, _ = await run(runner, "python", count)
    assert int(out.stdout.strip()) < LIMITS.max_processes
    assert await no_leftovers()


async def test_background_processes_die_with_the_run(runner):
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    os.close(1)\n    time.sleep(100)\n"
            "print('parent done')")
    out, took = await run(runner, "python", code)
    assert out.stdout == "parent done\n" and out.exit_code == 0 and took < BOUND
    assert await no_leftovers(), sandbox_processes()


@pytest.mark.parametrize("language,code", [
    ("python", "while True:\n    print('x' * 1000)"),
    ("javascript", "const s='y'.repeat(1000);for(;;)process.stdout.write(s)"),
    ("python", "import sys\nwhile True:\n    sys.stderr.write('e' * 1000)"),
])
async def test_huge_output_is_cut(runner, language, code):
    out, took = await run(runner, language, code)
    assert out.output_truncated and len(out.stdout.encode()) <= LIMITS.max_output_bytes
    assert len(out.stderr.encode()) <= LIMITS.max_output_bytes
    assert took < BOUND
    assert await no_leftovers()


async def test_big_file_in_working_directory_is_limited(runner):
    out, took = await run(runner, "python", "f = open('big', 'w')\nwhile True:\n    f.write('x' * 10**6)")
    assert out.exit_code != 0 and ("File too large" in out.stderr or "No space" in out.stderr)
    assert took < BOUND


async def test_no_network_not_even_the_servers_own_port(runner):
    connections = []

    async def handle(reader, writer):
        connections.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        code = ("import socket\nfor host in ('127.0.0.1', 'localhost', '10.0.0.1', '1.1.1.1'):\n"
                "    try:\n"
                f"        socket.create_connection((host, {port}), timeout=1)\n"
                "        print('CONNECTED', host)\n"
                "    except OSError as e:\n"
                "        print('refused', host, type(e).__name__)\n")
        out, took = await run(runner, "python", code)
        assert "CONNECTED" not in out.stdout and out.stdout.count("refused") == 4, out.stdout + out.stderr
        js = (f"const s=require('net').connect({port},'127.0.0.1');s.on('connect',()=>console.log('CONNECTED'));"
              "s.on('error',e=>console.log('error',e.code))")
        out, _ = await run(runner, "javascript", js)
        assert "CONNECTED" not in out.stdout and "error" in out.stdout
        await asyncio.sleep(0.1)
        assert connections == []
    finally:
        server.close()
        await server.wait_closed()


async def test_server_files_secrets_and_environment_are_invisible(runner, tmp_path, monkeypatch):
    secret = f"s3cret-{uuid.uuid4().hex}"
    data_dir = tmp_path / "data"
    (data_dir / "secrets").mkdir(parents=True)
    (data_dir / "secrets" / "jwt_secret").write_text(secret)
    monkeypatch.setenv("MIANSHI_JWT_SECRET", secret)
    project = Path(__file__).resolve().parent.parent
    targets = [str(data_dir / "secrets" / "jwt_secret"), str(project / "plugins.toml"),
               str(project / "sanic_app.py"), str(project / ".venv" / "bin" / "python"), "/root/.bashrc"]
    code = ("import os\nfor p in %r:\n    try:\n        print('READ', p, open(p).read()[:50])\n"
            "    except OSError as e:\n        print('no', type(e).__name__)\n"
            "print('ENV', dict(os.environ))\n"
            "for pid in os.listdir('/proc'):\n    if pid.isdigit():\n        try:\n"
            "            print('PROC', pid, open('/proc/%%s/environ' %% pid, 'rb').read())\n"
            "        except OSError as e:\n            print('PROC', pid, type(e).__name__)\n") % (targets,)
    out, _ = await run(runner, "python", code)
    assert out.exit_code == 0, out.stderr
    assert "READ" not in out.stdout
    assert out.stdout.count("no FileNotFoundError") == len(targets)
    assert secret not in out.stdout and "MIANSHI" not in out.stdout
    assert "s3cret" not in out.stderr


async def test_writing_outside_the_sandbox_changes_nothing(runner, tmp_path):
    marker = f"escape-{uuid.uuid4().hex}"
    host_targets = [tmp_path / marker, Path("/tmp") / marker, Path(__file__).resolve().parent / marker]
    code = ("import os\nfor p in %r + ['/usr/%s', '/%s', '/etc/%s', '/proc/sys/kernel/hostname']:\n"
            "    try:\n        open(p, 'w').write('pwned')\n        print('WROTE', p)\n"
            "    except OSError as e:\n        print('no', p, type(e).__name__)\n") % (
        [str(p) for p in host_targets], marker, marker, marker)
    out, _ = await run(runner, "python", code)
    assert out.exit_code == 0, out.stderr
    for target in host_targets:
        assert not target.exists()
    assert not Path("/usr", marker).exists() and not Path("/", marker).exists()
    # only the sandbox's own /tmp (a private tmpfs) may have taken a write
    assert all(line.startswith(("no ", "WROTE /tmp/")) for line in out.stdout.splitlines()), out.stdout


async def test_hostile_runs_do_not_stall_the_event_loop(runner):
    """While a fork bomb, a CPU burner and a memory bomb run, the loop keeps its 10 ms ticks (what the
    engine's audio handling needs) and a well-behaved run still gets its turn."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker():
        while not stop.is_set():
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - t - 0.01)

    tick = asyncio.ensure_future(ticker())
    hostile = [
        run(runner, "python", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"),
        run(runner, "javascript", "for(;;){}"),
        run(runner, "python", "a = []\nwhile True:\n    a.append(bytearray(10**7))"),
    ]
    started = time.monotonic()
    results = await asyncio.gather(*hostile, run(runner, "python", "print('still fine')"))
    elapsed = time.monotonic() - started
    stop.set()
    await tick
    assert results[-1][0].stdout == "still fine\n"
    assert elapsed < 3 * BOUND
    assert max(lags) < 0.25, f"event loop stalled {max(lags):.3f}s"
    assert await no_leftovers()


def test_check_reports_what_is_missing(tmp_path):
    assert BubblewrapRunner({}).check() is None
    missing = BubblewrapRunner({"bwrap": str(tmp_path / "no-bwrap")}).check()
    assert missing and "bubblewrap" in missing
    outside = tmp_path / "python"              # an executable interpreter outside /usr
    outside.write_text("#!/bin/sh\n")
    outside.chmod(0o755)
    assert "must live under /usr" in BubblewrapRunner({"python": str(outside),
                                                       "languages": ["python"]}).check()


async def test_unavailable_sandbox_gives_an_error_outcome(tmp_path):
    broken = BubblewrapRunner({"bwrap": str(tmp_path / "no-bwrap")})
    out = await broken.run("python", "print(1)", "", LIMITS)
    assert out.error and "沙箱" in out.error and out.exit_code is None


def test_registered_as_plugin():
    from core.plugins import collect, make_plugin_manager
    registries = collect(make_plugin_manager(load_entry_points=False,
                                             default_plugins=("plugins.sandbox_bwrap", "phases.code")))
    factory = registries["code_runner"].get("bubblewrap").factory
    runner = factory(PluginContext("bubblewrap", {"max_concurrent": 3}, {}, Path("/tmp"), SystemClock()))
    assert runner.name == "bubblewrap" and runner.max_concurrent == 3 and runner.check() is None
    assert registries["phase"].get("code")
