"""Prometheus metrics of the controller. Labels carry practice ids, queue and menu names, states
and outcomes: bounded sets read from the dialplans, never a phone number nor a secretary's name.

Counters reset when the process restarts: dashboards and alert rules read them through rate() or
increase(), which handle resets (docs/operations.md, "Monitoring"). So that rate() and increase()
see a series from the first scrape, `seed()` creates every labelled counter at 0 for the label
values the dialplans make known (callrouter.observe.samplers calls it at start and after each
reload); label sets known without a dialplan (states, outcomes, causes) are created here.

The standard process, platform and garbage-collector collectors are registered too:
`process_start_time_seconds` shows restarts, `process_resident_memory_bytes` what the controller
holds.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from callrouter.domain import ivr
from callrouter.domain.model import Dialplan
from callrouter.domain.serving import SECRETARY_STATES

# Every outcome a call is closed with (callrouter.controller.calls `end`), and the practice of
# calls to a number no dialplan has.
CALL_OUTCOMES = ("answered", "abandoned", "voicemail", "callback_requested", "overflow", "failed",
                 "rejected", "announced")
NO_PRACTICE = "unknown"
OVERFLOW_CAUSES = ("nobody", "length", "wait")
CALLBACK_EVENTS = ("created_overflow", "created_voicemail", "offered", "done", "no_answer", "expired")
# The `digit` of an IVR menu that ran out of tries without a valid choice (ivr.Exhausted.cause).
IVR_EXHAUSTED = ("timeout", "invalid")
SLOT_STATES = ("used", "free")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.time):
        """`clock`: wall-clock seconds for the timestamps exposed (Prometheus compares them with time())."""
        self.registry = registry or CollectorRegistry()
        self._clock = clock
        r = self.registry
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=r)
        self.calls = Counter("callrouter_calls", "Calls ended, by practice and outcome", ["practice", "outcome"], registry=r)
        self.active_calls = Gauge("callrouter_active_calls", "Calls in progress", registry=r)
        self.ivr_timeouts = Counter("callrouter_ivr_timeouts", "IVR menus left without a valid choice", ["practice"], registry=r)
        self.ivr_choices = Counter("callrouter_ivr_choices", "IVR menus answered, by practice, menu and digit "
                                   "(timeout, invalid: the menu ran out of tries)", ["practice", "menu", "digit"], registry=r)
        self.queue_wait = Histogram("callrouter_queue_wait_seconds", "Time from queueing to a secretary answering",
                                    ["practice", "queue"], buckets=(5, 15, 30, 60, 90, 120, 180, 300, 600), registry=r)
        self.overflows = Counter("callrouter_overflows", "Queued calls sent to the overflow route", ["practice", "cause"], registry=r)
        self.escalations_requested = Counter("callrouter_escalations_requested", "Escalation tiers started from calls",
                                             ["practice", "tier"], registry=r)
        self.workers = Gauge("callrouter_media_workers", "Media worker processes running", registry=r)
        self.worker_restarts = Counter("callrouter_media_worker_restarts", "Media workers restarted after dying", registry=r)
        self.call_slots = Gauge("callrouter_media_call_slots", "Call legs the ready media workers hold (used) "
                                "and can still take (free)", ["state"], registry=r)
        self.pool_at_max = Gauge("callrouter_media_pool_at_max", "1 while the media pool wants more workers than "
                                 "media.workers_max allows", registry=r)
        self.workers_max_reached = Counter("callrouter_media_workers_max_reached", "Times the media pool reached "
                                           "media.workers_max while it wanted more workers", registry=r)
        self.spare_calls = Gauge("callrouter_media_spare_calls", "New calls the media pool can take at once, each "
                                 "with a slot for a second leg (available), and the floor it keeps ahead of the "
                                 "traffic (floor)", ["kind"], registry=r)
        self.record_backlog = Gauge("callrouter_call_record_backlog", "Call-record writes waiting for the database", registry=r)
        # The controller's lag and the new calls refused for it (callrouter.media.overload).
        self.controller_lag = Gauge("callrouter_controller_lag_seconds", "How late the controller's 50 ms timer "
                                    "fired, the most in the last second: how far behind its calls it is", registry=r)
        self.shedding = Gauge("callrouter_media_shedding", "1 while the edge refuses new calls because the "
                              "controller lags media.shed_lag_ms or more", registry=r)
        self.shed_episodes = Counter("callrouter_media_shed_episodes", "Times the edge started refusing new calls "
                                     "for the controller's lag", registry=r)
        self.calls_shed = Counter("callrouter_media_calls_shed", "New calls the edge refused (503, Retry-After) "
                                  "while the controller lagged", registry=r)
        self.secretaries_registered = Gauge("callrouter_secretaries_registered",
                                            "Secretaries' softphones registered at the edge", registry=r)
        self.secretaries = Gauge("callrouter_secretaries", "Secretaries and fixed phones by state", ["state"], registry=r)
        self.secretary_state_seconds = Counter("callrouter_secretary_state_seconds", "Seconds spent by the "
                                               "secretaries in each state, summed over them", ["state"], registry=r)
        self.queue_waiting = Gauge("callrouter_queue_waiting", "Calls and callback tasks waiting, by practice and queue",
                                   ["practice", "queue"], registry=r)
        self.queue_oldest_wait = Gauge("callrouter_queue_oldest_wait_seconds", "How long the oldest call waiting "
                                       "in the queue has waited (0: none waits)", ["practice", "queue"], registry=r)
        self.callback_tasks = Counter("callrouter_callback_tasks", "Callback tasks by practice and event "
                                      "(created_overflow, created_voicemail, offered, done, no_answer, expired)",
                                      ["practice", "event"], registry=r)
        # The forwarding watch (callrouter.watch): its calls by outcome, and whether a line's last test failed.
        self.watch_calls = Counter("callrouter_forwarding_watch_calls", "Forwarding watch calls by practice and "
                                   "outcome (passed: the forwarded call came back)", ["practice", "outcome"], registry=r)
        self.watch_failing = Gauge("callrouter_forwarding_watch_failing", "1 while the last forwarding watch of one "
                                   "of the practice's numbers failed, 0 once they all passed", ["practice"], registry=r)
        self._service_level(r)
        self._health(r)

    def _service_level(self, r: CollectorRegistry) -> None:
        """The service level's inputs (../KPIS.md), counted by callrouter.observe.service_level."""
        self.calls_for_secretary = Counter(
            "callrouter_calls_for_secretary", "Calls that entered a queue, counted once their service level "
            "is known (answered, ended, or unanswered past the threshold); overflows before a queue are "
            "callrouter_overflows_total", ["practice"], registry=r)
        self.answered_in_threshold = Counter(
            "callrouter_calls_answered_in_threshold", "Calls for a secretary answered within the practice's "
            "service-level threshold", ["practice"], registry=r)
        self.short_abandons = Counter(
            "callrouter_calls_short_abandoned", "Calls for a secretary whose caller hung up within the "
            "short-abandon limit of entering the queue", ["practice"], registry=r)
        self.sl_threshold = Gauge("callrouter_service_level_threshold_seconds", "Answer time a call must not "
                                  "exceed to count as answered within the service level", ["practice"], registry=r)
        self.sl_target = Gauge("callrouter_service_level_target_ratio", "The practice's service-level target",
                               ["practice"], registry=r)

    def _health(self, r: CollectorRegistry) -> None:
        self.dialplan_errors = Gauge("callrouter_dialplan_errors", "Dialplan errors in the last reload", registry=r)
        self.dialplan_reload_success = Gauge("callrouter_dialplan_last_reload_success_timestamp_seconds",
                                             "When the dialplans last reloaded without an error", registry=r)
        self.database_up = Gauge("callrouter_database_up", "1 while the database answers a probe", registry=r)
        self.edge_up = Gauge("callrouter_edge_up", "1 while the SIP edge (Kamailio) answers the controller's RPC",
                             registry=r)
        self.rota_end = Gauge("callrouter_oncall_rota_end_timestamp_seconds", "Last instant someone is on call "
                              "within the horizon the practice's rota is read over", ["practice"], registry=r)
        self.tls_expiry = Gauge("callrouter_tls_certificate_expiry_timestamp_seconds",
                                "notAfter of the SIP edge's TLS certificate", registry=r)
        self.practice_open = Gauge("callrouter_practice_open", "1 while the practice's calendar says open",
                                   ["practice"], registry=r)
        self.practice_unstaffed = Gauge("callrouter_practice_open_unstaffed", "1 while the practice is open, its "
                                        "open route leads to a queue and no secretary covering it is logged in",
                                        ["practice"], registry=r)
        for unknown_yet in (self.dialplan_reload_success, self.database_up, self.edge_up, self.tls_expiry):
            unknown_yet.set(float("nan"))  # until a reload or a probe says (NaN: no rule compares true)
        for state in SECRETARY_STATES:
            self.secretaries.labels(state)
            self.secretary_state_seconds.labels(state)
        for state in SLOT_STATES:
            self.call_slots.labels(state)
        for outcome in CALL_OUTCOMES:
            self.calls.labels(NO_PRACTICE, outcome)

    # --- call sites that need more than one series updated --------------------------------------

    def ivr_outcome(self, practice: str, menu: str, outcome: object) -> None:
        """Count a menu's answer (callrouter.domain.ivr: Chosen, or Exhausted; a Prompt is a retry)."""
        if isinstance(outcome, ivr.Chosen):
            self.ivr_choices.labels(practice, menu, outcome.digit).inc()
        elif isinstance(outcome, ivr.Exhausted):
            self.ivr_choices.labels(practice, menu, outcome.cause).inc()

    def dialplan_reloaded(self, errors: int) -> None:
        self.dialplan_errors.set(errors)
        if errors == 0:
            self.dialplan_reload_success.set(self._clock())

    # --- start at 0 ------------------------------------------------------------------------------

    def seed(self, dialplans: Mapping[str, Dialplan], sl_params: Callable[[Dialplan], tuple[float, float]]) -> None:
        """Every series the dialplans make known, created (at 0 for counters) if missing.
        `sl_params(dialplan)`: its (service-level threshold in seconds, target ratio)."""
        for practice, dialplan in dialplans.items():
            for outcome in CALL_OUTCOMES:
                self.calls.labels(practice, outcome)
            self.ivr_timeouts.labels(practice)
            for cause in OVERFLOW_CAUSES:
                self.overflows.labels(practice, cause)
            for tier in dialplan.escalation:
                self.escalations_requested.labels(practice, tier)
            for event in CALLBACK_EVENTS:
                self.callback_tasks.labels(practice, event)
            for queue in dialplan.queues:
                self.queue_wait.labels(practice, queue)
                self.queue_waiting.labels(practice, queue)
            for name, menu in dialplan.ivr.items():
                for digit in (*menu.options, *IVR_EXHAUSTED):
                    self.ivr_choices.labels(practice, name, digit)
            for counter in (self.calls_for_secretary, self.answered_in_threshold, self.short_abandons):
                counter.labels(practice)
            threshold, target = sl_params(dialplan)
            self.sl_threshold.labels(practice).set(threshold)
            self.sl_target.labels(practice).set(target)

    def forget(self, practices: set[str]) -> None:
        """Drop the gauges of practices no dialplan has any more (their counters stay: history)."""
        for practice in practices:
            for gauge in (self.sl_threshold, self.sl_target, self.practice_open, self.practice_unstaffed, self.rota_end,
                          self.watch_failing):
                try:
                    gauge.remove(practice)
                except KeyError:
                    pass
