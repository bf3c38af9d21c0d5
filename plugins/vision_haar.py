"""Cheat detector "haar": counts frontal faces with OpenCV's Haar cascade
(``haarcascade_frontalface_default.xml`` shipped with opencv-python). Slower on the CPU than
BlazeFace here and with more false positives on textured backgrounds (see README, "Cheat detection on the video stream"); an
alternative or a second opinion that needs no model file beyond OpenCV itself.

Signals: ``no_face`` / ``multiple_faces`` / ``None`` like "blazeface". Settings, ``[plugins.haar]``:
``cascade`` (file name in ``cv2.data.haarcascades`` or a path), ``scale_factor`` (1.2),
``min_neighbors`` (5), ``min_size`` (smallest face side in pixels, 24).
"""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from core.events import CheatSignal
from core.hookspecs import hookimpl
from core.interfaces import PluginContext
from plugins._vision_util import FACE_COUNT_KINDS


class HaarFaceCounter:
    kinds = FACE_COUNT_KINDS
    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.2,
                 min_neighbors: int = 5, min_size: int = 24, name: str = "haar") -> None:
        path = Path(cascade)
        if not path.is_file():
            path = Path(cv2.data.haarcascades) / cascade
        if not path.is_file():
            raise FileNotFoundError(f"[plugins.haar] cascade file not found: {cascade}")
        if float(scale_factor) <= 1.0:
            raise ValueError("[plugins.haar] scale_factor must be > 1")
        self.name = name
        self.path = str(path)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self._local = threading.local()
        self._cascade()                      # fail at start-up if the file does not load

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "HaarFaceCounter":
        s = ctx.settings
        return cls(cascade=s.get("cascade", "haarcascade_frontalface_default.xml"),
                   scale_factor=s.get("scale_factor", 1.2), min_neighbors=s.get("min_neighbors", 5),
                   min_size=s.get("min_size", 24), name=ctx.name)

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = cv2.CascadeClassifier(self.path)
            if cascade.empty():
                raise RuntimeError(f"cannot load Haar cascade {self.path}")
            self._local.cascade = cascade
        return cascade

    def faces(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        gray = cv2.equalizeHist(gray)
        found = self._cascade().detectMultiScale(gray, scaleFactor=self.scale_factor,
                                                 minNeighbors=self.min_neighbors,
                                                 minSize=(self.min_size, self.min_size))
        return [tuple(int(v) for v in box) for box in (found if len(found) else [])]

    def count(self, image: np.ndarray) -> list:
        return self.faces(image)

    def detect(self, image: np.ndarray, state: dict) -> list[CheatSignal]:
        faces = self.faces(image)
        detail = {"faces": len(faces), "boxes": [[x, y, x + w, y + h] for x, y, w, h in faces[:5]]}
        if not faces:
            return [CheatSignal(self.name, "no_face", 1.0, detail)]
        if len(faces) >= 2:
            return [CheatSignal(self.name, "multiple_faces", 1.0, detail)]
        return [CheatSignal(self.name, None, 1.0, detail)]


SETTINGS = {"cascade": "haarcascade_frontalface_default.xml", "scale_factor": 1.2, "min_neighbors": 5, "min_size": 24}

@hookimpl
def register_cheat_detectors(register):
    register("haar", HaarFaceCounter.from_context, settings=SETTINGS)
