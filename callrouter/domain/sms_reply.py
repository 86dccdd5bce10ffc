"""Reading a practitioner's SMS reply to an escalation alert: pure, no store, no clock.

An alert SMS carries its chain's short reference (`E42`) and says: reply OK to take the case, NON
if you cannot. A reply is read in two steps:

1. `read_reply(text)`: what it says. Accents, case, spaces and punctuation are ignored.
   - yes: exactly `OK`, `OUI` or `1`, optionally with a reference before or after (`ok`,
     `Oui !`, `1 E42`, `E42 OK`). Nothing else is a yes: "OK je rappelle" is not, because a
     reply that also says something else ("ok mais pas avant 18h") must not stop a chain.
   - no: starts with a refusal (`NON`, `2`, `STOP`, `PAS DISPO`, `INDISPONIBLE`, `IMPOSSIBLE`,
     `JE NE PEUX PAS`...), whatever follows ("NON je ne peux pas, voyez avec Dr B"); a reference
     anywhere in it names the chain.
   - anything else is unclear.
   A reply that starts with a refusal word is never a yes (tests/domain/test_sms_reply.py).
2. `decide(reading, chains)`: what to do, given the chains that reached the sender's number.
   A reference must name one of them; without one, the reply applies only when exactly one chain
   is open to that number. Several open: the practitioner is asked which one (never guessed).

The French answers sent back are built here too, so the wording sits next to the grammar it
explains.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence, Union

YES, NO, UNCLEAR = "yes", "no", "unclear"
YES_WORDS = ("OK", "OUI", "1")
# Refusals, compared with the start of the reply once accents, case, spaces and punctuation are
# gone ("Pas dispo !" -> "PASDISPO..."). "2" is a refusal only as a word of its own.
REFUSALS = ("NON", "STOP", "PASDISPO", "PASDISPONIBLE", "INDISPO", "IMPOSSIBLE", "PASPOSSIBLE",
            "JENEPEUXPAS", "NEPEUXPAS", "PEUXPAS", "JEPEUXPAS", "NEGATIF", "REFUS")
REFUSAL_TOKENS = ("2",)
_REF = re.compile(r"E([0-9]{1,9})")
_YES = re.compile(r"(OK|OUI|1)(?:E([0-9]{1,9}))?")


def reference(escalation_id: int) -> str:
    """The short reference an alert SMS carries: `E42`."""
    return f"E{escalation_id}"


@dataclass(frozen=True)
class Reading:
    """What a reply says: `kind` yes / no / unclear, and the chain it names, if any."""

    kind: str
    escalation_id: int | None = None


def _tokens(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).upper()
    return [t for t in re.split(r"[^A-Z0-9]+", folded) if t]


def read_reply(text: str | None) -> Reading:
    """What the reply says (see the module docstring for the grammar)."""
    tokens = _tokens(text or "")
    if not tokens:
        return Reading(UNCLEAR)
    lead = None
    match = _REF.fullmatch(tokens[0])
    if match and len(tokens) > 1:  # "E42 OK": the reference first
        lead, tokens = int(match.group(1)), tokens[1:]
    compact = "".join(tokens)
    yes = _YES.fullmatch(compact)
    if yes:
        trailing = int(yes.group(2)) if yes.group(2) else None
        if lead is not None and trailing is not None:
            return Reading(UNCLEAR)  # two references: not for us to choose
        return Reading(YES, lead if lead is not None else trailing)
    if compact.startswith(REFUSALS) or tokens[0] in REFUSAL_TOKENS:
        named = [int(m.group(1)) for t in tokens if (m := _REF.fullmatch(t))]
        if lead is not None:
            named.insert(0, lead)
        return Reading(NO, named[0] if len(set(named)) == 1 else None)
    return Reading(UNCLEAR, lead)


# --- what to do -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """A chain that reached the sender's number recently. `open`: not acknowledged nor cancelled
    (an exhausted chain is still open to a late acknowledgement)."""

    escalation_id: int
    open: bool


@dataclass(frozen=True)
class Acknowledge:
    escalation_id: int


@dataclass(frozen=True)
class Decline:
    escalation_id: int


@dataclass(frozen=True)
class AlreadyClosed:
    """The reply names a chain that someone acknowledged already (or that was cancelled)."""

    escalation_id: int


@dataclass(frozen=True)
class AskWhich:
    """Several chains are open to this number and the reply names none: ask, never guess."""

    escalation_ids: tuple[int, ...]
    kind: str


@dataclass(frozen=True)
class Explain:
    """An unclear reply, or a reference that names none of this number's chains: say how to answer."""

    escalation_ids: tuple[int, ...]
    reason: str  # "unclear" | "unknown_reference"


@dataclass(frozen=True)
class Ignore:
    """No chain reached this number recently: not a reply to us."""


Action = Union[Acknowledge, Decline, AlreadyClosed, AskWhich, Explain, Ignore]


def decide(reading: Reading, chains: Sequence[Candidate]) -> Action:
    """What a reading does, given the chains that reached the sender (newest first)."""
    if not chains:
        return Ignore()
    open_ids = tuple(c.escalation_id for c in chains if c.open)
    if reading.kind == UNCLEAR:  # ("merci" after the case was taken: say it is closed)
        return Explain(open_ids, "unclear") if open_ids else AlreadyClosed(chains[0].escalation_id)
    if reading.escalation_id is not None:
        named = next((c for c in chains if c.escalation_id == reading.escalation_id), None)
        if named is None:
            return Explain(open_ids, "unknown_reference")
        if not named.open:
            return AlreadyClosed(named.escalation_id)
        target = named.escalation_id
    elif len(open_ids) == 1:
        target = open_ids[0]
    elif not open_ids:
        return AlreadyClosed(chains[0].escalation_id)
    else:
        return AskWhich(open_ids, reading.kind)
    return Acknowledge(target) if reading.kind == YES else Decline(target)


# --- the answers sent back (French) ---------------------------------------------------------------

def how_to_answer(escalation_ids: Sequence[int]) -> str:
    """How to acknowledge or decline, naming the chains when there are several."""
    if len(escalation_ids) > 1:
        refs = ", ".join(reference(i) for i in escalation_ids)
        first = reference(escalation_ids[0])
        return (f"Plusieurs alertes sont en cours ({refs}). Répondez OK suivi de la référence pour "
                f"prendre en charge (ex. : OK {first}), ou NON suivi de la référence si vous ne "
                "pouvez pas.")
    ref = f" {reference(escalation_ids[0])}" if escalation_ids else ""
    return (f"Réponse non comprise. Répondez OK{ref} pour prendre en charge l'alerte, ou NON{ref} "
            "si vous ne pouvez pas.")


def answer(action: Action) -> str | None:
    """The SMS sent back for an action (None: nothing is sent)."""
    if isinstance(action, Acknowledge):
        return f"Merci : prise en charge de l'alerte {reference(action.escalation_id)} enregistrée."
    if isinstance(action, Decline):
        return (f"Refus enregistré pour l'alerte {reference(action.escalation_id)} : "
                "l'escalade passe à la suite.")
    if isinstance(action, AlreadyClosed):
        return f"L'alerte {reference(action.escalation_id)} est déjà prise en charge ou close."
    if isinstance(action, AskWhich):
        return how_to_answer(action.escalation_ids)
    if isinstance(action, Explain):
        return how_to_answer(action.escalation_ids)
    return None


__all__ = [
    "YES", "NO", "UNCLEAR", "Reading", "read_reply", "reference", "Candidate", "Acknowledge",
    "Decline", "AlreadyClosed", "AskWhich", "Explain", "Ignore", "Action", "decide", "answer",
    "how_to_answer",
]
