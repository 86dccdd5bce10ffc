"""Who may take over a call from a secretary: the colleagues a transfer may go to, and why one is refused.

A secretary in a call with a patient hands it to a colleague (callrouter.controller.transfer). The
colleague must cover the call's practice and queue (the same coverage an offer follows), be logged
in, her softphone registered, not paused, and free (not ringing, not on a call, not in wrap-up).
A call can be handed over only while it is bridged with its secretary and no other transfer of it
is under way. The refusals are French: the console shows them as they come.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from callrouter.domain.serving import Secretary

NOT_IN_PROGRESS = "not_in_progress"
ALREADY = "already_transferring"
SELF = "self"
UNKNOWN = "unknown_colleague"
NOT_COVERING = "not_covering"
NOT_AVAILABLE = "not_available"

MESSAGES = {
    NOT_IN_PROGRESS: "Cet appel n'est pas en cours avec une secrétaire : il ne peut pas être transféré.",
    ALREADY: "Un transfert de cet appel est déjà en cours.",
    SELF: "Vous êtes déjà en ligne avec ce patient : choisissez une collègue.",
    UNKNOWN: "Aucune secrétaire « {to} » dans l'équipe.",
    NOT_COVERING: "{to} ne couvre pas ce cabinet : choisissez une collègue qui le couvre.",
    NOT_AVAILABLE: "{to} n'est pas disponible (hors ligne, en pause ou déjà en ligne).",
}
# What the API answers for each refusal: 409 for a state that may change, 422 for a request that never can.
STATUS = {NOT_IN_PROGRESS: 409, ALREADY: 409, NOT_AVAILABLE: 409, SELF: 422, UNKNOWN: 422, NOT_COVERING: 422}


@dataclass(frozen=True)
class Refusal:
    code: str
    to: str

    @property
    def message(self) -> str:
        return MESSAGES[self.code].format(to=self.to)

    @property
    def status(self) -> int:
        return STATUS[self.code]


class TransferRefused(Exception):
    """The transfer asked cannot be made; `refusal` says why (in French, with its HTTP status)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class NotYourCall(Exception):
    """A secretary asked to transfer a call she is not on."""


def can_take(secretary: Secretary) -> bool:
    """She could be offered a call right now."""
    return secretary.reachable and not secretary.busy


def colleagues(covering: Iterable[Secretary], current: Secretary | None) -> list[Secretary]:
    """The colleagues who could take over the call now, longest idle first."""
    found = [a for a in covering if a is not current and can_take(a)]
    return sorted(found, key=lambda a: (a.idle_since, a.id))


def refusal(in_progress: bool, transferring: bool, current: Secretary | None, to: str,
            target: Secretary | None, covering: Sequence[Secretary]) -> Refusal | None:
    """Why the call may not go to `to` (`target`, None when unknown); None when it may.
    `in_progress`: the call is bridged with its secretary `current`; `covering`: who covers it."""
    if not in_progress or current is None:
        return Refusal(NOT_IN_PROGRESS, to)
    if transferring:
        return Refusal(ALREADY, to)
    if target is None:
        return Refusal(UNKNOWN, to)
    if target is current:
        return Refusal(SELF, to)
    if all(a is not target for a in covering):
        return Refusal(NOT_COVERING, target.id)
    if not can_take(target):
        return Refusal(NOT_AVAILABLE, target.id)
    return None
