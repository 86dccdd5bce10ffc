"""Kamailio's config rendered from callrouter's settings, and checked by the real `kamailio -c`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from callrouter.cli import main
from callrouter.media.settings import MediaSettings
from callrouter.sip import kamailio
from callrouter.sip.settings import SipSettings, SipSettingsError, aligned_with_media
from tests.sip.harness import KAMAILIO


def test_a_relative_sqlite_path_becomes_absolute_as_sqlalchemy_resolves_it(tmp_path):
    assert kamailio.kamailio_db_url("sqlite:///var/callrouter.db", tmp_path) == \
        (f"sqlite://{tmp_path.resolve()}/var/callrouter.db", "users")
    assert kamailio.kamailio_db_url("sqlite:////srv/cr.db") == ("sqlite:///srv/cr.db", "users")


def test_a_postgresql_url_keeps_credentials_and_its_search_path_becomes_the_schema():
    url = "postgresql+psycopg://cr:s3cret@db.example:5433/callrouter?options=-csearch_path%3Dcr_x"
    assert kamailio.kamailio_db_url(url) == \
        ("postgres://cr:s3cret@db.example:5433/callrouter", "cr_x.users")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/db"])
def test_databases_kamailio_cannot_share_are_refused(url):
    with pytest.raises(kamailio.RenderError):
        kamailio.kamailio_db_url(url)


def test_every_problem_in_the_sip_settings_is_reported_with_its_key():
    bad = SipSettings(udp_port=70000, trusted_trunks=("10.0.0.1", "trunk.example"),
                      dispatch_algorithm="random", outbound_trunk="sip:x@y;evil",
                      scanner_user_agents=('evil"',), ban_seconds=0)
    with pytest.raises(SipSettingsError) as caught:
        bad.check()
    text = "\n".join(caught.value.problems)
    for key in ("sip.udp_port", "sip.trusted_trunks[1]", "sip.dispatch_algorithm",
                "sip.outbound_trunk", "sip.scanner_user_agents[0]", "sip.ban_seconds"):
        assert key in text
    assert "trusted_trunks[0]" not in text


def test_a_realm_that_could_inject_config_is_refused(tmp_path):
    sip = SipSettings()
    files = kamailio.layout(tmp_path, sip, tmp_path)
    with pytest.raises(kamailio.RenderError):
        kamailio.render(sip, realm='x"\nlisten=udp:0.0.0.0:5060', files=files,
                        database_url="sqlite:///cr.db")


def test_trusted_trunks_and_workers_are_generated(tmp_path):
    sip = SipSettings(trusted_trunks=("192.0.2.10", "2001:db8::1"), worker_base_port=6000,
                      worker_count=3, worker_max_calls=2)
    text = kamailio.render(sip, realm="callrouter", database_url="sqlite:///cr.db",
                           files=kamailio.layout(tmp_path, sip, tmp_path), base=tmp_path)
    assert '\tif ($si == "192.0.2.10") { return 1; }' in text
    assert '\tif ($si == "2001:db8::1") { return 1; }' in text
    assert "@@" not in text
    assert kamailio.dispatcher_list(sip).splitlines()[1:] == [
        "1 sip:127.0.0.1:6000 1 0 duid=w0;maxload=2", "1 sip:127.0.0.1:6001 1 0 duid=w1;maxload=2",
        "1 sip:127.0.0.1:6002 1 0 duid=w2;maxload=2"]


def test_the_worker_ports_follow_the_media_pool_settings():
    media = MediaSettings(bind="127.0.0.1", sip_port_base=7100, workers_max=5)
    sip = aligned_with_media(SipSettings(), media)
    assert sip.worker_ports() == [7100, 7101, 7102, 7103, 7104]


@pytest.mark.parametrize("variant", [
    dict(),
    dict(tls_port=0, outbound_trunk=None, trusted_trunks=(), dispatch_algorithm="round-robin"),
    dict(listen_address="0.0.0.0", advertised_address="sip.example.fr"),
])
@pytest.mark.parametrize("database_url", [
    "sqlite:///cr.db", "postgresql+psycopg://postgres@127.0.0.1:5432/test"])
def test_kamailio_accepts_the_rendered_config(tmp_path, variant, database_url):
    sip = SipSettings(**{"trusted_trunks": ("192.0.2.10",), "outbound_trunk": "192.0.2.20:5060",
                         "runtime_dir": "run", "tls_dir": "tls", **variant})
    files = kamailio.write_config(tmp_path / "k", sip, realm="callrouter",
                                  database_url=database_url, base=tmp_path)
    check = subprocess.run([KAMAILIO, "-c", "-f", str(files.config)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stderr[-3000:]
    assert (files.config.stat().st_mode & 0o077) == 0  # may hold the database password


def test_a_runtime_dir_too_long_for_the_control_socket_is_refused_with_the_reason(tmp_path):
    """Kamailio does not start when its control socket's path passes 104 characters: say so first."""
    fits = "r" * (kamailio.CTL_PATH_MAX - len(str(tmp_path.resolve())) - len("/kamailio_ctl") - 1)
    sip = SipSettings(trusted_trunks=("192.0.2.10",), runtime_dir=fits, tls_port=0)
    files = kamailio.write_config(tmp_path / "k", sip, realm="callrouter", database_url="sqlite:///cr.db",
                                  base=tmp_path)
    assert len(str(files.runtime_dir / "kamailio_ctl")) == kamailio.CTL_PATH_MAX
    longer = SipSettings(trusted_trunks=("192.0.2.10",), runtime_dir=fits + "r", tls_port=0)
    with pytest.raises(ValueError, match=r"sip.runtime_dir .* too long for Kamailio's control socket"):
        kamailio.write_config(tmp_path / "k2", longer, realm="callrouter", database_url="sqlite:///cr.db",
                              base=tmp_path)


def test_the_cli_prints_the_config_from_the_settings_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "callrouter.yaml").write_text(
        "database_url: sqlite:///var/cr.db\n"
        "auth: {sip_realm: cabinet.example}\n"
        "sip: {udp_port: 5070, tcp_port: 5070, tls_port: 0, rpc_port: 5199,"
        " trusted_trunks: [192.0.2.10]}\n"
        "media: {sip_port_base: 6100, workers_max: 2}\n")
    assert main(["kamailio", "config"]) == 0
    out = capsys.readouterr().out
    assert "listen=udp:127.0.0.1:5070" in out and "listen=tls" not in out
    assert '#!define SIP_REALM "cabinet.example"' in out
    assert f'#!define SQLCON "cr=>sqlite://{tmp_path.resolve()}/var/cr.db"' in out
    assert '$si == "192.0.2.10"' in out
    assert main(["kamailio", "config", "--write", "k"]) == 0
    assert "sip:127.0.0.1:6101" in Path("k/dispatcher.list").read_text()
