"""The partial cadence under load (core/cadence.py): the event loop's lag stretches the partial
interval smoothly and brings it back, on an injected clock; the speech pipeline asks for fewer
partials when stretched and the same finals; the server feeds its loop monitor to the engine."""
import numpy as np
import pytest

from core.cadence import PartialCadence
from core.speech import AsrScheduler
from tests.test_speech_pipeline import RATE, ScriptedVad, quiet, run, tone


class Clock:
    def __init__(self):
        self.t = 100.0

    def now(self):
        return self.t


def windows(cadence: PartialCadence, clock: Clock, n: int, lag_ms) -> None:
    """Samples as the loop monitor takes them (every 10 ms plus the lag) until ``n`` more seconds
    have been judged; ``lag_ms`` is a number or a function of the sample's index."""
    lag_of = lag_ms if callable(lag_ms) else (lambda i: lag_ms)
    target = cadence.stats["windows"] + n
    i = 0
    while cadence.stats["windows"] < target:
        lag = lag_of(i) / 1000
        clock.t += 0.01 + lag
        cadence.observe(lag)
        i += 1


def test_a_late_loop_stretches_the_interval_step_by_step_up_to_the_cap_and_back():
    clock = Clock()
    c = PartialCadence(clock, target_lag_s=0.015, max_stretch=8.0)
    windows(c, clock, 3, lag_ms=2.0)
    assert c.stretch == 1.0
    windows(c, clock, 1, lag_ms=30.0)
    assert c.stretch == pytest.approx(1.5)            # one late second: one step, not a jump
    windows(c, clock, 1, lag_ms=30.0)
    assert c.stretch == pytest.approx(2.25)
    windows(c, clock, 10, lag_ms=30.0)
    assert c.stretch == 8.0                           # capped
    windows(c, clock, 3, lag_ms=10.0)                 # between half the target and the target: held
    assert c.stretch == 8.0
    windows(c, clock, 1, lag_ms=2.0)
    assert c.stretch == pytest.approx(8.0 / 1.25)     # relaxes more slowly than it grows
    windows(c, clock, 20, lag_ms=2.0)
    assert c.stretch == 1.0
    snap = c.snapshot()
    assert snap["stretch"] == 1.0 and snap["max_stretch_seen"] == 8.0
    assert snap["raised"] == 6 and snap["lowered"] == 10 and snap["windows"] == 39
    assert 20.0 < snap["stretched_seconds"] < 35.0


def test_the_p90_of_a_second_decides_so_a_few_spikes_do_not_stretch():
    clock = Clock()
    c = PartialCadence(clock, target_lag_s=0.015)
    windows(c, clock, 3, lag_ms=lambda i: 200.0 if i % 40 == 0 else 1.0)   # a spike now and then
    assert c.stretch == 1.0
    windows(c, clock, 1, lag_ms=lambda i: 30.0 if i % 4 == 0 else 1.0)     # a quarter late: p90 late
    assert c.stretch == pytest.approx(1.5)


def test_off_and_bad_settings():
    clock = Clock()
    c = PartialCadence(clock, target_lag_s=0.0)
    for _ in range(100):
        clock.t += 0.11
        c.observe(0.1)
    assert c.stretch == 1.0 and not c.enabled and c.snapshot()["windows"] == 0
    with pytest.raises(ValueError):
        PartialCadence(clock, max_stretch=0.5)
    with pytest.raises(ValueError):
        PartialCadence(clock, grow=1.0)


class PartialsOnlyAsr:
    """No pre-final: every partial (interval and pause partials) is a ``partial`` call."""
    name = "partials-only"

    def __init__(self):
        self.calls = []

    def open_stream(self):
        asr = self

        class Stream:
            def partial(self, pcm, ctx):
                asr.calls.append(("partial", pcm.size))
                return f"p{pcm.size}"

            def final(self, pcm, ctx):
                asr.calls.append(("final", pcm.size))
                return f"f{pcm.size}"
        return Stream()


def speech_with_pauses() -> np.ndarray:
    """Four 1.5 s stretches of speech with 0.35 s pauses (pause partials, no utterance end), then the end."""
    parts = []
    for _ in range(4):
        parts += [tone(1.5), quiet(0.35)]
    return np.concatenate(parts + [quiet(1.0)])


@pytest.mark.parametrize("stretch", [1.0, 4.0])
async def test_the_pipeline_asks_for_fewer_partials_when_stretched_and_for_the_same_final(stretch):
    clock = Clock()
    cadence = PartialCadence(clock)
    cadence.stretch = stretch                 # as the lag would have set it
    scheduler = AsrScheduler(workers=2, cadence=cadence)
    asr = PartialsOnlyAsr()
    try:
        events = await run(asr, speech_with_pauses(), scheduler, pace=0.002)
    finally:
        scheduler.close()
    partials = [size for kind, size in asr.calls if kind == "partial"]
    finals = [e for e in events if getattr(e, "is_final", False)]
    assert len(finals) == 1 and finals[0].text == f"f{[s for k, s in asr.calls if k == 'final'][0]}"
    # utterance of ~7.4 s: at 0.6 s of new speech per partial (plus the pause partials) about a dozen;
    # stretched four times (2.4 s, and a pause partial only after 1.8 s) at most four
    if stretch == 1.0:
        assert len(partials) >= 8, partials
    else:
        assert 1 <= len(partials) <= 4, partials
        assert all(b - a >= 1.8 * RATE for a, b in zip(partials, partials[1:])), partials

