"""The console's phone in a real browser: Debian's chromium, headless, with a fake microphone
playing a tone, signs in to the console of a real `callrouter serve` (Kamailio with its WSS socket,
rtpengine, two pjsua2 workers) and registers over WSS; a SIPp patient calls through the edge and
presses 3; the page rings; the test clicks « Répondre »; the patient's tone reaches the browser
(its inbound-rtp statistics: packets and audio level) and the browser's tone reaches the patient
(RTP with energy at the patient's socket, after the answer); « Raccrocher » ends both legs.

Screenshots go to tests/artifacts/console-phone/.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import struct
import tempfile
import threading
import time
import wave
from pathlib import Path

import pytest

from callrouter.auth.totp import code_at
from callrouter.devtools import sipp as scen
from callrouter.devtools.serve import ServeProcess, base_config, edge_config, free_tcp_port, free_udp_port
from tests.app.acd_support import CONSOLE_PASSWORD, Acd, Practice, add_secretaries
from tests.app.browser import CHROMIUM, CHROMIUM_FLAGS, chromium_or_fail
from tests.factories import REPO
from tests.media.harness import Sipp as MediaSipp
from tests.sip.harness import wait_for

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console-phone"
PRACTICE = Practice("cabinet-web", "+33100000077", ("claire",), menu=True)
OTHER = Practice("cabinet-reseau", "+33100000078", ("denise",), menu=True)  # the network-loss test's
PATIENT_TONE_HZ = 600
BROWSER_TONE_HZ = 1000
PHONE_JS = REPO / "callrouter" / "web" / "static" / "jssip.js"


def tone_wav(path: Path, frequency: float, seconds: float = 5.0, rate: int = 48000) -> Path:
    """The fake microphone: a sine tone, 16-bit mono (chromium loops the file)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", int(0.5 * 32767 * math.sin(2 * math.pi * frequency * n / rate)))
                                 for n in range(int(seconds * rate))))
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory, prompts_built):
    """The service with the edge's WSS socket and rtpengine; claire and denise, secretaries."""
    if not PHONE_JS.exists():
        pytest.fail("the console's phone is not built: make phone")
    root = tmp_path_factory.mktemp("phone")
    (root / "dialplans").mkdir()
    for practice in (PRACTICE, OTHER):
        (root / "dialplans" / f"{practice.name}.yaml").write_text(practice.dialplan())
    rtp_min = free_udp_port(even=True, span=100)
    sip = {**edge_config(root), "tls_port": free_tcp_port(), "wss_port": free_tcp_port(),
           "rtpengine_ng_port": free_udp_port(), "rtpengine_port_min": rtp_min, "rtpengine_port_max": rtp_min + 99}
    config = base_config(root, root / "dialplans", REPO / "prompts", workers=2,
                         agents={f"{p.name}/*": list(p.secretaries) for p in (PRACTICE, OTHER)}, sip=sip)
    config["controller"].update({"ring_timeout_s": 30.0, "pop_lead_s": 0.05})
    svc = ServeProcess(root, config).start()
    try:
        svc.wait_edge_ready(2)
        secrets = add_secretaries(svc.db_url, {"claire": PRACTICE.name, "denise": OTHER.name},
                                  key_file=Path(config["var_dir"]) / "secrets.key")
        acd = Acd(svc, root, {p.name: p for p in (PRACTICE, OTHER)}, totp_secrets=secrets)
        yield acd
    finally:
        for run in list(MediaSipp.started):
            run.kill()
        stray = svc.stop()
        assert not stray, f"processes left running after stop (Kamailio, rtpengine included): {stray}"


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """Chromium with a fake microphone playing BROWSER_TONE_HZ and the edge's certificate accepted."""
    sync_api = chromium_or_fail()
    tone = tone_wav(tmp_path_factory.mktemp("tone") / "tone.wav", BROWSER_TONE_HZ)
    flags = [*CHROMIUM_FLAGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
             f"--use-file-for-fake-audio-capture={tone}", "--ignore-certificate-errors",
             "--allow-loopback-in-peer-connection"]
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
        try:
            yield b
        finally:
            b.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, acd: Acd, username: str) -> list[str]:
    """Her first sign-in through the page (enrolment, then her code); the page's errors from then."""
    base = f"http://127.0.0.1:{acd.svc.config['http']['port']}"
    page.goto(f"{base}/console/connexion")
    page.fill("#username", username)
    page.fill("#password", CONSOLE_PASSWORD)
    page.click("#submit")
    page.wait_for_selector("#enrol:not([hidden])")
    page.fill("#totp", code_at(acd.totp_secrets[username], dt.datetime.now(dt.timezone.utc)))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
            and errors.append(m.text))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"{r.status} {r.url}"))
    page.click("#submit")
    page.wait_for_url(f"{base}/console")
    return errors


def patient(acd: Acd, caller: str, practice: Practice = PRACTICE, hang_up_after_ms: int | None = None):
    """A patient's call through the edge, waiting for the service's BYE (or hanging up herself
    `hang_up_after_ms` after the answer); her audio and her digit are sent from the socket her SDP
    names (the worker latches onto where RTP comes from)."""
    workdir = acd.root / f"patient-{caller.lstrip('+')}"
    workdir.mkdir(exist_ok=True)
    end = (scen.WAIT_BYE.format(timeout_ms=90000) if hang_up_after_ms is None
           else scen.pause(hang_up_after_ms) + scen.BYE)
    body = scen.HEAD.format(name="patient") + scen.INVITE + end + "</scenario>\n"
    scenario = workdir / "patient.xml"
    scenario.write_text(body)
    sink = acd.rtp_sink()
    run = MediaSipp(str(scenario), remote_port=acd.edge[1], service=practice.number,
                    variables={"rtp_port": str(sink.port), "caller": caller}, workdir=workdir, timeout_s=120)
    return run, sink


def speak(sink, frequency: float, seconds: float) -> threading.Thread:
    """The patient's tone (A-law, 20 ms packets) from her socket to the worker, in the background."""
    worker = next(iter(sink.sources))
    payloads = scen.rtp_payloads(scen.tone_pcap(Path(tempfile.mkdtemp()), frequency, 1000))

    def run():
        ssrc, n = random.getrandbits(32), 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            payload = payloads[n % len(payloads)]
            sink.sock.sendto(struct.pack("!BBHII", 0x80, 8, n & 0xFFFF, n * 160, ssrc) + payload, worker)
            n += 1
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def body_data(page, key: str) -> str:
    return page.evaluate(f"() => document.body.dataset.{key} || ''")


def test_a_call_rings_the_browser_is_answered_with_audio_both_ways_and_hung_up_from_the_page(served, chromium):
    acd = served
    context = chromium.new_context()
    page = context.new_page()
    try:
        errors = sign_in(page, acd, "claire")
        page.wait_for_selector("#webphone:not([hidden])")
        assert wait_for(lambda: body_data(page, "phone") == "registered", timeout=30), \
            (page.text_content("#webphone-state"), errors)
        if page.is_visible("#webphone-unlock"):
            page.click("#webphone-unlock")  # the one click a browser may require for sound
        assert wait_for(lambda: body_data(page, "ringUnlocked") == "true", timeout=10)
        acd.svc.wait_metric("callrouter_secretaries_registered", lambda v: v >= 1, timeout=30)
        shot(page, "1-registered")

        run, sink = patient(acd, "+33612000001")
        assert wait_for(lambda: sink.sources and sink.audible() > 20, timeout=30)  # the menu plays
        sink.send_digit(next(iter(sink.sources)), 3, 1000, 160000)  # 3: the general queue
        speaking = speak(sink, PATIENT_TONE_HZ, 60)
        page.wait_for_selector("#webphone-incoming:not([hidden])", timeout=60000)
        assert "Appel entrant" in page.text_content("#webphone-peer")
        assert wait_for(lambda: int(body_data(page, "rings") or 0) >= 1, timeout=10)  # the ring sounded
        shot(page, "2-ringing")
        before = len(sink.packets)
        page.click("#webphone-answer")
        page.wait_for_selector("#webphone-incall:not([hidden])", timeout=20000)

        # The patient's tone in the browser: packets and an audio level on the inbound stream.
        assert wait_for(lambda: int(body_data(page, "phoneInboundPackets") or 0) > 100, timeout=30), \
            page.evaluate("() => ({...document.body.dataset})")
        assert wait_for(lambda: float(body_data(page, "phoneInboundLevel") or 0) > 0, timeout=20)
        # The browser's tone at the patient's socket, after the answer.
        heard = lambda: scen.tone_packets([p for pt, p in sink.packets[before:] if pt == 8], BROWSER_TONE_HZ)  # noqa: E731
        assert wait_for(lambda: heard() > 25, timeout=30), \
            f"{len(sink.packets) - before} packets after the answer ({before} before), {heard()} with the browser's tone; page: {page.evaluate('() => ({...document.body.dataset})')}; log:\n{acd.svc.log_tail(3000)}"
        page.wait_for_selector("#webphone-quality:not([hidden])")
        assert "Qualité" in page.text_content("#webphone-quality")
        shot(page, "3-in-call")

        # Hold and back (re-INVITEs through the edge and rtpengine), mute and back, a digit: the
        # call goes on, the patient's tone still reaches the page.
        page.click("#webphone-hold")
        page.wait_for_selector("#webphone-hold[aria-pressed=true]", timeout=15000)
        assert page.text_content("#webphone-hold") == "Reprendre l'appel"
        page.click("#webphone-hold")
        page.wait_for_selector("#webphone-hold[aria-pressed=false]", timeout=15000)
        page.click("#webphone-mute")
        assert page.text_content("#webphone-mute") == "Réactiver le micro"
        page.click("#webphone-mute")
        page.click("#webphone-keypad [data-digit='5']")
        page.click("#webphone-settings-open")  # the fake microphone is offered by name
        page.wait_for_selector("#webphone-mic option:nth-child(2)", state="attached", timeout=10000)
        assert page.locator("#webphone-speaker option").count() >= 1
        packets = int(body_data(page, "phoneInboundPackets"))
        assert wait_for(lambda: int(body_data(page, "phoneInboundPackets") or 0) > packets + 50, timeout=20)
        assert body_data(page, "phoneCall") == "incall"

        page.click("#webphone-hangup")
        page.wait_for_selector("#webphone-incoming[hidden]", state="attached")
        assert wait_for(lambda: body_data(page, "phoneCall") == "idle", timeout=10)
        assert run.wait(60) == 0, run.errors()  # the service hung up the patient: both legs ended
        speaking.join(timeout=0)
        shot(page, "4-ended")
        assert "Appel terminé" in page.text_content("#webphone-peer")
        assert not [e for e in errors if "jssip" not in e.lower()], errors
    finally:
        context.close()


def test_after_a_network_loss_the_phone_says_so_re_registers_by_itself_and_the_next_call_rings(served, chromium):
    """The page's WebSocket to the edge is cut and new ones refused for a few seconds (Playwright
    stands between the page and the edge), then let through again. Every wait here goes through
    Playwright, which relays the page's WebSocket only while it is called."""
    acd = served
    context = chromium.new_context(ignore_https_errors=True)
    page = context.new_page()
    network = {"up": True, "sockets": []}

    def route(ws):
        if not network["up"]:
            ws.close(code=1000, reason="network down")
            return
        ws.connect_to_server()
        network["sockets"].append(ws)

    page.route_web_socket(re.compile(r"^wss://"), route)
    try:
        sign_in(page, acd, "denise")
        assert wait_for(lambda: body_data(page, "phone") == "registered", timeout=30), page.text_content("#webphone-state")
        network["up"] = False
        for ws in network["sockets"]:
            ws.close(code=1000, reason="network down")
        assert wait_for(lambda: body_data(page, "phone") == "lost", timeout=20)
        assert "reconnexion" in page.text_content("#webphone-state")
        shot(page, "5-network-lost")
        page.wait_for_timeout(3000)  # a few seconds without network: its reconnection attempts are refused
        assert body_data(page, "phone") == "lost"
        network["up"] = True
        assert wait_for(lambda: body_data(page, "phone") == "registered", timeout=40), page.text_content("#webphone-state")
        shot(page, "6-network-back")

        # The next call rings her; she answers and the patient hangs up: the page's call ends too.
        run, sink = patient(acd, "+33612000002", OTHER, hang_up_after_ms=15000)
        assert wait_for(lambda: sink.sources and sink.audible() > 20, timeout=30)
        sink.send_digit(next(iter(sink.sources)), 3, 1000, 160000)
        page.wait_for_selector("#webphone-incoming:not([hidden])", timeout=60000)
        page.click("#webphone-answer")
        page.wait_for_selector("#webphone-incall:not([hidden])", timeout=20000)
        # Waiting through Playwright: the sync API relays the page's WebSocket only while called.
        assert wait_for(lambda: body_data(page, "phone") and run.proc.poll() is not None, timeout=60)
        assert run.wait(5) == 0, run.errors()
        assert wait_for(lambda: body_data(page, "phoneCall") == "idle", timeout=20)
        assert "Appel terminé" in page.text_content("#webphone-peer")
    finally:
        context.close()
