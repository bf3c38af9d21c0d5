"""A cheat detector for mianshi with a kind of its own, ``camera_covered``, as a third-party plugin.

A covered lens, a lens cap or a camera pointed at a wall gives frames that are nearly one flat
colour: little spread of brightness and almost no edges. Such a frame is a ``camera_covered``
signal; a frame with texture is "normal" evidence that ends the episode. The kind declares its own
candidate text and report label, so nothing in mianshi has to know it.

Enable it with one line of plugins.toml: ``cheat_detectors = ["blazeface", "facemesh_pose",
"camera_cover"]``. Settings, ``[plugins.camera_cover]``: ``max_std`` (brightness standard deviation
below which a frame is flat, default 6.0), ``max_edge_fraction`` (share of pixels on an edge,
default 0.002).
"""
from __future__ import annotations

import numpy as np

from core.events import CheatSignal
from core.hookspecs import hookimpl
from core.interfaces import CheatKind

CAMERA_COVERED = CheatKind("camera_covered", "摄像头画面被遮挡，请移开遮挡物并保持面部在画面中。", "摄像头被遮挡")


class CameraCoverDetector:
    kinds = (CAMERA_COVERED,)

    def __init__(self, name: str = "camera_cover", max_std: float = 6.0, max_edge_fraction: float = 0.002) -> None:
        if max_std <= 0 or not 0 < max_edge_fraction < 1:
            raise ValueError("[plugins.camera_cover] max_std must be > 0 and max_edge_fraction in (0, 1)")
        self.name = name
        self.max_std = float(max_std)
        self.max_edge_fraction = float(max_edge_fraction)

    def detect(self, image: np.ndarray, state: dict) -> list[CheatSignal]:
        """``image``: a BGR frame (height x width x 3, uint8). Blocking; runs in the vision pool."""
        gray = image.astype(np.float32).mean(axis=2)
        spread = float(gray.std())
        # edges: neighbouring pixels that differ by more than 24 grey levels
        edges = (np.abs(np.diff(gray, axis=1)) > 24).mean() + (np.abs(np.diff(gray, axis=0)) > 24).mean()
        detail = {"std": round(spread, 2), "edge_fraction": round(float(edges), 5)}
        if spread < self.max_std and edges < self.max_edge_fraction:
            score = 1.0 - spread / self.max_std
            return [CheatSignal(self.name, CAMERA_COVERED.name, round(score, 3), detail)]
        return [CheatSignal(self.name, None, 0.0, detail)]


def _factory(ctx) -> CameraCoverDetector:
    s = ctx.settings
    return CameraCoverDetector(ctx.name, s["max_std"], s["max_edge_fraction"])


@hookimpl
def register_cheat_detectors(register):
    register("camera_cover", _factory, settings={"max_std": 6.0, "max_edge_fraction": 0.002})
