"""Reloading dialplans: a broken file is refused with its reason and the last good rules stay live."""

from __future__ import annotations

import datetime as dt

from callrouter.dialplan.registry import DialplanRegistry
from callrouter.domain.call import Call
from callrouter.prompts import Catalogue
from tests.factories import dialplan_text, write

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)


class FakeNow:
    def __init__(self):
        self.t = T0

    def __call__(self):
        return self.t


def registry(tmp_path, now=None):
    return DialplanRegistry([tmp_path], Catalogue.load, now or FakeNow())


def test_broken_file_keeps_last_good_rules_and_reports_file_and_line(tmp_path):
    path = write(tmp_path, dialplan_text(practice="a"), "a.yaml")
    now = FakeNow()
    reg = registry(tmp_path, now)
    first = reg.reload()
    assert first.ok and first.loaded == ("a",)
    version = reg.dialplans["a"].version

    path.write_text(dialplan_text(practice="a").replace("queue: general}", "queue: nowhere}"))
    now.t = T0 + dt.timedelta(minutes=5)
    report = reg.reload()
    assert report.kept == ("a",) and report.loaded == ()
    assert 'queue "nowhere" is not defined' in report.errors[0].message and report.errors[0].line > 1
    assert reg.dialplans["a"].version == version  # still answering calls with the good rules
    assert reg.router.decide(Call("+33100000001"), T0).practice == "a"
    status = reg.dialplan_status()["a"]
    assert status.version == version and status.loaded_at == T0
    assert "a.yaml" in status.last_error and "nowhere" in status.last_error

    path.write_text(dialplan_text(practice="a").replace("14:00-18:00", "14:00-19:00"))
    report = reg.reload()
    assert report.ok and report.loaded == ("a",)
    assert reg.dialplans["a"].version != version
    assert reg.dialplan_status()["a"].last_error is None
    assert reg.dialplan_status()["a"].loaded_at == now.t


def test_new_file_stealing_a_number_is_refused_and_the_owner_keeps_it(tmp_path):
    write(tmp_path, dialplan_text(practice="owner"), "owner.yaml")
    reg = registry(tmp_path)
    reg.reload()
    write(tmp_path, dialplan_text(practice="aaa-thief"), "aaa.yaml")  # sorts first on disk
    report = reg.reload()
    assert not report.ok and "owner" in report.errors[0].message
    assert reg.router.by_number["+33100000001"].practice == "owner"
    assert "aaa-thief" not in reg.dialplans


def test_removed_file_takes_its_practice_away(tmp_path):
    path = write(tmp_path, dialplan_text(practice="gone"), "gone.yaml")
    reg = registry(tmp_path)
    reg.reload()
    path.unlink()
    report = reg.reload()
    assert report.removed == ("gone",) and reg.dialplans == {}


def test_file_that_never_loaded_shows_in_status(tmp_path):
    write(tmp_path, "practice: [oops\n", "bad.yaml")
    reg = registry(tmp_path)
    report = reg.reload()
    assert not report.ok
    status = reg.dialplan_status()["bad"]
    assert status.version is None and "YAML syntax error" in status.last_error


def test_change_detection(tmp_path):
    path = write(tmp_path, dialplan_text(), "a.yaml")
    reg = registry(tmp_path)
    reg.reload()
    assert not reg.changed_on_disk()
    path.write_text(dialplan_text() + "\n# edited\n")
    assert reg.changed_on_disk()


def test_the_registry_is_what_the_admin_api_reads_dialplan_status_from(tmp_path):
    import inspect

    from callrouter.ports import DialplanStatusSource

    reg = registry(tmp_path)
    assert isinstance(reg, DialplanStatusSource)
    assert inspect.signature(reg.dialplan_status).parameters == {}
