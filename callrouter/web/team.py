"""The team through the API: who covers which queue, skill levels and pause reasons, edited by a
supervisor (the wallboard's team panel) and applied to live dispatch before the answer returns;
and the secretaries' state history.

- GET /api/team (team:read): the team at its version, the practices with their queues and shared
  lines (what a key may name), each secretary's keys, levels and the practices they reach.
- PUT /api/team/secretaries/{secretary} (team:write): her keys and levels replaced (she is added
  if new: a user of role secretary, or a sip: URI); her user's practices become those her keys
  reach.
- DELETE /api/team/secretaries/{secretary} (team:write): she leaves the team (a call she is on
  goes on).
- PUT /api/team/pause-reasons (team:write): the reasons a pause may give.
- GET /api/secretaries/history (secretaries:manage): state changes, newest first, with who made
  them.

Every key, level and reason is checked against the dialplans in force before anything changes;
a refusal is a 422 whose French `message` names what is wrong. A change is one transaction in the
store (the version bumped, audited with before and after), then applied to the desk (on the
reactor thread), which publishes `team_changed`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

from callrouter.domain.errors import UnknownUser
from callrouter.domain.model import Dialplan
from callrouter.domain.team import (
    StateChange, Team, TeamError, UnknownMember, checked_member, checked_reasons, covered_practices, phone_uri,
    shared_lines,
)
from callrouter.ports import Actor, UserView
from callrouter.web.http import ApiError, Field, int_between, iso_datetime, parse_body, parse_query, text
from callrouter.web.router import Context, Route, guarded

MEMBER_BODY = {"coverage": Field(list, items=str, max_length=100), "levels": Field(dict, max_length=100)}
REASONS_BODY = {"reasons": Field(list, items=str, max_length=100)}
HISTORY_QUERY = {"secretary": text, "since": iso_datetime, "limit": int_between(1, 1000)}


class TeamStore(Protocol):
    """The team in the store (callrouter.store.team.TeamRepository); each change audited."""

    def load(self) -> Team | None: ...
    def set_secretary(self, actor: Actor, who: str, keys: Sequence[str], levels: dict[str, int],
                      now: dt.datetime, practices: Sequence[str] = ()) -> Team: ...
    def remove_secretary(self, actor: Actor, who: str, now: dt.datetime) -> Team: ...
    def set_pause_reasons(self, actor: Actor, reasons: Sequence[str], now: dt.datetime) -> Team: ...
    def history(self, secretary: str | None = None, since: dt.datetime | None = None,
                limit: int = 100) -> list[StateChange]: ...


class TeamUsers(Protocol):
    """Who the users are (callrouter.store.users.UserRepository)."""

    def get(self, username: str) -> UserView: ...
    def list(self, role: str | None = None) -> list[UserView]: ...


@dataclass(frozen=True)
class TeamApi:
    store: TeamStore
    users: TeamUsers
    dialplans: Callable[[], Mapping[str, Dialplan]]  # the dialplans in force (the registry's)
    apply: Callable[[Team], Any]  # blocking: the desk follows the team (on the reactor thread)
    secretary_domain: str | None = None  # where usernames' softphones are rung (None: no SIP edge)

    def team(self, ctx: Context):
        team, dialplans = self._team(), self.dialplans()
        names = {u.username: u.display_name for u in self.users.list()}
        return {"version": team.version, "changed_at": _iso(team.changed_at),
                "pause_reasons": list(team.pause_reasons),
                "practices": [{"id": d.practice, "name": d.name,
                               "queues": [{"id": q.name, "label": q.label, "line": q.line} for q in d.queues.values()]}
                              for _, d in sorted(dialplans.items())],
                "lines": [f"line:{name}" for name in shared_lines(dialplans)],
                "secretaries": [self._entry(team, who, dialplans, names.get(who)) for who in team.secretaries]}

    def set_secretary(self, ctx: Context):
        who = ctx.params["secretary"]
        body = parse_body(ctx.request, MEMBER_BODY)
        dialplans = self.dialplans()
        keys, levels = _checked(lambda: checked_member(who, body["coverage"], body["levels"], dialplans))
        user = self._user(who)
        if who not in self._team().secretaries:
            self._may_join(who, user)
        practices = covered_practices(keys, dialplans) if user is not None else ()
        team = self.store.set_secretary(ctx.actor, who, keys, levels, ctx.now, practices)
        self.apply(team)
        return self._entry(team, who, dialplans, user.display_name if user else None)

    def remove_secretary(self, ctx: Context):
        who = ctx.params["secretary"]
        try:
            team = self.store.remove_secretary(ctx.actor, who, ctx.now)
        except UnknownMember:
            raise ApiError(404, "not_found", f"Aucune secrétaire « {who} » dans l'équipe.") from None
        self.apply(team)
        return {"removed": who}

    def set_pause_reasons(self, ctx: Context):
        body = parse_body(ctx.request, REASONS_BODY)
        reasons = _checked(lambda: checked_reasons(body["reasons"]))
        team = self.store.set_pause_reasons(ctx.actor, reasons, ctx.now)
        self.apply(team)
        return {"pause_reasons": list(team.pause_reasons)}

    def history(self, ctx: Context):
        q = parse_query(ctx.request, HISTORY_QUERY)
        changes = self.store.history(q.get("secretary"), q.get("since"), q.get("limit", 100))
        return {"changes": [{"at": c.at.isoformat(), "secretary": c.secretary, "state": c.state,
                             "reason": c.reason, "by": c.by} for c in changes]}

    # --- helpers -------------------------------------------------------------------------------

    def _team(self) -> Team:
        return self.store.load() or Team()

    def _entry(self, team: Team, who: str, dialplans: Mapping[str, Dialplan], display_name: str | None) -> dict:
        keys = team.keys_of(who)
        return {"id": who, "display_name": display_name, "phone": phone_uri(who, self.secretary_domain),
                "coverage": list(keys), "levels": team.levels_of(who),
                "practices": list(covered_practices(keys, dialplans))}

    def _user(self, who: str) -> UserView | None:
        if who.startswith(("sip:", "sips:")):
            return None
        try:
            return self.users.get(who)
        except UnknownUser:
            return None

    def _may_join(self, who: str, user: UserView | None) -> None:
        """A newcomer is a fixed phone's sip: URI, or an enabled user of role secretary whose
        softphone the SIP edge can ring."""
        if who.startswith(("sip:", "sips:")):
            return
        if user is None or user.role != "secretary" or not user.enabled:
            raise ApiError(422, "invalid_team", f"« {who} » n'est pas une secrétaire : donnez l'identifiant d'une "
                           f"utilisatrice active de rôle secrétaire, ou l'adresse sip: d'un poste fixe.")
        if self.secretary_domain is None:
            raise ApiError(422, "invalid_team", f"Aucune passerelle SIP n'est configurée pour joindre le "
                           f"softphone de « {who} » : donnez l'adresse sip: de son poste.")


def _checked(check: Callable[[], Any]) -> Any:
    try:
        return check()
    except TeamError as exc:
        raise ApiError(422, "invalid_team", " ".join(exc.problems), problems=list(exc.problems)) from None


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def team_routes(api: TeamApi | None) -> list[Route]:
    """Routes answer 503 when the server runs no call controller (no desk to apply the team to)."""

    h = guarded(api, "no call controller runs on this server")
    read, write = ("team", "read"), ("team", "write")
    return [
        Route("GET", "/api/team", h("team"), (read,)),
        Route("PUT", "/api/team/secretaries/{secretary}", h("set_secretary"), (write,), body=MEMBER_BODY),
        Route("DELETE", "/api/team/secretaries/{secretary}", h("remove_secretary"), (write,)),
        Route("PUT", "/api/team/pause-reasons", h("set_pause_reasons"), (write,), body=REASONS_BODY),
        Route("GET", "/api/secretaries/history", h("history"), (("secretaries", "manage"),), query=HISTORY_QUERY),
    ]
