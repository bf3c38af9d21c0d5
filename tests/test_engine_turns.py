"""The turn rules of api.md, driven by typed events and an injected clock (no sleeping)."""
from core.events import EndAnswer, SpeechEnded, SpeechStarted, TextAnswer, Tick, Transcript
from core.turns import Turn


def make(now=100.0):
    turn = Turn(silence_seconds=15.0, done_phrase="说完了")
    turn.start(now)
    return turn


def test_silence_counts_from_turn_start():
    turn = make(100.0)
    assert turn.feed(Tick(114.9), 114.9) is None
    assert turn.feed(Tick(115.0), 115.0) == "silence"


def test_silence_never_fires_while_speaking_and_restarts_after_speech():
    turn = make(100.0)
    assert turn.feed(SpeechStarted(101.0), 101.0) is None
    assert turn.feed(Tick(140.0), 140.0) is None          # a long utterance is not silence
    assert turn.feed(SpeechEnded(141.0), 141.0) is None
    assert turn.feed(Tick(155.9), 155.9) is None
    assert turn.feed(Tick(156.0), 156.0) == "silence"


def test_partials_count_as_activity():
    turn = make(100.0)
    turn.feed(Transcript("我在", False, 110.0), 110.0)
    assert turn.feed(Tick(124.0), 124.0) is None
    assert turn.feed(Tick(125.0), 125.0) == "silence"


def test_done_phrase_in_final_ends_and_partial_does_not():
    turn = make()
    assert turn.feed(Transcript("我说完了", False, 101.0), 101.0) is None
    assert turn.feed(Transcript("我的介绍就到这里", True, 102.0), 102.0) is None
    assert turn.feed(Transcript("我说完了。", True, 103.0), 103.0) == "done_phrase"
    assert turn.answer == "我的介绍就到这里我说完了。"


def test_end_answer_and_text_answer():
    turn = make()
    assert turn.feed(TextAnswer("用布隆过滤器"), 101.0) is None
    assert turn.feed(Tick(115.5), 115.5) is None          # typing reset the silence timer
    assert turn.feed(EndAnswer(), 116.0) == "end_answer"
    assert turn.answer == "用布隆过滤器"


def test_restart_timer_after_reconnect():
    turn = make(100.0)
    turn.restart_timer(130.0)
    assert turn.feed(Tick(144.0), 144.0) is None
    assert turn.feed(Tick(145.0), 145.0) == "silence"
