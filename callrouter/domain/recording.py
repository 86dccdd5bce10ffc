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


# --- what the store gives back, and the API shows ---------------------------------------------------

class UnknownRecording(LookupError):
    """No such recording, voicemail message or request (or one of a practice the user does not cover)."""


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class NoteView:
    id: int
    recording_id: int | None
    call_id: str
    practice: str
    secretary: str | None
    author: str
    score: int | None
    text: str
    created_at: dt.datetime
    updated_at: dt.datetime

    def to_json(self) -> dict:
        return {"id": self.id, "recording_id": self.recording_id, "call_id": self.call_id,
                "practice": self.practice, "secretary": self.secretary, "author": self.author,
                "score": self.score, "text": self.text, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True)
class RecordingView:
    """A recorded call. `file` (the vault's name of its encrypted audio) never leaves the server."""

    id: int
    call_id: str
    practice: str
    secretary: str | None
    file: str
    sha256: str
    size_bytes: int
    channels: int
    duration_seconds: float
    started_at: dt.datetime
    created_at: dt.datetime
    reason: str | None
    note: NoteView | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "call_id": self.call_id, "practice": self.practice, "secretary": self.secretary,
                "sha256": self.sha256, "size_bytes": self.size_bytes, "channels": self.channels,
                "duration_seconds": self.duration_seconds, "started_at": self.started_at.isoformat(),
                "created_at": self.created_at.isoformat(), "reason": self.reason,
                "note": self.note.to_json() if self.note else None,
                "audio_url": f"/api/recordings/{self.id}/audio"}


@dataclass(frozen=True)
class VoicemailView:
    """A voicemail message, with the callback task it created (its number, state and who took it)."""

    id: int
    call_id: str
    practice: str
    file: str | None
    sha256: str | None
    size_bytes: int | None
    duration_seconds: float | None
    truncated: bool
    started_at: dt.datetime
    created_at: dt.datetime
    task_id: str | None = None
    number: str | None = None
    task_state: str | None = None
    assigned_to: str | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "call_id": self.call_id, "practice": self.practice, "sha256": self.sha256,
                "size_bytes": self.size_bytes, "duration_seconds": self.duration_seconds,
                "truncated": self.truncated, "started_at": self.started_at.isoformat(),
                "created_at": self.created_at.isoformat(), "playable": self.file is not None,
                "task": None if self.task_id is None else {
                    "id": self.task_id, "number": self.number, "state": self.task_state,
                    "assigned_to": self.assigned_to},
                "audio_url": f"/api/voicemails/{self.id}/audio"}


def demand_json(d: Demand, stopped_at: dt.datetime | None = None) -> dict:
    return {"id": d.id, "secretary": d.secretary, "practice": d.practice, "starts_at": d.starts_at.isoformat(),
            "ends_at": d.ends_at.isoformat(), "by": d.by, "stopped_at": _iso(stopped_at)}
