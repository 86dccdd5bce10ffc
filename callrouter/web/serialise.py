"""The API's serialisers: call records and audit entries as JSON bodies, call records as CSV rows.

They read the records the store returns (attributes only), so the store knows nothing of the API's
formats and the web imports nothing of the store.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Iterable, Sequence


def serialise_call(call: Any) -> dict:
    """A call record as plain JSON-able data (the API and the CSV export use it)."""
    return {
        "id": call.id, "practice": call.practice, "number": call.number, "caller": call.caller,
        "arrived_at": _iso(call.arrived_at), "ivr_answered_at": _iso(call.ivr_answered_at),
        "routed_at": _iso(call.routed_at), "route": call.route, "reason": call.reason,
        "dialplan_version": call.dialplan_version, "why": why_lines(call.why),
        "queue": call.queue, "queued_at": _iso(call.queued_at), "offered_at": _iso(call.offered_at),
        "answered_at": _iso(call.answered_at), "secretary": call.secretary,
        "ended_at": _iso(call.ended_at), "queue_wait_seconds": call.queue_wait_seconds,
        "outcome": call.outcome, "cause": call.cause,
        "ivr_answers": [{"menu": a.menu, "digit": a.digit, "at": _iso(a.at)}
                        for a in call.ivr_answers],
        "legs": [{"kind": leg.kind, "party": leg.party, "started_at": _iso(leg.started_at),
                  "ended_at": _iso(leg.ended_at), "end_cause": leg.end_cause}
                 for leg in call.legs],
        "recording": recording_of(call),
    }


def recording_of(call: Any) -> dict:
    """What the record says about recording (docs/recording.md): recorded, refused, not_selected or
    failed, and why; a call no policy asked about is not_selected."""
    status = getattr(call, "recording_status", None)
    if status is None:
        return {"status": "not_selected", "reason": "not asked (no recording policy applied)"}
    return {"status": status.status, "reason": status.reason}


CSV_COLUMNS: Sequence[str] = (
    "id", "practice", "number", "caller", "arrived_at", "ivr_answered_at", "routed_at", "route",
    "reason", "dialplan_version", "why", "queue", "queued_at", "offered_at", "answered_at", "secretary", "ended_at",
    "queue_wait_seconds", "outcome", "cause", "ivr_digits",
)


def csv_rows(calls: Iterable[Any]) -> Iterable[list[str]]:
    for call in calls:
        data = serialise_call(call)
        data["ivr_digits"] = "".join(a["digit"] for a in data["ivr_answers"])
        data["why"] = " | ".join(data["why"])
        yield [csv_safe("" if data[c] is None else str(data[c])) for c in CSV_COLUMNS]


_PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9 .]*")


def csv_safe(value: str) -> str:
    """Defuse spreadsheet formulas (CSV injection): call ids come from SIP, i.e. from anyone.

    A leading = @ tab or CR, or + - not followed by a plain number, gets a quote prefix; phone
    numbers such as +33612345678 stay as they are.
    """
    if not value:
        return value
    if value[0] in "=@\t\r" or (value[0] in "+-" and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def why_lines(stored: str | None) -> list[str]:
    return stored.split("\n") if stored else []


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def serialise_entry(e: Any) -> dict:
    """An audit entry (callrouter.store.models.AuditEntry) as the API shows it."""
    return {
        "seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "source": e.source,
        "action": e.action, "target": e.target,
        "before": None if e.before is None else json.loads(e.before),
        "after": None if e.after is None else json.loads(e.after),
        "details": None if e.details is None else json.loads(e.details),
        "hash": e.hash,
    }
