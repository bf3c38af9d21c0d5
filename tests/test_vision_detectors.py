"""Per-detector face counts on the labelled image set built from scikit-image's public-domain
images (tests/vision_images.py)."""
from __future__ import annotations

import pytest

from tests import vision_images as vi
from core.events import CheatSignal
from plugins.vision_blazeface import BlazeFaceCounter
from plugins.vision_haar import HaarFaceCounter

COUNT_CATEGORIES = ("one_face", "two_faces", "no_face", "small_faces", "yaw")
KNOWN_BLAZEFACE_MISSES = {"far_32px_grass"}          # face 32 px wide: below BlazeFace full-range's reach


@pytest.fixture(scope="module")
def images():
    return vi.labelled_set()


@pytest.fixture(scope="module")
def blazeface():
    return BlazeFaceCounter("full_range")


def test_labelled_set_shape(images):
    cats = {c: [i for i in images if i.category == c] for c in COUNT_CATEGORIES}
    assert all(cats.values()), "every category has images"
    assert all(i.image.shape == (480, 640, 3) for i in images)
    assert {i.faces for i in cats["two_faces"]} == {2} and {i.faces for i in cats["no_face"]} == {0}
    assert len({i.name for i in images}) == len(images)


@pytest.fixture(scope="module")
def blazeface_counts(images, blazeface):
    return {i.name: len(blazeface.count(i.image)) for i in images}


def test_blazeface_full_range_counts(images, blazeface_counts):
    wrong = {i.name: (i.faces, blazeface_counts[i.name]) for i in images
             if i.name not in KNOWN_BLAZEFACE_MISSES and blazeface_counts[i.name] != i.faces}
    assert wrong == {}, f"label vs counted: {wrong}"


def test_blazeface_known_limit_32px(blazeface_counts):
    """Documented limitation (README, "Cheat detection on the video stream"): a 32 px face on a 640×480 frame is not found. If this
    starts failing, the model got better: move the image out of KNOWN_BLAZEFACE_MISSES."""
    assert blazeface_counts["far_32px_grass"] == 0


def test_blazeface_short_range_is_for_near_faces(images):
    short = BlazeFaceCounter("short_range")
    near = [i for i in images if i.category in ("one_face", "no_face", "yaw")]
    assert all(len(short.count(i.image)) == i.faces for i in near)
    # the 128-px model misses faces of 48 px and less, which is why full_range is the default
    far = [i for i in images if i.category == "small_faces"]
    assert sum(len(short.count(i.image)) == i.faces for i in far) < len(far)


def test_blazeface_signals(images, blazeface):
    by_name = {i.name: i for i in images}
    [one] = blazeface.detect(by_name["webcam_distance"].image, {})
    [two] = blazeface.detect(by_name["side_by_side_brick"].image, {})
    [none] = blazeface.detect(by_name["chelsea"].image, {})
    assert isinstance(one, CheatSignal) and one.kind is None and one.detail["faces"] == 1
    assert two.kind == "multiple_faces" and two.detail["faces"] == 2 and 0.5 < two.score <= 1
    assert none.kind == "no_face" and none.detail["faces"] == 0
    assert one.detector == "blazeface"


def test_blazeface_min_face_fraction_ignores_small_background_faces(images):
    big_only = BlazeFaceCounter("full_range", min_face_fraction=0.2)
    img = next(i for i in images if i.name == "webcam_plus_person_behind").image
    assert len(big_only.count(img)) == 1


def test_haar_counts(images):
    """The cascade on the images it gets right (its false positives on textured images such as
    coins are measured by bench/bench_vision.py and listed in README, "Cheat detection on the video stream"). ~0.3 s an image, so
    only a subset runs here."""
    haar = HaarFaceCounter()
    by_name = {i.name: i for i in images}
    for name in ("portrait_letterbox", "close_up", "on_coffee_left", "side_by_side_brick",
                 "one_behind_rocket", "chelsea", "rocket"):
        assert len(haar.count(by_name[name].image)) == by_name[name].faces, name
    [sig] = haar.detect(by_name["side_by_side_coffee"].image, {})
    assert sig.kind == "multiple_faces" and sig.detector == "haar" and sig.detail["faces"] == 2
    [sig] = haar.detect(by_name["coffee"].image, {})
    assert sig.kind == "no_face"


def test_haar_rejects_bad_settings():
    with pytest.raises(FileNotFoundError):
        HaarFaceCounter(cascade="no_such_cascade.xml")
    with pytest.raises(ValueError):
        HaarFaceCounter(scale_factor=1.0)


def test_blazeface_rejects_sparse_model():
    with pytest.raises(ValueError, match="sparse"):
        BlazeFaceCounter("full_range_sparse")
