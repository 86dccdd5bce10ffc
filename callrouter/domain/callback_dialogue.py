"""The callback-number dialogue, as a pure state machine: `(state, digit | TIMEOUT) -> (state, output)`.

A caller offered a callback presses 1. When her number is one we may call back (French, shown,
not premium) it is read back digit by digit: 1 confirms it, 2 types another. When it is hidden or
not callable she is asked to type one, ended by # (or after ten digits, or a pause); * starts the
number again. A number that is not callable is refused with a word and asked again; she may type
a number `TRIES` times, then the call ends with a goodbye. No key at the offer or at the read-back
is a goodbye too.

Outputs say what the caller hears next; the controller plays them (the player), arms the digit
timer after `Say` and `Listen`, and on `Confirmed` creates the callback task. Like domain/ivr.py:
no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.domain import phone

TIMEOUT = "timeout"
ACCEPT, CONFIRM, CHANGE, END, RESTART = "1", "1", "2", "#", "*"
TRIES = 3  # times a caller may type a number to call back
NUMBER_DIGITS = 10  # a national number: typing stops by itself after ten digits


@dataclass(frozen=True)
class Offered:
    """The offer was said: 1 accepts. `caller`: her number if it may be called back (E.164)."""

    caller: str | None


@dataclass(frozen=True)
class Typing:
    """She types the number to call back, then #."""

    tries: int
    digits: str = ""


@dataclass(frozen=True)
class Confirming:
    """`number` was read back: 1 confirms, 2 types another."""

    number: str
    tries: int


@dataclass(frozen=True)
class Ended:
    """Confirmed (`number`) or given up (None): no key is read any more."""

    number: str | None


State = Offered | Typing | Confirming | Ended


@dataclass(frozen=True)
class Say:
    """Stop what plays, say `prompts` (catalogue names), then wait for a key."""

    prompts: tuple[str, ...]


@dataclass(frozen=True)
class Listen:
    """Stop what plays and wait for the next key (the digit timer starts again)."""


@dataclass(frozen=True)
class GiveUp:
    """Stop what plays, say goodbye and hang up: no callback."""


@dataclass(frozen=True)
class Confirmed:
    """She confirmed `number` (E.164): a callback task for it."""

    number: str


Output = Say | Listen | GiveUp | Confirmed | None  # None: the key means nothing here


def offer(caller: str | None, prompt: str | None = None) -> tuple[Offered, Say]:
    """Start: say the offer (`prompt`, or the catalogue's "callback_offer")."""
    return Offered(callable_number(caller)), Say((prompt or "callback_offer",))


def step(state: State, key: str) -> tuple[State, Output]:
    """One key (a DTMF digit, or TIMEOUT when the digit timer ran out)."""
    match state:
        case Offered(caller=caller):
            if key == TIMEOUT:
                return Ended(None), GiveUp()
            if key != ACCEPT:
                return state, None
            return _read_back(caller, 0) if caller is not None else _ask(0)
        case Typing(tries=tries, digits=digits):
            if key == TIMEOUT or key == END:
                return _typed(digits, tries)
            if key == RESTART:
                return _ask(tries - 1)
            digits += key
            if len(digits) >= NUMBER_DIGITS:
                return _typed(digits, tries)
            return Typing(tries, digits), Listen()
        case Confirming(number=number, tries=tries):
            if key == TIMEOUT:
                return Ended(None), GiveUp()
            if key == CONFIRM:
                return Ended(number), Confirmed(number)
            if key == CHANGE:
                return _ask(tries)
            return state, None
    return state, None


def callable_number(raw: str | None) -> str | None:
    """The caller's number if we may call it back (French, not premium), else None."""
    if not raw:
        return None
    try:
        return phone.normalise(raw)
    except phone.InvalidNumber:
        return None


def _ask(tries: int, invalid: bool = False) -> tuple[State, Output]:
    if tries + 1 > TRIES:
        return Ended(None), GiveUp()
    return Typing(tries + 1), Say((("callback_invalid_number",) if invalid else ()) + ("callback_enter_number",))


def _typed(digits: str, tries: int) -> tuple[State, Output]:
    if not digits:
        return _ask(tries)
    try:
        number = phone.normalise(digits)
    except phone.InvalidNumber:
        return _ask(tries, invalid=True)
    return _read_back(number, tries)


def _read_back(number: str, tries: int) -> tuple[State, Output]:
    digits = tuple(f"digit_{d}" for d in phone.national_digits(number))
    return Confirming(number, tries), Say(("callback_number_is", *digits, "callback_confirm_or_change"))
