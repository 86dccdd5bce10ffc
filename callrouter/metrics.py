"""Prometheus metrics. Labels carry practice ids and outcomes, never a phone number."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.calls = Counter("callrouter_calls", "Calls ended, by practice and outcome", ["practice", "outcome"], registry=r)
        self.active_calls = Gauge("callrouter_active_calls", "Calls in progress", registry=r)
        self.ivr_timeouts = Counter("callrouter_ivr_timeouts", "IVR menus left without a valid choice", ["practice"], registry=r)
        self.queue_wait = Histogram("callrouter_queue_wait_seconds", "Time from queueing to a secretary answering",
                                    ["practice", "queue"], buckets=(5, 15, 30, 60, 90, 120, 180, 300, 600), registry=r)
        self.overflows = Counter("callrouter_overflows", "Queued calls sent to the overflow route", ["practice", "cause"], registry=r)
        self.escalations_requested = Counter("callrouter_escalations_requested", "Escalation tiers started from calls",
                                             ["practice", "tier"], registry=r)
        self.workers = Gauge("callrouter_media_workers", "Media worker processes running", registry=r)
        self.worker_restarts = Counter("callrouter_media_worker_restarts", "Media workers restarted after dying", registry=r)
        self.record_backlog = Gauge("callrouter_call_record_backlog", "Call-record writes waiting for the database", registry=r)
        self.secretaries_registered = Gauge("callrouter_secretaries_registered",
                                            "Secretaries' softphones registered at the edge", registry=r)
        self.secretaries = Gauge("callrouter_secretaries", "Secretaries and fixed phones by state", ["state"], registry=r)
        self.queue_waiting = Gauge("callrouter_queue_waiting", "Calls and callback tasks waiting, by practice and queue",
                                   ["practice", "queue"], registry=r)
        self.callback_tasks = Counter("callrouter_callback_tasks", "Callback tasks by practice and event "
                                      "(created_overflow, created_voicemail, offered, done, no_answer, expired)",
                                      ["practice", "event"], registry=r)
        self.dialplan_errors = Gauge("callrouter_dialplan_errors", "Dialplan errors in the last reload", registry=r)
