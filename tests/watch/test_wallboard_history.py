"""The wallboard's « Renvois des lignes » view in a real browser (Debian's chromium, headless, driven
by Playwright) against `callrouter serve` (no SIP edge: the view reads the store): two weeks of
watches of two practices, one of them in La Réunion, drawn as a chart of the round-trip times with
the failures marked, and a table in each practice's local time saying what each test saw.
Screenshots go to tests/artifacts/wallboard/."""

from __future__ import annotations

import datetime as dt
import types
import zoneinfo
from pathlib import Path

import pytest

from callrouter.auth.totp import code_at
from callrouter.devtools.serve import ServeProcess, base_config
from callrouter.ports import Actor
from callrouter.store.db import Database
from callrouter.store.watch import WatchRepository
from tests.app.acd_support import CONSOLE_PASSWORD, add_supervisor
from tests.app.browser import launched
from tests.app.conftest import prompts_built  # noqa: F401 (a fixture: the service reads the prompts)
from tests.factories import REPO, dialplan_text

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "wallboard"
UTC = dt.timezone.utc
PARIS, REUNION = zoneinfo.ZoneInfo("Europe/Paris"), zoneinfo.ZoneInfo("Indian/Reunion")
LILAS, OCEAN = "+33100000401", "+33100000402"
CALLER = "+33180000100"


def watch_section(tz: zoneinfo.ZoneInfo) -> str:
    """A nightly window twelve hours from now in the practice's time: no slot falls during the test."""
    at = (dt.datetime.now(tz) + dt.timedelta(hours=12)).strftime("%H:00")
    return f'watch:\n  forwarding: always\n  at: ["{at}"]\n'


@pytest.fixture(scope="module")
def browser():
    yield from launched()


@pytest.fixture(scope="module")
def served(tmp_path_factory, prompts_built):
    root = tmp_path_factory.mktemp("watch-history")
    dialplans = root / "dialplans"
    dialplans.mkdir()
    (dialplans / "lilas.yaml").write_text(dialplan_text("wh-lilas", number=LILAS, extra=watch_section(PARIS))
                                          .replace("name: Cabinet de test", "name: Cabinet des Lilas", 1))
    (dialplans / "ocean.yaml").write_text(dialplan_text("wh-ocean", "Indian/Reunion", number=OCEAN,
                                                        extra=watch_section(REUNION))
                                          .replace("name: Cabinet de test", "name: Maison médicale de l'Océan", 1))
    config = base_config(root, dialplans, REPO / "prompts", workers=1)
    config["watch"] = {"enabled": True, "caller_number": CALLER, "caller_range": 2}
    svc = ServeProcess(root, config).start()
    try:
        secret = add_supervisor(types.SimpleNamespace(svc=svc), "sophie", "Sophie Morel")
        seeded = seed(svc.db_url)
        yield svc, secret, seeded
    finally:
        stray = svc.stop()
        assert not stray, f"processes left running after stop: {stray}"


def seed(db_url: str) -> dict:
    """Two weeks of nightly watches: Lilas passes but for a busy line four nights ago (acknowledged)
    and no return last night (not yet), one night cut by a restart, one test asked by hand; Océan
    always passes."""
    db = Database.from_url(db_url)
    repo, now = WatchRepository(db, "n1"), dt.datetime.now(UTC)
    out = {"wh-lilas": [], "wh-ocean": []}

    def run(practice, number, tz, days_ago, hour, minute, outcomes, rtt_s=None, trigger="schedule"):
        local = (dt.datetime.now(tz) - dt.timedelta(days=days_ago)).replace(hour=hour, minute=minute, second=0,
                                                                               microsecond=0)
        start = local.astimezone(UTC)
        if start > now - dt.timedelta(minutes=5):
            start -= dt.timedelta(days=1)
        view = repo.start_run(f"{practice}|{days_ago}|{hour}", practice, number, number, CALLER, "a1b2c3", trigger,
                              start, start, (start - dt.timedelta(hours=1), start + dt.timedelta(hours=1)), 48)
        at = start
        for n, outcome in enumerate(outcomes, 1):
            if n == 2:
                at += dt.timedelta(minutes=5)
                repo.add_attempt(view.id, 2, at)
            at += dt.timedelta(seconds=rtt_s if outcome == "passed" else 30)
            code = {"busy": 486}.get(outcome)
            repo.end_attempt(view.id, n, outcome, at, sip_code=code, rang=outcome in ("unanswered", "passed"),
                             rtt_ms=int(rtt_s * 1000) if outcome == "passed" else None,
                             name_kept=False if outcome == "passed" else None)
        state = "interrupted" if not outcomes else "passed" if outcomes[-1] == "passed" else "failed"
        done = repo.finish(view.id, state, outcomes[-1] if outcomes else "not_placed", at,
                           int(rtt_s * 1000) if state == "passed" else None)
        out[practice].append(done)
        return done

    rtts = [2.4, 2.1, 3.0, 2.6, 5.8, 2.2, 2.5, 2.3, 2.9, 2.4, 2.2, 2.7, 2.5]
    for days_ago in range(13, 0, -1):
        if days_ago == 4:
            busy = run("wh-lilas", LILAS, PARIS, 4, 3, 12, ["busy", "busy"])
            repo.acknowledge(Actor("sophie", "127.0.0.1"), busy.id, busy.ended_at)
        elif days_ago == 9:
            run("wh-lilas", LILAS, PARIS, 9, 3, 14, [])
        else:
            run("wh-lilas", LILAS, PARIS, days_ago, 3, 10 + days_ago % 5, ["passed"], rtts[days_ago - 1])
        run("wh-ocean", OCEAN, REUNION, days_ago, 3, 20, ["passed"], 3.1 + (days_ago % 4) * 0.4)
    run("wh-lilas", LILAS, PARIS, 6, 14, 5, ["passed"], 2.8, trigger="sophie")
    run("wh-lilas", LILAS, PARIS, 0, 3, 11, ["no_return", "no_return"])
    db.dispose()
    return out


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_history_of_each_practice_s_watches_in_its_local_time_with_its_chart(served, browser):
    svc, secret, seeded = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{svc.config['http']['port']}"
    context = browser.new_context(locale="fr-FR", timezone_id="America/New_York",  # not the practices' zones
                                  viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/console/connexion")
    page.fill("#username", "sophie")
    page.fill("#password", CONSOLE_PASSWORD)
    page.click("#submit")
    page.wait_for_selector("#enrol:not([hidden])")
    page.fill("#totp", code_at(secret, dt.datetime.now(UTC)))
    page.click("#submit")
    page.wait_for_url(f"{base}/wallboard")
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.wait_for_selector("#watch-panel:not([hidden]) [data-watch-run]")  # last night's failure, in red
    page.locator("#watch-panel").screenshot(path=str(ARTIFACTS / "8-renvois-panneau.png"))
    last_night = seeded["wh-lilas"][-1]
    assert (f"Constaté à {last_night.ended_at.astimezone(PARIS):%H:%M}, après 2 essais"
            in page.text_content(f"[data-watch-run='{last_night.id}']"))  # the practice's time, not the browser's
    ocean = seeded["wh-ocean"][-1]
    assert (page.text_content("[data-watch-number='+33100000402'] .watch-verdict")
            == f"renvoi vérifié à {ocean.ended_at.astimezone(REUNION):%H:%M} en 3,5 s")
    page.click("#watch-open-history")  # from the board's panel (the tab « Renvois des lignes » too)
    page.wait_for_selector("body[data-watch-history]")
    assert page.is_hidden("#board") and page.is_visible("#renvois")
    assert page.get_attribute("#view-renvois", "aria-pressed") == "true"

    lilas = page.locator("[data-watch-practice='wh-lilas']")
    assert "Cabinet des Lilas" in lilas.locator("h3").text_content()
    assert lilas.locator(".wh-count").text_content() == "12 vérifiés, 2 en échec sur 14 jours"
    assert lilas.locator(".wh-next").text_content().startswith("prochain test : ")
    # The chart: a dot per pass, a red mark per failure, the night cut short in grey.
    assert lilas.locator("svg.wh-chart [data-mark='passed']").count() == 12
    assert lilas.locator("svg.wh-chart [data-mark='failed']").count() == 2
    assert lilas.locator("svg.wh-chart [data-mark='interrupted']").count() == 1
    assert "2 en échec" in lilas.locator("svg.wh-chart").get_attribute("aria-label")
    # The table, newest first, in Paris time whatever the browser's zone.
    rows = lilas.locator("tbody tr")
    assert rows.count() == 15
    newest = seeded["wh-lilas"][-1]
    first = rows.nth(0)
    assert first.get_attribute("data-watch-history-run") == str(newest.id)
    assert first.locator(".wh-time").text_content() == newest.started_at.astimezone(PARIS).strftime("%H:%M")
    assert first.locator(".wh-state").text_content() == "En échec"
    assert first.locator(".wh-seen").text_content() == ("essai 1 : l'appel n'est pas revenu ; "
                                                        "essai 2 : l'appel n'est pas revenu")
    busy = lilas.locator("tr.wh-row-failed").nth(1)
    assert busy.locator(".wh-state").text_content() == "En échec — pris en compte par sophie"
    assert "essai 1 : ligne occupée (SIP 486)" in busy.locator(".wh-seen").text_content()
    asked = lilas.locator("tr", has_text="demandé par sophie")
    assert asked.locator(".wh-rtt").text_content() == "2,8 s"
    assert asked.locator(".wh-seen").text_content() == "essai 1 : renvoi vérifié, a sonné, nom non transmis"
    assert "interrompu" in lilas.locator("tr.wh-row-interrupted .wh-seen").text_content()

    ocean = page.locator("[data-watch-practice='wh-ocean']")
    assert ocean.locator(".wh-count").text_content() == "13 vérifiés, 0 en échec sur 14 jours"
    night = seeded["wh-ocean"][-1]
    assert ocean.locator("tbody tr").nth(0).locator(".wh-time").text_content() == "03:20"  # La Réunion's time
    assert night.started_at.astimezone(REUNION).strftime("%H:%M") == "03:20"
    shot(page, "8-renvois-historique")
    page.locator("[data-watch-practice='wh-lilas'] svg.wh-chart").screenshot(
        path=str(ARTIFACTS / "8-renvois-graphique.png"))
    assert errors == []
    context.close()
