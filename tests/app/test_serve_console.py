"""The secretaries' console in a real browser (Debian's chromium, headless, driven by Playwright)
against `callrouter serve` with the real Kamailio edge, two pjsua2 workers and SIPp softphones
and patients (tests/app/acd_support.py).

lea signs in through the page (first sign-in: the QR code to enrol, then her first code), logs in
from the page; a patient presses 3 and the card with the practice's booking link and instructions
is on her screen before her softphone gets the INVITE; she pauses from the page and the next call
goes to maud. Headers: CSP, cookie flags, a POST without the CSRF token refused. Screenshots go to
tests/artifacts/console/.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from callrouter.auth.totp import code_at
from tests.app.acd_support import CONSOLE_PASSWORD, Practice, running_acd, secretary_legs, sleep_until

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
BOOKING = "https://www.doctolib.fr/medecin-generaliste/paris/claire-martin"
INSTRUCTIONS = "Renouvellements d'ordonnance : prendre le nom et le traitement, le Dr Martin rappelle le soir."
DIARY = f"""\
practitioners:
  - {{id: dr-martin, name: Dr Claire Martin, role: médecin généraliste}}
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


@dataclass(frozen=True)
class DiaryPractice(Practice):
    def dialplan(self) -> str:
        return super().dialplan() + DIARY


PRACTICE = DiaryPractice("acd-console", "+33100000131", ("lea", "maud"), menu=True)


def chromium_or_fail():
    """Playwright and Debian's chromium; missing, a skip (which CI turns into a failure)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is missing: apt-get install chromium (scripts/ensure-system-deps)")
    return sync_api


@pytest.fixture
def browser():
    sync_api = chromium_or_fail()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def acd(tmp_path, prompts_built, browser):
    with running_acd(tmp_path, [PRACTICE], login_required=True) as acd:
        yield acd


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


def test_a_secretary_signs_in_sees_the_card_before_her_phone_rings_and_pauses_from_the_page(acd, browser):
    base = f"http://127.0.0.1:{acd.svc.config['http']['port']}"
    lea, maud = acd.softphone("lea"), acd.softphone("maud")
    lea.register()
    maud.register()
    acd.wait_registered()
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

    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    response = page.goto(base + "/")
    assert page.url == f"{base}/console/connexion"  # no session: the sign-in page
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    shot(page, "1-connexion")

    # First sign-in: no code yet, the QR code to enrol; then her first code.
    page.fill("#username", "lea")
    page.fill("#password", CONSOLE_PASSWORD)
    page.click("#submit")
    page.wait_for_selector("#enrol:not([hidden])")
    assert page.get_attribute("#enrol-qr", "src").startswith("data:image/svg+xml")
    assert page.text_content("#enrol-secret") == acd.totp_secrets["lea"]
    shot(page, "2-enrolement")
    page.fill("#totp", code_at(acd.totp_secrets["lea"], dt.datetime.now(dt.timezone.utc)))
    page.click("#submit")
    errors: list[str] = []  # the console's script errors, failed requests and CSP refusals
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_url(f"{base}/console")
    page.wait_for_selector("#state[data-state=offline]", timeout=10000) if not errors else None
    assert errors == [], (errors, acd.svc.log_tail())
    page.wait_for_selector("#state[data-state=offline]")
    assert page.text_content("#phone") == "Téléphone connecté"

    cookie = next(c for c in context.cookies() if c["name"] == "callrouter_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]  # plain HTTP here
    refused = context.request.post(f"{base}/api/secretaries/me/login", data="{}",
                                   headers={"Content-Type": "application/json"})
    assert refused.status == 403 and refused.json()["error"] == "csrf"

    page.click("#login")
    page.wait_for_selector("#state[data-state=available]")
    page.wait_for_function("document.getElementById('state-since').textContent.startsWith('depuis')")
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
    assert page.text_content("#card-number") == "+33619000131"
    assert "rendez-vous (touche 3)" in page.text_content("#card-menu")
    assert page.text_content("#card-practice") == "Cabinet acd-console"
    shown_at = int(page.get_attribute("#card", "data-shown-at")) / 1000
    page.wait_for_selector("#state[data-state=ringing]")
    shot(page, "4-appel-entrant")
    page.wait_for_selector("#card-status:text('En communication')", timeout=10000)
    first = acd.record("+33619000131")
    lea.finish()
    assert phone.proc.returncode == 0
    assert first.outcome == "answered" and first.secretary == acd.uri("lea"), first
    rung = invite_times(phone)
    assert rung and shown_at < rung[0], f"card shown at {shown_at}, her phone got the INVITE at {rung}"

    # She pauses from the page: the next call goes to maud.
    sleep_until(first.ended_at + dt.timedelta(seconds=2))  # wrap-up over
    page.select_option("#pause-reason", "déjeuner")
    page.click("#pause")
    page.wait_for_selector("#state[data-state=paused]")
    assert page.text_content("#state") == "En pause — déjeuner"
    page.wait_for_selector("#idle:not([hidden])")  # the ended call's card has left her screen
    shot(page, "5-en-pause")
    status, me = acd.api("POST", "/api/secretaries/me/login", maud_token)
    assert status == 200 and me["state"] == "available", me
    maud.take([("answer", 300, 1000)])
    acd.patient("acd-console", "+33619000132", [("pause", 500), ("digit", "3"), ("pause", 4000)], end="bye")
    second = acd.record("+33619000132")
    maud.finish()
    assert second.secretary == acd.uri("maud"), second
    assert [leg.party for leg in secretary_legs(second)] == [acd.uri("maud")]
    assert lea.offers() == [first.id]
    assert page.is_hidden("#lost")
    context.close()
