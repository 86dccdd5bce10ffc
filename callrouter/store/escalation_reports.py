"""The escalation reports: the weekly summary per tier and the CSV export's rows (no caller numbers)."""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Iterable

from callrouter.domain.escalation_views import ACTIVE, EscalationView, iso_or_none

CSV_COLUMNS = ("id", "call_id", "practice", "tier", "started_at", "outcome", "acknowledged_by",
               "acknowledged_via", "acknowledged_at", "ack_delay_seconds", "steps_sent",
               "steps_failed", "reference", "declined_by", "replies", "duty_alerts")


def report(practice: str, since: dt.datetime, until: dt.datetime,
           views: Iterable[EscalationView]) -> dict:
    tiers: dict[str, dict] = {}
    for v in views:
        t = tiers.setdefault(v.tier, {"escalations": 0, "acknowledged": 0, "unacknowledged": 0,
                                      "active": 0, "delays": []})
        t["escalations"] += 1
        if v.acknowledged_at is not None:
            t["acknowledged"] += 1
            t["delays"].append(v.ack_delay_s)
        elif v.state == ACTIVE:
            t["active"] += 1
        else:
            t["unacknowledged"] += 1
    out = {}
    for name, t in sorted(tiers.items()):
        delays = t.pop("delays")
        t["ack_delay_p50_seconds"] = statistics.median(delays) if delays else None
        t["ack_delay_worst_seconds"] = max(delays) if delays else None
        out[name] = t
    return {"practice": practice, "since": since.isoformat(), "until": until.isoformat(), "tiers": out,
            "escalations": sum(t["escalations"] for t in out.values()),
            "unacknowledged": sum(t["unacknowledged"] for t in out.values())}


def csv_rows(views: Iterable[EscalationView]) -> Iterable[list]:
    for v in views:
        sent = sum(1 for s in v.steps if s.state in ("sent", "delivered", "unknown"))
        failed = sum(1 for s in v.steps if s.state in ("failed", "skipped"))
        yield [v.id, v.call_id or "", v.practice, v.tier, v.started_at.isoformat(), v.outcome or "",
               v.acknowledged_by or "", v.acknowledged_via or "", iso_or_none(v.acknowledged_at) or "",
               "" if v.ack_delay_s is None else f"{v.ack_delay_s:.0f}", sent, failed, v.reference,
               " ".join(v.declined_by),
               " | ".join(f"{r.at.isoformat()} {r.sender} {r.practitioner or '-'} {r.understood}: {r.action}"
                          for r in v.replies),
               " ".join(f"{a.channel}:{a.state}" for a in v.duty_alerts)]
