"""The five Grafana dashboards: overview, one practice (templated by practice), secretaries,
escalations, infrastructure. Rendered to deploy/grafana/dashboards/ (`python -m callrouter.observe
render`); the whole-service test evaluates every expression here against a real Prometheus
scraping a real service, so a panel that would stay empty fails the build.

Counters are read through rate() or increase() (restarts reset them); the service level and the
answer times come from the recording rules (callrouter.observe.rules). Expressions that could
legitimately have no series at all (no message ever dropped) end in `or vector(0)`.
"""

from __future__ import annotations

from callrouter.observe.grafana import PRACTICE, Dashboard, Target, panel

P = f'practice="{PRACTICE}"'
JOB = 'job="callrouter"'


def RED_UNDER(limit: float) -> tuple[tuple[float | None, str], ...]:
    return ((None, "red"), (limit, "green"))


def GREEN_UNDER(limit: float) -> tuple[tuple[float | None, str], ...]:
    return ((None, "green"), (limit, "red"))


OVERVIEW = Dashboard("callrouter-overview", "callrouter: overview", "Calls, service level and waiting, all practices", (
    panel("Calls ended per minute, by outcome", Target("sum by (outcome) (rate(callrouter_calls_total[5m])) * 60",
                                                       "{{outcome}}"), unit="cpm"),
    panel("Calls in progress", "sum(callrouter_active_calls)", kind="stat"),
    panel("Service level (15 min), by practice", Target("callrouter:service_level:ratio15m", "{{practice}}"),
          unit="percentunit", description="Answered within the threshold / (calls for a secretary - short abandons)"),
    panel("Answer time p90 (15 min), by practice", Target("callrouter:answer_time_seconds:p90_15m", "{{practice}}"),
          unit="s"),
    panel("Calls waiting, by practice", Target("sum by (practice) (callrouter_queue_waiting)", "{{practice}}")),
    panel("Oldest call waiting, by practice", Target("max by (practice) (callrouter_queue_oldest_wait_seconds)",
                                                     "{{practice}}"), unit="s"),
    panel("Secretaries by state", Target("sum by (state) (callrouter_secretaries)", "{{state}}")),
    panel("Open with nobody logged in", Target("max by (practice) (callrouter_practice_open_unstaffed)", "{{practice}}"),
          kind="stat", thresholds=GREEN_UNDER(1)),
    panel("Escalations started (1 h)", Target("sum by (tier) (increase(callrouter_escalations_started_total[1h]))",
                                             "{{tier}}"), kind="stat"),
))

PRACTICE_DASHBOARD = Dashboard("callrouter-practice", "callrouter: practice", "One practice's calls, queues and menus", (
    panel("Service level (15 min) and target", Target(f"callrouter:service_level:ratio15m{{{P}}}", "service level"),
          Target(f"max(callrouter_service_level_target_ratio{{{P}}})", "target"), unit="percentunit"),
    panel("Service level inputs (15 min)",
          Target(f"callrouter:calls_for_secretary:increase15m{{{P}}}", "calls for a secretary"),
          Target(f"callrouter:calls_answered_in_threshold:increase15m{{{P}}}", "answered in threshold"),
          Target(f"callrouter:calls_short_abandoned:increase15m{{{P}}}", "short abandons")),
    panel("Answer time (15 min)", Target(f"callrouter:answer_time_seconds:p50_15m{{{P}}}", "p50"),
          Target(f"callrouter:answer_time_seconds:p90_15m{{{P}}}", "p90"), unit="s"),
    panel("Answer time p90 by queue (15 min)", Target(
        f"histogram_quantile(0.9, sum by (queue, le) (rate(callrouter_queue_wait_seconds_bucket{{{P}}}[15m])))",
        "{{queue}}"), unit="s"),
    panel("Calls ended per minute, by outcome", Target(
        f"sum by (outcome) (rate(callrouter_calls_total{{{P}}}[5m])) * 60", "{{outcome}}"), unit="cpm"),
    panel("Calls waiting, by queue", Target(f"sum by (queue) (callrouter_queue_waiting{{{P}}})", "{{queue}}")),
    panel("Oldest call waiting, by queue", Target(f"max by (queue) (callrouter_queue_oldest_wait_seconds{{{P}}})",
                                                  "{{queue}}"), unit="s"),
    panel("IVR answers (1 h), by menu and digit", Target(
        f"sum by (menu, digit) (increase(callrouter_ivr_choices_total{{{P}}}[1h]))", "{{menu}} {{digit}}"),
          kind="bargauge"),
    panel("Overflows (1 h), by cause", Target(f"sum by (cause) (increase(callrouter_overflows_total{{{P}}}[1h]))",
                                             "{{cause}}"), kind="bargauge"),
    panel("Callback tasks (1 h), by event", Target(
        f"sum by (event) (increase(callrouter_callback_tasks_total{{{P}}}[1h]))", "{{event}}"), kind="bargauge"),
    panel("Escalations started (1 h), by tier", Target(
        f"sum by (tier) (increase(callrouter_escalations_started_total{{{P}}}[1h]))", "{{tier}}"), kind="bargauge"),
    panel("Open now", Target(f"max(callrouter_practice_open{{{P}}})", "open"), kind="stat", width=4),
    panel("Open, nobody logged in", Target(f"max(callrouter_practice_open_unstaffed{{{P}}})", "unstaffed"),
          kind="stat", width=4, thresholds=GREEN_UNDER(1)),
    panel("On-call cover left", Target(f"(min(callrouter_oncall_rota_end_timestamp_seconds{{{P}}}) - time()) / 86400",
                                       "days"), kind="stat", unit="d", thresholds=RED_UNDER(14)),
), practice_variable=True)

SECRETARIES = Dashboard("callrouter-secretaries", "callrouter: secretaries", "The team's states and load", (
    panel("Secretaries by state", Target("sum by (state) (callrouter_secretaries)", "{{state}}")),
    panel("Secretaries in each state, 5-min average", Target("callrouter:secretaries_in_state:avg5m", "{{state}}")),
    panel("Share of time in each state (1 h)", Target(
        "sum by (state) (increase(callrouter_secretary_state_seconds_total[1h])) / "
        "scalar(clamp_min(sum(increase(callrouter_secretary_state_seconds_total[1h])), 1))", "{{state}}"),
          unit="percentunit", kind="bargauge"),
    panel("Occupancy (15 min)", Target(
        'sum(rate(callrouter_secretary_state_seconds_total{state=~"ringing|on_call|wrap_up"}[15m])) / '
        'clamp_min(sum(rate(callrouter_secretary_state_seconds_total{state!~"offline|paused"}[15m])), 0.001)',
        "occupancy"), unit="percentunit",
          description="Time ringing, on a call or in wrap-up over the time logged in and not paused"),
    panel("Softphones registered at the edge", "sum(callrouter_secretaries_registered)", kind="stat"),
    panel("Calls answered per minute", Target("sum(rate(callrouter_queue_wait_seconds_count[5m])) * 60", "answered"),
          unit="cpm"),
))

ESCALATIONS = Dashboard("callrouter-escalations", "callrouter: escalations", "Chains, steps and acknowledgements", (
    panel("Chains started (1 h)", Target(
        "sum by (practice, tier) (increase(callrouter_escalations_started_total[1h]))", "{{practice}} {{tier}}"),
          kind="bargauge"),
    panel("Chains acknowledged (1 h)", Target(
        "sum by (practice, tier) (increase(callrouter_escalations_acknowledged_total[1h]))", "{{practice}} {{tier}}"),
          kind="bargauge"),
    panel("Chains exhausted (1 h)", Target(
        "sum by (practice, tier) (increase(callrouter_escalations_exhausted_total[1h]))", "{{practice}} {{tier}}"),
          kind="bargauge"),
    panel("Steps (1 h), by channel and outcome", Target(
        "sum by (channel, outcome) (increase(callrouter_escalation_steps_total[1h]))", "{{channel}} {{outcome}}"),
          kind="bargauge"),
    panel("Step failures (1 h), by practice and channel", Target(
        "sum by (practice, channel) (increase(callrouter_escalation_step_failures_total[1h]))",
        "{{practice}} {{channel}}")),
    panel("Duty-contact alerts failed (1 h)", Target(
        "sum by (channel) (increase(callrouter_escalation_duty_alert_failures_total[1h]))", "{{channel}}")),
    panel("Acknowledgement delay (24 h)", Target(
        "histogram_quantile(0.5, sum by (le) (rate(callrouter_escalation_ack_delay_seconds_bucket[24h])))", "p50"),
          Target("histogram_quantile(0.9, sum by (le) (rate(callrouter_escalation_ack_delay_seconds_bucket[24h])))",
                 "p90"), unit="s"),
    panel("Tiers requested by callers' menu choices (1 h)", Target(
        "sum by (practice, tier) (increase(callrouter_escalations_requested_total[1h]))", "{{practice}} {{tier}}")),
))

INFRASTRUCTURE = Dashboard("callrouter-infrastructure", "callrouter: infrastructure",
                           "The controller, its media workers, the edge and what they depend on", (
    panel("Scrape up", Target(f"up{{{JOB}}}", "{{instance}}"), kind="stat", thresholds=RED_UNDER(1)),
    panel("Controller restarts (1 h)", Target(f"changes(process_start_time_seconds{{{JOB}}}[1h])", "{{instance}}"),
          kind="stat"),
    panel("Edge, database, broker", Target("min by (instance) (callrouter_edge_up)", "edge {{instance}}"),
          Target("min by (instance) (callrouter_database_up)", "database {{instance}}"),
          Target("min by (instance) (callrouter_events_broker_connected)", "broker {{instance}}"),
          kind="stat", thresholds=RED_UNDER(1)),
    panel("Memory", Target(f"process_resident_memory_bytes{{{JOB}}}", "controller {{instance}}"),
          Target("callrouter_child_memory_bytes", "{{process}} {{instance}}"), unit="bytes"),
    panel("CPU", Target(f"rate(process_cpu_seconds_total{{{JOB}}}[5m])", "controller {{instance}}"),
          Target("rate(callrouter_child_cpu_seconds_total[5m])", "{{process}} {{instance}}"), unit="percentunit"),
    panel("Media call slots", Target("sum by (state) (callrouter_media_call_slots)", "{{state}}")),
    panel("Media call slots in use", Target("callrouter:media_call_slots:used_ratio", "{{instance}}"),
          unit="percentunit"),
    panel("Media workers ready, and restarts (1 h)", Target("sum by (instance) (callrouter_media_workers)", "ready"),
          Target("sum by (instance) (increase(callrouter_media_worker_restarts_total[1h]))", "restarts")),
    panel("Call-record writes waiting", Target("callrouter_call_record_backlog", "{{instance}}")),
    panel("Controller lag (the most each second)", Target("max by (instance) (callrouter_controller_lag_seconds)",
                                                         "{{instance}}"), unit="s",
          description="How late the controller runs its timers; past media.shed_lag_ms the edge refuses new calls"),
    panel("New calls refused for the controller's lag", Target(
        "sum by (instance) (rate(callrouter_media_calls_shed_total[5m])) * 60", "refused per minute {{instance}}"),
          Target("max by (instance) (callrouter_media_shedding)", "refusing now {{instance}}"), unit="cpm"),
    panel("MQTT messages per second", Target("sum(rate(callrouter_events_published_total[5m]))", "published"),
          Target("sum(rate(callrouter_events_dropped_total[5m])) or vector(0)", "dropped")),
    panel("Dialplans", Target("max(callrouter_dialplan_errors)", "errors in the last reload"),
          Target("time() - max(callrouter_dialplan_last_reload_success_timestamp_seconds)", "seconds since a good reload"),
          kind="stat"),
    panel("TLS certificate", Target("(min(callrouter_tls_certificate_expiry_timestamp_seconds) - time()) / 86400",
                                    "days left"), kind="stat", unit="d", thresholds=RED_UNDER(21)),
    panel("On-call cover left, by practice", Target(
        "(min by (practice) (callrouter_oncall_rota_end_timestamp_seconds) - time()) / 86400", "{{practice}}"),
          kind="bargauge", unit="d", thresholds=RED_UNDER(14)),
))

DASHBOARDS = (OVERVIEW, PRACTICE_DASHBOARD, SECRETARIES, ESCALATIONS, INFRASTRUCTURE)
