"""The worker's count of held call slots (worker/slot_watch.py) on fake counts: said when it
changes only, never below 0, polled only while some slot is held."""

from __future__ import annotations

from callrouter.media.slot_events import SlotsHeld
from callrouter.media.worker.slot_watch import POLL_S, SlotWatch


def test_held_slots_are_said_once_per_change_and_polled_only_while_held():
    counts = {"pjsua": 0, "live": 0}
    said: list = []
    watch = SlotWatch(lambda: counts["pjsua"], lambda: counts["live"], said.append)
    counts.update(pjsua=2, live=2)
    watch.check()
    assert said == [] and watch.next_deadline(10.0) is None
    counts["live"] = 1                      # a leg hung up: pjsua still holds its slot
    watch.check()
    watch.check()
    assert said == [SlotsHeld(held=1)] and watch.next_deadline(10.0) == 10.0 + POLL_S
    counts["pjsua"] = 1                     # its BYE answered
    watch.check()
    assert said == [SlotsHeld(held=1), SlotsHeld(held=0)] and watch.next_deadline(10.0) is None
    counts.update(pjsua=0, live=1)          # a live leg pjsua freed before the worker drained its end
    watch.check()
    assert said[-1] == SlotsHeld(held=0) and len(said) == 2


def test_a_report_says_the_held_slots_again_only_when_there_are_some():
    counts = {"pjsua": 3, "live": 1}
    said: list = []
    watch = SlotWatch(lambda: counts["pjsua"], lambda: counts["live"], said.append)
    watch.report()
    watch.report()
    assert said == [SlotsHeld(held=2)] * 2
    counts["pjsua"] = 1
    said.clear()
    watch.report()
    assert said == [] and watch.held == 0
