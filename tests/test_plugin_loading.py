"""Only the built-in plugin modules that plugins.toml selects are imported, and the table that says
which module provides what (core.plugins.BUILTIN) matches what the modules register."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.plugins import BUILTIN, builtin_modules_for, collect, make_plugin_manager

ROOT = Path(__file__).resolve().parent.parent


def test_the_builtin_table_is_what_the_modules_register():
    for module, provides in BUILTIN.items():
        registries = collect(make_plugin_manager(load_entry_points=False, default_plugins=(module,)))
        registered = {kind: tuple(sorted(r.items)) for kind, r in registries.items() if r.items}
        assert registered == {k: tuple(sorted(v)) for k, v in provides.items()}, module


def test_selection_picks_the_modules():
    assert builtin_modules_for({"phase": ["intro"], "cheat_detector": [], "scorer": ["llm"]}) == \
        ("phases.intro", "plugins.llm")
    assert builtin_modules_for({}) == ()


def test_a_server_without_vision_or_speech_never_imports_opencv_or_torch(tmp_path):
    """In a fresh interpreter: an engine configured with no cheat detector and no speech starts
    without importing cv2, torch or any vision/speech plugin module."""
    script = f"""
import asyncio, json, sys
sys.path.insert(0, {str(ROOT)!r})
from core.config import load_config
from core.engine import Engine

class Store:            # the engine touches no storage while starting
    async def list_report_pending(self): return []

async def main():
    config = load_config(overrides={{"engine": {{"phases": ["intro", "question"], "vad": "", "asr": "",
                                               "question_sources": ["bank"], "scorers": ["heuristic"],
                                               "cheat_detectors": [], "code_runner": ""}}}},
                         env={{"MIANSHI_DATA_DIR": {str(tmp_path)!r}}})
    engine = Engine(config, store=Store(), load_entry_points=False)
    await engine.start()
    loaded = sorted(m for m in sys.modules if m.startswith(("plugins.", "phases.")))
    print(json.dumps({{"cv2": "cv2" in sys.modules, "torch": "torch" in sys.modules, "loaded": loaded}}))
    await engine.close()

asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["cv2"] is False and result["torch"] is False, result
    assert not [m for m in result["loaded"] if m.startswith(("plugins.vision", "plugins.asr", "plugins.vad"))], result
