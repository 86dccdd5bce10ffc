"""The prompt player and session timers shared by calls, callback tasks and alert calls."""

from __future__ import annotations

from twisted.internet.task import Clock

from callrouter.controller.player import PromptPlayer, SessionTimers
from callrouter.media import protocol as p


def player() -> tuple[PromptPlayer, list]:
    sent: list = []
    return PromptPlayer(sent.append, "leg1"), sent


def test_prompts_play_one_after_another_then_the_action_runs_once():
    pl, sent = player()
    done = []
    pl.play(["a.wav", "b.wav"], lambda: done.append(1))
    assert sent == [p.Play("leg1", "a.wav")] and pl.playing
    pl.finished()
    assert sent[-1] == p.Play("leg1", "b.wav") and not done
    pl.finished()
    assert done == [1] and not pl.playing
    pl.finished()  # a late PlaybackFinished (e.g. of a loop) does nothing more
    assert done == [1] and len(sent) == 2


def test_a_loop_replaces_what_was_queued_and_is_not_playing():
    pl, sent = player()
    done = []
    pl.play(["a.wav", "b.wav"], lambda: done.append(1))
    pl.loop("ringback.wav")
    assert sent[-1] == p.Play("leg1", "ringback.wav", loop=True) and not pl.playing
    pl.finished()
    assert not done


def test_stop_tells_the_worker_only_when_something_is_pending_unless_always():
    pl, sent = player()
    pl.stop()
    assert sent == []
    pl.stop(always=True)
    assert sent == [p.StopPlayback("leg1")]
    pl.play(["a.wav"], lambda: None)
    pl.stop()
    assert sent[-1] == p.StopPlayback("leg1") and not pl.playing


def test_a_prompt_the_worker_cannot_play_counts_as_played():
    pl, sent = player()
    done = []
    pl.play(["missing.wav"], lambda: done.append(1))
    pl.failed("bridge")
    assert not done
    pl.failed("play")
    assert done == [1]
    pl.failed("play")  # nothing pending: nothing happens
    assert done == [1]


def test_the_player_follows_its_leg_when_the_owner_moves_it():
    pl, sent = player()
    pl.leg = "leg2"
    pl.play(["a.wav"])
    assert sent == [p.Play("leg2", "a.wav")]


def test_a_timer_fires_once_and_restarting_a_name_replaces_it():
    clock = Clock()
    timers = SessionTimers(clock)
    fired = []
    timers.start("key", 5, lambda: fired.append("first"))
    clock.advance(3)
    timers.start("key", 5, lambda: fired.append("second"))
    assert "key" in timers
    clock.advance(3)
    assert fired == []
    clock.advance(2)
    assert fired == ["second"] and "key" not in timers


def test_cancelled_timers_do_not_fire():
    clock = Clock()
    timers = SessionTimers(clock)
    fired = []
    timers.start("a", 1, lambda: fired.append("a"))
    timers.start("b", 1, lambda: fired.append("b"))
    timers.cancel("a")
    clock.advance(2)
    assert fired == ["b"]
    timers.start("c", 1, lambda: fired.append("c"))
    timers.cancel_all()
    clock.advance(2)
    assert fired == ["b"] and list(timers) == []
    timers.start("d", 1, lambda: fired.append("d"))  # cancel_all does not end the session
    clock.advance(2)
    assert fired == ["b", "d"]


def test_once_closed_no_timer_fires_or_starts():
    clock = Clock()
    timers = SessionTimers(clock)
    fired = []
    timers.start("a", 1, lambda: fired.append("a"))
    timers.close()
    timers.start("b", 1, lambda: fired.append("b"))
    clock.advance(5)
    assert fired == [] and clock.getDelayedCalls() == []
