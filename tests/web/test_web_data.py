"""Call records, CSV export, audit and dialplan status over real HTTP; every data access traced."""

import csv
import datetime as dt
import io

import pytest_twisted
from sqlalchemy import update

from callrouter.ports import DialplanStatus
from callrouter.store.models import AuditEntry
from callrouter.store.testing import drop_append_only_guard

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)


def seed(env):
    c = env.calls
    c.open_call("a1", "cab-a", "+33142000001", "+33611111111", T0)
    c.add_ivr_answer("a1", "triage", "3", T0 + dt.timedelta(seconds=5))
    c.set_route("a1", "open", "rendez-vous", T0 + dt.timedelta(seconds=5), dialplan_version="abc123",
                why=("open: weekly hours", "menu 'triage', 3 (rendez-vous): queue 'general'"))
    c.close_call("a1", "answered", T0 + dt.timedelta(minutes=2))
    c.open_call("b1", "cab-b", "+33142000002", "+33622222222", T0 + dt.timedelta(hours=1))
    c.close_call("b1", "abandoned", T0 + dt.timedelta(hours=1, minutes=1))


@pytest_twisted.inlineCallbacks
def test_calls_are_scoped_to_the_users_practices_and_each_read_is_audited(env):
    seed(env)
    seen = {}
    for name in ("admin", "super", "sec", "extsec", "doc"):
        r = yield env.client.call("GET", "/api/calls", token=env.tokens[name])
        assert r.status == 200, r.body
        seen[name] = sorted(c["id"] for c in r.json()["calls"])
    assert seen == {"admin": ["a1", "b1"], "super": ["a1", "b1"], "sec": ["a1"],
                    "extsec": ["a1", "b1"], "doc": ["b1"]}
    reads = env.audit.query(action="calls.read")
    assert sorted(e.actor for e in reads) == ["admin", "doc", "extsec", "sec", "super"]
    assert all(e.source == "127.0.0.1" for e in reads)


@pytest_twisted.inlineCallbacks
def test_call_detail_outside_ones_practices_is_not_found(env):
    seed(env)
    r = yield env.client.call("GET", "/api/calls/a1", token=env.tokens["doc"])
    assert r.status == 404
    r = yield env.client.call("GET", "/api/calls/b1", token=env.tokens["doc"])
    assert r.status == 200
    assert r.json()["ivr_answers"] == [] and r.json()["outcome"] == "abandoned"
    assert env.audit.query(action="calls.read")[0].target == "call:b1"
    r = yield env.client.call("GET", "/api/calls/a1", token=env.tokens["admin"])
    assert r.json()["dialplan_version"] == "abc123"
    assert r.json()["why"] == ["open: weekly hours", "menu 'triage', 3 (rendez-vous): queue 'general'"]


@pytest_twisted.inlineCallbacks
def test_asking_for_another_practice_is_refused_with_a_reason(env):
    seed(env)
    r = yield env.client.call("GET", "/api/calls?practice=cab-a", token=env.tokens["doc"])
    assert r.status == 403 and r.json()["reason"] == "practice not covered by this user"


@pytest_twisted.inlineCallbacks
def test_call_query_filters(env):
    seed(env)
    since = (T0 + dt.timedelta(minutes=30)).isoformat().replace("+", "%2B")
    r = yield env.client.call("GET", f"/api/calls?since={since}", token=env.tokens["admin"])
    assert [c["id"] for c in r.json()["calls"]] == ["b1"]
    r = yield env.client.call("GET", "/api/calls?outcome=answered&practice=cab-a",
                              token=env.tokens["admin"])
    assert [c["id"] for c in r.json()["calls"]] == ["a1"]


@pytest_twisted.inlineCallbacks
def test_csv_export_is_audited_with_its_filters_and_count(env):
    seed(env)
    r = yield env.client.call("GET", "/api/exports/calls?practice=cab-a",
                              token=env.tokens["super"])
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.body.decode())))
    assert rows[0][:3] == ["id", "practice", "number"]
    assert [row[0] for row in rows[1:]] == ["a1"]
    assert rows[1][rows[0].index("ivr_digits")] == "3"
    assert rows[1][rows[0].index("dialplan_version")] == "abc123"
    assert rows[1][rows[0].index("why")] == "open: weekly hours | menu 'triage', 3 (rendez-vous): queue 'general'"
    (entry,) = env.audit.query(action="calls.export")
    assert entry.actor == "super" and entry.source == "127.0.0.1"
    assert '"records":1' in entry.details and '"practice":"cab-a"' in entry.details


@pytest_twisted.inlineCallbacks
def test_export_granted_to_a_secretary_is_limited_to_her_practices(env):
    seed(env)
    r = yield env.client.call("POST", "/api/users/sec/grants",
                              {"module": "exports", "action": "run"}, env.tokens["admin"])
    assert r.status == 200
    r = yield env.client.call("GET", "/api/exports/calls", token=env.tokens["sec"])
    assert r.status == 200
    assert [row[0] for row in csv.reader(io.StringIO(r.body.decode()))][1:] == ["a1"]
    assert env.audit.query(action="calls.export")[0].actor == "sec"


@pytest_twisted.inlineCallbacks
def test_audit_query_and_tamper_detection_over_the_api(env):
    r = yield env.client.call("GET", "/api/audit/verify", token=env.tokens["admin"])
    assert r.json()["ok"] is True and r.json()["checked"] > 0
    r = yield env.client.call("GET", "/api/audit?action=user.create&limit=2",
                              token=env.tokens["super"])
    entries = r.json()["entries"]
    assert len(entries) == 2 and all(e["action"] == "user.create" for e in entries)
    assert entries[0]["after"]["username"]
    drop_append_only_guard(env.db)
    with env.db.transaction() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(target="user:mallory"))
    r = yield env.client.call("GET", "/api/audit/verify", token=env.tokens["admin"])
    assert {k: r.json()[k] for k in ("ok", "checked", "error", "bad_seq")} == {
        "ok": False, "checked": 1, "error": "entry 2 was altered", "bad_seq": 2}


@pytest_twisted.inlineCallbacks
def test_dialplan_status_comes_from_the_status_source(env):
    loaded = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    env.dialplans.statuses = {
        "cab-b": DialplanStatus("cab-b", None, "dialplans/cab-b.yaml", None,
                                "dialplans/cab-b.yaml:4: unknown key 'hourz'"),
        "cab-a": DialplanStatus("cab-a", "3f2a", "dialplans/cab-a.yaml", loaded),
    }
    r = yield env.client.call("GET", "/api/dialplans/status", token=env.tokens["sec"])
    assert r.json()["dialplans"] == [
        {"practice": "cab-a", "version": "3f2a", "source": "dialplans/cab-a.yaml",
         "loaded_at": loaded.isoformat(), "last_error": None},
        {"practice": "cab-b", "version": None, "source": "dialplans/cab-b.yaml",
         "loaded_at": None, "last_error": "dialplans/cab-b.yaml:4: unknown key 'hourz'"},
    ]


@pytest_twisted.inlineCallbacks
def test_users_and_secretaries_listing(env):
    r = yield env.client.call("GET", "/api/secretaries", token=env.tokens["super"])
    assert {s["username"]: s["practices"] for s in r.json()["secretaries"]} == {
        "sec": ["cab-a"], "extsec": ["cab-a", "cab-b"]}
    r = yield env.client.call("PUT", "/api/users/sec/practices", {"practices": ["cab-c"]},
                              env.tokens["admin"])
    assert r.status == 200 and r.json()["practices"] == ["cab-c"]
    r = yield env.client.call("GET", "/api/users", token=env.tokens["admin"])
    assert len(r.json()["users"]) == 5
    assert all("password" not in str(u) for u in r.json()["users"])
    r = yield env.client.call("GET", "/api/roles", token=env.tokens["admin"])
    assert "practitioner:act" in r.json()["roles"]["practitioner"]


@pytest_twisted.inlineCallbacks
def test_fake_dialplan_source_matches_the_port(env):
    from callrouter.ports import DialplanStatusSource

    assert isinstance(env.dialplans, DialplanStatusSource)
    yield None


@pytest_twisted.inlineCallbacks
def test_practice_card_for_the_secretary_covering_it_only(env):
    r = yield env.client.call("GET", "/api/practices/cab-a/card", token=env.tokens["sec"])
    assert r.status == 200
    card = r.json()
    assert card["platform"] == "doctolib" and card["name"] == "Cabinet du Dr Claire Martin"
    assert {t["id"] for t in card["consultation_types"]} >= {"consultation", "visite-domicile"}
    assert card["reserved_slots"] and card["instructions"]
    r = yield env.client.call("GET", "/api/practices/cab-b/card", token=env.tokens["sec"])
    assert r.status == 404  # not her practice: same answer as a practice that does not exist
    r = yield env.client.call("GET", "/api/practices/nope/card", token=env.tokens["admin"])
    assert r.status == 404
    r = yield env.client.call("GET", "/api/practices/cab-b/card", token=env.tokens["super"])
    assert r.status == 200 and r.json()["platform"] == "maiia"
