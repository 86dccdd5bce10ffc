"""Call recording on the call side (the controller's CallRecordingHooks): the consent message before
the queue, the refuse key, the bridged conversation recorded by the call's worker, « le patient
refuse », and the recording sealed into the vault once over (docs/recording.md).

1. Before the queue (`before_queue`), the practice's policy (callrouter.domain.recording.select)
   says whether the caller is asked. If so she hears the consent message (its prompt, the
   practice's own text if it gave one) and may press the refuse key while it plays and for
   `consent_wait_s` after, then joins the queue; pressing it later (waiting, ringing, talking) still
   counts. The call record's status is written either way: not_selected and why, or later recorded
   / refused.
2. At the bridge with the secretary who answered (`bridged`), `at_bridge` decides: the worker
   records both sides (record_call), into the spool; on demand, only a secretary under a request.
3. « le patient refuse » (`refuse`, from the console through the API) or the key: the worker stops,
   what was recorded is deleted, the status says refused (final), the refusal audited.
4. When the worker reports the recording finished, the two sides become one stereo file, sealed
   into the vault off the reactor; the row keeps its SHA-256. A recording whose end never comes
   (its worker died) is marked failed and its spool files removed.

Logs name calls and recordings by id only: never a path, never a number.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from callrouter.controller.session import State
from callrouter.domain import recording as policy
from callrouter.media import protocol as p
from callrouter.ports import Actor, utc_from_clock
from callrouter.recording.audio import AudioError, merge_stereo
from callrouter.recording.ports import DemandBook, RecordingStore
from callrouter.recording.settings import RecordingSettings
from callrouter.recording.vault import MediaVault, shred

logger = logging.getLogger(__name__)

REFUSED_PROMPT = "recording_refused"
FINISH_GRACE_S = 30.0  # after the call's end, how long its recording's end is awaited


@dataclass(eq=False)
class Entry:
    """One call asked for consent (or being recorded)."""

    call_id: str
    practice: str
    selection: policy.Selection
    state: str = "asking"  # asking -> waiting -> recording -> finishing -> done
    refused: bool = False
    recording_id: str | None = None
    sides: tuple[Path, Path] | None = None
    worker: str | None = None
    leg: str | None = None
    secretary: str | None = None
    started_at: dt.datetime | None = None
    reason: str = ""
    then: Callable[[], None] | None = field(default=None, repr=False)


class CallRecordings:
    def __init__(self, reactor: Any, send: Callable[[Any], None], legs: Any, prompt_path: Callable[[str, str | None], str],
                 write: Callable[..., None], run_blocking: Callable[..., Any], store: RecordingStore,
                 vault: MediaVault, spool: Path, settings: RecordingSettings, demands: DemandBook,
                 messages: Any = None) -> None:
        """`send(command)`: to the worker holding the command's leg; `legs`: the leg router (the
        recordings' ids are routed to us); `write(fn, *args)`: an ordered store write (the call
        recorder's); `run_blocking(fn, *args)`: a Deferred of fn run off the reactor; `messages`:
        the voicemail side (callrouter.recording.voicemail.Messages)."""
        self._reactor, self._send, self._prompt_path = reactor, send, prompt_path
        self._write, self._run, self._store = write, run_blocking, store
        self._vault, self._spool, self._settings, self._demands = vault, spool, settings, demands
        self._messages = messages
        self._owned = legs.owned_by(self)  # recording id -> entry
        self.calls: dict[str, Entry] = {}  # call id -> entry

    def now(self) -> dt.datetime:
        return utc_from_clock(self._reactor)

    # --- the hooks the call side calls ------------------------------------------------------------

    def before_queue(self, s: Any, then: Callable[[], None]) -> None:
        if s.call_id in self.calls or s.dialplan is None:
            then()
            return
        now = self.now()
        selection = policy.select(s.dialplan.recording, s.call.number, s.call_id, now,
                                  ZoneInfo(s.dialplan.calendar.timezone))
        if not selection.ask:
            self._status(s.call_id, policy.NOT_SELECTED, selection.reason)
            then()
            return
        entry = self.calls[s.call_id] = Entry(s.call_id, s.practice, selection, then=then)
        s.state, s.menu_ahead = State.ANNOUNCE, None  # its keys come to `digit` through the flow
        logger.info("call %s: consent to recording asked, prompt %s (%s)", s.call_id,
                    selection.policy.consent_prompt, selection.reason)
        s.player.play([self._prompt(selection.policy.consent_prompt, s)], lambda: s.timers.start(
            "consent", selection.policy.consent_wait_s, lambda: self._go_on(s, entry)))

    def _go_on(self, s: Any, entry: Entry) -> None:
        if entry.state != "asking":
            return
        entry.state = "waiting"
        then, entry.then = entry.then, None
        if then is not None:
            then()

    def digit(self, s: Any, digit: str) -> bool:
        entry = self.calls.get(s.call_id)
        if entry is None:
            return False
        if digit != entry.selection.policy.refuse_digit or entry.refused:
            return entry.state == "asking"  # while asked, no other key does anything
        self._refused(entry, "the caller pressed the refuse key", Actor("caller", "phone"))
        if entry.state == "asking":
            s.timers.cancel("consent")
            s.player.play([self._prompt(REFUSED_PROMPT, s)], lambda: self._go_on(s, entry))
        return True

    def bridged(self, s: Any) -> None:
        entry = self.calls.get(s.call_id)
        if entry is None or s.secretary is None or s.other_leg is None:
            return
        now = self.now()
        decided = policy.at_bridge(entry.selection, entry.refused, s.secretary.id, s.practice,
                                   self._demands.current(), now)
        entry.reason, entry.secretary = decided.reason, s.secretary.id
        if not decided.record:
            if decided.status != policy.REFUSED:
                self._status(s.call_id, decided.status, decided.reason)
            return
        rid = uuid.uuid4().hex
        sides = (self._spool / f"{rid}-caller.wav", self._spool / f"{rid}-secretary.wav")
        entry.state, entry.recording_id, entry.sides = "recording", rid, sides
        entry.worker, entry.leg, entry.started_at = s.worker, s.leg, now
        self._owned[rid] = entry
        self._send(p.RecordCall(leg=s.leg, other=s.other_leg, recording=rid, path=str(sides[0]),
                                other_path=str(sides[1]), max_seconds=self._settings.max_call_s))
        self._status(s.call_id, policy.RECORDED, decided.reason)
        logger.info("call %s: conversation recorded (%s)", s.call_id, rid)

    def voicemail_left(self, s: Any, path: str, started_at: dt.datetime, duration: float,
                       task_id: str | None) -> bool:
        if self._messages is None or s.dialplan is None:
            return False
        self._messages.left(s.call_id, s.practice, Path(path), started_at, duration, task_id,
                            bool(s.dialplan.recording and s.dialplan.recording.voicemail_emails))
        return True

    def ended(self, s: Any) -> None:
        entry = self.calls.get(s.call_id)
        if entry is None:
            return
        entry.then = None
        if entry.state in ("asking", "waiting") and not entry.refused:
            self._status(s.call_id, policy.NOT_SELECTED, "asked, but never answered by a secretary")
        if entry.state == "recording":
            self._reactor.callLater(FINISH_GRACE_S, self._never_finished, entry)
        else:
            self.calls.pop(s.call_id, None)

    # --- « le patient refuse » --------------------------------------------------------------------

    def refuse(self, call_id: str, by: Actor) -> str:
        """On the reactor: the secretary says the patient refuses. What it did: "stopped" (a
        recording under way stopped and deleted), "noted" (not recording yet: never will be), or
        "after" (the call is not live: its stored recording, if any, is deleted by the store)."""
        entry = self.calls.get(call_id)
        if entry is None:
            return "after"
        was_recording = entry.state == "recording"
        self._refused(entry, f"le patient refuse ({by.name})", by, audited_elsewhere=True)
        return "stopped" if was_recording else "noted"

    def _refused(self, entry: Entry, reason: str, by: Actor, audited_elsewhere: bool = False) -> None:
        entry.refused = True
        logger.info("call %s: recording refused", entry.call_id)
        if entry.state == "recording" and entry.leg is not None:
            self._send(p.StopCallRecording(leg=entry.leg))
        if audited_elsewhere:  # the API's refusal goes through the store itself (audited there)
            self._status(entry.call_id, policy.REFUSED, reason)
        else:
            self._write(self._store.refuse, entry.call_id, by, self.now(), reason)

    # --- the worker's end of a recording ----------------------------------------------------------

    def handle(self, worker: str, event: Any) -> None:
        if not isinstance(event, p.CallRecordingFinished):
            return
        entry = self._owned.pop(event.leg, None)
        if entry is None:
            return
        entry.state = "finishing"
        sides = (Path(event.path), Path(event.other_path))
        if entry.refused:
            self._run(_discard, sides).addErrback(_log_failure, entry.call_id)
            self._done(entry)
            return
        d = self._run(self._finish, entry, sides, event.duration)
        d.addErrback(self._failed, entry, sides)
        d.addBoth(lambda _: self._done(entry))

    def leg_lost(self, worker: str, leg: str, cause: str) -> None:
        """A recording's id is no leg: a worker dying is seen by the call; `_never_finished` follows."""

    def _finish(self, entry: Entry, sides: tuple[Path, Path], duration: float) -> None:
        """Off the reactor: the stereo file, sealed; the row, unless refused meanwhile."""
        merged_path = self._spool / f"{entry.recording_id}.wav"
        try:
            merged = merge_stereo(sides[0], sides[1], merged_path)
        finally:
            _discard(sides)
        name, sealed = self._vault.seal(merged_path)
        stored = self._store.add(entry.call_id, entry.practice, entry.secretary, name, self._vault.key.key_id,
                                 sealed.sha256, sealed.size, merged.channels, merged.duration_seconds or duration,
                                 entry.started_at or self.now(), self.now(), entry.reason)
        if stored is None:  # « le patient refuse » arrived while it was being sealed
            self._vault.remove([name])
            logger.info("call %s: recording deleted, refused while it was being stored", entry.call_id)
        else:
            logger.info("call %s: recording %s stored (%s channel(s), %.1fs)", entry.call_id, stored,
                        merged.channels, merged.duration_seconds)

    def _failed(self, failure: Any, entry: Entry, sides: tuple[Path, Path]) -> None:
        logger.error("call %s: recording not stored: %s", entry.call_id,
                     "no audio" if failure.check(AudioError) else failure.getErrorMessage())
        self._run(_discard, sides)
        self._status(entry.call_id, policy.FAILED, "the recording could not be stored")

    def _never_finished(self, entry: Entry) -> None:
        if entry.state != "recording":
            return
        self._owned.pop(entry.recording_id, None)
        logger.error("call %s: its recording never ended (worker lost?): marked failed", entry.call_id)
        if entry.sides:
            self._run(_discard, entry.sides)
        self._status(entry.call_id, policy.FAILED, "the recording's worker stopped before it ended")
        self._done(entry)

    def _done(self, entry: Entry) -> None:
        entry.state = "done"
        if self.calls.get(entry.call_id) is entry:
            del self.calls[entry.call_id]

    # --- helpers --------------------------------------------------------------------------------

    def _status(self, call_id: str, status: str, reason: str) -> None:
        self._write(self._store.set_status, call_id, status, reason, self.now())

    def _prompt(self, name: str, s: Any) -> str:
        return str(self._prompt_path(name, s.practice or None))


def _discard(sides: tuple[Path, ...]) -> None:
    for side in sides:
        shred(side)


def _log_failure(failure: Any, call_id: str) -> None:
    logger.error("call %s: a refused recording's files not removed: %s", call_id, failure.getErrorMessage())
