"""Call recordings and voicemail messages through the API (docs/recording.md).

Recordings (module `recordings`: listen, evaluate, manage; practice scope as everywhere):
- GET /api/practices/{practice}/recordings (recordings:listen): the practice's recordings, no audio.
- GET /api/recordings/{recording_id} (recordings:listen): one, with its evaluation note.
- GET /api/recordings/{recording_id}/audio (recordings:listen): the WAV (stereo: the caller left,
  the secretary right), audited before it leaves; `?download=1` is a download, an export: it also
  needs exports:run and is audited as such.
- PUT /api/recordings/{recording_id}/note (recordings:evaluate): the supervisor's evaluation.
- POST /api/recordings/{recording_id}/delete (recordings:manage): deleted before its time.
- GET/POST /api/recording-demands, POST /api/recording-demands/{demand_id}/stop (recordings:manage):
  record the calls a secretary in training answers, for a while.
- GET /api/calls/{call_id}/recording (calls:read): what the call record says (recorded, refused,
  not_selected, failed) and why.
- POST /api/calls/{call_id}/recording/refuse (calls:write): « le patient refuse »: the recording
  stops and what was recorded is deleted; the refusal audited.

Voicemail messages (module `callbacks`, as the callback tasks they come with):
- GET /api/practices/{practice}/voicemails (callbacks:read): newest first, with their task.
- GET /api/voicemails/{message_id}/audio (callbacks:read): the WAV, each listening audited.

Another practice's recording or message is "not found" (404), as a missing one; a practice the user
does not cover is refused (403) for its lists.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from callrouter.auth.permissions import allowed, practice_scope
from callrouter.domain.errors import UnknownCall
from callrouter.domain.recording import NOT_SELECTED, Demand, UnknownRecording, demand_json
from callrouter.ports import Actor
from callrouter.web.http import ApiError, Field, HttpResponse, int_between, iso_datetime, one_of, parse_body, parse_query
from callrouter.web.ports import CallRecords
from callrouter.web.router import Context, Route, check_practice, check_visible, guarded

logger = logging.getLogger(__name__)

LIST_QUERY = {"from": iso_datetime, "to": iso_datetime, "limit": int_between(1, 500)}
VOICEMAIL_QUERY = {"limit": int_between(1, 500), "open": one_of("0", "1")}
AUDIO_QUERY = {"download": one_of("0", "1")}
NOTE_BODY = {"text": Field(str, max_length=4000), "score": Field(int, required=False)}
DELETE_BODY = {"reason": Field(str, required=False, max_length=200)}
DEMAND_BODY = {"secretary": Field(str, max_length=200), "practice": Field(str, required=False, max_length=64),
               "minutes": Field(int)}
MAX_DEMAND_MINUTES = 7 * 24 * 60


class RecordingRecords(Protocol):
    """callrouter.store.recordings.RecordingRepository."""

    def get(self, recording_id: int) -> Any: ...
    def of_call(self, call_id: str) -> Any: ...
    def status_of(self, call_id: str) -> tuple[str, str | None] | None: ...
    def read_list(self, practice: str, since: dt.datetime | None, until: dt.datetime | None, limit: int,
                  reader: Actor, now: dt.datetime, filters: dict) -> list[Any]: ...
    def access(self, recording_id: int, practices: frozenset[str] | None, reader: Actor, now: dt.datetime,
               action: str) -> Any: ...
    def put_note(self, recording_id: int, author: str, text: str, score: int | None, now: dt.datetime,
                 actor: Actor) -> Any: ...
    def delete(self, recording_id: int, actor: Actor, now: dt.datetime, reason: str | None) -> str: ...
    def refuse(self, call_id: str, by: Actor, now: dt.datetime, reason: str) -> str | None: ...
    def add_demand(self, secretary: str, practice: str | None, starts_at: dt.datetime, ends_at: dt.datetime,
                   actor: Actor, now: dt.datetime) -> Demand: ...
    def stop_demand(self, demand_id: int, actor: Actor, now: dt.datetime) -> Demand: ...
    def active_demands(self, now: dt.datetime) -> list[Demand]: ...


class VoicemailRecords(Protocol):
    """callrouter.store.voicemails.VoicemailRepository."""

    def read_list(self, practice: str, limit: int, reader: Actor, now: dt.datetime, filters: dict,
                  open_only: bool = False) -> list[Any]: ...
    def access(self, message_id: int, practices: frozenset[str] | None, reader: Actor, now: dt.datetime) -> Any: ...


class AudioFiles(Protocol):
    """The media vault (callrouter.recording.vault.MediaVault)."""

    def read(self, name: str, sha256: str | None) -> bytes: ...
    def remove(self, names: Any) -> int: ...


@dataclass(frozen=True)
class RecordingsApi:
    recordings: RecordingRecords
    voicemails: VoicemailRecords
    vault: AudioFiles
    calls: CallRecords
    # Blocking, from an API thread: the live call told that its patient refuses (on the reactor):
    # "stopped", "noted" or "after" (callrouter.recording.calls.CallRecordings.refuse).
    refuse_live: Callable[[str, Actor], str]
    demands_changed: Callable[[], Any] = lambda: None

    # --- recordings ------------------------------------------------------------------------------

    def list(self, ctx: Context):
        practice = ctx.params["practice"]
        check_practice(ctx, practice)
        q = parse_query(ctx.request, LIST_QUERY)
        views = self.recordings.read_list(practice, q.get("from"), q.get("to"), q.get("limit", 100), ctx.actor,
                                          ctx.now, {"practice": practice, **{k: str(v) for k, v in q.items()}})
        return {"recordings": [v.to_json() for v in views]}

    def get(self, ctx: Context):
        return self._visible(ctx).to_json()

    def audio(self, ctx: Context):
        q = parse_query(ctx.request, AUDIO_QUERY)
        download = q.get("download") == "1"
        if download:
            ok, reason = allowed(ctx.user.role, "exports", "run", ctx.user.attrs)
            if not ok:
                raise ApiError(403, "forbidden", f"exports:run refused: {reason} (a download is an export; "
                                                 "listening needs recordings:listen only)", reason=reason)
        try:
            view = self.recordings.access(ctx.params["recording_id"], _scope(ctx), ctx.actor, ctx.now,
                                          "download" if download else "listen")
        except UnknownRecording:
            raise ApiError(404, "not_found", "no such recording") from None
        body = self._read(view.file, view.sha256)
        name = f"enregistrement-{view.created_at:%Y%m%d-%H%M}-{view.id}.wav"
        return HttpResponse(200, body, "audio/wav",
                            {"Content-Disposition": f'{"attachment" if download else "inline"}; filename="{name}"'})

    def note(self, ctx: Context):
        body = parse_body(ctx.request, NOTE_BODY)
        score = body.get("score")
        if score is not None and not 1 <= score <= 5:
            raise ApiError(400, "invalid_body", "field 'score' must be between 1 and 5")
        if not body["text"].strip():
            raise ApiError(400, "invalid_body", "field 'text' must not be empty")
        view = self._visible(ctx)
        return self.recordings.put_note(view.id, ctx.user.username, body["text"], score, ctx.now, ctx.actor).to_json()

    def delete(self, ctx: Context):
        body = _optional_body(ctx, DELETE_BODY)
        view = self._visible(ctx)
        file = self.recordings.delete(view.id, ctx.actor, ctx.now, body.get("reason"))
        self.vault.remove([file])
        return {"deleted": view.id}

    # --- a call's recording, « le patient refuse » -------------------------------------------------

    def call_status(self, ctx: Context):
        call = self._call(ctx)
        status = self.recordings.status_of(call.id)
        stored = self.recordings.of_call(call.id)
        return {"call_id": call.id, "status": status[0] if status else NOT_SELECTED,
                "reason": status[1] if status else "not asked (no recording policy applied)",
                "recording_id": stored.id if stored else None}

    def refuse(self, ctx: Context):
        call = self._call(ctx)
        live = self.refuse_live(call.id, ctx.actor)
        file = self.recordings.refuse(call.id, ctx.actor, ctx.now, f"le patient refuse ({ctx.user.username})")
        if file is not None:
            self.vault.remove([file])
        return {"call_id": call.id, "status": "refused",
                "recording": "deleted" if file else {"stopped": "stopped", "noted": "none"}.get(live, "none")}

    # --- on-demand requests ------------------------------------------------------------------------

    def demands(self, ctx: Context):
        return {"demands": [demand_json(d) for d in self.recordings.active_demands(ctx.now)]}

    def add_demand(self, ctx: Context):
        body = parse_body(ctx.request, DEMAND_BODY)
        if not 1 <= body["minutes"] <= MAX_DEMAND_MINUTES:
            raise ApiError(400, "invalid_body", f"field 'minutes' must be between 1 and {MAX_DEMAND_MINUTES}")
        practice = body.get("practice") or None
        if practice is not None:
            check_practice(ctx, practice)
        d = self.recordings.add_demand(body["secretary"], practice, ctx.now,
                                       ctx.now + dt.timedelta(minutes=body["minutes"]), ctx.actor, ctx.now)
        self.demands_changed()
        return demand_json(d)

    def stop_demand(self, ctx: Context):
        try:
            d = self.recordings.stop_demand(ctx.params["demand_id"], ctx.actor, ctx.now)
        except UnknownRecording:
            raise ApiError(404, "not_found", "no such request") from None
        self.demands_changed()
        return demand_json(d, stopped_at=d.ends_at if d.ends_at <= ctx.now else None)

    # --- voicemail ----------------------------------------------------------------------------------

    def voicemail_list(self, ctx: Context):
        practice = ctx.params["practice"]
        check_practice(ctx, practice)
        q = parse_query(ctx.request, VOICEMAIL_QUERY)
        views = self.voicemails.read_list(practice, q.get("limit", 100), ctx.actor, ctx.now,
                                          {"practice": practice, **q}, open_only=q.get("open") == "1")
        return {"voicemails": [v.to_json() for v in views]}

    def voicemail_audio(self, ctx: Context):
        try:
            view = self.voicemails.access(ctx.params["message_id"], _scope(ctx), ctx.actor, ctx.now)
        except UnknownRecording:
            raise ApiError(404, "not_found", "no such message") from None
        return HttpResponse(200, self._read(view.file, view.sha256), "audio/wav",
                            {"Content-Disposition": f'inline; filename="message-{view.id}.wav"'})

    # --- helpers ------------------------------------------------------------------------------------

    def _visible(self, ctx: Context) -> Any:
        try:
            view = self.recordings.get(ctx.params["recording_id"])
        except UnknownRecording:
            raise ApiError(404, "not_found", "no such recording") from None
        check_visible(ctx, view.practice, "recording")
        return view

    def _call(self, ctx: Context) -> Any:
        try:
            call = self.calls.get(ctx.params["call_id"])
        except UnknownCall:
            raise ApiError(404, "not_found", "no such call") from None
        check_visible(ctx, call.practice, "call")
        return call

    def _read(self, file: str, sha256: str | None) -> bytes:
        try:
            return self.vault.read(file, sha256)
        except Exception as exc:  # a file gone, or one that does not open: never its path in the log
            logger.error("audio %s not served: %s", file[:8], type(exc).__name__)
            raise ApiError(410, "gone", "the audio of this record cannot be read (removed or damaged)") from None


def _scope(ctx: Context) -> frozenset[str] | None:
    return practice_scope(ctx.user.role, ctx.user.attrs)


def _optional_body(ctx: Context, spec) -> dict[str, Any]:
    if not ctx.request.body_too_large and not ctx.request.body.strip():
        return {}
    return parse_body(ctx.request, spec)


def recording_routes(api: RecordingsApi | None) -> list[Route]:
    """Served even when recording is not wired in (then 503), so the route table stays whole."""
    h = guarded(api, "call recording is not enabled on this server")
    listen, evaluate, manage = ("recordings", "listen"), ("recordings", "evaluate"), ("recordings", "manage")
    return [
        Route("GET", "/api/practices/{practice}/recordings", h("list"), (listen,), query=LIST_QUERY),
        Route("GET", "/api/recordings/{recording_id:int}", h("get"), (listen,)),
        Route("GET", "/api/recordings/{recording_id:int}/audio", h("audio"), (listen,), query=AUDIO_QUERY),
        Route("PUT", "/api/recordings/{recording_id:int}/note", h("note"), (evaluate,), body=NOTE_BODY),
        Route("POST", "/api/recordings/{recording_id:int}/delete", h("delete"), (manage,), body=DELETE_BODY),
        Route("GET", "/api/recording-demands", h("demands"), (manage,)),
        Route("POST", "/api/recording-demands", h("add_demand"), (manage,), body=DEMAND_BODY, status=201),
        Route("POST", "/api/recording-demands/{demand_id:int}/stop", h("stop_demand"), (manage,)),
        Route("GET", "/api/calls/{call_id}/recording", h("call_status"), (("calls", "read"),)),
        Route("POST", "/api/calls/{call_id}/recording/refuse", h("refuse"), (("calls", "write"),)),
        Route("GET", "/api/practices/{practice}/voicemails", h("voicemail_list"), (("callbacks", "read"),),
              query=VOICEMAIL_QUERY),
        Route("GET", "/api/voicemails/{message_id:int}/audio", h("voicemail_audio"), (("callbacks", "read"),)),
    ]
