"""The recordings' and voicemail messages' routes through the real router, permission table and store
(SQLite and PostgreSQL): who may list, hear, download, evaluate, delete and ask for recordings, what
is audited, and what another practice sees."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from sqlalchemy import select

from callrouter.auth.sealing import new_key
from callrouter.ports import Actor, UserView
from callrouter.recording.cipher import MediaKey
from callrouter.recording.vault import MediaVault
from callrouter.store.calls import CallRepository
from callrouter.store.models import AuditEntry
from callrouter.store.recordings import RecordingRepository
from callrouter.store.voicemails import VoicemailRepository
from callrouter.web.http import HttpRequest
from callrouter.web.recordings import RecordingsApi, recording_routes
from callrouter.web.router import Router

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
# username -> (role, practices, grants on top of the role)
PEOPLE = {"sup": ("supervisor", (), ()), "admin": ("administrator", (), ()), "sec": ("secretary", ("cab",), ()),
          "other": ("secretary", ("elsewhere",), ()), "listener": ("secretary", ("cab",), ("recordings:listen",)),
          "outsider": ("secretary", ("elsewhere",), ("recordings:listen",))}


def user(name: str) -> UserView:
    role, practices, grants = PEOPLE[name]
    return UserView(1, name, name, role, False, True, practices, grants, False, NOW, None)


class Env:
    def __init__(self, db, tmp_path):
        self.db = db
        self.calls = CallRepository(db, node="n1")
        self.recordings, self.voicemails = RecordingRepository(db), VoicemailRepository(db)
        self.vault = MediaVault(tmp_path / "vault", MediaKey(new_key()))
        self.refused: list[str] = []
        api = RecordingsApi(self.recordings, self.voicemails, self.vault, self.calls,
                            lambda call_id, actor: self.refused.append(call_id) or "after")
        self.router = Router(recording_routes(api), lambda token, now: user(token))
        self.tmp = tmp_path

    def call(self, method: str, path: str, who: str, body: dict | None = None, query: dict | None = None):
        data = b"" if body is None else json.dumps(body).encode()
        req = HttpRequest(method, path, {k: (v,) for k, v in (query or {}).items()},
                          {"authorization": f"Bearer {who}", "content-type": "application/json"}, data,
                          "127.0.0.1", NOW)
        response = self.router.handle(req)
        if response.content_type == "application/json":
            return response.status, json.loads(response.body)
        return response.status, response.body

    def recording(self, call_id: str = "c1", practice: str = "cab") -> int:
        self.calls.open_call(call_id, practice, "+33100000001", "+33612345678", NOW, "w0")
        plain = self.tmp / f"{call_id}.wav"
        plain.write_bytes(b"RIFF" + os.urandom(2000))
        name, sealed = self.vault.seal(plain)
        return self.recordings.add(call_id, practice, "alice", name, self.vault.key.key_id, sealed.sha256,
                                   sealed.size, 2, 3.0, NOW, NOW)

    def audited(self, action: str) -> list[AuditEntry]:
        with self.db.transaction() as s:
            return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.fixture
def env(db, tmp_path):
    return Env(db, tmp_path)


def test_only_who_may_listen_hears_and_every_listening_is_audited(env):
    rid = env.recording()
    assert env.call("GET", f"/api/recordings/{rid}/audio", "sec")[0] == 403
    assert env.call("GET", f"/api/recordings/{rid}/audio", "admin")[0] == 403  # manages, does not hear
    status, audio = env.call("GET", f"/api/recordings/{rid}/audio", "sup")
    assert status == 200 and audio[:4] == b"RIFF"
    status, audio = env.call("GET", f"/api/recordings/{rid}/audio", "listener")  # granted, her practice
    assert status == 200
    assert [e.actor for e in env.audited("recording.listen")] == ["sup", "listener"]
    assert env.audited("recording.download") == []


def test_a_download_is_an_export(env):
    rid = env.recording()
    status, body = env.call("GET", f"/api/recordings/{rid}/audio", "listener", query={"download": "1"})
    assert status == 403 and "exports:run" in body["message"]
    status, _ = env.call("GET", f"/api/recordings/{rid}/audio", "sup", query={"download": "1"})
    assert status == 200 and [e.actor for e in env.audited("recording.download")] == ["sup"]


def test_another_practices_recording_is_not_found_and_its_list_refused(env):
    rid = env.recording()
    assert env.call("GET", f"/api/recordings/{rid}", "outsider")[0] == 404
    assert env.call("GET", f"/api/recordings/{rid}/audio", "outsider")[0] == 404
    assert env.call("GET", "/api/practices/cab/recordings", "outsider")[0] == 403
    assert env.audited("recording.listen") == []


def test_the_supervisors_note_and_a_deletion_before_its_time(env):
    rid = env.recording()
    assert env.call("PUT", f"/api/recordings/{rid}/note", "sup", {"text": "Très bon accueil.", "score": 9})[0] == 400
    status, note = env.call("PUT", f"/api/recordings/{rid}/note", "sup", {"text": "Très bon accueil.", "score": 5})
    assert status == 200 and note["author"] == "sup" and note["score"] == 5
    assert env.call("GET", f"/api/recordings/{rid}", "sup")[1]["note"]["text"] == "Très bon accueil."
    assert env.call("PUT", f"/api/recordings/{rid}/note", "sec", {"text": "x"})[0] == 403
    file = env.recordings.get(rid).file
    status, _ = env.call("POST", f"/api/recordings/{rid}/delete", "admin", {"reason": "demande du patient"})
    assert status == 200 and not env.vault.exists(file)
    assert env.call("GET", f"/api/recordings/{rid}", "sup")[0] == 404
    assert [e.details for e in env.audited("recording.deleted")]


def test_on_demand_requests_and_a_calls_status(env):
    status, demand = env.call("POST", "/api/recording-demands", "sup", {"secretary": "alice", "minutes": 90})
    assert status == 201 and demand["secretary"] == "alice"
    assert env.call("POST", "/api/recording-demands", "sec", {"secretary": "alice", "minutes": 90})[0] == 403
    assert [d["id"] for d in env.call("GET", "/api/recording-demands", "sup")[1]["demands"]] == [demand["id"]]
    stopped = env.call("POST", f"/api/recording-demands/{demand['id']}/stop", "sup")[1]
    assert stopped["ends_at"] == stopped["stopped_at"] == NOW.isoformat()
    assert env.call("GET", "/api/recording-demands", "sup")[1]["demands"] == []
    env.recording("c7")
    status, said = env.call("GET", "/api/calls/c7/recording", "sec")
    assert status == 200 and said["recording_id"] is not None
    status, refused = env.call("POST", "/api/calls/c7/recording/refuse", "sec")
    assert status == 200 and refused["recording"] == "deleted" and env.refused == ["c7"]
    assert env.call("GET", "/api/calls/c7/recording", "sec")[1]["status"] == "refused"
    assert env.call("POST", "/api/calls/c7/recording/refuse", "other")[0] == 404  # not her practice's call
    assert [e.actor for e in env.audited("recording.refused")] == ["sec"]


def test_voicemail_messages_for_the_practices_secretaries_only(env):
    plain = env.tmp / "m.wav"
    plain.write_bytes(b"RIFF" + os.urandom(300))
    name, sealed = env.vault.seal(plain)
    mid = env.voicemails.add("c9", "cab", None, name, env.vault.key.key_id, sealed.sha256, sealed.size, 4.0,
                             False, NOW, NOW, False)
    status, listed = env.call("GET", "/api/practices/cab/voicemails", "sec")
    assert status == 200 and [m["id"] for m in listed["voicemails"]] == [mid]
    assert env.call("GET", "/api/practices/cab/voicemails", "other")[0] == 403
    assert env.call("GET", f"/api/voicemails/{mid}/audio", "other")[0] == 404
    status, audio = env.call("GET", f"/api/voicemails/{mid}/audio", "sec")
    assert status == 200 and audio[:4] == b"RIFF"
    assert [e.actor for e in env.audited("voicemail.listen")] == ["sec"]
    env.vault.remove([name])
    assert env.call("GET", f"/api/voicemails/{mid}/audio", "sec")[0] == 410  # its file gone: said so, no path
