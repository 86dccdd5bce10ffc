"""Which settings changes apply live, which only seed the team, which need which unit's restart,
and that the running settings after a reload take the live changes and nothing else."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings as hsettings, strategies as st

from callrouter import settings_diff as diff
from callrouter.config import parse_settings
from callrouter.live_settings import running_parts


def settings(**sections):
    return parse_settings(sections, environ={})


def test_call_side_timings_and_prompt_names_apply_live():
    old = settings()
    new = settings(controller={"ring_timeout_s": 12, "hold_prompt": "attente_douce", "pop_lead_s": 0.3})
    plan = diff.plan(old, new)
    assert {c.key for c in plan.live} == {"controller.ring_timeout_s", "controller.hold_prompt", "controller.pop_lead_s"}
    assert plan.restart == () and plan.seed == ()
    assert plan.parts() == ("calls",)
    running = diff.applied(old, new, plan)
    assert running.controller.ring_timeout_s == 12.0 and running.controller.hold_prompt == "attente_douce"


def test_ports_addresses_database_and_node_need_their_units_restart_and_are_left_as_they_run():
    old = settings()
    new = settings(sip={"udp_port": 5062}, http={"port": 9000}, node="n2", database_url="sqlite:///other.db",
                   media={"rtp_port_base": 30000, "bind": "127.0.0.2"}, controller={"ring_timeout_s": 9})
    plan = diff.plan(old, new)
    units = plan.by_unit()
    assert set(units["callrouter-edge"]) == {"sip.udp_port", "media.bind", "database_url", "http.port"}  # the WSS origins
    assert set(units["callrouter-media"]) == {"media.rtp_port_base", "media.bind"}
    assert set(units["callrouter"]) == {"http.port", "node", "database_url", "media.rtp_port_base", "media.bind",
                                        "sip.udp_port"}
    running = diff.applied(old, new, plan)
    assert (running.sip.udp_port, running.http.port, running.node) == (5060, 8080, "local")
    assert (running.database_url, running.media.bind, running.media.rtp_port_base) == (old.database_url, "127.0.0.1", 20000)
    assert running.controller.ring_timeout_s == 9.0  # the live change still goes through


def test_the_team_in_the_file_only_seeds_the_database():
    plan = diff.plan(settings(), settings(controller={"secretaries": {"*": ["sip:a@127.0.0.1"]}},
                                          http={"console": {"pause_reasons": ["pause"]}}))
    assert {c.key for c in plan.seed} == {"controller.secretaries", "http.console.pause_reasons"}
    assert plan.live == () and plan.restart == ()


def test_workers_max_lowered_applies_live_raised_needs_the_edge_restart():
    old = settings(media={"workers_max": 10})
    lowered = diff.plan(old, settings(media={"workers_max": 6}))
    assert [c.key for c in lowered.live] == ["media.workers_max"]
    raised = diff.plan(old, settings(media={"workers_max": 20}))
    assert raised.live == () and raised.by_unit() == {"callrouter-edge": ("media.workers_max",)}
    no_edge = settings(sip={"enabled": False}, media={"workers_max": 10})
    assert [c.key for c in diff.plan(no_edge, settings(sip={"enabled": False}, media={"workers_max": 20})).live] \
        == ["media.workers_max"]


def test_the_forwarding_watch_is_switched_off_live_but_on_only_by_a_restart():
    on = settings(watch={"enabled": True, "caller_number": "+33180000100"})
    off = settings(watch={"enabled": False, "caller_number": "+33180000100"})
    assert [c.key for c in diff.plan(on, off).live] == ["watch.enabled"]
    assert diff.plan(off, on).by_unit() == {"callrouter": ("watch.enabled",)}


def test_a_change_the_edge_is_configured_from_needs_its_restart_too():
    """The edge's WebSocket takes the console's origins from controller.console_url and http."""
    old = settings()
    plan = diff.plan(old, settings(controller={"console_url": "https://accueil.example/console"}, http={"port": 9000}))
    assert plan.by_unit() == {"callrouter": ("http.port", "controller.console_url"),
                              "callrouter-edge": ("http.port", "controller.console_url")}
    pinned = settings(sip={"wss_origins": ["https://accueil.example"]})
    live = diff.plan(pinned, settings(sip={"wss_origins": ["https://accueil.example"]},
                                      controller={"console_url": "https://x.example/console"}))
    assert live.by_unit() == {} and [c.key for c in live.live] == ["controller.console_url"]  # the origins pinned
    assert live.parts() == ("console",)
    no_edge = settings(sip={"enabled": False})
    assert diff.plan(no_edge, settings(sip={"enabled": False}, http={"port": 9000})).by_unit() \
        == {"callrouter": ("http.port",)}


def test_the_edge_address_the_controller_reaches_secretaries_at_needs_its_restart_too():
    plan = diff.plan(settings(), settings(sip={"udp_port": 5062, "flood_max_requests": 40}))
    assert plan.by_unit() == {"callrouter-edge": ("sip.udp_port", "sip.flood_max_requests"),
                              "callrouter": ("sip.udp_port",)}  # its secretaries at 127.0.0.1:5062


def test_a_key_no_table_names_needs_the_controller_restart():
    assert diff.kind("mqtt.host", settings(), settings()) == (diff.CONTROLLER,)
    assert diff.kind("escalation.public_url", settings(), settings()) == (diff.CONTROLLER,)
    assert diff.kind("sip.tls_port", settings(), settings()) == (diff.EDGE,)


def test_every_key_the_tables_name_is_a_setting():
    keys = set(diff.flatten(settings()))
    named = set(diff.LIVE_KEYS) | set(diff.SEED_KEYS) | set(diff.LIVE_WHEN)
    assert named <= keys, named - keys
    assert all(any(k == p or k.startswith(p) for k in keys) for p in diff.RESTART_UNITS)
    assert set(diff.LIVE_KEYS.values()) == {"calls", "alerts", "trunk", "media", "senders", "retention", "watch",
                                             "logging", "console", "dialplans", "http"}
    assert set(running_parts({})) == set(diff.LIVE_KEYS.values())  # each part has its applier


# -- properties ----------------------------------------------------------------------------------

MUTATIONS = {
    "controller.ring_timeout_s": st.floats(1, 120, allow_nan=False),
    "controller.hold_prompt": st.sampled_from(["music_on_hold", "attente", "jazz"]),
    "controller.max_missed_offers": st.integers(0, 9),
    "controller.login_required": st.booleans(),
    "controller.secretaries": st.sampled_from([{}, {"*": ["sip:a@127.0.0.1"]}]),
    "media.workers_min": st.integers(1, 4),
    "media.workers_max": st.integers(4, 100),
    "media.spare_calls": st.integers(1, 20),
    "media.rtp_port_base": st.integers(10000, 30000),
    "sip.udp_port": st.integers(5060, 5069),
    "http.port": st.integers(8000, 8100),
    "retention.audit_days": st.integers(1, 4000),
    "watch.max_in_flight": st.integers(1, 50),
    "escalation.call_repeats": st.integers(1, 10),
    "escalation.sms_url": st.sampled_from([None, "http://127.0.0.1:9001/sms", "http://127.0.0.1:9002/sms"]),
    "escalation.sms_password": st.sampled_from([None, "a", "b"]),
    "var_dir": st.sampled_from(["var", "/srv/callrouter"]),
}


def _nested(values: dict) -> dict:
    out: dict = {}
    for key, value in values.items():
        *heads, last = key.split(".")
        node = out
        for head in heads:
            node = node.setdefault(head, {})
        node[last] = value
    return out


some_settings = st.dictionaries(st.sampled_from(sorted(MUTATIONS)), st.none()).flatmap(
    lambda keys: st.fixed_dictionaries({k: MUTATIONS[k] for k in keys})).map(lambda d: parse_settings(_nested(d), environ={}))


@hsettings(max_examples=150, deadline=None)
@given(some_settings, some_settings)
def test_a_reload_runs_the_live_changes_and_nothing_else(old, new):
    plan = diff.plan(old, new)
    running, wanted, before = diff.flatten(diff.applied(old, new, plan)), diff.flatten(new), diff.flatten(old)
    changed = {k for k in wanted if wanted[k] != before[k]}
    live = {c.key for c in plan.live}
    others = {c.key for c in plan.seed} | {c.key for c, _ in plan.restart}
    assert live | others == changed and not live & others  # every change is told, once
    assert all(running[k] == wanted[k] for k in live)
    assert all(running[k] == before[k] for k in running if k not in live)
    # Read again, the same file changes nothing more: what is left waits for a restart or is a seed.
    again = diff.plan(diff.applied(old, new, plan), new)
    assert again.live == () and {c.key for c in again.seed} | {c.key for c, _ in again.restart} == others


def test_shown_values_are_plain():
    assert diff.shown(Path("/x")) == "/x" and diff.shown(3) == 3 and diff.shown(None) is None


def test_a_senders_settings_apply_live_while_the_kinds_of_sender_stay():
    old = settings(escalation={"sms_url": "http://127.0.0.1:9001/sms", "smtp_host": "relay.example"})
    new = settings(escalation={"sms_url": "http://127.0.0.1:9002/sms", "smtp_host": "relay2.example",
                               "smtp_password": "nouveau", "http_timeout_seconds": 4})
    plan = diff.plan(old, new)
    assert {c.key for c in plan.live} == {"escalation.sms_url", "escalation.smtp_host", "escalation.smtp_password",
                                          "escalation.http_timeout_seconds"} and plan.restart == ()
    assert plan.parts() == ("senders",)
    assert diff.shown("nouveau", "escalation.smtp_password") == "***" and diff.shown(None, "escalation.smtp_password") is None


def test_a_sender_that_comes_or_goes_needs_the_controller_restart():
    http = settings(escalation={"sms_url": "http://127.0.0.1:9001/sms"})
    for new in (settings(escalation={"sms_url": "http://127.0.0.1:9001/sms", "smtp_host": "relay.example"}),
                settings(escalation={"sms_url": "http://127.0.0.1:9002/sms", "sms_gateway": "smpp",
                                     "smpp_host": "127.0.0.1", "smpp_system_id": "cr"})):
        plan = diff.plan(http, new)
        assert plan.live == () and all(units == (diff.CONTROLLER,) for _, units in plan.restart)
    assert diff.plan(settings(), settings(escalation={"sms_url": "http://127.0.0.1:9/sms"})).live == ()


def test_the_purge_period_and_the_dialplans_poll_apply_live():
    plan = diff.plan(settings(), settings(retention={"purge_interval_hours": 6}, dialplan_poll_seconds=5))
    assert {c.key for c in plan.live} == {"retention.purge_interval_hours", "dialplan_poll_seconds"}
    assert plan.restart == () and set(plan.parts()) == {"retention", "dialplans"}
