"""Call recording for training and quality: whom to ask, and what the call record says.

French practices may record calls only occasionally, having told the caller and let her refuse
(docs/recording.md). A practice's dialplan states its policy (`recording:`), for all its numbers
or one of them:

- ``off`` (the default): nobody is asked, nothing is recorded;
- ``sampled``: a share of the calls (`percent`), drawn from the call's id, so the same call is
  drawn the same way by every node and every replay;
- ``campaign``: between two local days (both included), every call (or `percent` of them);
- ``on_demand``: every caller is told, and the call is recorded only when the secretary who
  answers is under a supervisor's request (a secretary in training), while it lasts.

A caller asked for consent hears the practice's message before the queue and may press the refuse
key (9 unless the dialplan says otherwise) while it plays and for `consent_wait_s` after; the
secretary may also say « le patient refuse » in the call, which stops the recording and deletes
what was recorded. Alert calls to practitioners and the secretaries' internal calls are never
recorded: only a patient's call bridged with the secretary who answered it is.

Pure: time and the random draw's source (the call id) are arguments.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping

OFF, SAMPLED, CAMPAIGN, ON_DEMAND = "off", "sampled", "campaign", "on_demand"
MODES = (OFF, SAMPLED, CAMPAIGN, ON_DEMAND)
DEFAULT_REFUSE_DIGIT = "9"
CONSENT_PROMPT = "recording_consent"

# What the call record says about recording (callrouter.store.recordings).
RECORDED, REFUSED, NOT_SELECTED, FAILED = "recorded", "refused", "not_selected", "failed"
STATUSES = (RECORDED, REFUSED, NOT_SELECTED, FAILED)


@dataclass(frozen=True)
class RecordingPolicy:
    """One number's (or the practice's) policy. `percent` is the share of calls asked: for
    `sampled`, and for `campaign` (100 by default); `first_day`/`last_day` bound a campaign (local
    days, both included)."""

    mode: str = OFF
    percent: float = 100.0
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    refuse_digit: str = DEFAULT_REFUSE_DIGIT
    consent_prompt: str = CONSENT_PROMPT
    consent_wait_s: float = 3.0


@dataclass(frozen=True)
class RecordingSpec:
    """A practice's `recording:` section: its policy, the numbers with one of their own, and the
    addresses told of each new voicemail message (none: no e-mail)."""

    default: RecordingPolicy = field(default_factory=RecordingPolicy)
    numbers: Mapping[str, RecordingPolicy] = field(default_factory=dict)
    voicemail_emails: tuple[str, ...] = ()

    def policy_for(self, number: str) -> RecordingPolicy:
        return self.numbers.get(number, self.default)


@dataclass(frozen=True)
class Selection:
    """Whether a call's caller is asked for consent, under which policy, and why (English, for
    the record). `recorded_if` says what else must hold at the bridge: "consent" (the caller did
    not refuse) or "demand" (also, the secretary is under an on-demand request)."""

    ask: bool
    reason: str
    policy: RecordingPolicy = field(default_factory=RecordingPolicy)
    recorded_if: str = "consent"


def draw(call_id: str) -> float:
    """The call's place in [0, 100): the same for the same call id, spread evenly over ids."""
    digest = hashlib.sha256(b"callrouter recording draw\0" + call_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def select(spec: RecordingSpec | None, number: str, call_id: str, now: dt.datetime,
           zone: dt.tzinfo) -> Selection:
    """Is the caller of `call_id` (to `number`, arrived at `now`) asked for consent?"""
    if spec is None:
        return Selection(False, "no recording policy")
    policy = spec.policy_for(number)
    if policy.mode == OFF:
        return Selection(False, "recording off", policy)
    if policy.mode == ON_DEMAND:
        return Selection(True, "on demand: every caller told", policy, recorded_if="demand")
    if policy.mode == CAMPAIGN:
        today = now.astimezone(zone).date()
        if policy.first_day is not None and today < policy.first_day:
            return Selection(False, f"campaign starts on {policy.first_day.isoformat()}", policy)
        if policy.last_day is not None and today > policy.last_day:
            return Selection(False, f"campaign ended on {policy.last_day.isoformat()}", policy)
    place = draw(call_id)
    if place >= policy.percent:
        return Selection(False, f"{policy.mode}: not drawn ({place:.2f} >= {policy.percent:g}%)", policy)
    return Selection(True, f"{policy.mode}: drawn ({place:.2f} < {policy.percent:g}%)", policy)


@dataclass(frozen=True)
class Demand:
    """A supervisor's request: record the calls `secretary` answers (for `practice`, or any when
    None) from `starts_at` until `ends_at`."""

    id: int
    secretary: str
    practice: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    by: str

    def covers(self, secretary: str, practice: str, now: dt.datetime) -> bool:
        return (self.secretary == secretary and self.practice in (None, practice)
                and self.starts_at <= now < self.ends_at)


def demand_for(demands: Iterable[Demand], secretary: str, practice: str, now: dt.datetime) -> Demand | None:
    return next((d for d in demands if d.covers(secretary, practice, now)), None)


@dataclass(frozen=True)
class AtBridge:
    """What happens when the call is bridged with its secretary: record it or not, the status the
    call record gets, and why."""

    record: bool
    status: str
    reason: str


def at_bridge(selection: Selection, refused: bool, secretary: str, practice: str,
              demands: Iterable[Demand], now: dt.datetime) -> AtBridge:
    if not selection.ask:
        return AtBridge(False, NOT_SELECTED, selection.reason)
    if refused:
        return AtBridge(False, REFUSED, "the caller refused (consent message)")
    if selection.recorded_if == "demand":
        demand = demand_for(demands, secretary, practice, now)
        if demand is None:
            return AtBridge(False, NOT_SELECTED, "on demand: the secretary who answered is under no request")
        return AtBridge(True, RECORDED, f"on demand #{demand.id} by {demand.by}")
    return AtBridge(True, RECORDED, selection.reason)


def retention_cutoff(now: dt.datetime, days: int | None) -> dt.datetime | None:
    """Kept while younger than `days` (None: no limit)."""
    return None if days is None else now - dt.timedelta(days=days)
