"""Head pose and the "facemesh_pose" detector on synthetically turned heads (how the yaw labels are
made, and what that does and does not test, is in tests/vision_images.py)."""
from __future__ import annotations

import pytest

from tests import vision_images as vi
from plugins._vision_util import FaceMesh, shared_blazeface
from plugins.vision_facemesh import FaceMeshPose


@pytest.fixture(scope="module")
def frames():
    return {y: vi.yaw_frame(y) for y in vi.YAW_ANGLES}


@pytest.fixture(scope="module")
def detector():
    return FaceMeshPose(yaw_threshold=20.0, pitch_threshold=20.0, baseline_frames=3)


def test_mesh_has_468_points_on_the_face():
    img = vi.astronaut()
    [face] = shared_blazeface("full_range", 0.5).detect(img)
    lm = FaceMesh().landmarks(img, face)
    assert lm.shape == (468, 3)
    x0, y0, x1, y1 = face.box
    inside = ((lm[:, 0] > x0 - 15) & (lm[:, 0] < x1 + 15) & (lm[:, 1] > y0 - 25) & (lm[:, 1] < y1 + 15))
    assert inside.mean() > 0.95
    nose, chin = lm[1], lm[152]
    assert chin[1] > nose[1] + 20           # chin below the nose tip
    assert lm[33, 0] < nose[0] < lm[263, 0]  # nose between the outer eye corners


def test_relative_yaw_follows_the_label(frames, detector):
    yaws = {y: detector.pose(img).yaw for y, img in frames.items()}
    rel = {y: yaws[y] - yaws[0.0] for y in yaws}
    labels = sorted(rel)
    # monotonic in the label, right sign, and within the measured under-estimate (README, "Cheat detection on the video stream":
    # about 0.75× the rendered angle, partly because the render uses the mesh's own shallow depth)
    assert all(rel[a] < rel[b] for a, b in zip(labels, labels[1:])), rel
    for y in labels:
        if y != 0:
            assert 0.45 * abs(y) <= abs(rel[y]) <= 1.3 * abs(y) and (rel[y] > 0) == (y > 0), (y, rel[y])


def test_looking_away_against_the_baseline(frames, detector):
    state: dict = {}
    for _ in range(3):                                   # baseline: looking at the screen
        [sig] = detector.detect(frames[0.0], state)
        assert sig.kind is None and sig.detail["baseline"] == "collecting"
    assert "baseline" in state
    kinds = {y: detector.detect(frames[y], state)[0].kind for y in vi.YAW_ANGLES}
    assert kinds[0.0] is None and kinds[10.0] is None and kinds[-10.0] is None
    assert kinds[45.0] == kinds[-45.0] == kinds[30.0] == kinds[-30.0] == "looking_away"
    [sig] = detector.detect(frames[45.0], state)
    assert sig.detector == "facemesh_pose" and sig.score > 1 and sig.detail["d_yaw"] > 20


def test_baseline_is_per_candidate(frames, detector):
    """A candidate whose camera sits to the side (head turned 30° all along) is not flagged for it."""
    state: dict = {}
    for _ in range(3):
        detector.detect(frames[30.0], state)
    assert detector.detect(frames[30.0], state)[0].kind is None
    assert detector.detect(frames[-30.0], state)[0].kind == "looking_away"


def test_no_face_gives_no_pose_signal(detector):
    bg = vi.cover(vi.backgrounds()["coffee"])
    assert detector.detect(bg, {}) == []
