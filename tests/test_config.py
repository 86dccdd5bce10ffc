"""Settings derived from several sections are computed by config.py, once, for the service tree."""

from __future__ import annotations

from pathlib import Path

from callrouter.config import parse_settings


def test_the_served_controller_reaches_usernames_at_the_edge_and_saves_states_under_var():
    settings = parse_settings({"var_dir": "/srv/cr", "sip": {"listen_address": "192.0.2.5", "udp_port": 5080}},
                              environ={})
    controller = settings.served_controller
    assert controller.secretary_domain == "192.0.2.5:5080"
    assert controller.state_file == Path("/srv/cr/secretaries.json")
    assert settings.controller.secretary_domain is None  # the file's own values are kept as written


def test_the_served_controller_keeps_what_the_file_says():
    settings = parse_settings({"sip": {"enabled": False},
                               "controller": {"secretary_domain": "pbx.example:5060", "state_file": "/tmp/s.json"}},
                              environ={})
    assert settings.served_controller.secretary_domain == "pbx.example:5060"
    assert settings.served_controller.state_file == Path("/tmp/s.json")
    assert parse_settings({"sip": {"enabled": False}}, environ={}).served_controller.secretary_domain is None


def test_the_edge_lists_every_port_the_media_pool_may_use():
    settings = parse_settings({"media": {"sip_port_base": 6100, "workers_max": 5, "bind": "127.0.0.2"}}, environ={})
    assert (settings.edge.worker_host, settings.edge.worker_base_port, settings.edge.worker_count) == ("127.0.0.2", 6100, 5)
    assert settings.edge.udp_port == settings.sip.udp_port
