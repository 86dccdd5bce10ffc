"""Call recording with consent, and voicemail a secretary can use, on one whole service: `callrouter
serve` with the real Kamailio edge and two pjsua2 workers; patients and a secretary's softphone are
SIPp runs through the edge, each sending a pure tone of its own; what is stored is read back through
the API, decrypted by the service.

- rec-on records every call (sampled, 100 %): the caller hears the consent message before the queue
  (its prompt named in the service's log, its RTP at her phone); pressing 9 leaves no file; a call
  not refused is recorded from the worker's conference bridge: the audio served (decrypted, its
  SHA-256 as stored) is stereo with the caller's tone on the left, the secretary's on the right,
  as long as their conversation; « le patient refuse » mid-call deletes it; a secretary gets 403,
  a supervisor's listening is in the audit trail.
- rec-vm records nothing but e-mails the practice for each voicemail message: a message left by
  SIPp is listed with its task, played (the bytes served match its SHA-256), e-mailed without the
  caller's number.
- In the console (Debian's chromium through Playwright), « Messagerie » lists a message with the
  number to call back and plays it in an <audio> element fed by the API; its task is closed there.
- The purge, run at an injected time past each limit, removes the rows and their files, audited.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import io
import json
import urllib.error
import urllib.request
import wave
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from callrouter.auth import passwords
from callrouter.auth.sealing import KeyFileBox
from callrouter.config import RetentionSettings
from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, base_config, edge_config
from callrouter.ports import Actor
from callrouter.recording.vault import MediaVault, media_retention
from callrouter.store.db import Database
from callrouter.store.retention import RetentionPurger
from callrouter.store.users import UserRepository
from callrouter.auth.totp import code_at
from tests.app.acd_support import ADMIN, CONSOLE_PASSWORD, REALM, Acd, Practice, add_secretaries, add_supervisor
from tests.app.test_serve_console import sign_in_enrolling
from tests.factories import REPO
from tests.media.harness import Sipp as MediaSipp
from tests.recording.tones import CALLER_HZ, SECRETARY_HZ, caller_with_tone, channels, secretary_with_tone, tone_frames
from tests.sip.harness import Sipp, wait_for

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "wallboard"


@dataclass(frozen=True)
class RecordedPractice(Practice):
    recording: str = ""

    def dialplan(self) -> str:
        return super().dialplan() + "recording:\n" + "".join(f"  {line}\n" for line in self.recording.splitlines())


RECORDED = RecordedPractice("rec-on", "+33100000151", ("sonia", "selma"), recording="mode: sampled\npercent: 100")
VOICEMAIL = RecordedPractice("rec-vm", "+33100000152", ("vera", "victor"),
                             recording="mode: off\nvoicemail_email: cabinet@example.fr")
SUPERVISOR = "sabine"


@pytest.fixture(scope="module")
def acd(tmp_path_factory, prompts_built):
    root = tmp_path_factory.mktemp("recording")
    dialplans = root / "dialplans"
    dialplans.mkdir()
    for practice in (RECORDED, VOICEMAIL):
        (dialplans / f"{practice.name}.yaml").write_text(practice.dialplan())
    config = base_config(root, dialplans, REPO / "prompts", workers=2,
                         agents={f"{p.name}/*": list(p.secretaries) for p in (RECORDED, VOICEMAIL)}, sip=edge_config(root))
    config["controller"]["ring_timeout_s"] = 5.0
    config["recording"] = {"notify_interval_s": 1.0}
    config["escalation"] = {"outbox_file": str(root / "outbox.jsonl")}  # e-mails as files, no relay
    svc = ServeProcess(root, config).start()
    try:
        svc.wait_edge_ready(2)
        secrets = add_secretaries(svc.db_url, {"sonia": "rec-on", "selma": "rec-on", "vera": "rec-vm",
                                                "victor": "rec-vm"},
                                  key_file=Path(config["var_dir"]) / "secrets.key")
        acd = Acd(svc, root, {p.name: p for p in (RECORDED, VOICEMAIL)}, totp_secrets=secrets)
        acd.totp_secrets[SUPERVISOR] = add_supervisor(acd, SUPERVISOR, "Sabine")
        acd.tokens, acd.phones = {}, {}
        yield acd
    finally:
        stray = svc.stop()
        assert not stray, f"processes left running after stop (Kamailio included): {stray}"


@pytest.fixture
def service(acd):
    try:
        yield acd
    finally:
        acd.kill_started()


def token(acd, username: str) -> str:
    """Her bearer, signed in once for the module (a TOTP code is never accepted twice)."""
    if username not in acd.tokens:
        acd.tokens[username] = acd.sign_in(username)
    return acd.tokens[username]


def raw_get(acd, path: str, who: str) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{acd.svc.config['http']['port']}{path}")
    request.add_header("Authorization", f"Bearer {token(acd, who)}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def var(acd) -> Path:
    return Path(acd.svc.config["var_dir"])


def sealed_files(acd) -> set[str]:
    return {p.name for p in (var(acd) / "vault").glob("*.enc")}


def patient(acd, practice: str, caller: str, steps: list[tuple]) -> tuple[MediaSipp, object]:
    workdir = acd.root / f"patient-{caller.lstrip('+')}"
    workdir.mkdir(exist_ok=True)
    sink = acd.rtp_sink()
    run = MediaSipp(str(caller_with_tone(workdir, "patient", steps)), remote_port=acd.edge[1],
                    service=acd.practices[practice].number, variables={"rtp_port": str(sink.port), "caller": caller},
                    workdir=workdir, timeout_s=90)
    acd.started.append(run)
    return run, sink


def answers(acd, username: str, steps: list[tuple]) -> Sipp:
    """Her softphone, registered at the edge, answers the next offer, runs `steps`, hangs up
    (`acd.phones[username]` to unregister it)."""
    phone = acd.softphone(username)
    phone.register()
    acd.wait_registered()
    workdir = acd.root / "softphones"
    workdir.mkdir(exist_ok=True)
    scenario = secretary_with_tone(workdir, f"{username}-{len(acd.started)}", steps)
    run = Sipp(workdir, str(scenario), port=phone.port, calls=1, timeout_s=90,
               extra=["-set", "rtp_port", str(acd.rtp_sink().port)], name=username)
    acd.started.append(run)
    acd.phones[username] = phone
    return run


def sonia_answers(acd, steps: list[tuple]) -> Sipp:
    return answers(acd, "sonia", steps)


def status(acd, call_id: str) -> dict:
    code, body = acd.api("GET", f"/api/calls/{call_id}/recording", token(acd, SUPERVISOR))
    assert code == 200, body
    return body


def test_the_caller_hears_the_consent_message_and_9_means_no_recording(service):
    acd = service
    before = sealed_files(acd)
    phone = sonia_answers(acd, [("pause", 2000)])
    run, sink = patient(acd, "rec-on", "+33615000001", [("pause", 3000), ("digit", "9")])
    assert sink.wait_audible(100, timeout=10) >= 100, "the consent message's audio did not reach the caller"
    record = acd.record("+33615000001")
    assert record.outcome == "answered" and record.secretary == acd.uri("sonia")
    assert phone.wait(60) == 0 and run.wait(60) == 0, run.errors()
    assert f"call {record.id}: consent to recording asked, prompt recording_consent" in acd.svc.log_text()
    said = status(acd, record.id)
    assert (said["status"], said["recording_id"]) == ("refused", None)
    assert "refuse key" in said["reason"]
    assert sealed_files(acd) == before and list((var(acd) / "recording-spool").iterdir()) == []
    acd.phones["sonia"].unregister()


def test_a_call_not_refused_is_recorded_in_stereo_as_long_as_the_conversation(service):
    """The caller's tone goes from her answer on; sonia's after she answers; both hang up after."""
    acd = service
    phone = sonia_answers(acd, [("pause", 500), ("tone", (SECRETARY_HZ, 4000)), ("pause", 1500)])
    run, _ = patient(acd, "rec-on", "+33615000002", [("tone_bg", (CALLER_HZ, 40000))])
    record = acd.record("+33615000002")
    assert phone.wait(60) == 0, phone.errors()
    assert run.wait(60) == 0, run.errors()
    assert status(acd, record.id)["status"] == "recorded"

    def stored():
        code, body = acd.api("GET", "/api/practices/rec-on/recordings", token(acd, SUPERVISOR))
        return next((r for r in body["recordings"] if r["call_id"] == record.id), None) if code == 200 else None

    rec = wait_for(stored, timeout=20, interval=0.3)
    assert rec is not None, acd.svc.log_tail()
    assert rec["channels"] == 2 and rec["secretary"] == "sonia"

    code, _, _ = raw_get(acd, f"/api/recordings/{rec['id']}/audio", "sonia")
    assert code == 403  # a secretary does not hear recordings
    code, audio, headers = raw_get(acd, f"/api/recordings/{rec['id']}/audio", SUPERVISOR)
    assert code == 200 and headers["Content-Type"] == "audio/wav"
    assert hashlib.sha256(audio).hexdigest() == rec["sha256"]
    wav = acd.root / "heard.wav"
    wav.write_bytes(audio)
    n, rate, (left, right) = channels(wav)
    assert (n, rate) == (2, 8000)
    assert tone_frames(left, CALLER_HZ) > 100 and tone_frames(left, SECRETARY_HZ) < 5
    assert tone_frames(right, SECRETARY_HZ) > 100 and tone_frames(right, CALLER_HZ) < 5
    talked = (record.ended_at - record.answered_at).total_seconds()
    assert abs(len(left) / rate - talked) < 1.0, (len(left) / rate, talked)
    assert abs(rec["duration_seconds"] - talked) < 1.0
    code, audit = acd.api("GET", "/api/audit?action=recording.listen", token(acd, SUPERVISOR))
    assert [e for e in audit["entries"] if e["target"] == f"recording:{rec['id']}" and e["actor"] == SUPERVISOR]
    assert "+33615000002" not in acd.svc.log_text() and str(var(acd) / "vault") not in acd.svc.log_text()
    acd.phones["sonia"].unregister()


def test_le_patient_refuse_mid_call_deletes_what_was_recorded(service):
    acd = service
    phone = sonia_answers(acd, [("pause", 7000)])
    run, _ = patient(acd, "rec-on", "+33615000003", [("tone_bg", (CALLER_HZ, 40000))])
    record = acd.record("+33615000003", until=lambda r: r.answered_at is not None)
    assert wait_for(lambda: status(acd, record.id)["status"] == "recorded", timeout=10, interval=0.2)
    code, body = acd.api("POST", f"/api/calls/{record.id}/recording/refuse", token(acd, "sonia"))
    assert code == 200 and body == {"call_id": record.id, "status": "refused", "recording": "stopped"}, body
    assert phone.wait(60) == 0 and run.wait(60) == 0
    acd.record("+33615000003")
    said = status(acd, record.id)
    assert (said["status"], said["recording_id"]) == ("refused", None) and "sonia" in said["reason"]
    assert wait_for(lambda: not list((var(acd) / "recording-spool").iterdir()), timeout=10)
    code, listed = acd.api("GET", "/api/practices/rec-on/recordings", token(acd, SUPERVISOR))
    assert all(r["call_id"] != record.id for r in listed["recordings"])
    code, audit = acd.api("GET", "/api/audit?action=recording.refused", token(acd, SUPERVISOR))
    assert [e for e in audit["entries"] if e["target"] == f"call:{record.id}" and e["actor"] == "sonia"]
    acd.phones["sonia"].unregister()


def leave_voicemail(acd, caller: str) -> tuple[object, dict]:
    """A patient of rec-vm (nobody to answer: its voicemail) leaves a 6-second message, then #;
    (her call's record, the message as vera's list shows it once sealed)."""
    workdir = acd.root / f"vm-{caller.lstrip('+')}"
    workdir.mkdir(exist_ok=True)
    scenario = scen.caller(workdir, "vm", [("pause", 6000), ("audio", 6000), ("digit", "#")], end="wait_bye")
    run = MediaSipp(str(scenario), remote_port=acd.edge[1], service=VOICEMAIL.number,
                    variables={"rtp_port": acd.rtp_port(), "caller": caller}, workdir=workdir, timeout_s=90)
    acd.started.append(run)
    assert run.wait(60) == 0, run.errors()
    record = acd.record(caller)
    assert record.outcome == "voicemail"

    def listed():
        code, body = acd.api("GET", "/api/practices/rec-vm/voicemails?open=1", token(acd, "vera"))
        return next((m for m in body["voicemails"] if m["call_id"] == record.id and m["playable"]), None)

    message = wait_for(listed, timeout=20, interval=0.3)
    assert message is not None, acd.svc.log_tail()
    return record, message


def test_le_patient_refuse_from_the_call_card(service, browser):
    """selma's console: the card of her call in progress says it is recorded; « Le patient refuse
    l'enregistrement » stops it and deletes what was recorded."""
    acd = service
    page = browser.new_page()
    try:
        errors = sign_in_enrolling(page, acd, "selma")  # before her phone registers: she is offline
        phone = answers(acd, "selma", [("pause", 9000)])
        run, _ = patient(acd, "rec-on", "+33615000006", [("tone_bg", (CALLER_HZ, 40000))])
        page.wait_for_selector("#card[data-status=in_call]", timeout=45000)
        page.wait_for_selector("#card-recording:text('Appel enregistré')", timeout=10000)
        page.click("#card-refuse")
        page.wait_for_selector("#card-recording:text('Enregistrement arrêté et supprimé')", timeout=10000)
        assert page.is_hidden("#card-refuse") and errors == [], errors
    finally:
        page.close()
    assert phone.wait(60) == 0 and run.wait(60) == 0
    record = acd.record("+33615000006")
    said = status(acd, record.id)
    assert (said["status"], said["recording_id"]) == ("refused", None) and "selma" in said["reason"]
    code, listed = acd.api("GET", "/api/practices/rec-on/recordings", token(acd, SUPERVISOR))
    assert all(r["call_id"] != record.id for r in listed["recordings"])
    acd.phones["selma"].unregister()


def test_a_voicemail_message_is_listed_played_and_e_mailed_without_the_number(service):
    acd = service
    caller = "+33615000004"
    record, message = leave_voicemail(acd, caller)
    assert message["task"]["number"] == caller and message["task"]["state"] == "open"
    assert not list((acd.root / "voicemail").rglob("*.wav"))  # sealed: no plain file left
    code, audio, headers = raw_get(acd, message["audio_url"], "vera")
    assert code == 200 and headers["Content-Type"] == "audio/wav"
    assert hashlib.sha256(audio).hexdigest() == message["sha256"]
    with wave.open(io.BytesIO(audio)) as w:
        assert (w.getnchannels(), w.getframerate()) == (1, 8000) and w.getnframes() > 8000 * 3
    assert raw_get(acd, message["audio_url"], "sonia")[0] == 404  # another practice's message
    code, audit = acd.api("GET", "/api/audit?action=voicemail.listen", token(acd, SUPERVISOR))
    assert [e for e in audit["entries"] if e["target"] == f"voicemail:{message['id']}" and e["actor"] == "vera"]

    mails = wait_for(lambda: list((var(acd) / "voicemail-mail").glob("*.eml")), timeout=15)
    assert mails, acd.svc.log_tail()
    mail = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
    assert mail["Subject"] == "Nouveau message vocal — Cabinet rec-vm" and mail["To"] == "cabinet@example.fr"
    body = mail.get_content()
    assert "Un message vocal de 0 min" in body and "console du secrétariat" in body
    assert caller not in body and "06 15 00 00 04" not in body and caller[3:] not in mails[0].read_text(errors="replace")


def test_the_console_lists_the_message_plays_it_in_the_page_and_closes_its_task(service, browser):
    """victor signs in through the page: « Messagerie » lists the message with the number to call
    back; its <audio> element loads the message from the API (the session's cookie, the page's
    media-src 'self'), audited; « Je m'en occupe » then « Fait » close its task."""
    acd = service
    record, message = leave_voicemail(acd, "+33615000005")
    page = browser.new_page()
    try:
        errors = sign_in_enrolling(page, acd, "victor")
        item = f"#voicemails li[data-voicemail-id='{message['id']}']"
        page.wait_for_selector(item)
        assert page.text_content(f"{item} .task-number") == "06 15 00 00 05"
        assert page.get_attribute(f"{item} audio", "src") == message["audio_url"]
        loaded = page.evaluate("""async (selector) => {
          const audio = document.querySelector(selector);
          audio.preload = "auto";
          audio.load();
          await new Promise((ok, ko) => { audio.onloadedmetadata = ok; audio.onerror = () => ko(String(audio.error && audio.error.code)); });
          return audio.duration;
        }""", f"{item} audio")
        assert loaded > 3, loaded
        page.click(f"{item} [data-action=assign]")
        page.wait_for_selector(f"{item}.task-mine")
        page.click(f"{item} [data-action=done]")
        page.wait_for_selector(item, state="detached")
        assert errors == [], errors
    finally:
        page.close()
    code, audit = acd.api("GET", "/api/audit?action=voicemail.listen", token(acd, SUPERVISOR))
    assert [e for e in audit["entries"] if e["target"] == f"voicemail:{message['id']}" and e["actor"] == "victor"]
    code, body = acd.api("GET", "/api/practices/rec-vm/voicemails", token(acd, "vera"))
    task = next(m["task"] for m in body["voicemails"] if m["id"] == message["id"])
    assert (task["state"], task["assigned_to"]) == ("done", "victor")


# The duration of an <audio> element once its metadata is loaded (a function: the page's CSP
# refuses strings evaluated as scripts).
LOADED_DURATION = """async (selector) => {
  const audio = document.querySelector(selector);
  if (audio.readyState < 1) {
    await new Promise((ok, ko) => { audio.addEventListener("loadedmetadata", ok);
      audio.addEventListener("error", () => ko(String(audio.error && audio.error.code))); });
  }
  return audio.duration;
}"""


def test_the_supervisor_hears_a_recording_in_the_wallboard_and_notes_it(service, browser):
    """Solène, a supervisor (recordings:listen and evaluate by default), signs in through the page:
    « Enregistrements » lists sonia's recorded call; « Écouter » loads it into an <audio> element
    from the API (the session's cookie, media-src 'self'), which the audit trail then holds; her
    note is there after a reload. (The call recorded earlier in the module is the one listed.)"""
    acd = service
    code, body = acd.api("GET", "/api/practices/rec-on/recordings", token(acd, SUPERVISOR))
    rec = next((r for r in body["recordings"] if r["secretary"] == "sonia"), None) if code == 200 else None
    assert rec is not None, "the earlier tests of the module record a call of sonia's"
    acd.totp_secrets["solene"] = add_supervisor(acd, "solene", "Solène Durand")
    base = f"http://127.0.0.1:{acd.svc.config['http']['port']}"
    context = browser.new_context(locale="fr-FR", viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{base}/console/connexion")
        page.fill("#username", "solene")
        page.fill("#password", CONSOLE_PASSWORD)
        page.click("#submit")
        page.wait_for_selector("#enrol:not([hidden])")
        page.fill("#totp", code_at(acd.totp_secrets["solene"], dt.datetime.now(dt.timezone.utc)))
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
                and errors.append(f"{m.text} {m.location}"))  # the browser's own favicon request: none is served
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.click("#submit")
        page.wait_for_url(f"{base}/wallboard")
        page.wait_for_selector("body[data-recordings='1']")
        page.click("#view-recordings")
        item = f"#recordings-list tr[data-recording-id='{rec['id']}']"
        page.wait_for_selector(item)
        cells = page.query_selector_all(f"{item} td")
        assert [c.text_content() for c in cells[:2]] == ["Cabinet rec-on", "Sonia"]
        minutes, seconds = divmod(int(rec["duration_seconds"]), 60)
        assert cells[3].text_content() == f"{minutes:02d}:{seconds:02d}"
        page.click(f"{item} button:text('Écouter')")
        audio = f"{item} audio"
        assert page.get_attribute(audio, "src") == rec["audio_url"]
        duration = page.evaluate(LOADED_DURATION, audio)
        assert duration > 0 and abs(duration - rec["duration_seconds"]) < 0.5, (duration, rec["duration_seconds"])
        page.fill(f"{item} textarea", "Accueil chaleureux ; reformuler le motif avant de transférer.")
        page.select_option(f"{item} select", "4")
        page.click(f"{item} button:text('Enregistrer la note')")
        page.wait_for_selector(f"{item} form.note[data-saved]")
        assert page.text_content(f"{item} form.note [role=status]") == "Note enregistrée (solene)."
        page.reload()
        page.click("#view-recordings:not([hidden])")
        page.wait_for_selector(item)
        assert page.input_value(f"{item} textarea") == "Accueil chaleureux ; reformuler le motif avant de transférer."
        assert page.input_value(f"{item} select") == "4"
        page.click(f"{item} button:text('Écouter')")
        assert page.evaluate(LOADED_DURATION, audio) > 0
        page.select_option("#demand-secretary", "selma")  # in training: her next calls recorded for 30 minutes
        page.fill("#demand-minutes", "30")
        page.click("#demand-form button[type=submit]")  # « Demander l'enregistrement »
        page.wait_for_selector("#demands li[data-demand-id]")
        assert page.text_content("#demand-status") == "Demande enregistrée : ses prochains appels seront enregistrés."
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "7-enregistrements.png"), full_page=True)
        page.click("#demands li[data-demand-id] button:text('Arrêter')")
        page.wait_for_selector("#demands-empty:not([hidden])")
        assert errors == [], errors
    finally:
        context.close()
    code, audit = acd.api("GET", "/api/audit?action=recording.listen", token(acd, SUPERVISOR))
    assert [e for e in audit["entries"] if e["target"] == f"recording:{rec['id']}" and e["actor"] == "solene"]
    code, stored = acd.api("GET", f"/api/recordings/{rec['id']}", token(acd, SUPERVISOR))
    assert (stored["note"]["author"], stored["note"]["score"]) == ("solene", 4)
    code, audit = acd.api("GET", "/api/audit?action=recording.demand", token(acd, SUPERVISOR))
    assert [e for e in audit["entries"] if e["target"] == "secretary:selma" and e["actor"] == "solene"]
    assert acd.api("GET", "/api/recording-demands", token(acd, SUPERVISOR))[1]["demands"] == []  # stopped


def add_user(acd, username: str, role: str) -> None:
    """A user of `role` with the console's password (as add_supervisor makes supervisors); her TOTP
    secret in acd.totp_secrets."""
    db = Database.from_url(acd.svc.db_url)
    hasher = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # console password: cheap
    try:
        users = UserRepository(db, sip_realm=REALM, totp_box=KeyFileBox(var(acd) / "secrets.key"))
        acd.totp_secrets[username] = users.add(ADMIN, username, username.title(), role, CONSOLE_PASSWORD,
                                               dt.datetime.now(dt.timezone.utc)).totp_secret
    finally:
        passwords._hasher = hasher
        db.dispose()


def test_the_recordings_tab_is_hidden_from_whoever_may_not_listen(service, browser):
    """An administrator manages recordings but hears none: the tab stays hidden, and the list route
    she would have used says why, in the page's words."""
    acd = service
    add_user(acd, "adele", "administrator")
    base = f"http://127.0.0.1:{acd.svc.config['http']['port']}"
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    try:
        page.goto(f"{base}/console/connexion")
        page.fill("#username", "adele")
        page.fill("#password", CONSOLE_PASSWORD)
        page.click("#submit")
        page.wait_for_selector("#enrol:not([hidden])")
        page.fill("#totp", code_at(acd.totp_secrets["adele"], dt.datetime.now(dt.timezone.utc)))
        page.click("#submit")
        page.wait_for_url(lambda url: "connexion" not in url)
        page.goto(f"{base}/wallboard")
        page.wait_for_selector("[data-practice='rec-on']")
        page.wait_for_selector("body[data-recordings='0']")  # asked whether she may listen: no
        assert page.is_hidden("#view-recordings") and page.is_hidden("#recordings")
    finally:
        context.close()


def test_the_purge_removes_rows_and_files_at_their_limits_and_is_audited(service):
    """Run with an injected time: past six months the recordings of this module go with their
    files; past the messages' 90 days, the voicemail messages too. (It runs last: the earlier tests
    stored what it purges.)"""
    acd = service
    code, recs = acd.api("GET", "/api/practices/rec-on/recordings", token(acd, SUPERVISOR))
    code, vms = acd.api("GET", "/api/practices/rec-vm/voicemails", token(acd, "vera"))
    assert recs["recordings"] and vms["voicemails"], "the earlier tests of the module store what is purged here"
    files_before = sealed_files(acd)
    newest = max(dt.datetime.fromisoformat(r["created_at"]) for r in recs["recordings"] + vms["voicemails"])
    db = Database.from_url(acd.svc.db_url)
    try:
        vault = MediaVault(var(acd) / "vault", None, acd.root / "voicemail")
        purger = RetentionPurger(db, RetentionSettings(call_records_days=None, recordings_days=None,
                                                       audit_days=None, state_history_days=None),
                                 media=[media_retention(vault, 183, 365, 90)])
        early = purger.purge(Actor("test", "cli"), newest + dt.timedelta(days=89))
        assert (early.media["call_recordings"], early.media["voicemails"]) == (0, 0)
        assert sealed_files(acd) == files_before
        late = purger.purge(Actor("test", "cli"), newest + dt.timedelta(days=184))
    finally:
        db.dispose()
    assert late.media["call_recordings"] == len(recs["recordings"])
    assert late.media["voicemails"] == len(vms["voicemails"])
    assert late.media["audio_files"] == len(files_before) and sealed_files(acd) == set()
    acd.tokens.clear()  # the purge at that time removed every API token too
    code, audit = acd.api("GET", "/api/audit?action=retention.purge", token(acd, SUPERVISOR))
    details = [json.loads(e["details"]) if isinstance(e["details"], str) else e["details"] for e in audit["entries"]]
    assert any(d.get("call_recordings") == len(recs["recordings"]) for d in details)
