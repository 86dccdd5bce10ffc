"""A media worker process: one pjsua2 Endpoint on its own loopback SIP UDP port.

The only module importing pjsua2. It executes the controller's commands (see protocol.py) and
reports events; it decides nothing. Run as::

    python -m callrouter.media.worker --name w0 --sip-port 5070 --rtp-port 20000

Commands arrive as JSON lines on stdin, events leave as JSON lines on stdout, logs go to stderr.
End of stdin (or SIGTERM) means "shut down": every call is hung up and the process exits 0.
SIGINT is ignored: the controller, not a terminal's Ctrl-C, decides when workers stop.

Threads: pjsua runs with `threadCnt = 0` and `mainThreadOnly`, so SIP callbacks run inside
`libHandleEvents` on the main thread; pjmedia keeps its own media and clock threads. Callbacks
that may come from those (end of a prompt) only append to a queue that the main loop drains.
The loop blocks in `libHandleEvents(poll_ms)` then reads stdin without blocking, so a command waits
at most `poll_ms` (20 ms) while the worker holds legs, `idle_poll_ms` (100 ms) when it holds none;
SIP traffic wakes the loop at once. Measured idle: about 0.4% of one CPU, 30 MB RSS.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import gc
import logging
import os
import select
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable

import pjsua2 as pj

from callrouter.domain.call import mask_number
from callrouter.media import protocol as p
from callrouter.media.sipmsg import summarise_invite

logger = logging.getLogger("callrouter.media.worker")

REQUESTED_MAX_CALLS = 512  # pjsua clamps this to its compiled PJSUA_MAX_CALLS
SILENCE_LEVEL = 3           # signal level (0-255; speech measured at 6-32) at or under which is silence
KEEP_CODECS = ("PCMA/8000/1", "PCMU/8000/1")


def _pjsua_c(symbol: str) -> Any:
    """A C function of the pjsua library statically linked into the pjsua2 extension module."""
    import pjsua2._pjsua2 as ext

    return getattr(ctypes.CDLL(ext.__file__), symbol)


def quiet_pjlib(level: int) -> None:
    """Apply the log level before libCreate, which otherwise prints its banner on every start."""
    try:
        _pjsua_c("pj_log_set_level")(ctypes.c_int(level))
    except (OSError, AttributeError, ImportError):  # pragma: no cover - other builds
        pass


def compiled_call_cap(requested: int) -> int:
    """How many calls pjsua accepted, read after libInit.

    pjsua_call_subsys_init clamps `max_calls` to PJSUA_MAX_CALLS without telling; pjsua2 has no
    getter, but the C function `pjsua_call_get_max_count()` is exported by the extension module.
    """
    try:
        fn = _pjsua_c("pjsua_call_get_max_count")
        fn.restype = ctypes.c_uint
        fn.argtypes = []
        return int(fn())
    except (OSError, AttributeError, ImportError) as exc:  # pragma: no cover - other builds
        logger.warning("cannot read pjsua's call cap (%s); assuming %s", exc, requested)
        return requested


@dataclass
class _Recording:
    path: str
    recorder: Any
    started: float
    max_seconds: float
    silence_seconds: float
    stop_digits: str
    quiet_since: float


@dataclass
class _Leg:
    """One SIP dialog of this worker and the media attached to it."""

    id: str
    call: "_Call"
    outgoing: bool
    media: Any = None                 # pj.AudioMedia once the audio stream is active
    player: Any = None
    player_path: str = ""
    player_loop: bool = False
    player_token: int = 0
    pending_play: tuple[str, bool] | None = None
    recording: _Recording | None = None
    bridged: set[str] = field(default_factory=set)
    reported_state: str = ""
    local_hangup: bool = False
    transferred: bool = False
    deadline: float | None = None     # dial timeout
    ended: bool = False


class _Player(pj.AudioMediaPlayer):
    def __init__(self, post: Callable[[tuple], None], leg: str, token: int) -> None:
        super().__init__()
        self._post, self._leg, self._token = post, leg, token

    def onEof2(self) -> None:  # may run on the media clock thread: only queue
        try:
            self._post(("eof", self._leg, self._token))
        except Exception:  # pragma: no cover - never let an exception into pjsua
            logger.exception("eof callback failed")


class _Call(pj.Call):
    def __init__(self, worker: "Worker", leg: str, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(account, call_id)
        self._worker, self._leg = worker, leg

    def onCallState(self, prm: Any) -> None:
        try:
            info = self.getInfo()
            self._worker.post(("state", self._leg, info.state, info.lastStatusCode, info.lastReason))
        except Exception:
            logger.exception("call state callback failed")

    def onCallMediaState(self, prm: Any) -> None:
        try:
            self._worker.post(("media", self._leg))
        except Exception:
            logger.exception("media state callback failed")

    def onDtmfDigit(self, prm: Any) -> None:
        try:
            method = "info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
            self._worker.post(("digit", self._leg, str(prm.digit), method))
        except Exception:
            logger.exception("dtmf callback failed")

    def onCallTransferRequest(self, prm: Any) -> None:
        prm.statusCode = 603  # the controller decides transfers; a REFER from outside is refused

    def onCallTransferStatus(self, prm: Any) -> None:
        try:
            if prm.finalNotify:
                self._worker.post(("xfer_done", self._leg, prm.statusCode))
            prm.cont = False
        except Exception:
            logger.exception("transfer status callback failed")


class _Account(pj.Account):
    def __init__(self, worker: "Worker") -> None:
        super().__init__()
        self._worker = worker

    def onIncomingCall(self, prm: Any) -> None:
        try:
            self._worker.incoming(self, prm.callId, prm.rdata.wholeMsg)
        except Exception:
            logger.exception("incoming call callback failed")


class Worker:
    def __init__(self, name: str, sip_port: int, rtp_port: int, out: BinaryIO, poll_ms: int = 20,
                 pj_log_level: int = 1, bind: str = "127.0.0.1", rtp_port_range: int = 200,
                 idle_poll_ms: int = 100) -> None:
        self.name, self.sip_port, self.rtp_port, self.bind = name, sip_port, rtp_port, bind
        self.poll_ms, self.idle_poll_ms = poll_ms, max(poll_ms, idle_poll_ms)
        self._out: BinaryIO | None = out
        self.stopping = False  # set by end of stdin, SIGTERM or a closed event pipe
        self._queue: collections.deque[tuple] = collections.deque()
        self._legs: dict[str, _Leg] = {}
        self._seq = 0
        self._tokens = 0
        self._dead: list[_Leg] = []
        self._closing: list[tuple[str, str, float, str, float]] = []
        quiet_pjlib(pj_log_level)
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = REQUESTED_MAX_CALLS
        cfg.uaConfig.userAgent = "callrouter-media"
        cfg.logConfig.level = pj_log_level
        cfg.logConfig.consoleLevel = pj_log_level
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        self.ep.libInit(cfg)
        self.cap = compiled_call_cap(REQUESTED_MAX_CALLS)
        tcfg = pj.TransportConfig()
        tcfg.port = sip_port
        tcfg.boundAddress = bind
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        for codec in self.ep.codecEnum2():
            keep = codec.codecId in KEEP_CODECS
            self.ep.codecSetPriority(codec.codecId, 255 - KEEP_CODECS.index(codec.codecId) if keep else 0)
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{name}@{bind}:{sip_port}"
        acfg.mediaConfig.transportConfig.port = rtp_port
        acfg.mediaConfig.transportConfig.boundAddress = bind
        acfg.mediaConfig.transportConfig.portRange = rtp_port_range
        self.account = _Account(self)
        self.account.create(acfg, True)

    # -- event plumbing ----------------------------------------------------------------------

    def post(self, item: tuple) -> None:
        self._queue.append(item)

    def emit(self, event: p.Event) -> None:
        self._send(p.encode(event))

    def _send(self, line: bytes) -> None:
        if self._out is None:
            return
        try:
            self._out.write(line)
            self._out.flush()
        except (BrokenPipeError, ConnectionResetError):
            logger.warning("controller went away: hanging up and exiting")
            self._out, self.stopping = None, True

    def _error(self, message: str, command: str = "", leg: str = "") -> None:
        logger.warning("%s %s: %s", command or "-", leg or "-", message)
        self.emit(p.Error(message=message, command=command, leg=leg))

    # -- main loop ---------------------------------------------------------------------------

    def run(self, commands_fd: int) -> None:
        self.emit(p.Ready(worker=self.name, sip_port=self.sip_port, cap=self.cap, pid=os.getpid()))
        os.set_blocking(commands_fd, False)
        reader = p.LineReader()
        while not self.stopping:
            busy = self._legs or self._closing or self._queue
            self.ep.libHandleEvents(self.poll_ms if busy else self.idle_poll_ms)
            self._drain()
            readable, _, _ = select.select([commands_fd], [], [], 0)
            if readable:
                try:
                    data = os.read(commands_fd, 65536)
                except BlockingIOError:
                    data = None
                if data == b"":
                    self.stopping = True
                elif data:
                    for line in reader.feed(data):
                        self._handle_line(line)
            self._tick(time.monotonic())
            self._reap()
        self.shutdown()

    def shutdown(self) -> None:
        """Hang up every leg, let pjsua finish, and only then destroy the library: a pj.Call or
        media object outliving libDestroy aborts the process."""
        logger.info("worker %s shutting down with %s leg(s)", self.name, len(self._legs))
        self._hangup_all()
        deadline = time.monotonic() + 2.0
        while (self._legs or self._closing) and time.monotonic() < deadline:
            self.ep.libHandleEvents(20)
            self._drain()
            self._tick(time.monotonic())
        self._legs.clear()
        self._dead.clear()
        self._queue.clear()
        gc.collect()
        self.ep.libHandleEvents(50)
        self.account.shutdown()
        self.ep.libDestroy()

    def _hangup_all(self) -> None:
        for leg in list(self._legs.values()):
            leg.local_hangup = True
            self._stop_media(leg, "leg_ended")
        self.ep.hangupAllCalls()

    def _handle_line(self, line: bytes | p.ProtocolError) -> None:
        if isinstance(line, p.ProtocolError):
            self._error(str(line))
            return
        try:
            command = p.decode_command(line)
        except p.ProtocolError as exc:
            self._error(str(exc))
            return
        leg = getattr(command, "leg", "")
        try:
            getattr(self, "_do_" + command.type)(command)
        except _Refused as exc:
            self._error(str(exc), command.type, leg)
        except pj.Error as exc:
            self._error(f"pjsua: {exc.info()}", command.type, leg)
        except Exception as exc:  # a bug must not take the other calls down
            logger.exception("command %s failed", command.type)
            self._error(f"internal error: {exc}", command.type, leg)

    def _drain(self) -> None:
        while self._queue:
            item = self._queue.popleft()
            try:
                getattr(self, "_on_" + item[0])(*item[1:])
            except pj.Error as exc:
                logger.warning("handling %s: pjsua: %s", item[0], exc.info())
            except Exception:
                logger.exception("handling %s failed", item[0])

    def _tick(self, now: float) -> None:
        if self._closing:
            self._report_closed_recordings(now)
        for leg in list(self._legs.values()):
            if leg.ended:
                continue
            if leg.deadline is not None and now >= leg.deadline and leg.reported_state != "confirmed":
                leg.deadline = None
                leg.local_hangup = True
                self._hangup(leg, 487)
            rec = leg.recording
            if rec is None:
                continue
            if now - rec.started >= rec.max_seconds:
                self._finish_recording(leg, "max_duration")
            elif rec.silence_seconds > 0 and leg.media is not None:
                # pjsua2 names levels from the bridge's side: the caller's voice is the "tx" level.
                if leg.media.getTxLevel() > SILENCE_LEVEL:
                    rec.quiet_since = now
                elif now - rec.quiet_since >= rec.silence_seconds:
                    self._finish_recording(leg, "silence")

    def _reap(self) -> None:
        # Call objects are dropped outside pjsua callbacks, once pjsua is done with them.
        self._dead.clear()

    # -- pjsua callbacks, handled on the main loop -------------------------------------------

    def incoming(self, account: pj.Account, call_id: int, message: str) -> None:
        self._seq += 1
        leg_id = f"{self.name}-{os.getpid()}-{self._seq}"
        leg = _Leg(id=leg_id, call=_Call(self, leg_id, account, call_id), outgoing=False)
        try:
            summary = summarise_invite(message)
            line = p.encode(p.IncomingCall(
                leg=leg_id, sip_call_id=summary.call_id, from_uri=summary.from_uri, to_uri=summary.to_uri,
                number=summary.number, caller=summary.caller, caller_name=summary.caller_name,
                headers=dict(summary.headers)))
        except Exception:
            # A call the controller cannot hear about would ring, holding a slot, until the caller
            # gives up: refuse it now. The leg was never reported, so its end is not either.
            logger.exception("incoming call %s cannot be reported: refused 500", leg_id)
            prm = pj.CallOpParam(True)
            prm.statusCode = 500
            leg.call.hangup(prm)
            self._dead.append(leg)
            return
        self._legs[leg_id] = leg
        logger.info("incoming call %s from %s to %s", leg_id, mask_number(summary.caller),
                    mask_number(summary.number))
        self._send(line)

    def _on_state(self, leg_id: str, state: int, code: int, reason: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is None or leg.ended:
            return
        if state == pj.PJSIP_INV_STATE_DISCONNECTED:
            leg.ended = True
            self._stop_media(leg, "leg_ended")
            self._legs.pop(leg_id, None)
            self._dead.append(leg)
            by = "local" if leg.local_hangup else "remote"
            if leg.transferred:
                code, reason = 200, "transferred"
            logger.info("leg %s ended %s %s (%s)", leg_id, code, reason, by)
            self.emit(p.LegEnded(leg=leg_id, code=int(code), reason=str(reason), by=by))
            return
        name = ""
        if state == pj.PJSIP_INV_STATE_CONFIRMED:
            name = "confirmed"
        elif state == pj.PJSIP_INV_STATE_EARLY and leg.outgoing:
            name = "ringing" if code == 180 else "early"
        # A late 180 (after the 200, possible behind a multi-process proxy) never goes backwards.
        if name and name != leg.reported_state and leg.reported_state != "confirmed":
            leg.reported_state = name
            self.emit(p.LegState(leg=leg_id, state=name))

    def _on_media(self, leg_id: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is None or leg.ended:
            return
        info = leg.call.getInfo()
        media = None
        for index, mi in enumerate(info.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status in (
                    pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                media = leg.call.getAudioMedia(index)
                break
        if media is None:
            leg.media = None
            return
        fresh = leg.media is None or leg.media.getPortId() != media.getPortId()
        leg.media = media
        if not fresh:
            return
        if leg.pending_play is not None:
            path, loop = leg.pending_play
            leg.pending_play = None
            self._start_player(leg, path, loop)
        elif leg.player is not None:
            leg.player.startTransmit(media)
        for other_id in leg.bridged:
            other = self._legs.get(other_id)
            if other is not None and other.media is not None:
                media.startTransmit(other.media)
                other.media.startTransmit(media)

    def _on_digit(self, leg_id: str, digit: str, method: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is None or leg.ended or digit not in p.DIGITS:
            return
        self.emit(p.Digit(leg=leg_id, digit=digit, method=method))
        if leg.recording is not None and digit in leg.recording.stop_digits:
            self._finish_recording(leg, "digit")

    def _on_eof(self, leg_id: str, token: int) -> None:
        leg = self._legs.get(leg_id)
        if leg is None or leg.player is None or leg.player_token != token or leg.player_loop:
            return
        path = leg.player_path
        self._stop_player(leg)
        self.emit(p.PlaybackFinished(leg=leg_id, path=path))

    def _on_xfer_done(self, leg_id: str, code: int) -> None:
        leg = self._legs.get(leg_id)
        if leg is not None and not leg.ended and 200 <= code < 300:
            leg.local_hangup = leg.transferred = True
            self._hangup(leg, 603)

    # -- commands ----------------------------------------------------------------------------

    def _leg(self, leg_id: str) -> _Leg:
        leg = self._legs.get(leg_id)
        if leg is None or leg.ended:
            raise _Refused(f"no live leg {leg_id!r} on this worker")
        return leg

    def _do_answer(self, cmd: p.Answer) -> None:
        leg = self._leg(cmd.leg)
        if leg.outgoing:
            raise _Refused("cannot answer a leg this worker dialled")
        prm = pj.CallOpParam(True)
        prm.statusCode = cmd.code
        leg.call.answer(prm)

    def _do_play(self, cmd: p.Play) -> None:
        leg = self._leg(cmd.leg)
        if not os.path.isfile(cmd.path):
            raise _Refused(f"no prompt file {cmd.path}")
        self._stop_player(leg)
        if leg.media is None:
            leg.pending_play = (cmd.path, cmd.loop)  # starts when the audio stream comes up
            return
        self._start_player(leg, cmd.path, cmd.loop)

    def _do_stop_playback(self, cmd: p.StopPlayback) -> None:
        self._stop_player(self._leg(cmd.leg))

    def _do_record(self, cmd: p.Record) -> None:
        leg = self._leg(cmd.leg)
        if leg.media is None:
            raise _Refused("leg has no active audio to record")
        if leg.recording is not None:
            raise _Refused("leg is already recording")
        os.makedirs(os.path.dirname(os.path.abspath(cmd.path)), exist_ok=True)
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(cmd.path)
        leg.media.startTransmit(recorder)
        now = time.monotonic()
        leg.recording = _Recording(cmd.path, recorder, now, cmd.max_seconds, cmd.silence_seconds,
                                   cmd.stop_digits, now)

    def _do_dial(self, cmd: p.Dial) -> None:
        if cmd.leg in self._legs:
            raise _Refused(f"leg {cmd.leg!r} already exists")
        prm = pj.CallOpParam(True)
        user = cmd.from_user or self.name
        uri = f"sip:{user}@{self.bind}:{self.sip_port}"
        prm.txOption.localUri = f'"{cmd.display_name}" <{uri}>' if cmd.display_name else f"<{uri}>"
        for name, value in cmd.headers.items():
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            prm.txOption.headers.append(header)
        leg = _Leg(id=cmd.leg, call=_Call(self, cmd.leg, self.account), outgoing=True,
                   deadline=time.monotonic() + cmd.timeout_seconds)
        self._legs[cmd.leg] = leg
        try:
            leg.call.makeCall(cmd.uri, prm)
        except pj.Error as exc:
            self._legs.pop(cmd.leg, None)
            self._dead.append(leg)
            leg.ended = True
            code = 486 if exc.status == 70010 else 500  # PJ_ETOOMANY: every call slot is taken
            self.emit(p.LegEnded(leg=cmd.leg, code=code, reason=f"dial failed: {exc.info()}", by="worker"))
            return
        logger.info("dialling leg %s", cmd.leg)

    def _do_bridge(self, cmd: p.Bridge) -> None:
        a, b = self._leg(cmd.leg), self._leg(cmd.other)
        if a.media is None or b.media is None:
            raise _Refused("both legs need active audio to be bridged")
        for leg in (a, b):
            self._stop_player(leg)
        a.media.startTransmit(b.media)
        b.media.startTransmit(a.media)
        a.bridged.add(b.id)
        b.bridged.add(a.id)

    def _do_unbridge(self, cmd: p.Unbridge) -> None:
        a, b = self._leg(cmd.leg), self._leg(cmd.other)
        self._unbridge(a, b)

    def _do_transfer(self, cmd: p.Transfer) -> None:
        leg = self._leg(cmd.leg)
        leg.call.xfer(cmd.uri, pj.CallOpParam(True))

    def _do_hangup(self, cmd: p.Hangup) -> None:
        leg = self._leg(cmd.leg)
        leg.local_hangup = True
        self._hangup(leg, cmd.code)

    # -- media helpers -----------------------------------------------------------------------

    def _hangup(self, leg: _Leg, code: int) -> None:
        self._stop_media(leg, "leg_ended")
        prm = pj.CallOpParam(True)
        # An answered leg gets a BYE whatever the code; 0 lets pjsua record it as a normal clearing.
        prm.statusCode = 0 if leg.reported_state == "confirmed" else code
        leg.call.hangup(prm)

    def _start_player(self, leg: _Leg, path: str, loop: bool) -> None:
        self._tokens += 1
        player = _Player(self.post, leg.id, self._tokens)
        player.createPlayer(path, 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(leg.media)
        leg.player, leg.player_path, leg.player_loop, leg.player_token = player, path, loop, self._tokens

    def _stop_player(self, leg: _Leg) -> None:
        leg.pending_play = None
        player, leg.player = leg.player, None
        if player is not None and leg.media is not None:
            try:
                player.stopTransmit(leg.media)
            except pj.Error:
                pass
        # dropping the last reference destroys the pjmedia player port

    def _finish_recording(self, leg: _Leg, reason: str) -> None:
        rec, leg.recording = leg.recording, None
        if rec is None:
            return
        if leg.media is not None:
            try:
                leg.media.stopTransmit(rec.recorder)
            except pj.Error:
                pass
        duration = round(time.monotonic() - rec.started, 2)
        # Dropping the recorder closes the file, but pjmedia removes conference ports
        # asynchronously: the WAV header is only final a few clock ticks later.
        rec.recorder = None
        self._closing.append((leg.id, rec.path, duration, reason, time.monotonic() + 2.0))

    def _report_closed_recordings(self, now: float) -> None:
        waiting = []
        for item in self._closing:
            leg_id, path, duration, reason, deadline = item
            if _wav_finalised(path) or now >= deadline:
                self.emit(p.RecordingFinished(leg=leg_id, path=path, duration=duration, reason=reason))
            else:
                waiting.append(item)
        self._closing = waiting

    def _unbridge(self, a: _Leg, b: _Leg) -> None:
        if a.media is not None and b.media is not None:
            for src, dst in ((a.media, b.media), (b.media, a.media)):
                try:
                    src.stopTransmit(dst)
                except pj.Error:
                    pass
        a.bridged.discard(b.id)
        b.bridged.discard(a.id)

    def _stop_media(self, leg: _Leg, reason: str) -> None:
        self._stop_player(leg)
        self._finish_recording(leg, reason)
        for other_id in list(leg.bridged):
            other = self._legs.get(other_id)
            if other is not None:
                self._unbridge(leg, other)
        leg.bridged.clear()


def _wav_finalised(path: str) -> bool:
    """True once the RIFF size field of a WAV file is filled in (it is 0 while recording)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return True  # nothing more will happen to it
    return len(head) == 8 and head[4:8] != b"\0\0\0\0"


class _Refused(Exception):
    """A command that cannot be executed in the leg's current state."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="callrouter.media.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="w0", help="worker name, prefix of the leg ids it makes")
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--rtp-port", type=int, default=20000, help="first RTP port tried")
    parser.add_argument("--rtp-port-range", type=int, default=200, help="how many RTP ports it may use")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--poll-ms", type=int, default=20, help="longest command latency with legs up")
    parser.add_argument("--idle-poll-ms", type=int, default=100, help="longest command latency when idle")
    parser.add_argument("--pj-log-level", type=int, default=1)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Keep the protocol channel to ourselves: whatever pjsua prints on fd 1 lands on stderr.
    events = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s worker[{args.name}]: %(message)s")
    try:
        worker = Worker(args.name, args.sip_port, args.rtp_port, events, poll_ms=args.poll_ms,
                        pj_log_level=args.pj_log_level, bind=args.bind, rtp_port_range=args.rtp_port_range,
                        idle_poll_ms=args.idle_poll_ms)
    except pj.Error as exc:
        logger.error("cannot start: %s", exc.info())
        return 2
    # The controller stops workers by closing their stdin. Ctrl-C in a terminal reaches the whole
    # process group: leave it to the controller; SIGTERM asks for the same orderly stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: setattr(worker, "stopping", True))
    worker.run(sys.stdin.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
