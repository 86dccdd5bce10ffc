"""New controller settings applied to the running call side (a settings reload): the next call,
offer and prompt use them; what is already under way keeps its timers."""

from __future__ import annotations

import dataclasses

from callrouter.media import protocol as p
from tests.controller.test_calls import SEC1, busy_secretary, queued_call


def applied(h, **changes) -> None:
    h.controller.ctx.apply(dataclasses.replace(h.controller.ctx.settings, **changes))


def test_the_next_queued_caller_hears_the_new_hold_prompt(harness):
    h = harness
    busy_secretary(h)
    first = queued_call(h)
    assert h.media.last(p.Play, first).path.endswith("/music_on_hold.wav")
    applied(h, hold_prompt="ringback")
    second = queued_call(h)
    assert h.media.last(p.Play, second).path.endswith("/ringback.wav")
    assert h.media.last(p.Play, first).path.endswith("/music_on_hold.wav")  # nothing replayed


def test_the_next_offer_rings_for_the_new_ring_timeout(harness):
    h = harness
    applied(h, ring_timeout_s=7.0)
    leg = queued_call(h)
    offer = h.media.last(p.Dial)
    assert offer.uri == SEC1 and offer.timeout_seconds == 12.0  # the worker's own limit: 5 s more
    h.clock.advance(6.5)
    assert not h.media.commands(p.Hangup)
    h.clock.advance(1)
    assert h.media.last(p.Hangup, offer.leg).code == 487
    assert h.controller.sessions[leg].call is not None
