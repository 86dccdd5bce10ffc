"""The Prometheus recording and alert rules, written once here and rendered to
deploy/prometheus/callrouter-rules.yml (`python -m callrouter.observe render`).

Every counter is read through rate() or increase(): they handle the reset of a restart. Rules
aggregate `by (practice)` (or by instance for the machine's own figures), so several nodes sum up.
The scrape job is expected to be named `callrouter` (deploy/prometheus/prometheus.yml).

`render(timing)` gives the production file with `PRODUCTION`; the whole-service test loads the same
rules with `QUICK`: every `for:` a few seconds and the service-level alert on a single call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

RUNBOOK = "docs/operations.md"
JOB = 'job="callrouter"'


@dataclass(frozen=True)
class Timing:
    """What differs between the production rules and the quick copy a test loads."""

    quick_for: str | None = None  # every `for:` replaced by this
    sl_min_calls: int = 5  # calls for a secretary in 15 min before the service level may alert


PRODUCTION = Timing()
QUICK = Timing(quick_for="3s", sl_min_calls=1)


def _sum(metric: str, window: str = "15m", by: str = "practice") -> str:
    return f"sum by ({by}) (increase({metric}[{window}]))"


RECORDING: tuple[tuple[str, str], ...] = (
    # The service level over 15 min (../KPIS.md, callrouter.domain.kpis): calls that overflowed
    # before entering a queue (nobody logged in, the line full) are calls for a secretary too.
    ("callrouter:calls_for_secretary:increase15m",
     _sum("callrouter_calls_for_secretary_total") + " + " + _sum('callrouter_overflows_total{cause=~"nobody|length"}')),
    ("callrouter:calls_answered_in_threshold:increase15m", _sum("callrouter_calls_answered_in_threshold_total")),
    ("callrouter:calls_short_abandoned:increase15m", _sum("callrouter_calls_short_abandoned_total")),
    ("callrouter:service_level:ratio15m",
     "callrouter:calls_answered_in_threshold:increase15m / ((callrouter:calls_for_secretary:increase15m"
     " - callrouter:calls_short_abandoned:increase15m) > 0)"),
    # Answer time (queue to secretary) of answered calls.
    ("callrouter:answer_time_seconds:p90_15m",
     "histogram_quantile(0.9, sum by (practice, le) (rate(callrouter_queue_wait_seconds_bucket[15m])))"),
    ("callrouter:answer_time_seconds:p50_15m",
     "histogram_quantile(0.5, sum by (practice, le) (rate(callrouter_queue_wait_seconds_bucket[15m])))"),
    ("callrouter:calls:rate5m", "sum by (practice, outcome) (rate(callrouter_calls_total[5m]))"),
    # Media capacity: the share of call slots in use (1 when no worker is ready).
    ("callrouter:media_call_slots:used_ratio",
     '1 - sum by (instance) (callrouter_media_call_slots{state="free"}) / '
     "clamp_min(sum by (instance) (callrouter_media_call_slots), 1)"),
    # How many secretaries are in each state, on average over 5 min.
    ("callrouter:secretaries_in_state:avg5m", "sum by (state) (rate(callrouter_secretary_state_seconds_total[5m]))"),
)


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str

    @property
    def anchor(self) -> str:
        """The runbook paragraph's anchor in docs/operations.md (its heading is the alert's name)."""
        return self.name.lower()


def _sl_expr(timing: Timing) -> str:
    return ("callrouter:service_level:ratio15m < on (practice) max by (practice) "
            "(callrouter_service_level_target_ratio) and on (practice) "
            f"callrouter:calls_for_secretary:increase15m >= {timing.sl_min_calls}")


def alerts(timing: Timing = PRODUCTION) -> tuple[Alert, ...]:
    return (
        Alert("CallrouterDown", f"up{{{JOB}}} == 0", "1m", "critical",
              "callrouter on {{ $labels.instance }} is not answering its metrics scrape",
              "Prometheus cannot scrape callrouter on {{ $labels.instance }}: the controller is stopped, "
              "hung or unreachable. Calls to this node get no answer."),
        Alert("CallrouterEdgeDown", "callrouter_edge_up == 0", "1m", "critical",
              "The SIP edge (Kamailio) on {{ $labels.instance }} does not answer the controller",
              "The controller's JSON-RPC calls to Kamailio fail: no new call is dispatched to the media "
              "workers and secretaries' registrations are not read."),
        Alert("CallrouterNoFreeMediaCapacity", 'sum by (instance) (callrouter_media_call_slots{state="free"}) == 0',
              "2m", "critical", "No free media call slot on {{ $labels.instance }}",
              "Every call slot of the ready media workers is in use (or no worker is ready): new calls "
              "are refused with 486 and no secretary can be rung."),
        Alert("CallrouterMediaWorkersMax", "max by (instance) (callrouter_media_pool_at_max) == 1", "1m", "warning",
              "The media pool on {{ $labels.instance }} is held at media.workers_max",
              "The pool wants more media workers than media.workers_max allows: its spare call capacity is "
              "below the floor it keeps ahead of the traffic, and when the callers already in need every free "
              "slot new calls are refused at the edge. Raise media.workers_max or add a node."),
        Alert("CallrouterMediaWorkerRestarts", "increase(callrouter_media_worker_restarts_total[15m]) > 0", "0m",
              "warning", "Media workers restarted on {{ $labels.instance }}",
              "{{ $value | humanize }} media worker restart(s) in 15 minutes. The calls a dead worker held "
              "were closed (outcome failed, cause worker_lost)."),
        Alert("CallrouterNodeLostCalls", "sum by (instance) (increase(callrouter_calls_reaped_total[15m])) > 0", "0m",
              "critical", "A lost node's calls were closed by {{ $labels.instance }}",
              "{{ $value | humanize }} call(s) of a node gone for good were closed in 15 minutes: its waiting "
              "callers are callback tasks (source node_lost) in the console, its calls in conversation were "
              "cut (outcome failed, cause node_lost). Find out why the node died."),
        Alert("CallrouterUnsharedDesk", "max by (instance) (callrouter_cluster_unshared_peers) > 0", "1m",
              "critical", "{{ $labels.instance }} shares its database with other nodes without the shared desk",
              "{{ $value }} other node(s) hold a live lease on the database of {{ $labels.instance }}, whose "
              "cluster.shared_desk is off: each node offers calls from its own desk, so a secretary may be "
              "offered two calls at once. Set cluster.shared_desk: true on every node sharing the database."),
        Alert("CallrouterShedding", "sum by (instance) (increase(callrouter_media_shed_episodes_total[15m])) > 0",
              "0m", "warning", "New calls were refused on {{ $labels.instance }}: the controller lagged behind",
              "The edge refused every new call (503, Retry-After) {{ $value | humanize }} time(s) in 15 minutes "
              "while the controller was media.shed_lag_ms or more behind its calls; "
              "callrouter_media_calls_shed_total counts the calls refused. The node is short of CPU at this load."),
        Alert("CallrouterCallRecordBacklogGrowing",
              "callrouter_call_record_backlog > 0 and deriv(callrouter_call_record_backlog[5m]) > 0", "5m",
              "warning", "Call-record writes pile up on {{ $labels.instance }}",
              "{{ $value | humanize }} call-record writes wait for the database and the queue keeps "
              "growing: the database is slow or refuses writes. They are kept in memory (past 20,000, in "
              "var/call-records.spill) until written."),
        Alert("CallrouterDatabaseUnreachable", "callrouter_database_up == 0", "1m", "critical",
              "The database does not answer callrouter on {{ $labels.instance }}",
              "The controller's probe cannot read the database. Calls are still routed, but records "
              "queue in memory, and sign-ins, the console and escalations stop."),
        Alert("CallrouterBrokerDisconnected", "callrouter_events_broker_connected == 0", "2m", "warning",
              "callrouter on {{ $labels.instance }} is not connected to the MQTT broker",
              "Events (screen-pops for external consoles, queue and secretary states) are kept in a "
              "bounded queue and dropped when it is full."),
        Alert("CallrouterEscalationExhausted", "increase(callrouter_escalations_exhausted_total[15m]) > 0", "0m",
              "critical", "An escalation for {{ $labels.practice }} ({{ $labels.tier }}) was not acknowledged",
              "An escalation chain of tier {{ $labels.tier }} for {{ $labels.practice }} ran out of steps "
              "with nobody acknowledging. A patient waits for a practitioner: the duty contact was alerted; "
              "make sure someone takes it in hand now."),
        Alert("CallrouterEscalationStepFailing",
              "increase(callrouter_escalation_step_failures_total[15m]) > 0", "0m", "warning",
              "Escalation steps by {{ $labels.channel }} fail for {{ $labels.practice }}",
              "The {{ $labels.channel }} channel refused escalation steps of {{ $labels.practice }} "
              "({{ $labels.tier }}) in the last 15 minutes; the chains moved on to their next step."),
        Alert("CallrouterDutyAlertFailing", "increase(callrouter_escalation_duty_alert_failures_total[15m]) > 0",
              "0m", "critical", "The duty contact could not be alerted by {{ $labels.channel }}",
              "An exhausted escalation's alert to the secretariat's duty contact failed by "
              "{{ $labels.channel }}: nobody may know that a chain went unacknowledged."),
        Alert("CallrouterServiceLevelBelowTarget", _sl_expr(timing), "15m", "warning",
              "Service level of {{ $labels.practice }} below target",
              "Over the last 15 minutes {{ $value | humanizePercentage }} of the calls for a secretary of "
              "{{ $labels.practice }} were answered within the threshold, under the practice's target."),
        Alert("CallrouterOpenPracticeUnstaffed", "callrouter_practice_open_unstaffed == 1", "5m", "warning",
              "{{ $labels.practice }} is open and nobody covering it is logged in",
              "The practice's calendar says open and its callers are routed to a queue, but no secretary "
              "covering it is logged in with her softphone on: calls overflow at once."),
        Alert("CallrouterForwardingBroken", "max by (practice) (callrouter_forwarding_watch_failing) == 1", "0m",
              "critical", "The forwarding of {{ $labels.practice }}'s line does not reach the secretariat",
              "The last forwarding watch of a number of {{ $labels.practice }} failed twice: its test call was "
              "not forwarded back (busy, answered at the practice, or nothing came back). Patients calling the "
              "practice may reach nobody; the practice's and the secretariat's contacts were alerted."),
        Alert("CallrouterDialplanRefused", "callrouter_dialplan_errors > 0", "5m", "warning",
              "Dialplan files are refused",
              "The last reload found {{ $value }} error(s): the practices concerned keep their last good "
              "rules (or are not served at all if they never loaded)."),
        Alert("CallrouterOnCallRotaEnding", "callrouter_oncall_rota_end_timestamp_seconds - time() < 14 * 86400",
              "1h", "warning", "The on-call rota of {{ $labels.practice }} ends within 14 days",
              "The on-call cover of {{ $labels.practice }} stops in {{ $value | humanizeDuration }}; after "
              "that, escalations skip their on-call steps. Extend the rota or its feed."),
        Alert("CallrouterTlsCertificateExpiring",
              "callrouter_tls_certificate_expiry_timestamp_seconds - time() < 21 * 86400", "1h", "warning",
              "The SIP edge's TLS certificate on {{ $labels.instance }} expires within 21 days",
              "Secretaries' softphones on TLS will refuse the edge once it expires "
              "(in {{ $value | humanizeDuration }}). Renew var/tls/kamailio.crt and restart the service."),
    )


def document(timing: Timing = PRODUCTION, runbook: str = RUNBOOK) -> dict[str, Any]:
    """The rules file as a mapping (what promtool and Prometheus read)."""
    def alert(a: Alert) -> dict[str, Any]:
        return {"alert": a.name, "expr": a.expr, "for": timing.quick_for or a.for_,
                "labels": {"severity": a.severity},
                "annotations": {"summary": a.summary, "description": a.description,
                                "runbook_url": f"{runbook}#{a.anchor}"}}

    return {"groups": [
        {"name": "callrouter-recording", "rules": [{"record": name, "expr": expr} for name, expr in RECORDING]},
        {"name": "callrouter-alerts", "rules": [alert(a) for a in alerts(timing)]},
    ]}


def render(timing: Timing = PRODUCTION, runbook: str = RUNBOOK) -> str:
    header = ("# Generated by `python -m callrouter.observe render` from callrouter/observe/rules.py: edit\n"
              "# there. Runbooks: docs/operations.md, Monitoring.\n")
    return header + yaml.safe_dump(document(timing, runbook), sort_keys=False, allow_unicode=True, width=10_000)
