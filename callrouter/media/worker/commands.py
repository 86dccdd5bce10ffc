"""How a media worker executes the controller's commands (protocol.py): one method per command
type, named `do_<type>`. A command the leg's state does not allow raises Refused."""

from __future__ import annotations

import logging
import os
import time
from typing import Callable

import pjsua2 as pj

from callrouter.media import protocol as p
from callrouter.media.worker.legs import Leg, Legs, Refused
from callrouter.media.worker.pjsua import Account, Call, Post

logger = logging.getLogger(__name__)


class Commands:
    def __init__(self, legs: Legs, account: Account, post: Post, emit: Callable[[p.Event], None],
                 name: str, bind: str, sip_port: int) -> None:
        self._legs, self._account, self._post, self._emit = legs, account, post, emit
        self._name, self._bind, self._sip_port = name, bind, sip_port

    def execute(self, command: p.Command) -> None:
        getattr(self, "do_" + command.type)(command)

    def do_answer(self, cmd: p.Answer) -> None:
        leg = self._legs.get(cmd.leg)
        if leg.outgoing:
            raise Refused("cannot answer a leg this worker dialled")
        prm = pj.CallOpParam(True)
        prm.statusCode = cmd.code
        leg.call.answer(prm)

    def do_play(self, cmd: p.Play) -> None:
        leg = self._legs.get(cmd.leg)
        if not os.path.isfile(cmd.path):
            raise Refused(f"no prompt file {cmd.path}")
        self._legs.stop_player(leg)
        if leg.media is None:
            leg.pending_play = (cmd.path, cmd.loop)  # starts when the audio stream comes up
            return
        self._legs.start_player(leg, cmd.path, cmd.loop)

    def do_stop_playback(self, cmd: p.StopPlayback) -> None:
        self._legs.stop_player(self._legs.get(cmd.leg))

    def do_record(self, cmd: p.Record) -> None:
        leg = self._legs.get(cmd.leg)
        if leg.media is None:
            raise Refused("leg has no active audio to record")
        if leg.recording is not None:
            raise Refused("leg is already recording")
        os.makedirs(os.path.dirname(os.path.abspath(cmd.path)), exist_ok=True)
        self._legs.start_recording(leg, cmd)

    def do_dial(self, cmd: p.Dial) -> None:
        if cmd.leg in self._legs.live:
            raise Refused(f"leg {cmd.leg!r} already exists")
        prm = pj.CallOpParam(True)
        user = cmd.from_user or self._name
        uri = f"sip:{user}@{self._bind}:{self._sip_port}"
        prm.txOption.localUri = f'"{cmd.display_name}" <{uri}>' if cmd.display_name else f"<{uri}>"
        for name, value in cmd.headers.items():
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            prm.txOption.headers.append(header)
        leg = Leg(id=cmd.leg, call=Call(self._post, cmd.leg, self._account), outgoing=True,
                  deadline=time.monotonic() + cmd.timeout_seconds)
        self._legs.live[cmd.leg] = leg
        try:
            leg.call.makeCall(cmd.uri, prm)
        except pj.Error as exc:
            self._legs.live.pop(cmd.leg, None)
            self._legs.dead.append(leg)
            leg.ended = True
            code = 486 if exc.status == 70010 else 500  # PJ_ETOOMANY: every call slot is taken
            self._emit(p.LegEnded(leg=cmd.leg, code=code, reason=f"dial failed: {exc.info()}", by="worker"))
            return
        logger.info("dialling leg %s", cmd.leg)

    def do_bridge(self, cmd: p.Bridge) -> None:
        a, b = self._legs.get(cmd.leg), self._legs.get(cmd.other)
        if a.media is None or b.media is None:
            raise Refused("both legs need active audio to be bridged")
        self._legs.bridge(a, b)

    def do_record_call(self, cmd: p.RecordCall) -> None:
        a, b = self._legs.get(cmd.leg), self._legs.get(cmd.other)
        if a.media is None or b.media is None or b.id not in a.bridged:
            raise Refused("only two bridged legs with active audio can be recorded")
        recordings = self._legs.conversations
        if cmd.recording in recordings.active or recordings.of_leg(a.id) or recordings.of_leg(b.id):
            raise Refused("this conversation is already being recorded")
        for path in (cmd.path, cmd.other_path):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        recordings.start(a, b, cmd)

    def do_stop_call_recording(self, cmd: p.StopCallRecording) -> None:
        rec = self._legs.conversations.of_leg(cmd.leg)
        if rec is None:
            raise Refused("no conversation recording on this leg")
        self._legs.conversations.stop(rec, "stopped", self._legs.live)

    def do_unbridge(self, cmd: p.Unbridge) -> None:
        a, b = self._legs.get(cmd.leg), self._legs.get(cmd.other)
        self._legs.unbridge(a, b)

    def do_transfer(self, cmd: p.Transfer) -> None:
        leg = self._legs.get(cmd.leg)
        leg.call.xfer(cmd.uri, pj.CallOpParam(True))

    def do_hangup(self, cmd: p.Hangup) -> None:
        leg = self._legs.get(cmd.leg)
        leg.local_hangup = True
        self._legs.hangup(leg, cmd.code)
