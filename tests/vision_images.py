"""A labelled 640×480 image set for the vision detectors, built at test time from images shipped
with scikit-image (no downloads):

- faces come from ``skimage.data.astronaut()`` (NASA portrait of Eileen Collins, public domain);
- backgrounds and face-free frames from ``coffee``, ``rocket``, ``chelsea`` (a cat: a hard negative),
  ``brick``, ``grass``, ``hubble_deep_field``, ``coins``, ``immunohistochemistry``, ``page``
  (see skimage's data/README.txt for each image's licence: public domain or CC0).

Categories and how the labels are obtained:

- ``one_face``: the portrait letterboxed, mirrored, zoomed to webcam distance, shifted, darkened,
  brightened, grey, low JPEG quality. Label: 1 face (by construction).
- ``two_faces``: two head crops pasted side by side, or one smaller behind the other. Label: 2.
- ``no_face``: the face-free images above, resized. Label: 0.
- ``small_faces``: a head crop downscaled to a 48, 40 or 32 px wide face on a background ("far
  away"), one or two. Label: 1 or 2.
- ``yaw``: the head turned by a known yaw. There is only one public-domain colour portrait in
  skimage, so turned heads are synthesised, and this is how: the 468-point face mesh is run once on
  the frontal portrait; its x, y (pixels) and z (the model's own relative depth estimate) give a
  2.5D face surface, which is rotated about a vertical axis behind the face by the label angle and
  re-projected orthographically, each mesh triangle's texture warped from the frontal photo
  (back-facing triangles dropped, painted far to near) over the portrait whose original face area
  was inpainted. The label is therefore exact for the rendered surface, but the surface's depth
  comes from the same mesh model the "facemesh_pose" detector uses, and hair/ears do not turn. It
  tests the geometry (landmarks -> solvePnP -> yaw relative to baseline), not robustness to real
  head turns. Label: 1 face and the yaw in degrees (positive = the face turned towards the image's
  right side).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import skimage.data

W, H = 640, 480


@dataclass
class Labelled:
    name: str
    category: str
    image: np.ndarray           # BGR uint8, 640×480
    faces: int
    yaw: float | None = None


def _bgr(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim == 2:
        return cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(rgb[..., :3], cv2.COLOR_RGB2BGR)


@functools.lru_cache(maxsize=None)
def astronaut() -> np.ndarray:
    return _bgr(skimage.data.astronaut())


@functools.lru_cache(maxsize=None)
def backgrounds() -> dict[str, np.ndarray]:
    d = skimage.data
    return {"coffee": _bgr(d.coffee()), "rocket": _bgr(d.rocket()), "chelsea": _bgr(d.chelsea()),
            "brick": _bgr(d.brick()), "grass": _bgr(d.grass()), "hubble": _bgr(d.hubble_deep_field()),
            "coins": _bgr(d.coins()), "ihc": _bgr(d.immunohistochemistry()), "page": _bgr(d.page())}


def cover(image: np.ndarray, w: int = W, h: int = H) -> np.ndarray:
    """Resize and centre-crop to fill w×h."""
    ih, iw = image.shape[:2]
    s = max(w / iw, h / ih)
    r = cv2.resize(image, (math.ceil(iw * s), math.ceil(ih * s)), interpolation=cv2.INTER_AREA)
    y0, x0 = (r.shape[0] - h) // 2, (r.shape[1] - w) // 2
    return r[y0:y0 + h, x0:x0 + w].copy()


def letterbox(image: np.ndarray, w: int = W, h: int = H, fill: int = 90) -> np.ndarray:
    ih, iw = image.shape[:2]
    s = min(w / iw, h / ih)
    nw, nh = round(iw * s), round(ih * s)
    out = np.full((h, w, 3), fill, np.uint8)
    x0, y0 = (w - nw) // 2, (h - nh) // 2
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


# Head-and-shoulders crop of the portrait; the face box in it is about 105 px wide.
HEAD_CROP = (100, 0, 360, 300)     # x0, y0, x1, y1 in the 512×512 portrait
FACE_WIDTH_IN_CROP = 105.0


def head(face_width: float, flip: bool = False) -> np.ndarray:
    x0, y0, x1, y1 = HEAD_CROP
    crop = astronaut()[y0:y1, x0:x1]
    if flip:
        crop = cv2.flip(crop, 1)
    s = face_width / FACE_WIDTH_IN_CROP
    return cv2.resize(crop, (max(8, round(crop.shape[1] * s)), max(8, round(crop.shape[0] * s))),
                      interpolation=cv2.INTER_AREA)


def paste(canvas: np.ndarray, patch: np.ndarray, cx: int, top: int) -> np.ndarray:
    """Paste ``patch`` with a feathered elliptical edge, centred at ``cx``, clipped to the canvas."""
    ph, pw = patch.shape[:2]
    mask = np.zeros((ph, pw), np.float32)
    cv2.ellipse(mask, (pw // 2, ph // 2), (int(pw * 0.47), int(ph * 0.49)), 0, 0, 360, 1.0, -1)
    k = max(3, (min(ph, pw) // 10) | 1)
    mask = cv2.GaussianBlur(mask, (k, k), 0)[..., None]
    x0 = cx - pw // 2
    cx0, cy0 = max(0, x0), max(0, top)
    cx1, cy1 = min(canvas.shape[1], x0 + pw), min(canvas.shape[0], top + ph)
    if cx1 <= cx0 or cy1 <= cy0:
        return canvas
    px0, py0 = cx0 - x0, cy0 - top
    region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
    p = patch[py0:py0 + (cy1 - cy0), px0:px0 + (cx1 - cx0)].astype(np.float32)
    m = mask[py0:py0 + (cy1 - cy0), px0:px0 + (cx1 - cx0)]
    canvas[cy0:cy1, cx0:cx1] = (p * m + region * (1 - m)).astype(np.uint8)
    return canvas


def gamma(image: np.ndarray, g: float) -> np.ndarray:
    lut = np.array([((i / 255.0) ** g) * 255 for i in range(256)], np.uint8)
    return cv2.LUT(image, lut)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


# --- yaw rendering ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _mesh_of_portrait() -> np.ndarray:
    from plugins._vision_util import FaceMesh, shared_blazeface
    img = astronaut()
    faces = shared_blazeface("full_range", 0.5).detect(img)
    if len(faces) != 1:
        raise RuntimeError(f"expected one face in the portrait, found {len(faces)}")
    lm = FaceMesh().landmarks(img, faces[0])
    if lm is None:
        raise RuntimeError("face mesh found no face in the portrait")
    return lm


@functools.lru_cache(maxsize=None)
def _portrait_without_face() -> np.ndarray:
    img = astronaut()
    lm = _mesh_of_portrait()
    hull = cv2.convexHull(lm[:, :2].astype(np.int32))
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    mask = cv2.dilate(mask, np.ones((9, 9), np.uint8))
    return cv2.inpaint(img, mask, 7, cv2.INPAINT_TELEA)


@functools.lru_cache(maxsize=None)
def _triangles() -> np.ndarray:
    from scipy.spatial import Delaunay
    return Delaunay(_mesh_of_portrait()[:, :2]).simplices


def render_yaw(yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """The portrait with its face surface turned by ``yaw_deg`` (and ``pitch_deg``), 512×512."""
    src_img = astronaut()
    out = _portrait_without_face().copy()
    lm = _mesh_of_portrait()
    tris = _triangles()
    face_w = lm[:, 0].max() - lm[:, 0].min()
    pivot = np.array([lm[:, 0].mean(), lm[:, 1].mean(), lm[:, 2].mean() + 0.6 * face_w])
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    # yaw about the vertical axis, then pitch about the horizontal axis; y down, z away from camera.
    # A positive yaw moves the nose (nearest point) towards +x: the face turns to the image's right.
    ry = np.array([[math.cos(a), 0, -math.sin(a)], [0, 1, 0], [math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), math.sin(b)], [0, -math.sin(b), math.cos(b)]])
    p = (lm - pivot) @ (rx @ ry).T + pivot
    src2, dst2 = lm[:, :2], p[:, :2]

    def area(t: np.ndarray) -> float:
        return float((t[1, 0] - t[0, 0]) * (t[2, 1] - t[0, 1]) - (t[2, 0] - t[0, 0]) * (t[1, 1] - t[0, 1]))

    order = sorted(range(len(tris)), key=lambda i: -p[tris[i], 2].mean())   # far first
    for i in order:
        tri = tris[i]
        s, d = src2[tri].astype(np.float32), dst2[tri].astype(np.float32)
        if area(s) == 0 or area(d) * area(s) <= 0 or abs(area(d)) < 0.5:
            continue                                                       # back-facing
        x, y, w, h = cv2.boundingRect(np.round(d).astype(np.int32))
        x, y = max(0, x - 1), max(0, y - 1)
        w, h = min(out.shape[1] - x, w + 2), min(out.shape[0] - y, h + 2)
        if w <= 0 or h <= 0:
            continue
        m = cv2.getAffineTransform(s, d - np.float32([x, y]))
        warped = cv2.warpAffine(src_img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(mask, np.round(d - [x, y]).astype(np.int32), 1, lineType=cv2.LINE_8)
        roi = out[y:y + h, x:x + w]
        roi[mask > 0] = warped[mask > 0]
    return out


YAW_ANGLES = (-45.0, -30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0, 45.0)


def yaw_frame(yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """A webcam-like 640×480 frame of the turned head (face about 200 px wide)."""
    img = render_yaw(yaw_deg, pitch_deg)
    crop = img[0:330, 60:500]                      # head and shoulders, 440×330 (4:3)
    return cv2.resize(crop, (W, H), interpolation=cv2.INTER_LINEAR)


# --- the set ---------------------------------------------------------------------------------------
def one_face() -> list[Labelled]:
    a = astronaut()
    bg = backgrounds()
    webcam = cv2.resize(a[0:330, 60:500], (W, H))             # face ~150 px: at a laptop camera
    out = [
        Labelled("portrait_letterbox", "one_face", letterbox(a), 1),
        Labelled("portrait_mirrored", "one_face", cv2.flip(letterbox(a), 1), 1),
        Labelled("webcam_distance", "one_face", webcam, 1),
        Labelled("close_up", "one_face", cover(a[40:220, 130:330]), 1),
        Labelled("dark", "one_face", gamma(webcam, 2.2), 1),
        Labelled("bright", "one_face", gamma(webcam, 0.5), 1),
        Labelled("grey", "one_face", cv2.cvtColor(cv2.cvtColor(webcam, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR), 1),
        Labelled("jpeg_q25", "one_face", jpeg_roundtrip(webcam, 25), 1),
        Labelled("on_coffee_left", "one_face", paste(cover(bg["coffee"]), head(110), 180, 60), 1),
        Labelled("on_brick_right", "one_face", paste(cover(bg["brick"]), head(90, flip=True), 470, 120), 1),
    ]
    return out


def two_faces() -> list[Labelled]:
    bg = backgrounds()
    a = paste(paste(cover(bg["brick"]), head(100), 170, 70), head(100, flip=True), 470, 70)
    b = paste(paste(cover(bg["coffee"]), head(120), 200, 40), head(80, flip=True), 480, 140)
    c = paste(paste(cover(bg["rocket"]), head(70, flip=True), 470, 40), head(140), 230, 80)   # one behind
    d = paste(paste(cover(bg["grass"]), head(90), 160, 150), head(90), 480, 120)
    webcam = cv2.resize(astronaut()[0:330, 60:500], (W, H))
    e = paste(webcam.copy(), head(60, flip=True), 560, 30)                           # someone behind
    return [Labelled("side_by_side_brick", "two_faces", a, 2),
            Labelled("side_by_side_coffee", "two_faces", b, 2),
            Labelled("one_behind_rocket", "two_faces", c, 2),
            Labelled("same_side_grass", "two_faces", d, 2),
            Labelled("webcam_plus_person_behind", "two_faces", e, 2)]


def no_face() -> list[Labelled]:
    bg = backgrounds()
    out = [Labelled(f"{name}", "no_face", cover(img), 0) for name, img in bg.items()]
    out.append(Labelled("grey_frame", "no_face", np.full((H, W, 3), 128, np.uint8), 0))
    out.append(Labelled("dark_frame", "no_face", np.full((H, W, 3), 8, np.uint8), 0))
    # the portrait with the face area inpainted away: same suit, flag, helmet, no face
    out.append(Labelled("portrait_face_removed", "no_face", letterbox(_portrait_without_face()), 0))
    return out


def small_faces() -> list[Labelled]:
    bg = backgrounds()
    out = []
    for fw, name in ((48, "coffee"), (40, "brick"), (32, "grass")):
        out.append(Labelled(f"far_{fw}px_{name}", "small_faces",
                            paste(cover(bg[name]), head(fw), 320, 200), 1))
    out.append(Labelled("two_far_48px", "small_faces",
                        paste(paste(cover(bg["rocket"]), head(48), 220, 200), head(48, flip=True), 420, 210), 2))
    return out


def yaw_set() -> list[Labelled]:
    return [Labelled(f"yaw_{int(y):+d}", "yaw", yaw_frame(y), 1, yaw=y) for y in YAW_ANGLES]


def labelled_set() -> list[Labelled]:
    return one_face() + two_faces() + no_face() + small_faces() + yaw_set()
