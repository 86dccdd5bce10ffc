"""What the escalation engine, its channels and its acknowledgement paths need from the rest.

Nothing here imports the store or the controller: the store's EscalationRepository implements
`ChainStore` and `AckStore` (callrouter.store.escalations), the controller's AlertCalls implements
`AlertPlacer` (callrouter.controller.alerts); callrouter.app wires them. The views the store
answers with are in callrouter.domain.escalation_views.

Channels carry one message each: `send(message)` fires with the provider's message id, or fails
with `ChannelError`. The SMS, e-mail and outbox channels (callrouter.escalation.channels), the SMPP
channel (callrouter.escalation.smpp) and the voice channel (callrouter.escalation.voice) all share
these pieces.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Callable, Iterable, Protocol

from callrouter.domain.alert_call import AlertRequest
from callrouter.domain.escalation_views import AckResult, EscalationView, StepView
from callrouter.escalation.messages import Message

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred


class ChannelError(Exception):
    """The message did not leave (gateway refused, unreachable, timed out...)."""


class Channel(Protocol):
    def send(self, message: Message) -> "Deferred[str | None]": ...


class ProviderId(str):
    """A provider id with what the channel saw happen (an alert call): `outcome` is stored on the
    step (`no_key_pressed`, `acknowledged`...), and `delivered` says the person was reached (a key
    was pressed): the engine then marks the step `delivered` rather than `sent`. `acknowledged`:
    the chain as the store returned it when the channel recorded an acknowledgement it accepted
    (a key pressed): the engine then stops the chain, as for any other acknowledgement."""

    outcome: str | None
    delivered: bool
    acknowledged: EscalationView | None

    def __new__(cls, value: str, outcome: str | None = None, delivered: bool = False,
                acknowledged: EscalationView | None = None) -> "ProviderId":
        made = super().__new__(cls, value)
        made.outcome, made.delivered, made.acknowledged = outcome, delivered, acknowledged
        return made


class AckStore(Protocol):
    """The store as the acknowledgement paths (link, SMS reply, console, a key in an alert call)
    use it. Blocking, one transaction per call."""

    def get(self, escalation_id: int) -> EscalationView: ...

    def acknowledge(self, escalation_id: int, by: str | None, via: str, now: dt.datetime) -> AckResult: ...

    def reached(self, destination: str, since: dt.datetime) -> list[tuple[EscalationView, str | None]]: ...

    def record_reply(self, escalation_ids: Iterable[int], at: dt.datetime, sender: str,
                     practitioners: dict[int, str | None], via: str, understood: str,
                     reference_: str | None, action: str) -> None: ...

    def mark_delivered(self, provider_id: str) -> bool: ...


class ChainStore(AckStore, Protocol):
    """The chains and their outbox as the engine runs them (see callrouter.store.escalations).
    Blocking, one transaction per call; `get` raises UnknownEscalation for an unknown id."""

    def create(self, call_id: str | None, practice: str, tier: str, caller: str | None,
               now: dt.datetime, dialplan_version: str | None = None, triggered_by: str | None = None,
               note: str | None = None) -> EscalationView: ...

    def claim_step(self, escalation_id: int, rnd: int, step: int, channel: str,
                   practitioner: str | None, destination: str | None, now: dt.datetime,
                   state: str = "sending", error: str | None = None) -> bool: ...

    def mark_sent(self, escalation_id: int, rnd: int, step: int, provider_id: str | None,
                  now: dt.datetime, outcome: str | None = None) -> None: ...

    def mark_failed(self, escalation_id: int, rnd: int, step: int, error: str, now: dt.datetime) -> None: ...

    def finish(self, escalation_id: int, outcome: str, now: dt.datetime,
               alerts: Iterable[tuple[str, str]] = ()) -> bool: ...

    def pending_alerts(self, escalation_id: int | None = None) -> list[tuple[EscalationView, StepView]]: ...

    def claim_alert(self, escalation_id: int, step: int, now: dt.datetime) -> bool: ...

    def mark_interrupted_sends(self) -> int: ...

    def active(self) -> list[EscalationView]: ...


class AlertPlacer(Protocol):
    """The controller's alert calls, as the voice channel uses them."""

    def place(self, request: AlertRequest, acknowledge: Callable[[str], None]) -> "Deferred[str]":
        """Dial the practitioner; fires with the outcome (callrouter.domain.alert_call) or fails
        with AlertNotPlaced; `acknowledge(digit)` is called when 1 or 2 is pressed, first."""
        ...

    def cancel(self, key: str) -> bool:
        """The chain was acknowledged another way: the call `key` stops if it may."""
        ...
