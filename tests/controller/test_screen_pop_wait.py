"""The screen-pop carries when the caller entered the queue, so the secretary's console counts
how long she has waited (callrouter.controller.offers)."""

import datetime as dt

from callrouter.media import protocol as p
from tests.controller.test_calls import busy_secretary, queued_call


def test_the_screen_pop_carries_when_the_caller_entered_the_queue(make):
    h = make(secretaries={"*": ("alice",)}, secretary_domain="127.0.0.1:5060")
    h.desk.registrations_changed(frozenset({"alice"}))
    first = busy_secretary(h)  # alice is on a call: the next caller waits
    leg = queued_call(h, caller="+33612345678")
    entered = dt.datetime.fromtimestamp(h.clock.seconds(), dt.timezone.utc)
    h.clock.advance(42)
    h.ended(first)  # alice is free again after her wrap-up
    h.clock.advance(30)
    pops = [m.payload for m in h.published.on("/secretaries/alice/screen-pop")]
    pop = pops[-1]
    assert pop["call_id"] == h.call_id(leg)
    assert pop["queued_at"] == entered.isoformat(timespec="seconds")
    assert dt.datetime.fromisoformat(pop["at"]) - dt.datetime.fromisoformat(pop["queued_at"]) >= dt.timedelta(seconds=42)
    assert h.media.last(p.Dial).uri == "sip:alice@127.0.0.1:5060"
