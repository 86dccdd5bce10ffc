"""The `cluster:` section of the daemon settings: defaults, and the values refused with their key."""

import pytest

from callrouter.cluster.settings import ClusterSettings
from callrouter.config import ConfigError, parse_settings


def test_the_defaults_renew_every_two_seconds_a_ten_second_lease():
    settings = parse_settings({}, environ={})
    assert settings.cluster == ClusterSettings(lease_seconds=10.0, renew_seconds=2.0, reap_after_seconds=30.0)


def test_a_cluster_section_is_read():
    settings = parse_settings({"cluster": {"lease_seconds": 3, "renew_seconds": 0.5}}, environ={})
    assert settings.cluster == ClusterSettings(3.0, 0.5)


@pytest.mark.parametrize("section, problem", [
    ({"lease_seconds": 0.1}, "cluster.lease_seconds: expected 0.5 to 300 seconds"),
    ({"renew_seconds": 0}, "cluster.renew_seconds: expected 0.1 to 60 seconds"),
    ({"lease_seconds": 5, "renew_seconds": 2}, "cluster.renew_seconds: at most a third of cluster.lease_seconds"),
    ({"reap_after_seconds": 0.5}, "cluster.reap_after_seconds: expected 1 to 3600 seconds"),
    ({"leases": 3}, "cluster.leases: unknown key (known: lease_seconds, reap_after_seconds, renew_seconds, shared_desk)"),
])
def test_wrong_values_are_refused_with_their_key(section, problem):
    with pytest.raises(ConfigError) as caught:
        parse_settings({"cluster": section}, "callrouter.yaml", environ={})
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_the_shared_desk_is_off_unless_asked_and_read_from_the_settings():
    """Several nodes serving one team is a choice: a single node never pays for it."""
    assert parse_settings({}, environ={}).cluster.shared_desk is False
    assert parse_settings({"cluster": {"shared_desk": True}}, environ={}).cluster.shared_desk is True
