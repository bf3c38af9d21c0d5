"""Recordings and cheat frames (issue 17): the audio ring, Opus encoding, GridFS storage with the
owner as only reader, HTTP ranges, retention, and DELETE leaving nothing behind."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import numpy as np
import pytest

from api.media import RangeNotSatisfiable, parse_range
from core.recording import AudioRing, MediaEncoder, Recorder, RetentionSweep, decode_audio, encode_opus, thumbnail_jpeg
from core.testing import MemoryStore
from core.timeutil import utcnow


# --- the ring ----------------------------------------------------------------------------------------
def test_ring_keeps_recent_audio_by_absolute_position():
    ring = AudioRing(keep_samples=1000)
    for i in range(10):                                  # ten chunks of 300 samples, value = position
        ring.append(np.arange(i * 300, (i + 1) * 300, dtype=np.int16).tobytes())
    assert ring.total == 3000
    assert ring.start == 3000 - 1200                    # whole chunks: >= keep_samples are kept
    assert np.array_equal(ring.slice(2000, 2400), np.arange(2000, 2400, dtype=np.int16))
    assert np.array_equal(ring.slice(1500, 1900), np.arange(1800, 1900, dtype=np.int16))   # clipped at start
    assert np.array_equal(ring.slice(2990, 5000), np.arange(2990, 3000, dtype=np.int16))   # clipped at end
    assert ring.slice(100, 200).size == 0


def test_ring_refuses_half_samples():
    with pytest.raises(ValueError):
        AudioRing(10).append(b"\x00\x01\x02")


# --- encoding ----------------------------------------------------------------------------------------
def test_opus_round_trip_keeps_length_and_signal():
    t = np.arange(32000) / 16000
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    data = encode_opus(tone)
    assert data[:4] == b"OggS" and b"OpusHead" in data[:200]
    samples, rate = decode_audio(data)
    assert rate == 16000 and abs(samples.size - tone.size) <= 160
    # the tone survives: the decoded spectrum peaks at 440 Hz
    spectrum = np.abs(np.fft.rfft(samples[:16000]))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) <= 2
    with pytest.raises(ValueError):
        encode_opus(np.zeros(0, np.int16))


def test_thumbnail_is_a_small_jpeg():
    from core import frames
    image = np.full((480, 640, 3), 120, np.uint8)
    thumb = thumbnail_jpeg(frames.encode_jpeg(image), 320)
    assert frames.jpeg_dimensions(thumb) == (320, 240)


# --- ranges ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("header,expected", [
    (None, None), ("bytes=0-9", (0, 9)), ("bytes=10-", (10, 99)), ("bytes=-10", (90, 99)),
    ("bytes=50-500", (50, 99)), ("items=0-5", None), ("bytes=0-1,5-6", None)])
def test_parse_range(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=9-3", "bytes=-0", "bytes=abc", "bytes=-"])
def test_parse_range_refuses_unsatisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


# --- the recorder on the in-memory store ---------------------------------------------------------------
async def test_recorder_cuts_the_utterance_span_and_stores_it_without_blocking():
    store = MemoryStore()
    iid, _ = store.add("u1", {}, {})
    tasks: set = set()
    recorder = Recorder(store=store, user_id="u1", interview_id=iid, settings={"buffer_seconds": 10},
                        run_blocking=lambda fn, *a: asyncio.to_thread(fn, *a), track=tasks.add)
    t = np.arange(16000 * 3) / 16000
    audio = (np.sin(2 * np.pi * 300 * t) * 6000).astype(np.int16)
    for i in range(0, audio.size, 640):
        recorder.feed(audio[i:i + 640].tobytes())
    uid = recorder.utterance(0.5, 2.0)
    assert uid not in store.media                     # written in the background
    await asyncio.gather(*tasks)
    saved = store.media[uid]
    assert saved["kind"] == "recording" and saved["user_id"] == "u1" and saved["content_type"] == "audio/ogg"
    samples, _ = decode_audio(saved["data"])
    assert abs(samples.size / 16000 - 1.5) < 0.02
    assert saved["duration"] == pytest.approx(1.5)
    # a typed answer gets an id and no recording; a disabled recorder records nothing
    assert recorder.utterance(None, None) not in store.media
    off = Recorder(store=store, user_id="u1", interview_id=iid, settings={"enabled": False},
                   run_blocking=None, track=tasks.add)
    off.feed(audio.tobytes())
    before = len(store.media)
    assert off.utterance(0.0, 1.0) and off.frame(b"jpeg") is None and len(store.media) == before


async def test_the_encoder_runs_at_low_priority_and_bounds_the_audio_waiting_for_it():
    """The encoder's thread is reniced (the audio path runs first on a busy server); while more than
    ``max_pending_seconds`` of audio waits for it, a new utterance is not recorded (counted), and
    once the backlog has gone recording resumes."""
    import os
    import threading
    encoder = MediaEncoder(workers=1, nice=7, max_pending_seconds=2.0)
    try:
        niceness = await encoder.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert niceness >= 7                      # setpriority sets the level (lowering it needs privileges)
        store = MemoryStore()
        iid, _ = store.add("u1", {}, {})
        tasks: set = set()
        recorder = Recorder(store=store, user_id="u1", interview_id=iid, settings={"buffer_seconds": 10},
                            run_blocking=None, track=tasks.add, encoder=encoder)
        t = np.arange(16000 * 4) / 16000
        recorder.feed((np.sin(2 * np.pi * 300 * t) * 6000).astype(np.int16).tobytes())
        gate = threading.Event()
        held = asyncio.ensure_future(encoder.run(gate.wait, 10))    # the encoder is busy
        first = recorder.utterance(0.0, 1.5)                        # 1.5 s waits
        second = recorder.utterance(1.5, 3.0)                       # 3.0 s > 2.0: not recorded
        assert encoder.pending == pytest.approx(1.5)
        assert recorder.stats["skipped_busy"] == 1 and encoder.stats["skipped_busy"] == 1
        gate.set()
        await held
        await asyncio.gather(*tasks)
        assert first in store.media and second not in store.media and encoder.pending == 0
        third = recorder.utterance(3.0, 4.0)                        # room again
        await asyncio.gather(*tasks)
        assert third in store.media and encoder.stats["encoded"] >= 3
        assert encoder.stats["encode_cpu_seconds"] > 0
    finally:
        encoder.close()


# --- GridFS on the real (embedded) database -------------------------------------------------------------
async def _interview(store, user_id="alice"):
    return (await store.interviews.create(user_id, {"position_name": "后端"}))["_id"]


async def test_gridfs_owner_only_and_retention_sweep(store):
    iid = await _interview(store)
    audio = encode_opus((np.random.default_rng(0).standard_normal(16000) * 3000).astype(np.int16))
    await store.save_media("alice", iid, "rec1", kind="recording", data=audio, content_type="audio/ogg",
                           meta={"audio_start": 1.0, "audio_end": 2.0})
    doc, data = await store.media.get("alice", iid, "rec1", "recording")
    assert data == audio and doc["metadata"]["audio_end"] == 2.0
    assert await store.media.get("mallory", iid, "rec1", "recording") is None
    assert await store.media.get("alice", iid, "rec1", "frame") is None          # wrong kind
    assert await store.media.get("alice", str(int(iid) + 32), "rec1", "recording") is None
    with pytest.raises(ValueError):
        await store.save_media("alice", iid, "x", kind="video", data=b"1", content_type="x")

    sweep = RetentionSweep(store, clock=None, settings={"retention_days": 30})
    assert await sweep.run_once() == 0                                       # fresh: kept
    assert await sweep.run_once(now=utcnow() + timedelta(days=31)) == 1      # expired: deleted
    assert await store.media.get("alice", iid, "rec1", "recording") is None
    assert await store.db[f"media_{int(iid) % 32:02d}.chunks"].count_documents({}) == 0


async def test_gridfs_chunk_index_is_plain_and_an_old_unique_one_is_replaced(store):
    """mongoeco checks a unique index by decoding the whole collection at every insert: the chunk
    index GridFS would create unique is created plain before a shard's first write, and a unique one
    (an earlier version's data) is replaced. Concurrent first writes prepare the shard once."""
    from storage.media import CHUNKS_INDEX, MediaRepository
    iid = await _interview(store)
    chunks = store.db[f"media_{int(iid) % 32:02d}.chunks"]
    await chunks.create_index(list(CHUNKS_INDEX), unique=True, name="files_id_1_n_1")   # as GridFS makes it
    media = MediaRepository(store.db)                  # a fresh process's repository
    await asyncio.gather(*(media.put("alice", iid, f"r{i}", kind="recording", data=b"OggS" * (100 + i),
                                     content_type="audio/ogg") for i in range(6)))
    indexes = [ix for ix in await chunks.list_indexes().to_list(None) if tuple(ix["key"].items()) == CHUNKS_INDEX]
    assert len(indexes) == 1 and not indexes[0].get("unique")
    for i in range(6):
        doc, data = await media.get("alice", iid, f"r{i}", "recording")
        assert data == b"OggS" * (100 + i)
    other = str(int(iid) + 1)                          # another shard, never written: nothing made there
    assert not [ix for ix in await store.db[f"media_{int(other) % 32:02d}.chunks"].list_indexes().to_list(None)
                if tuple(ix["key"].items()) == CHUNKS_INDEX]
    await media.put("alice", iid, "again", kind="recording", data=b"OggS", content_type="audio/ogg")
    assert len(await chunks.list_indexes().to_list(None)) == 2          # _id and ours, unchanged


async def test_files_are_gridfs_files_of_any_size_and_an_id_is_written_once(store):
    """The repository writes GridFS's format itself (two round trips): the driver's GridFS reads
    a file of several chunks back byte for byte, and a second write of an id is refused without
    touching the first file's chunks (nor leaving its own)."""
    from storage.db import DuplicateKeyError, gridfs_bucket
    from storage.media import CHUNK_SIZE
    iid = await _interview(store)
    name = f"media_{int(iid) % 32:02d}"
    big = np.random.default_rng(1).integers(0, 256, 2 * CHUNK_SIZE + 123, dtype=np.uint8).tobytes()
    await store.save_media("alice", iid, "big", kind="recording", data=big, content_type="audio/ogg")
    assert await store.db[f"{name}.chunks"].count_documents({"files_id": "big"}) == 3
    stream = await gridfs_bucket(store.db, name).open_download_stream("big")
    assert await stream.read() == big and stream.length == len(big)
    doc, data = await store.media.get("alice", iid, "big", "recording")
    assert data == big and doc["filename"] == f"{iid}/recording/big" and doc["metadata"]["user_id"] == "alice"
    with pytest.raises(DuplicateKeyError):
        await store.save_media("alice", iid, "big", kind="recording", data=b"other", content_type="audio/ogg")
    assert await store.db[f"{name}.chunks"].count_documents({"files_id": "big"}) == 3
    assert (await store.media.get("alice", iid, "big", "recording"))[1] == big


async def test_delete_interview_removes_everything(store):
    iid = await _interview(store)
    other = await _interview(store)
    await store.append_transcript(iid, [{"text": f"第{i}句", "utterance_id": f"u{i}"} for i in range(30)])
    await store.save_media("alice", iid, "r1", kind="recording", data=b"OggS" * 100, content_type="audio/ogg")
    await store.save_media("alice", iid, "f1", kind="frame", data=b"\xff\xd8" * 100, content_type="image/jpeg")
    await store.save_media("alice", other, "r2", kind="recording", data=b"OggS" * 10, content_type="audio/ogg")
    await store.update_interview(iid, set_fields={"report": {"overall_score": 3}})
    assert not await store.delete_interview("mallory", iid)
    assert await store.delete_interview("alice", iid)
    assert await leftovers(store.db, iid, {"r1", "f1"}) == []
    assert await store.media.get("alice", other, "r2", "recording") is not None     # others untouched


async def leftovers(db, interview_id: str, media_ids=()) -> list[str]:
    """Every document of any collection that belongs to the interview (by id, transcript bucket id,
    ``interview_id`` or GridFS metadata, or a chunk of one of its files or of ``media_ids``)."""
    found = []
    names = await db.list_collection_names()
    file_ids = set(media_ids)
    for name in names:
        col = db[name]
        query = {"$or": [{"_id": interview_id}, {"interview_id": interview_id},
                         {"metadata.interview_id": interview_id}]}
        for doc in await col.find(query).to_list(None):
            found.append(f"{name}:{doc['_id']}")
            file_ids.add(doc["_id"])
        for doc in await col.find({}, {"_id": 1}).to_list(None):
            if isinstance(doc["_id"], str) and doc["_id"].startswith(f"{interview_id}:"):
                found.append(f"{name}:{doc['_id']}")
    for name in names:
        if name.endswith(".chunks"):
            for doc in await db[name].find({}, {"files_id": 1}).to_list(None):
                if doc["files_id"] in file_ids:
                    found.append(f"{name}:{doc['_id']}")
    return found


# --- DELETE while the interview runs ---------------------------------------------------------------------
TEXT_ONLY = {"engine": {"phases": ["intro", "question"], "vad": "", "asr": "", "question_sources": ["bank"],
                        "scorers": ["heuristic"], "cheat_detectors": [], "code_runner": "", "tts": []},
             "timing": {"intro_silence_seconds": 600.0}}


async def test_delete_ends_a_session_in_progress_then_leaves_nothing(app_server_factory, api_client):
    import json

    import websockets

    from ws_support import Inbox
    server = await app_server_factory(TEXT_ONLY)
    client = await api_client(server)
    resume_id = await client.create_resume()
    interview_id = await client.create_interview()
    ws = await websockets.connect(f"{server.ws_url}?token={client.token}", max_size=None)
    inbox = Inbox(ws)
    await ws.send(json.dumps({"type": "create_stream", "interview_id": interview_id, "resume_id": resume_id}))
    await inbox.wait_for(lambda m: m["type"] == "interview_message" and m["phase"] == "intro")
    await ws.send(json.dumps({"type": "text_answer", "text": "我叫张三，做了三年后端开发"}))
    for _ in range(200):                                  # the typed answer is stored
        if (await client.get(f"/interviews/{interview_id}/")).json()["interview"]["transcript"]:
            break
        await asyncio.sleep(0.02)
    r = await client.delete(f"/interviews/{interview_id}/")
    assert r.status_code == 200, r.text
    told = await inbox.wait_for(lambda m: m["type"] == "error" and m.get("code") == 4410)
    assert "删除" in told["text"]
    await asyncio.wait_for(ws.wait_closed(), 10)
    assert ws.close_code == 4410
    assert interview_id not in server.engine.sessions
    assert await leftovers(server.store.db, interview_id) == []
    assert (await client.get(f"/interviews/{interview_id}/")).status_code == 404


@pytest.mark.parametrize("samples", [160, 3200, 8200])
def test_short_utterances_round_trip_to_the_sample(samples):
    """A "是的" is half a second: its recording must still decode, to exactly its length."""
    audio = (np.sin(np.arange(samples) / 5) * 5000).astype(np.int16)
    decoded, rate = decode_audio(encode_opus(audio))
    assert rate == 16000 and decoded.size == samples


def _recorder_with_tone(store, encoder) -> tuple[Recorder, set]:
    """A recorder of a new interview of ``store`` holding 4 s of a tone, and its set of tasks."""
    iid, _ = store.add("u1", {}, {})
    tasks: set = set()
    recorder = Recorder(store=store, user_id="u1", interview_id=iid, settings={"buffer_seconds": 10},
                        track=tasks.add, encoder=encoder)
    audio = (np.sin(2 * np.pi * 300 * np.arange(16000 * 4) / 16000) * 6000).astype(np.int16)
    recorder.feed(audio.tobytes())
    return recorder, tasks


async def test_recordings_and_frames_are_written_a_few_at_a_time_and_all_of_them_are():
    """``store_concurrency``: on a busy database the recordings wait in the server, at most that
    many writes under way, instead of queueing in front of the transcripts; every one is written,
    and a failed write frees its place."""
    class SlowStore(MemoryStore):
        def __init__(self):
            super().__init__()
            self.gate = asyncio.Event()
            self.under_way = self.most = 0
            self.fail_next = False

        async def save_media(self, *args, **kwargs):
            self.under_way += 1
            self.most = max(self.most, self.under_way)
            try:
                await self.gate.wait()
                if self.fail_next:
                    self.fail_next = False
                    raise OSError("the database went away")
                await super().save_media(*args, **kwargs)
            finally:
                self.under_way -= 1

    from core import frames
    jpeg = frames.encode_jpeg(np.full((240, 320, 3), 90, np.uint8))
    encoder = MediaEncoder(workers=1, store_concurrency=2)
    try:
        store = SlowStore()
        recorder, tasks = _recorder_with_tone(store, encoder)
        ids = [recorder.utterance(k * 0.5, k * 0.5 + 0.4) for k in range(6)] + [recorder.frame(jpeg) for _ in range(3)]
        for _ in range(200):                                   # encoded; two writes under way, seven wait
            if encoder.stats["store_waiting"] == 7:
                break
            await asyncio.sleep(0.01)
        assert store.under_way == 2 and encoder.stats["store_waiting"] == 7
        store.fail_next = True
        store.gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert store.most == 2
        assert sum(isinstance(r, OSError) for r in results) == 1
        assert len([i for i in ids if i in store.media]) == 8
        assert encoder.stats["stored"] == 8 and encoder.stats["store_failed"] == 1
        assert encoder.stats["store_waiting"] == 0
    finally:
        encoder.close()


async def test_what_waits_for_the_database_is_bounded():
    """``max_store_waiting_mb``: a database that does not keep up must not grow the server's memory
    without end; a file beyond the bound is not written (counted, logged), the others all are, and
    once the queue drains files are written again."""
    gate = asyncio.Event()
    written: list[int] = []

    def writer(n):
        async def write():
            await gate.wait()
            written.append(n)
        return write

    encoder = MediaEncoder(workers=1, store_concurrency=1, max_store_waiting_mb=0.25)    # 262 144 bytes
    try:
        first = asyncio.ensure_future(encoder.store(writer(0), 200_000))      # under way: not waiting
        await asyncio.sleep(0)
        queued = [asyncio.ensure_future(encoder.store(writer(n), 100_000)) for n in (1, 2)]
        await asyncio.sleep(0)
        assert encoder.stats["store_waiting"] == 2 and encoder.stats["store_waiting_bytes"] == 200_000
        refused = await encoder.store(writer(3), 100_000)                      # 300 000 would wait
        assert refused is False and encoder.stats["store_skipped_busy"] == 1
        small = asyncio.ensure_future(encoder.store(writer(4), 50_000))        # 250 000: still fits
        gate.set()
        assert await asyncio.gather(first, *queued, small) == [True, True, True, True]
        assert sorted(written) == [0, 1, 2, 4] and encoder.stats["store_waiting_bytes"] == 0
        assert await encoder.store(writer(5), 200_000) is True                 # drained: written again
    finally:
        encoder.close()
    with pytest.raises(ValueError):
        MediaEncoder(max_store_waiting_mb=0)


async def test_a_recording_the_database_has_no_room_for_is_counted_and_said(caplog):
    class StuckStore(MemoryStore):
        gate = asyncio.Event()

        async def save_media(self, *args, **kwargs):
            await self.gate.wait()
            await super().save_media(*args, **kwargs)

    encoder = MediaEncoder(workers=1, store_concurrency=1, max_store_waiting_mb=0.001)     # ~1 KB
    try:
        store = StuckStore()
        recorder, tasks = _recorder_with_tone(store, encoder)
        ids = [recorder.utterance(k * 0.5, k * 0.5 + 0.4) for k in range(3)]
        for _ in range(300):                      # one under way, one waiting, the third refused
            if recorder.stats["store_skipped"] == 1:
                break
            await asyncio.sleep(0.01)
        StuckStore.gate.set()
        await asyncio.gather(*tasks)
        assert recorder.stats["store_skipped"] == 1 and recorder.stats["recordings"] == 2
        assert len([i for i in ids if i in store.media]) == 2
        assert "max_store_waiting_mb" in caplog.text
    finally:
        encoder.close()
