"""A week of a practice's records around the spring clock change, written by the real repositories
as the controller writes them, and the figures computed by hand from it.

ISO week 13 of 2026: Monday 23 to Sunday 29 March, Europe/Paris. On Sunday 29 the clocks go
from 02:00 to 03:00 (UTC+1 to UTC+2): that day has 23 hours. A call at 00:30 local on Monday 23
(Sunday 22 at 23:30 UTC) is in the week; one at 00:30 local on Monday 30 (Sunday 29 at 22:30
UTC) is not: days are cut in local time, not in UTC.

The dialplan's hours: weekdays 08:00-19:00, Saturday 09:00-12:00; Sunday closed.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callrouter.domain.kpis import Period
from callrouter.store.calls import CallRepository
from callrouter.store.escalations import EscalationRepository
from callrouter.store.tasks import TaskRepository

PRACTICE = "cabinet-exemple"
NAME = "Cabinet médical de l'Étang"
PARIS = ZoneInfo("Europe/Paris")
UTC = dt.timezone.utc
WEEK = Period.iso_week(2026, 13)
NUMBER = "+33142000001"
CALLER = "+33612345678"

DIALPLAN = f"""\
practice: {PRACTICE}
name: {NAME}
timezone: Europe/Paris
numbers: ["{NUMBER}"]
hours:
  mon-fri: ["08:00-19:00"]
  sat: ["09:00-12:00"]
queues:
  general: {{label: Secrétariat}}
routes:
  open: {{queue: general}}
  closed: {{voicemail: true}}
reports:
  email: [dr.lefevre@cabinet-etang.example, accueil@cabinet-etang.example]
  weekly: monday 07:00
"""


def local(day: int, hour: int, minute: int = 0, month: int = 3) -> dt.datetime:
    """A wall-clock time in Paris, as UTC (2026-03-<day>)."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def s(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


def call(calls: CallRepository, call_id: str, at: dt.datetime, *, route: str = "open", queued: float | None = 5,
         answered: float | None = None, ended: float = 120, outcome: str = "answered",
         overflow: str | None = None, digits: str = "") -> None:
    """A call as the controller records it: arrival, route (and its reasons), IVR keys, queue,
    overflow, answer, end. Times are seconds after arrival."""
    calls.open_call(call_id, PRACTICE, NUMBER, CALLER, at)
    why = (f"route '{route}': " + ("queue general" if route == "open" else "voicemail"),)
    calls.set_route(call_id, route, "rendez-vous", at, "v1", why)
    for i, digit in enumerate(digits):
        calls.add_ivr_answer(call_id, "triage", digit, at + s(i + 1))
    if queued is not None:
        calls.queued(call_id, "general", at + s(queued))
    if overflow is not None:
        calls.set_route(call_id, "overflow", f"rendez-vous; overflow on {overflow}", at + s(60), "v1",
                        why + (f"overflow ({overflow}): voicemail",))
    if answered is not None:
        calls.answered(call_id, "sip:lea@edge", at + s(answered))
    calls.close_call(call_id, outcome, at + s(ended))


def seed(db) -> dict[str, int]:
    """Write the week; returns the escalation ids by name."""
    calls, tasks, chains = CallRepository(db), TaskRepository(db), EscalationRepository(db)
    # Outside the week, on both sides, in local time (inside it in UTC).
    call(calls, "before", local(22, 23, 30), route="closed", queued=None, outcome="voicemail")
    call(calls, "after", local(30, 0, 30), route="closed", queued=None, outcome="voicemail")
    # Monday: a closed-hours caller hears the message; two callers answered in 12 s and 25 s.
    call(calls, "night", local(23, 0, 30), route="closed", queued=None, outcome="announced", ended=20)
    call(calls, "mon-1", local(23, 9), answered=5 + 12)
    call(calls, "mon-2", local(23, 9, 30), answered=5 + 25)
    # Tuesday: answered after 45 s (beyond the 30 s threshold).
    call(calls, "tue-1", local(24, 10), answered=5 + 45)
    # Wednesday: answered in 8 s; a caller hangs up 3 s after entering the queue (short abandon).
    call(calls, "wed-1", local(25, 14), answered=5 + 8)
    call(calls, "wed-2", local(25, 14, 10), ended=5 + 3, outcome="abandoned")
    # Thursday: a caller gives up after 40 s; another overflows to voicemail after waiting.
    call(calls, "thu-1", local(26, 11), ended=5 + 40, outcome="abandoned")
    call(calls, "thu-2", local(26, 11, 5), overflow="wait", ended=150, outcome="voicemail")
    # Friday: nobody logged in: the caller accepts a callback, done 20 minutes later.
    call(calls, "fri-1", local(27, 9), queued=None, overflow="nobody", ended=40, outcome="callback_requested")
    done = tasks.create(PRACTICE, CALLER, "overflow", local(27, 9, 1), local(28, 9), call_id="fri-1")
    tasks.done(done.id, None, None, local(27, 9, 21))
    # Saturday: answered in exactly 30 s: within the threshold.
    call(calls, "sat-1", local(28, 10), answered=5 + 30)
    # Sunday 29 (23 hours): a voicemail at 01:30 (UTC+1), called back on Monday at 08:31 (UTC+2):
    # 30 hours later, not the 31 the wall clock shows.
    call(calls, "sun-1", local(29, 1, 30), route="closed", queued=None, outcome="voicemail", ended=60)
    message = tasks.create(PRACTICE, CALLER, "voicemail", local(29, 1, 31), local(31, 9), call_id="sun-1")
    tasks.done(message.id, None, None, local(30, 8, 31))
    # At 03:30 (UTC+2) a caller presses 1: the vital tier, acknowledged 4 minutes later.
    call(calls, "sun-2", local(29, 3, 30), route="closed", queued=None, outcome="announced", ended=30, digits="1")
    vital = chains.create("sun-2", PRACTICE, "vital", CALLER, local(29, 3, 30, ))
    chains.acknowledge(vital.id, "dr-lefevre", "sms", local(29, 3, 34))
    # At 23:30 a voicemail nobody calls back: the task expires.
    call(calls, "sun-3", local(29, 23, 30), route="closed", queued=None, outcome="voicemail", ended=60)
    tasks.create(PRACTICE, CALLER, "voicemail", local(29, 23, 31), local(30, 12), call_id="sun-3")
    tasks.expire_due(local(30, 12, 1))
    # Urgent chains: one declined by a practitioner then exhausted, one acknowledged in 90 s.
    exhausted = chains.create(None, PRACTICE, "urgent", CALLER, local(26, 11, 10))
    chains.record_reply([exhausted.id], local(26, 11, 12), "+33*******02", {exhausted.id: "dr-roux"}, "webhook",
                        "no", None, "declined")
    chains.finish(exhausted.id, "exhausted", local(26, 11, 20))
    acked = chains.create(None, PRACTICE, "urgent", CALLER, local(27, 15))
    chains.acknowledge(acked.id, "dr-lefevre", "link", local(27, 15) + s(90))
    return {"vital": vital.id, "exhausted": exhausted.id, "acked": acked.id}


# --- the figures, by hand ----------------------------------------------------------------------
# received: 13 in the week (not "before" nor "after"); for a secretary: the 9 queued or overflowed.
# answered: 5, answer times 8, 12, 25, 30, 45 s: median 25, p90 30 + 0.6 * 15 = 39, mean 24;
# within 30 s: 4. Rated: 9 - 1 short abandon = 8. Service level 4/8; missed (1 abandoned + 1
# overflowed) / 8; the callback (fri-1) is neither.
EXPECTED_CALLS = {"received": 13, "for_secretary": 9, "answered": 5, "short_abandons": 1, "abandoned": 1,
                  "overflowed": 1, "callbacks": 1, "failed": 0, "in_progress": 0}
EXPECTED_SERVICE_LEVEL = (4, 8)
EXPECTED_MISSED = (2, 8)
EXPECTED_ANSWER = {"p50": 25.0, "p90": 39.0, "mean": 24.0}
# Callback tasks: 3 created, 2 done (20 min and 30 h), 1 expired; 2 voicemail messages, 1 called back.
EXPECTED_CALLBACKS = {"created": 3, "done": 2, "expired": 1, "delay_p50": (1200 + 108000) / 2,
                      "delay_p90": 1200 + 0.9 * (108000 - 1200), "messages_left": 2, "called_back": 1}
# Per local day, the service level (numerator, denominator); Sunday has no call to rate.
EXPECTED_DAYS = [(2, 2), (0, 1), (1, 1), (0, 2), (0, 1), (1, 1), (0, 0)]
# Out of hours: the night message, the Sunday voicemails and the escalation.
EXPECTED_OUT_OF_HOURS = {"received": 4, "message": 1, "voicemail": 2, "escalation": 1}
# Calls received per (weekday, local hour).
EXPECTED_HEAT = {(0, 0): 1, (0, 9): 2, (1, 10): 1, (2, 14): 2, (3, 11): 2, (4, 9): 1, (5, 10): 1,
                 (6, 1): 1, (6, 3): 1, (6, 23): 1}
