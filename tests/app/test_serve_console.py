"""The secretaries' console in a real browser (Debian's chromium, headless, driven by Playwright)
against one `callrouter serve` for the module, with the real Kamailio edge, two pjsua2 workers,
SIPp softphones and patients (tests/app/acd_support.py) and an SMS gateway over real HTTP on
loopback.

- lea signs in through the page (first sign-in: the QR code to enrol, then her first code), logs
  in from the page; a patient presses 3 and the card with the practice's booking link and
  instructions is on her screen before her softphone gets the INVITE; she answers, the card says
  « En communication », then « Appel terminé » and stays until she closes it; she pauses from the
  page and the next call goes to maud. Headers: CSP, cookie flags, a POST without the CSRF token
  refused.
- nina covers a practice with an on-call rota: with the tab hidden, a call is offered and the page
  notifies (desktop notification and chime, the permission asked from a button); the card shows
  the wait, the on-call practitioner, « En communication » with its timer; from the card she
  creates callback tasks that appear in the shared list, claims one and marks it done, cancels the
  other with a reason, starts an escalation whose SMS reaches the gateway; the shortcuts work and
  never fire while she types.
- The service restarts: the same page shows « connexion perdue », reconnects by itself, is still
  signed in and gets the events again.

Screenshots go to tests/artifacts/console/.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from callrouter.auth.totp import code_at
from callrouter.store.db import Database
from callrouter.store.reaping import NOTE as LOST_NOTE
from callrouter.store.tasks import TaskRepository
from tests.app.acd_support import CONSOLE_PASSWORD, Practice, running_acd, secretary_legs, sleep_until
from tests.sip.harness import wait_for

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
BOOKING = "https://www.doctolib.fr/medecin-generaliste/paris/claire-martin"
INSTRUCTIONS = "Renouvellements d'ordonnance : prendre le nom et le traitement, le Dr Martin rappelle le soir."
DIARY = f"""\
diary:
  platform: doctolib
  booking_link: {BOOKING}
  instructions: "{INSTRUCTIONS}"
  consultation_types:
    - {{id: consultation, label: Consultation, duration: 15m, practitioners: [dr-martin]}}
    - {{id: nouveau-patient, label: Première consultation, duration: 30m, practitioners: [dr-martin], patients: new, booking: filter}}
  reserved_slots:
    - {{days: mon-fri, hours: "08:30-09:00", purpose: urgences du jour, practitioner: dr-martin}}
"""
MARTIN = "  - {id: dr-martin, name: Dr Claire Martin, role: médecin généraliste}\n"
DOCTOR_ON_CALL = "+33611223344"
ON_CALL = f"""\
  - {{id: dr-garde, name: Dr Hélène Garde, role: médecin de garde, phone: "{DOCTOR_ON_CALL}"}}
on_call:
  weekly:
    - {{days: mon-sun, hours: "00:00-24:00", who: dr-garde}}
escalation:
  tiers:
    urgent:
      steps:
        - {{sms: on_call}}
"""
HIDE_TAB = """() => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
  Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW_TAB = """() => {
  delete document.visibilityState;
  delete document.hidden;
  document.dispatchEvent(new Event("visibilitychange"));
}"""


@dataclass(frozen=True)
class DiaryPractice(Practice):
    people: str = MARTIN

    def dialplan(self) -> str:
        return super().dialplan() + "practitioners:\n" + self.people + DIARY


PRACTICE = DiaryPractice("acd-console", "+33100000131", ("lea", "maud"), menu=True)
GARDE = DiaryPractice("acd-console-garde", "+33100000132", ("nina",), menu=True, people=MARTIN + ON_CALL)
XFER = DiaryPractice("acd-console-xfer", "+33100000133", ("olga", "pia"))  # a call handed to a colleague


class SmsGateway(http.server.ThreadingHTTPServer):
    """An SMS provider over real HTTP on loopback: records each message, answers with an id."""

    daemon_threads = True

    def __init__(self) -> None:
        self.received: list[dict] = []
        super().__init__(("127.0.0.1", 0), _SmsHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/sms/send"


class _SmsHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append(json.loads(body))
        answer = json.dumps({"id": f"gw-{len(self.server.received)}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def gateway():
    server = SmsGateway()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def acd(tmp_path_factory, prompts_built, browser, gateway):
    escalation = {"enabled": True, "ack_secret": "test-secret", "sms_url": gateway.url}
    with running_acd(tmp_path_factory.mktemp("console"), [PRACTICE, GARDE, XFER], login_required=True,
                     escalation=escalation) as acd:
        yield acd


def base_url(acd) -> str:
    return f"http://127.0.0.1:{acd.svc.config['http']['port']}"


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def invite_times(run) -> list[float]:
    """The epoch time of each INVITE a SIPp softphone received, from its message trace (SIPp
    stamps each message with the local time)."""
    out = []
    for block in run.messages.read_text(errors="replace").split("----------------------------------------------"):
        if "message received" in block and "\nINVITE sip:" in block:
            stamp = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)", block.split("\n", 1)[0])
            assert stamp, block[:200]
            out.append(dt.datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp())
    return out


def page_api(page, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """A request made with the page's session (its cookie, and the CSRF token it reads), not
    through its user interface."""
    return tuple(page.evaluate("""async ([method, path, body]) => {
      const session = await (await fetch("/api/session")).json();
      const response = await fetch(path, {method, body: body === null ? undefined : JSON.stringify(body),
        headers: {"Content-Type": "application/json", "X-CSRF-Token": session.csrf_token}});
      return [response.status, await response.json()];
    }""", [method, path, body]))


def sign_in_enrolling(page, acd, username: str) -> list[str]:
    """Her first sign-in through the page (the QR code, then her first code); returns the list the
    page's script errors, failed requests and CSP refusals are collected in from then on."""
    base = base_url(acd)
    page.goto(f"{base}/console/connexion")
    page.fill("#username", username)
    page.fill("#password", CONSOLE_PASSWORD)
    page.click("#submit")
    page.wait_for_selector("#enrol:not([hidden])")
    assert page.get_attribute("#enrol-qr", "src").startswith("data:image/svg+xml")
    assert page.text_content("#enrol-secret") == acd.totp_secrets[username]
    page.fill("#totp", code_at(acd.totp_secrets[username], dt.datetime.now(dt.timezone.utc)))
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.click("#submit")
    page.wait_for_url(f"{base}/console")
    page.wait_for_selector("#state[data-state=offline]")
    return errors


def test_a_secretary_signs_in_sees_the_card_before_her_phone_rings_and_pauses_from_the_page(acd, browser):
    base = base_url(acd)
    lea, maud = acd.softphone("lea"), acd.softphone("maud")
    lea.register()
    maud.register()
    maud_token = acd.sign_in("maud")  # enrolled: she has signed in with a code once

    # A wrong code for an enrolled secretary: refused, in French.
    other = browser.new_context(locale="fr-FR")
    page = other.new_page()
    page.goto(f"{base}/console/connexion")
    page.fill("#username", "maud")
    page.fill("#password", CONSOLE_PASSWORD)
    page.fill("#totp", "000000")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "Identifiant, mot de passe ou code incorrect."
    assert page.url.endswith("/console/connexion")
    other.close()

    context = browser.new_context(locale="fr-FR", viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    response = page.goto(base + "/")
    assert page.url == f"{base}/console/connexion"  # no session: the sign-in page
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    shot(page, "1-connexion")
    errors = sign_in_enrolling(page, acd, "lea")
    page.wait_for_selector("#phone:text('Téléphone connecté')", timeout=20000)
    assert errors == [], (errors, acd.svc.log_tail())

    cookie = next(c for c in context.cookies() if c["name"] == "callrouter_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]  # plain HTTP here
    refused = context.request.post(f"{base}/api/secretaries/me/login", data="{}",
                                   headers={"Content-Type": "application/json"})
    assert refused.status == 403 and refused.json()["error"] == "csrf"

    page.click("#login")
    page.wait_for_selector("#state[data-state=available]")
    page.wait_for_selector("#state-since:text-matches('^depuis')")
    shot(page, "3-console-disponible")

    # A patient presses 3: the card is on her screen before her phone gets the INVITE.
    phone = lea.take([("answer", 2500, 1500)])
    acd.patient("acd-console", "+33619000131", [("pause", 500), ("digit", "3"), ("pause", 8000)], end="bye")
    try:
        page.wait_for_selector("#card:not([hidden])", timeout=30000)
    except Exception:
        raise AssertionError((errors, page.content()[:3000], acd.svc.log_tail()))
    assert page.get_attribute("#card-booking-link", "href") == BOOKING
    assert page.text_content("#card-instructions") == INSTRUCTIONS
    assert page.text_content("#card-number") == "06 19 00 01 31"
    assert "rendez-vous (touche 3)" in page.text_content("#card-menu")
    assert page.text_content("#card-practice") == "Cabinet acd-console"
    assert page.text_content("#card-status") == "Appel entrant"
    shown_at = int(page.get_attribute("#card", "data-shown-at")) / 1000
    page.wait_for_selector("#state[data-state=ringing]")
    shot(page, "4-appel-entrant")
    page.wait_for_selector("#card[data-status=in_call]", timeout=10000)
    assert page.text_content("#card-status") == "En communication"
    first = acd.record("+33619000131")
    lea.finish()
    assert phone.proc.returncode == 0
    assert first.outcome == "answered" and first.secretary == acd.uri("lea"), first
    rung = invite_times(phone)
    assert rung and shown_at < rung[0], f"card shown at {shown_at}, her phone got the INVITE at {rung}"
    # Over: the card says so and stays until she closes it.
    page.wait_for_selector("#card[data-status=ended]", timeout=10000)
    assert page.text_content("#card-status") == "Appel terminé"
    assert page.is_visible("#card-close")

    # She pauses from the page: the next call goes to maud.
    sleep_until(first.ended_at + dt.timedelta(seconds=2))  # wrap-up over
    page.select_option("#pause-reason", "déjeuner")
    page.click("#pause")
    page.wait_for_selector("#state[data-state=paused]")
    assert page.text_content("#state") == "En pause — déjeuner"
    assert page.is_visible("#card")  # the ended call's card is still there...
    page.click("#card-close")
    page.wait_for_selector("#idle:not([hidden])")  # ...until she closes it
    status, me = acd.api("POST", "/api/secretaries/me/login", maud_token)
    assert status == 200 and me["state"] == "available", me
    maud.take([("answer", 300, 1000)])
    acd.patient("acd-console", "+33619000132", [("pause", 500), ("digit", "3"), ("pause", 4000)], end="bye")
    second = acd.record("+33619000132")
    maud.finish()
    assert second.secretary == acd.uri("maud"), second
    assert [leg.party for leg in secretary_legs(second)] == [acd.uri("maud")]
    assert lea.offers() == [first.id]
    assert page.is_hidden("#lost") and page.is_visible("#idle")
    context.close()


@pytest.fixture(scope="module")
def nina(acd, browser):
    """nina's console, signed in (enrolled on the way), for the rest of the module."""
    context = browser.new_context(locale="fr-FR", viewport={"width": 1440, "height": 1000})
    # The booking platform is on the internet: the page's tab for it is answered here instead.
    context.route("https://www.doctolib.fr/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<title>Agenda</title>Agenda du cabinet"))
    page = context.new_page()
    errors = sign_in_enrolling(page, acd, "nina")
    try:
        yield context, page, errors
    finally:
        context.close()


def test_a_call_notified_in_the_background_then_tasks_an_escalation_and_shortcuts_from_the_card(acd, nina, gateway):
    context, page, errors = nina
    base = base_url(acd)
    softphone = acd.softphone("nina")
    softphone.register()
    page.wait_for_selector("#phone:text('Téléphone connecté')", timeout=20000)

    # Notifications: asked from a button, not on load.
    assert page.evaluate("Notification.permission") == "default"
    assert page.is_visible("#notify-enable")
    context.grant_permissions(["notifications"], origin=base)
    page.click("#notify-enable")
    page.wait_for_selector("#notify-state:text('Notifications activées')")
    assert page.is_hidden("#notify-enable")

    # The help, then her service started with the keyboard.
    page.keyboard.press("?")
    page.wait_for_selector("#help[open]")
    assert "Pause / reprendre" in page.text_content("#help")
    page.keyboard.press("Escape")
    page.wait_for_selector("#help[open]", state="detached")
    page.keyboard.press("s")
    page.wait_for_selector("#state[data-state=available]")

    # In the background, a call is offered: a notification and a chime.
    page.evaluate(HIDE_TAB)
    # Answered after 1.5 s: the offer's limit is 3 s here, and the answer crosses the edge, a worker
    # and the controller before it counts (on a loaded machine, 2.5 s left too little).
    phone = softphone.take([("answer", 1500, 20000)])
    acd.patient("acd-console-garde", "+33619000141", [("pause", 500), ("digit", "3"), ("pause", 40000)], end="bye")
    page.wait_for_selector("#card[data-status=ringing]", timeout=30000)
    page.wait_for_selector("#oncall-name:text('Dr Hélène Garde')", timeout=2000)
    page.evaluate(SHOW_TAB)
    shot(page, "sonnerie")
    call_id = page.get_attribute("#card", "data-call-id")
    page.wait_for_selector("body[data-notification=shown]", state="attached", timeout=5000)
    assert page.evaluate("document.body.dataset.notified") == call_id
    assert page.evaluate("document.body.dataset.chimes") == "1"
    assert re.fullmatch(r"\d+ s|\d+ min \d\d s", page.text_content("#card-waited"))
    assert "SMS → Dr Hélène Garde" in page.text_content("#tiers")
    assert DOCTOR_ON_CALL not in page.content() and "11 22 33 44" not in page.content()

    # She answers: « En communication » with its timer.
    page.wait_for_selector("#card[data-status=in_call]", timeout=15000)
    assert page.text_content("#card-status") == "En communication"
    page.wait_for_selector("#card-timer:text-matches('^00:0[1-9]$')")
    shot(page, "en-communication")

    # Typing in a field never fires a shortcut.
    page.click("#message-note")
    page.keyboard.type("ps")
    assert page.input_value("#message-note") == "ps"
    assert page.get_attribute("#state", "data-state") == "on_call" and page.is_hidden("#help")

    # Two callback tasks from the card: they appear in the shared list.
    assert page.input_value("#message-number") == "06 19 00 01 41"
    page.fill("#message-note", "Souhaite un rendez-vous cette semaine")
    page.click("#message-send")
    page.wait_for_selector("#message-result:text('Rappel enregistré')")
    page.fill("#message-note", "Résultats de prise de sang à transmettre")
    page.select_option("#message-expiry", "60")
    page.click("#message-send")
    page.wait_for_selector("#tasks li[data-source=secretary] >> nth=1")
    first = page.locator("#tasks li", has_text="Souhaite un rendez-vous cette semaine")
    second = page.locator("#tasks li", has_text="Résultats de prise de sang")
    assert first.get_attribute("data-state") == "open" and "06 19 00 01 41" in first.text_content()

    # An escalation from the card, chosen with the keyboard: the SMS reaches the gateway.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("e")
    assert page.evaluate("document.activeElement.dataset.tier") == "urgent"
    page.keyboard.press("Enter")
    page.wait_for_selector("#escalate-form:not([hidden])")
    page.fill("#escalate-note", "douleur thoracique depuis 20 min")
    page.click("#escalate-send")
    page.wait_for_selector("#escalate-result:text('Escalade E')")
    reference = re.search(r"Escalade (E\d+)", page.text_content("#escalate-result")).group(1)
    assert wait_for(lambda: gateway.received, timeout=20), acd.svc.log_tail()
    [sms] = gateway.received
    assert sms["to"] == DOCTOR_ON_CALL and reference in sms["text"], sms

    # The booking link with A (its tab answered locally: no traffic leaves the machine).
    page.evaluate("document.activeElement.blur()")
    with context.expect_page() as opened:
        page.keyboard.press("a")
    assert opened.value.url == BOOKING
    opened.value.close()

    # The first task: claimed, then done; the second cancelled with a reason.
    first.locator("[data-action=assign]").click()
    page.wait_for_selector("#tasks li.task-mine")
    assert "pris par moi" in first.text_content()
    shot(page, "rappels")
    first.locator("[data-action=done]").click()
    first.wait_for(state="detached")
    second.locator("[data-action=cancel]").click()
    page.fill("#tasks .cancel-form input", "Résultats envoyés par le laboratoire")
    page.click("#tasks .cancel-form button[type=submit]")
    page.wait_for_selector("#tasks-empty:not([hidden])")
    _, listed = page_api(page, "GET", "/api/practices/acd-console-garde/tasks?state=done,cancelled")
    states = {t["note"]: (t["state"], t["assigned_to"], t["cancel_reason"]) for t in listed["tasks"]}
    assert states == {"Souhaite un rendez-vous cette semaine": ("done", "nina", None),
                      "Résultats de prise de sang à transmettre": ("cancelled", None, "Résultats envoyés par le laboratoire")}

    # T goes to the task list; the call ends: « Appel terminé », kept until Échap.
    page.keyboard.press("t")
    assert page.evaluate("document.getElementById('tasks').contains(document.activeElement)")
    softphone.finish()
    assert phone.proc.returncode == 0
    page.wait_for_selector("#card[data-status=ended]", timeout=15000)
    assert page.text_content("#card-status") == "Appel terminé"
    page.wait_for_selector("#day-calls tr[data-call-id] .outcome:text('Répondu')", timeout=10000)

    # P pauses (her first pause reason) and resumes; Échap closes the ended call's card.
    record = acd.record("+33619000141")
    sleep_until(record.ended_at + dt.timedelta(seconds=2))  # wrap-up over
    page.keyboard.press("p")
    page.wait_for_selector("#state[data-state=paused]")
    shot(page, "en-pause")
    page.keyboard.press("p")
    page.wait_for_selector("#state[data-state=available]")
    page.keyboard.press("Escape")
    page.wait_for_selector("#idle:not([hidden])")
    assert errors == [], errors


def test_transferer_hands_the_call_to_a_colleague_from_the_card(acd, browser):
    """olga, on a call, clicks « Transférer » on the card: the list has pia (free, covering the
    practice); « Transfert vers Pia… » while pia's phone rings, then « Appel transféré à Pia. »."""
    olga, pia = acd.softphone("olga"), acd.softphone("pia")
    olga.register()
    pia.register()
    context = browser.new_context(locale="fr-FR", viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    try:
        errors = sign_in_enrolling(page, acd, "olga")
        page.wait_for_selector("#phone:text('Téléphone connecté')", timeout=20000)
        page.click("#login")
        page.wait_for_selector("#state[data-state=available]")
        status, me = acd.api("POST", "/api/secretaries/me/login", acd.sign_in("pia"))  # idle for less long
        assert status == 200, me
        olga.take([("answer", 500, 0)])  # hung up by the service once pia took the call
        pia.take([("answer", 1500, 0)])
        acd.patient("acd-console-xfer", "+33619000133", [("pause", 7000)], end="bye")
        page.wait_for_selector("#card[data-status=in_call]", timeout=30000)
        page.click("#transfer-open")
        page.wait_for_selector("#transfer-form:not([hidden])")
        assert page.eval_on_selector_all("#transfer-to option", "os => os.map(o => o.textContent)") == ["Pia"]
        assert page.is_hidden("#transfer-open")  # the chooser stands in for its button
        shot(page, "9-transfert-choix")
        page.click("#transfer-form button[type=submit]")
        page.wait_for_selector("#transfer-result:text('Transfert vers Pia')")
        shot(page, "10-transfert-en-cours")
        page.wait_for_selector("#transfer-result:text('Appel transféré à Pia.')", timeout=15000)
        page.wait_for_selector("#card[data-status=taken]")
        shot(page, "11-transfert-fait")
        olga.finish(30)
        pia.finish(30)
        record = acd.record("+33619000133")
        assert record.secretary == acd.uri("olga")
        assert [(leg.kind, leg.party) for leg in record.legs if leg.kind == "transfer"] == [("transfer", acd.uri("pia"))]
        assert errors == [], errors
    finally:
        context.close()


def test_after_a_restart_the_same_page_reconnects_and_is_still_signed_in(acd, nina):
    context, page, errors = nina
    assert page.is_hidden("#lost")
    acd.kill_started()  # no call in progress: the softphones go with the service
    acd.svc.stop()
    page.wait_for_selector("#lost:not([hidden])", timeout=15000)
    assert page.text_content("#lost") == "Connexion perdue — reconnexion en cours…"
    acd.svc.start()
    acd.svc.wait_edge_ready(2)
    page.wait_for_selector("#lost", state="hidden", timeout=60000)
    assert page.url.endswith("/console")
    session = page.evaluate("fetch('/api/session').then(r => r.json())")
    assert session["username"] == "nina"
    # The same CSRF token still opens the state-changing routes; the events come again.
    logged_in = page.is_visible("#logout")
    page.keyboard.press("s")  # her service starts or stops, from the page
    page.wait_for_selector("#login" if logged_in else "#logout")
    # A task created elsewhere (here by a request of the page's session, not by its task panel).
    status, _ = page_api(page, "POST", "/api/practices/acd-console-garde/tasks",
                         {"number": "06 19 00 01 42", "note": "Rappeler après 17 h"})
    assert status == 201
    page.wait_for_selector("#tasks li:has-text('Rappeler après 17 h')", timeout=10000)
    page.reload()
    page.wait_for_selector("#login" if logged_in else "#logout")
    assert page.url.endswith("/console")  # not sent back to the sign-in page
    page.wait_for_selector("#tasks li:has-text('Rappeler après 17 h')")
    # A message left on the voicemail is a task of source « messagerie » (as the calls store it).
    db = Database.from_url(acd.svc.db_url)
    try:
        now = dt.datetime.now(dt.timezone.utc)
        TaskRepository(db).create("acd-console-garde", "+33619000143", "voicemail", now, now + dt.timedelta(hours=4))
        # A caller who was waiting on a node that died: the survivor's reaper leaves such a task.
        TaskRepository(db).create("acd-console-garde", "+33619000144", "node_lost", now, now + dt.timedelta(hours=4),
                                  note=LOST_NOTE)
    finally:
        db.dispose()
    page.reload()
    page.wait_for_selector("#tasks li[data-source=voicemail] .badge:text('messagerie')")
    assert "06 19 00 01 43" in page.text_content("#tasks li[data-source=voicemail]")
    page.wait_for_selector("#tasks li[data-source=node_lost] .badge:text('appel interrompu')")
    lost = page.text_content("#tasks li[data-source=node_lost]")
    assert "06 19 00 01 44" in lost and LOST_NOTE in lost, lost
    shot(page, "console-taches-appel-interrompu")
    # The stream cut and the refused reconnections while it was down, and no script error.
    assert [e for e in errors if not e.startswith("Failed to load resource: net::")] == [], errors
