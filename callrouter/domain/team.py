"""The secretariat's team as dispatch uses it: who covers which key, skill levels, pause reasons
(pure: plain values in and out, no I/O, no clock).

The team lives in the database (callrouter.store.team) and is edited live from the API and the
wallboard; the settings' `controller.secretaries`, `controller.levels` and
`http.console.pause_reasons` only seed it once (`seed_team`). A member is named by her username (a
softphone registered at the edge) or by a `sip:` URI (a fixed phone).

Coverage keys, the most precise one matching a call winning (callrouter.controller.queues):
"practice/queue", "practice/*", "line:<name>" (a queue shared by several practices) and "*".
Every key and level given by a person is checked against the dialplans in force before anything
changes; the refusals are French sentences naming what is wrong (`TeamError.problems`).

A secretary's practices (her API scope) are the practices her keys reach (`covered_practices`):
"practice/..." that practice, "line:x" every practice with a queue shared on line x, "*" every
practice.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Sequence

from callrouter.domain.model import Dialplan

LEVEL_MIN, LEVEL_MAX = 1, 10
MAX_PAUSE_REASONS, MAX_REASON_CHARS = 20, 40
MAX_ID_CHARS = 200  # team_secretaries.id
# What a state history row says happened (secretary_state_changes.state).
STATE_CHANGES = ("logged_in", "logged_out", "paused", "resumed", "registered", "unregistered")
# Who changed a state when no person did (secretary_state_changes.by).
BY_MISSED_OFFERS = "system:missed_offers"
BY_REGISTRATION = "system:registration"

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
SIP_URI_RE = re.compile(r"sips?:[^\s@<>\"]+@[^\s@<>\"]+")
_PRACTICE_KEY = re.compile(r"(?P<practice>[^/\s]+)/(?P<queue>[^/\s]+)")


class TeamError(ValueError):
    """A refused change of the team: every problem found, each a French sentence."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(" ".join(self.problems))


class UnknownMember(LookupError):
    """No secretary or phone by that name in the team."""


@dataclass(frozen=True)
class Team:
    """The whole team at one version. `coverage`: key -> members in that key's order; `levels`:
    member -> practice (or "*") -> level; `secretaries`: every member, sorted (one may cover
    nothing yet)."""

    secretaries: tuple[str, ...] = ()
    coverage: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    levels: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    pause_reasons: tuple[str, ...] = ()
    version: int = 0
    changed_at: dt.datetime | None = None

    def keys_of(self, who: str) -> tuple[str, ...]:
        """The keys she covers, sorted."""
        return tuple(sorted(key for key, members in self.coverage.items() if who in members))

    def levels_of(self, who: str) -> dict[str, int]:
        return dict(self.levels.get(who, {}))

    def with_member(self, who: str, keys: Iterable[str], levels: Mapping[str, int]) -> "Team":
        """She covers exactly `keys` with `levels`; in a key she already covered she keeps her place,
        in a new one she comes last."""
        keys = set(keys)
        coverage: dict[str, tuple[str, ...]] = {}
        for key, members in self.coverage.items():
            kept = tuple(m for m in members if m != who or key in keys)
            if kept:
                coverage[key] = kept
        for key in sorted(keys):
            if who not in coverage.get(key, ()):
                coverage[key] = coverage.get(key, ()) + (who,)
        all_levels = {m: dict(v) for m, v in self.levels.items() if m != who}
        if levels:
            all_levels[who] = dict(levels)
        return replace(self, secretaries=tuple(sorted({*self.secretaries, who})), coverage=coverage,
                       levels=all_levels)

    def without(self, who: str) -> "Team":
        coverage = {k: tuple(m for m in v if m != who) for k, v in self.coverage.items()}
        return replace(self, secretaries=tuple(s for s in self.secretaries if s != who),
                       coverage={k: v for k, v in coverage.items() if v},
                       levels={m: v for m, v in self.levels.items() if m != who})


def seed_team(secretaries: Mapping[str, Sequence[str]], levels: Mapping[str, Mapping[str, int]],
              pause_reasons: Sequence[str]) -> Team:
    """The team the settings describe (their `controller.secretaries`, `controller.levels` and
    `http.console.pause_reasons`), as it is imported into an empty database. Levels of someone in
    no queue are dropped (the settings refused them anyway)."""
    coverage = {key: tuple(dict.fromkeys(entries)) for key, entries in secretaries.items() if entries}
    members = tuple(sorted({m for entries in coverage.values() for m in entries}))
    kept = {who: dict(by_practice) for who, by_practice in levels.items() if who in members and by_practice}
    reasons = tuple(dict.fromkeys(r.strip() for r in pause_reasons if r.strip()))
    return Team(members, coverage, kept, reasons)


# --- what a person may give -----------------------------------------------------------------------

def member_problem(who: str) -> str | None:
    """Is `who` a username or a sip: URI? (whether such a user exists is the caller's to check)"""
    if len(who) <= MAX_ID_CHARS and (USERNAME_RE.fullmatch(who) or SIP_URI_RE.fullmatch(who)):
        return None
    return (f"« {who[:80]} » n'est ni un identifiant de secrétaire (minuscules, chiffres, . _ -) "
            f"ni une adresse sip: (sip:poste@hote).")


def key_problem(key: str, dialplans: Mapping[str, Dialplan]) -> str | None:
    """Why a coverage key cannot be used with the dialplans in force, or None."""
    if key == "*":
        return None
    line = key[len("line:"):] if key.startswith("line:") else None
    match = _PRACTICE_KEY.fullmatch(key)
    if (line is None and match is None) or line == "":
        return (f"La clé de couverture « {key[:80]} » est mal formée : attendu « cabinet/file », "
                f"« cabinet/* », « line:nom » ou « * ».")
    if line is not None:
        return None if line in shared_lines(dialplans) else f"La ligne partagée « {line[:80]} » n'existe dans aucun plan d'appel."
    practice, queue = match["practice"], match["queue"]
    if practice not in dialplans:
        return f"Le cabinet « {practice} » est inconnu."
    if queue != "*" and queue not in dialplans[practice].queues:
        return f"La file « {queue} » n'existe pas pour le cabinet « {practice} »."
    return None


def levels_problems(levels: Mapping[str, object], dialplans: Mapping[str, Dialplan]) -> list[str]:
    out = []
    for practice, level in levels.items():
        if practice != "*" and practice not in dialplans:
            out.append(f"Niveau donné pour le cabinet « {practice} », inconnu.")
        if not isinstance(level, int) or isinstance(level, bool) or not LEVEL_MIN <= level <= LEVEL_MAX:
            out.append(f"Le niveau pour « {practice} » doit être un entier de {LEVEL_MIN} à {LEVEL_MAX}.")
    return out


def checked_member(who: str, keys: Sequence[str], levels: Mapping[str, object],
                   dialplans: Mapping[str, Dialplan]) -> tuple[tuple[str, ...], dict[str, int]]:
    """Her keys (duplicates dropped, sorted) and levels once every one is known; TeamError naming
    each problem otherwise."""
    problems = [p for p in [member_problem(who)] if p]
    problems += [p for key in dict.fromkeys(keys) if (p := key_problem(key, dialplans))]
    problems += levels_problems(levels, dialplans)
    if problems:
        raise TeamError(problems)
    return tuple(sorted(set(keys))), {p: int(n) for p, n in levels.items()}  # type: ignore[call-overload]


def checked_reasons(reasons: Sequence[object]) -> tuple[str, ...]:
    """The pause reasons trimmed: 1 to 20 of them, each 1 to 40 characters, no two alike (case
    ignored); TeamError otherwise."""
    problems: list[str] = []
    if not 1 <= len(reasons) <= MAX_PAUSE_REASONS:
        problems.append(f"Donnez de 1 à {MAX_PAUSE_REASONS} motifs de pause.")
    cleaned: list[str] = []
    seen: set[str] = set()
    for raw in reasons:
        if not isinstance(raw, str):
            problems.append("Chaque motif de pause doit être un texte.")
            continue
        reason = " ".join(raw.split())
        if not 1 <= len(reason) <= MAX_REASON_CHARS:
            problems.append(f"Le motif « {reason[:60]} » doit faire de 1 à {MAX_REASON_CHARS} caractères.")
        elif reason.casefold() in seen:
            problems.append(f"Le motif « {reason} » est donné deux fois.")
        else:
            seen.add(reason.casefold())
            cleaned.append(reason)
    if problems:
        raise TeamError(problems)
    return tuple(cleaned)


# --- what the keys reach ------------------------------------------------------------------------

def shared_lines(dialplans: Mapping[str, Dialplan]) -> tuple[str, ...]:
    """The names of the shared lines some queue waits in, sorted."""
    return tuple(sorted({q.shared for d in dialplans.values() for q in d.queues.values() if q.shared}))


def covered_practices(keys: Iterable[str], dialplans: Mapping[str, Dialplan]) -> tuple[str, ...]:
    """The practices her keys reach, sorted (keys naming nothing in force reach nothing)."""
    out: set[str] = set()
    for key in keys:
        if key == "*":
            out |= set(dialplans)
        elif key.startswith("line:"):
            line = key[len("line:"):]
            out |= {p for p, d in dialplans.items() if any(q.shared == line for q in d.queues.values())}
        elif (match := _PRACTICE_KEY.fullmatch(key)) and match["practice"] in dialplans:
            out.add(match["practice"])
    return tuple(sorted(out))


def phone_uri(who: str, secretary_domain: str | None) -> str | None:
    """Where she is rung: her sip: URI, or her softphone registered at the edge (None without one)."""
    if who.startswith(("sip:", "sips:")):
        return who
    return f"sip:{who}@{secretary_domain}" if secretary_domain else None


@dataclass(frozen=True)
class StateChange:
    """One row of a secretary's state history: `state` one of STATE_CHANGES; `by` a user's name
    or "system:<cause>"."""

    at: dt.datetime
    secretary: str
    state: str
    reason: str | None
    by: str
