"""CheatMonitor: frames -> per-kind episodes, one report per episode, tab events, bad frames, the
bounded queue. Real detectors on real (labelled) images, real thread pool."""
from __future__ import annotations

import asyncio
import os
import threading

import pytest

from tests import vision_images as vi
from core.cheat import CheatMonitor, VisionPool
from core.clock import ManualClock, SystemClock
from plugins._vision_util import encode_jpeg
from plugins.vision_blazeface import BlazeFaceCounter
from plugins.vision_facemesh import FaceMeshPose


@pytest.fixture(scope="module")
def jpegs():
    by_name = {i.name: i for i in vi.one_face() + vi.two_faces() + vi.no_face()}
    return {"one": encode_jpeg(by_name["webcam_distance"].image),
            "two": encode_jpeg(by_name["side_by_side_brick"].image),
            "none": encode_jpeg(by_name["coffee"].image),
            "turned": encode_jpeg(vi.yaw_frame(45.0)), "straight": encode_jpeg(vi.yaw_frame(0.0))}


@pytest.fixture(scope="module")
def pool():
    p = VisionPool(workers=1)
    yield p
    p.close()


@pytest.fixture(scope="module")
def blazeface():
    return BlazeFaceCounter("full_range")


class Recorder:
    def __init__(self):
        self.episodes, self.ended, self.errors = [], [], []

    async def on_episode(self, record):
        self.episodes.append(record)

    async def on_end(self, record):
        self.ended.append(record)

    async def on_error(self, text):
        self.errors.append(text)

    def monitor(self, detectors, pool, clock=None, **settings):
        base = {"consecutive_frames": 3, "clear_frames": 2, "queue_size": 100}
        base.update(settings)
        return CheatMonitor(detectors, pool, clock or SystemClock(), self.on_episode, self.on_error,
                            base, on_episode_end=self.on_end)


async def _feed(monitor, frames):
    for f in frames:
        await monitor.submit_frame(f)
        await monitor.drain()


async def test_one_two_none_one_gives_one_episode_each(pool, blazeface, jpegs):
    rec = Recorder()
    m = rec.monitor([blazeface], pool)
    await _feed(m, [jpegs["one"]] * 4 + [jpegs["two"]] * 5 + [jpegs["none"]] * 6 + [jpegs["one"]] * 4)
    assert [e["kind"] for e in rec.episodes] == ["multiple_faces", "no_face"]
    multi, none = rec.episodes
    assert multi["detector"] == "blazeface" and multi["detail"]["faces"] == 2
    assert multi["frames"] == 5 and none["frames"] == 6                # counted until closed
    assert [e["kind"] for e in rec.ended] == ["multiple_faces", "no_face"]
    assert rec.ended[0] is multi                                         # the same record object
    assert multi["started_at"] <= multi["ended_at"] <= none["started_at"] <= none["ended_at"]
    assert multi["started_at"].tzinfo is not None                      # a UTC datetime, as stored
    assert m.stats["frames_processed"] == 19 and m.stats["frames_invalid"] == 0
    assert rec.errors == []
    await m.aclose()


async def test_short_runs_do_not_open_episodes(pool, blazeface, jpegs):
    rec = Recorder()
    m = rec.monitor([blazeface], pool, consecutive_frames=3)
    await _feed(m, [jpegs["two"]] * 2 + [jpegs["one"]] + [jpegs["two"]] * 2 + [jpegs["none"]] * 2
                + [jpegs["one"]])
    assert rec.episodes == []
    await _feed(m, [jpegs["two"]] * 3)
    assert [e["kind"] for e in rec.episodes] == ["multiple_faces"]
    await m.aclose()
    # closing the session closes the open episode
    assert rec.ended and rec.ended[0]["end_reason"] == "session_end"


async def test_one_normal_frame_does_not_split_an_episode(pool, blazeface, jpegs):
    rec = Recorder()
    m = rec.monitor([blazeface], pool, clear_frames=2)
    await _feed(m, [jpegs["none"]] * 3 + [jpegs["one"]] + [jpegs["none"]] * 3 + [jpegs["one"]] * 2)
    assert [e["kind"] for e in rec.episodes] == ["no_face"]
    assert len(rec.ended) == 1 and rec.ended[0]["frames"] == 6
    await m.aclose()


async def test_looking_away_episode(pool, blazeface, jpegs):
    rec = Recorder()
    m = rec.monitor([blazeface, FaceMeshPose(baseline_frames=3)], pool)
    await _feed(m, [jpegs["straight"]] * 4 + [jpegs["turned"]] * 3 + [jpegs["straight"]] * 2)
    assert [e["kind"] for e in rec.episodes] == ["looking_away"]
    assert rec.episodes[0]["detector"] == "facemesh_pose" and rec.episodes[0]["detail"]["d_yaw"] > 20
    assert len(rec.ended) == 1
    await m.aclose()


async def test_tab_hidden_episode_opens_at_once(pool, blazeface):
    rec = Recorder()
    m = rec.monitor([blazeface], pool)
    await m.client_event("tab_hidden")
    await m.client_event("tab_hidden")                 # still the same episode
    assert [e["kind"] for e in rec.episodes] == ["tab_hidden"]
    assert rec.episodes[0]["detector"] == "client"
    await m.client_event("tab_visible")
    await m.client_event("tab_visible")
    assert len(rec.ended) == 1 and "ended_at" in rec.ended[0]
    await m.client_event("tab_hidden")
    assert len(rec.episodes) == 2
    with pytest.raises(ValueError):
        await m.client_event("window_blur")
    await m.aclose()


async def test_bad_frame_gets_an_error_and_is_skipped(pool, blazeface, jpegs):
    rec = Recorder()
    m = rec.monitor([blazeface], pool)
    await _feed(m, [jpegs["two"]] * 2 + [b"not a jpeg", jpegs["two"][:300]] + [jpegs["two"]])
    assert len(rec.errors) == 2 and all("视频帧" in t for t in rec.errors)
    assert m.stats["frames_invalid"] == 2
    # the bad frames neither broke nor counted in the run: 3 good two-face frames open the episode
    assert [e["kind"] for e in rec.episodes] == ["multiple_faces"]
    await m.submit_frame(b"\xff\xd8" + bytes(2_000_000))
    assert "过大" in rec.errors[-1]
    await m.aclose()


async def test_full_queue_drops_the_oldest_frames(pool, blazeface, jpegs):
    rec = Recorder()
    m = rec.monitor([blazeface], pool, queue_size=2)
    for _ in range(10):                                 # no await yields to the worker in between
        await m.submit_frame(jpegs["one"])
    await m.drain()
    assert m.stats["frames_received"] == 10
    assert m.stats["frames_dropped"] == 8 and m.stats["frames_processed"] == 2
    await m.aclose()


async def test_stale_frames_are_dropped(pool, blazeface, jpegs):
    rec = Recorder()
    clock = ManualClock()
    m = rec.monitor([blazeface], pool, clock=clock, max_frame_age_seconds=5.0)
    await m.submit_frame(jpegs["one"])
    await clock.advance(6.0)                            # the frame waited too long before its turn
    await m.drain()
    assert m.stats["frames_dropped"] == 1 and m.stats["frames_processed"] == 0
    await m.aclose()


async def test_detection_runs_off_the_event_loop_and_a_failing_detector_is_isolated(pool, blazeface, jpegs):
    loop_thread = threading.current_thread().name
    seen, niceness = [], []

    class ThreadProbe(BlazeFaceCounter):
        """The real BlazeFace counter, recording which thread runs it."""
        def detect(self, image, state):
            seen.append(threading.current_thread().name)
            niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return super().detect(image, state)

    class Broken:
        name = "broken"

        def detect(self, image, state):
            raise RuntimeError("plugin bug")

    rec = Recorder()
    m = rec.monitor([Broken(), ThreadProbe("full_range")], pool)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    t = asyncio.create_task(ticker())
    await _feed(m, [jpegs["two"]] * 3)
    t.cancel()
    assert seen and all(name.startswith("vision") and name != loop_thread for name in seen)
    assert ticks > 0                                      # the loop kept running meanwhile
    main_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert all(n >= min(19, main_nice + 10) for n in niceness)   # vision yields the CPU to audio
    assert m.stats["detector_errors"] == 3
    assert [e["kind"] for e in rec.episodes] == ["multiple_faces"]
    await m.aclose()
