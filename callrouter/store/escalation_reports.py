"""The escalation reports: the weekly summary per tier and the CSV export's rows (no caller numbers)."""

from __future__ import annotations

import datetime as dt
from typing import Iterable

from callrouter.domain.escalation_views import EscalationView, iso_or_none
from callrouter.domain.kpis import EscalationFact, escalation_figures

CSV_COLUMNS = ("id", "call_id", "practice", "tier", "started_at", "outcome", "acknowledged_by",
               "acknowledged_via", "acknowledged_at", "ack_delay_seconds", "steps_sent",
               "steps_failed", "reference", "declined_by", "replies", "duty_alerts")


def report(practice: str, since: dt.datetime, until: dt.datetime,
           views: Iterable[EscalationView]) -> dict:
    """The weekly summary per tier, from the indicators' own escalation figures (domain/kpis.py), so
    that this API, `callrouter report` and the wallboard count a chain the same way: a cancelled
    chain (its call was answered first, or a supervisor stopped it) is neither acknowledged nor
    unacknowledged."""
    facts = [EscalationFact(v.id, v.practice, v.tier, v.started_at, v.state, v.outcome, v.acknowledged_at,
                            len(v.declined_by), v.call_id, v.taken_at) for v in views]
    tiers = {}
    for t in escalation_figures(facts):
        unacknowledged = len(t.unacknowledged)
        tiers[t.tier] = {"escalations": t.started, "acknowledged": t.acknowledged,
                         "unacknowledged": unacknowledged, "active": t.active,
                         "cancelled": t.started - t.acknowledged - t.active - unacknowledged,
                         "ack_delay_p50_seconds": t.ack_delay.p50, "ack_delay_worst_seconds": t.ack_delay.worst}
    return {"practice": practice, "since": since.isoformat(), "until": until.isoformat(), "tiers": tiers,
            "escalations": sum(t["escalations"] for t in tiers.values()),
            "unacknowledged": sum(t["unacknowledged"] for t in tiers.values())}


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
