"""The supervisors' wallboard in a real browser (Debian's chromium, headless, driven by Playwright)
against one `callrouter serve` for the module, with the real Kamailio edge, two pjsua2 workers and
SIPp softphones and patients (tests/app/acd_support.py).

Sophie, a supervisor, signs in (TOTP enrolment, then her first code) and lands on /wallboard. An
open practice nobody covering it is logged in for shows red; an exhausted escalation blinks on two
wallboards until she takes it in hand on one. The waiting count of a practice rises while a SIPp
patient waits (its only secretary on another call) and falls when the patient hangs up. A pause
forced from the team table shows there and in the history, with who forced it. She gives a
secretary a practice in the team settings, and that practice's next call rings that secretary's
SIPp softphone. Screenshots go to tests/artifacts/wallboard/.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from callrouter.auth.totp import code_at
from callrouter.store.db import Database
from callrouter.store.escalations import EscalationRepository
from callrouter.store.watch import WatchRepository
from tests.app.acd_support import CONSOLE_PASSWORD, add_supervisor, Practice, running_acd

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "wallboard"
SUPERVISOR = "sophie"
ALWAYS = "{from: 2020-01-01, to: 2099-12-31, reason: permanence du télésecrétariat}"
PRACTITIONERS = 'practitioners:\n  - {id: dr-a, name: Dr Anne Arnaud, phone: "+33600000001"}\n'


@dataclass(frozen=True)
class OpenPractice(Practice):
    """Open every day and hour, public holidays included: the alarm does not depend on the date."""

    title: str = ""
    extra: str = ""  # more of the dialplan (a forwarding watch...)

    def dialplan(self) -> str:
        text = super().dialplan().replace("hours:\n", f"calendar:\n  openings: [{ALWAYS}]\nhours:\n", 1)
        return text.replace(f"name: Cabinet {self.name}", f"name: {self.title}", 1) + PRACTITIONERS + self.extra


MAIN = OpenPractice("wb-main", "+33100000141", ("nina",), title="Cabinet du Dr Martin")
SIDE = OpenPractice("wb-side", "+33100000142", ("olga",), title="Maison de santé du Val",
                    extra='watch: {forwarding: closed, at: ["03:10"], numbers: ["+33100000142"]}\n')
ALARM = OpenPractice("wb-alarm", "+33100000143", ("rose",), title="Cabinet des Lilas")
MOVE = OpenPractice("wb-move", "+33100000144", ("paul",), title="Pédiatrie Saint-Denis")


@pytest.fixture(scope="module")
def acd(tmp_path_factory, prompts_built, browser):
    root = tmp_path_factory.mktemp("wallboard")
    escalation = {"enabled": True, "ack_secret": "wallboard-test-ack-secret", "outbox_file": str(root / "outbox.jsonl")}
    with running_acd(root, [MAIN, SIDE, ALARM, MOVE], login_required=True, escalation=escalation) as acd:
        acd.totp_secrets[SUPERVISOR] = add_supervisor(acd, SUPERVISOR, "Sophie Morel")
        acd.exhausted = exhausted_chain(acd.svc.db_url)
        acd.tokens = {}
        yield acd


@pytest.fixture(scope="module")
def board(acd, browser):
    """Sophie's wallboard, signed in through the page, and the script errors it met."""
    context = browser.new_context(locale="fr-FR", viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    base = f"http://127.0.0.1:{acd.svc.config['http']['port']}"
    page.goto(f"{base}/wallboard")
    assert page.url == f"{base}/console/connexion"  # no session: the sign-in page
    page.fill("#username", SUPERVISOR)
    page.fill("#password", CONSOLE_PASSWORD)
    page.click("#submit")
    page.wait_for_selector("#enrol:not([hidden])")
    page.fill("#totp", code_at(acd.totp_secrets[SUPERVISOR], dt.datetime.now(dt.timezone.utc)))
    page.click("#submit")
    page.wait_for_url(f"{base}/wallboard")  # a supervisor lands on the wallboard
    page.wait_for_selector("[data-practice='wb-main']")
    errors.clear()  # the sign-in's answers (409: enrol first) are the sign-in page's, not the wallboard's
    try:
        yield page, errors, base
    finally:
        context.close()



def exhausted_chain(db_url: str) -> int:
    """An urgent chain of wb-main whose SMS left and that nobody acknowledged."""
    db = Database.from_url(db_url)
    try:
        repo, start = EscalationRepository(db), dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=12)
        view = repo.create(None, "wb-main", "urgent", "+33612345678", start, note="douleur thoracique")
        repo.claim_step(view.id, 0, 0, "sms", "dr-a", "+33600000001", start)
        repo.mark_sent(view.id, 0, 0, "gw-1", start + dt.timedelta(seconds=2))
        repo.finish(view.id, "exhausted", start + dt.timedelta(minutes=6))
        return view.id
    finally:
        db.dispose()


def failed_watch(db_url: str) -> int:
    """A watch of wb-side's line whose call came back busy twice: failed, nobody told yet."""
    db = Database.from_url(db_url)
    try:
        repo, now = WatchRepository(db), dt.datetime.now(dt.timezone.utc)
        day = (now - dt.timedelta(hours=12), now + dt.timedelta(hours=12))
        run = repo.start_run("wb-side/test", "wb-side", "+33100000142", "+33100000142", "+33180000100", "t0k3n",
                             "test", now - dt.timedelta(minutes=6), now - dt.timedelta(minutes=6), day, 4)
        repo.end_attempt(run.id, 1, "busy", now - dt.timedelta(minutes=6), sip_code=486, rang=True)
        repo.add_attempt(run.id, 2, now - dt.timedelta(minutes=1))
        repo.end_attempt(run.id, 2, "busy", now - dt.timedelta(minutes=1), sip_code=486, rang=True)
        return repo.finish(run.id, "failed", "busy", now - dt.timedelta(minutes=1)).id
    finally:
        db.dispose()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def on_duty(acd, username: str):
    """Her softphone registered and her service started (API login: her token kept, a TOTP code
    is accepted once)."""
    phone = acd.softphone(username)
    phone.register()
    acd.wait_registered()
    acd.tokens[username] = acd.sign_in(username)
    status, me = acd.api("POST", "/api/secretaries/me/login", acd.tokens[username])
    assert status == 200 and me["state"] == "available", me
    return phone


def as_sophie(page, base: str, path: str) -> dict:
    """GET through her page's session (her TOTP code was used by the sign-in)."""
    response = page.context.request.get(f"{base}{path}")
    assert response.status == 200, response.text()
    return response.json()


def waiting(page, practice: str) -> str:
    return page.get_attribute(f"[data-practice='{practice}']", "data-waiting")


def test_an_open_practice_with_nobody_logged_in_is_red_and_an_exhausted_escalation_blinks_until_taken(acd, board):
    page, errors, base = board
    alarm = page.wait_for_selector("[data-practice='wb-alarm'][data-alarm='1']")
    assert "Cabinet ouvert, personne n'est connecté" in alarm.text_content()
    assert "alarm" in alarm.get_attribute("class")
    red = page.eval_on_selector("[data-practice='wb-alarm'] .alarm-text", "e => getComputedStyle(e).backgroundColor")
    assert red == "rgb(255, 90, 79)", red
    chain = page.wait_for_selector(f"[data-escalation='{acd.exhausted}'][data-attention='1']")
    assert "Prendre en charge" in chain.text_content() and "Dr Anne Arnaud" in chain.text_content()
    assert page.eval_on_selector(f"[data-escalation='{acd.exhausted}']",
                                 "e => getComputedStyle(e).animationName") == "blink"
    shot(page, "1-tableau-alarme-escalade")

    other = page.context.new_page()  # a second wallboard (the room's screen)
    other.goto(f"{base}/wallboard")
    other.wait_for_selector(f"[data-escalation='{acd.exhausted}'][data-attention='1']")
    page.click(f"[data-escalation='{acd.exhausted}'] button.take")
    for p in (page, other):  # both stop blinking at once, without a reload
        p.wait_for_selector(f"[data-escalation='{acd.exhausted}']", state="detached", timeout=10000)
    other.close()
    assert as_sophie(page, base, f"/api/escalations/{acd.exhausted}")["taken_by"] == SUPERVISOR
    assert errors == [], errors


def test_the_waiting_count_rises_while_a_patient_waits_and_falls_when_she_hangs_up(acd, board):
    page, errors, _ = board
    nina = on_duty(acd, "nina")
    page.wait_for_selector("tr[data-secretary='nina'][data-state='available']")
    nina.take([("answer", 500, 25000)])
    first = acd.patient("wb-main", "+33619000141")  # until the service's BYE, when nina hangs up
    page.wait_for_selector("tr[data-secretary='nina'][data-state='on_call']", timeout=20000)
    assert waiting(page, "wb-main") == "0"
    acd.patient("wb-main", "+33619000142", [("pause", 9000)], end="bye")  # nina is busy: she waits
    page.wait_for_selector("[data-practice='wb-main'][data-waiting='1']", timeout=15000)
    page.wait_for_function("document.querySelector(\"[data-practice='wb-main'] .wait .value\").textContent !== '—'")
    shot(page, "2-patiente-en-attente")
    page.wait_for_selector("[data-practice='wb-main'][data-waiting='0']", timeout=20000)  # she hung up
    gave_up = acd.record("+33619000142")
    assert gave_up.outcome == "abandoned" and gave_up.queued_at is not None, gave_up
    nina.finish()
    assert acd.record("+33619000141").outcome == "answered"
    page.wait_for_function("Number(document.querySelector(\"[data-practice='wb-main'] dd.answered\").textContent) >= 1")
    assert first.proc.wait(30) == 0
    assert errors == [], errors


def test_a_pause_forced_from_the_wallboard_shows_in_the_team_and_the_history(acd, board):
    page, errors, _ = board
    acd.olga = on_duty(acd, "olga")
    row = "tr[data-secretary='olga']"
    page.wait_for_selector(f"{row}[data-state='available']")
    page.select_option(f"{row} select.reason", "déjeuner")
    page.click(f"{row} button.force-pause")
    page.wait_for_selector(f"{row}[data-state='paused']")
    assert "déjeuner" in page.text_content(row)
    change = page.wait_for_selector("#history li.change[data-secretary='olga'][data-state='paused']")
    assert "déjeuner" in change.text_content() and f"par {SUPERVISOR}" in change.text_content()
    status, me = acd.api("GET", "/api/secretaries/me", acd.tokens["olga"])
    assert (me["state"], me["paused"]) == ("paused", "déjeuner")
    shot(page, "3-pause-forcee")
    page.click(f"{row} button.resume")
    page.wait_for_selector(f"{row}[data-state='available']")
    assert errors == [], errors


def test_a_coverage_given_in_the_settings_rings_her_softphone_on_the_next_call(acd, board):
    page, errors, base = board
    assert page.get_attribute("[data-practice='wb-move']", "data-alarm") == "1"  # paul is not there
    page.click("#view-settings")
    card = "form[data-secretary='olga']"
    page.wait_for_selector(f"{card} input[data-key='wb-move/*']")
    page.check(f"{card} input[data-key='wb-move/*']")
    shot(page, "4-reglages-equipe")
    page.click(f"{card} button[type=submit]")
    page.wait_for_selector(f"{card} .status-text:text('Enregistré')")
    olga = next(s for s in as_sophie(page, base, "/api/team")["secretaries"] if s["id"] == "olga")
    assert set(olga["coverage"]) == {"wb-side/*", "wb-move/*"} and "wb-move" in olga["practices"]

    acd.olga.take([("answer", 300, 1000)])
    acd.patient("wb-move", "+33619000144", [("pause", 4000)], end="bye")
    record = acd.record("+33619000144")
    acd.olga.finish()
    assert (record.outcome, record.secretary) == ("answered", acd.uri("olga")), record
    page.click("#view-board")
    page.wait_for_selector("[data-practice='wb-move'][data-alarm='0']")
    page.wait_for_function("Number(document.querySelector(\"[data-practice='wb-move'] dd.answered\").textContent) === 1")
    shot(page, "5-tableau-apres-couverture")
    assert page.is_hidden("#lost")
    assert errors == [], errors


def test_a_secretary_lands_on_her_console_and_the_wallboard_tells_her_it_is_not_hers(acd, browser):
    base = f"http://127.0.0.1:{acd.svc.config['http']['port']}"
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    page.goto(f"{base}/console/connexion")
    page.fill("#username", "rose")
    page.fill("#password", CONSOLE_PASSWORD)
    page.click("#submit")
    page.wait_for_selector("#enrol:not([hidden])")
    page.fill("#totp", code_at(acd.totp_secrets["rose"], dt.datetime.now(dt.timezone.utc)))
    page.click("#submit")
    page.wait_for_url(f"{base}/console")
    page.wait_for_selector("#who:not(:empty)", timeout=10000)
    assert page.is_hidden("#to-wallboard")  # no way to the supervisors' board from her console
    page.goto(f"{base}/wallboard")
    page.wait_for_selector("#forbidden:not([hidden])")
    assert "réservé aux superviseurs" in page.text_content("#forbidden")
    assert page.is_hidden("#board") and page.is_hidden("#tiles")
    context.close()


def test_a_supervisor_on_the_console_finds_the_wallboard_one_click_away(board):
    page, errors, base = board
    console = page.context.new_page()  # same session
    try:
        console.goto(f"{base}/console")
        console.wait_for_selector("#to-wallboard:not([hidden])")
        assert console.text_content("#to-wallboard") == "Tableau de supervision"
        console.click("#to-wallboard")
        console.wait_for_url(f"{base}/wallboard")
        console.wait_for_selector("[data-practice='wb-main']")
    finally:
        console.close()


def test_a_broken_forwarding_stays_red_on_the_wallboard_until_someone_acknowledges_it(acd, board):
    page, errors, base = board
    run = failed_watch(acd.svc.db_url)
    page.reload()
    alarm = page.wait_for_selector(f"#watch-panel:not([hidden]) [data-watch-run='{run}']")
    assert "Le renvoi de la ligne ne fonctionne plus" in alarm.text_content()
    assert "2 essais" in alarm.text_content()
    assert page.text_content("#watch-summary") == "1 renvoi en échec"
    line = page.text_content("[data-watch-number='+33100000142'] .watch-verdict")
    assert line.startswith("en échec"), line
    shot(page, "6-renvoi-en-echec")
    alarm.query_selector("button").click()
    page.wait_for_selector(f"[data-watch-run='{run}']", state="detached")
    assert page.text_content("#watch-summary") != "1 renvoi en échec"
    overview = as_sophie(page, base, "/api/watch")
    side = next(p for p in overview["practices"] if p["practice"] == "wb-side")
    assert side["alarms"] == [] and side["numbers"][0]["failing"]  # taken in hand, the line still failing
    assert errors == []
