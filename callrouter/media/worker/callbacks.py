"""What a media worker does with pjsua's callbacks, on its main loop: an incoming INVITE, a leg's
state and media changes, a digit, the end of a prompt, the end of a transfer. Each becomes an
event for the controller (protocol.py); the worker decides nothing."""

from __future__ import annotations

import logging
import os
from typing import Callable

import pjsua2 as pj

from callrouter.domain.call import mask_number
from callrouter.media import protocol as p
from callrouter.media.sipmsg import summarise_invite
from callrouter.media.worker.legs import Leg, Legs
from callrouter.media.worker.pjsua import Call, Post

logger = logging.getLogger(__name__)


class CallEvents:
    def __init__(self, name: str, legs: Legs, post: Post, emit: Callable[[p.Event], None],
                 send: Callable[[bytes], None], refusing: Callable[[], bool] = lambda: False,
                 slots_changed: Callable[[], None] = lambda: None) -> None:
        """`refusing()`: true once the worker is retired (new calls get 503); `slots_changed()`:
        a leg left the live ones, pjsua may still hold its slot (slot_watch.py)."""
        self._name, self._legs, self._post, self._emit, self._send = name, legs, post, emit, send
        self._refusing, self._slots_changed = refusing, slots_changed
        self._seq = 0

    def handle(self, item: tuple) -> None:
        """One item a pjsua callback posted: ("state" | "media" | "digit" | "eof" | "xfer_done", leg, ...)."""
        getattr(self, "on_" + item[0])(*item[1:])

    def incoming(self, account: pj.Account, call_id: int, message: str) -> None:
        self._seq += 1
        leg_id = f"{self._name}-{os.getpid()}-{self._seq}"
        leg = Leg(id=leg_id, call=Call(self._post, leg_id, account, call_id), outgoing=False)
        if self._refusing():
            # Retired: the edge no longer sends calls here; one already on its way goes elsewhere.
            prm = pj.CallOpParam(True)
            prm.statusCode = 503
            leg.call.hangup(prm)
            self._legs.dead.append(leg)
            logger.info("incoming call %s refused 503: this worker is retired", leg_id)
            return
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
            self._legs.dead.append(leg)
            return
        self._legs.live[leg_id] = leg
        logger.info("incoming call %s from %s to %s", leg_id, mask_number(summary.caller),
                    mask_number(summary.number))
        self._send(line)

    def on_state(self, leg_id: str, state: int, code: int, reason: str) -> None:
        leg = self._legs.live.get(leg_id)
        if leg is None or leg.ended:
            return
        if state == pj.PJSIP_INV_STATE_DISCONNECTED:
            leg.ended = True
            self._legs.stop_media(leg, "leg_ended")
            self._legs.live.pop(leg_id, None)
            self._legs.dead.append(leg)
            by = "local" if leg.local_hangup else "remote"
            if leg.transferred:
                code, reason = 200, "transferred"
            logger.info("leg %s ended %s %s (%s)", leg_id, code, reason, by)
            self._slots_changed()  # a slot pjsua still holds is said before the leg's end
            self._emit(p.LegEnded(leg=leg_id, code=int(code), reason=str(reason), by=by))
            return
        name = ""
        if state == pj.PJSIP_INV_STATE_CONFIRMED:
            name = "confirmed"
        elif state == pj.PJSIP_INV_STATE_EARLY and leg.outgoing:
            name = "ringing" if code == 180 else "early"
        # A late 180 (after the 200, possible behind a multi-process proxy) never goes backwards.
        if name and name != leg.reported_state and leg.reported_state != "confirmed":
            leg.reported_state = name
            self._emit(p.LegState(leg=leg_id, state=name))

    def on_media(self, leg_id: str) -> None:
        leg = self._legs.live.get(leg_id)
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
            self._legs.start_player(leg, path, loop)
        elif leg.player is not None:
            leg.player.startTransmit(media)
        for other_id in leg.bridged:
            other = self._legs.live.get(other_id)
            if other is not None and other.media is not None:
                media.startTransmit(other.media)
                other.media.startTransmit(media)
        self._legs.conversations.media_changed(leg)
        self._legs.relays.media_changed(leg)

    def on_digit(self, leg_id: str, digit: str, method: str) -> None:
        leg = self._legs.live.get(leg_id)
        if leg is None or leg.ended or digit not in p.DIGITS:
            return
        self._emit(p.Digit(leg=leg_id, digit=digit, method=method))
        if leg.recording is not None and digit in leg.recording.stop_digits:
            self._legs.finish_recording(leg, "digit")

    def on_eof(self, leg_id: str, token: int) -> None:
        leg = self._legs.live.get(leg_id)
        if leg is None or leg.player is None or leg.player_token != token or leg.player_loop:
            return
        path = leg.player_path
        self._legs.stop_player(leg)
        self._emit(p.PlaybackFinished(leg=leg_id, path=path))

    def on_xfer_done(self, leg_id: str, code: int) -> None:
        leg = self._legs.live.get(leg_id)
        if leg is not None and not leg.ended and 200 <= code < 300:
            leg.local_hangup = leg.transferred = True
            self._legs.hangup(leg, 603)
