"""The IVR menu state machine: (state, digit | timeout) -> (state, outcome). Pure; no timers here.

The controller plays what `Prompt` says, arms a timer of `timeout_s` once playback ends, and feeds
back digits (barge-in allowed: a digit during the prompt counts) and timer expiries. A `Chosen`
digit is appended to the call's digits and `decide()` says what happens next (possibly another
menu); `Exhausted` means the caller gave no valid choice in time: `decide()` with the TIMEOUT
token applies the menu's `on_timeout` action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from callrouter.domain.model import IvrMenu

TIMEOUT = "timeout"  # the token recorded among a call's IVR answers when a menu runs out of tries
DEFAULT_INVALID_PROMPT = "invalid_choice"
DEFAULT_NO_CHOICE_PROMPT = "no_choice"


@dataclass(frozen=True)
class MenuState:
    menu: str
    failures: int = 0


@dataclass(frozen=True)
class Prompt:
    prompts: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class Chosen:
    digit: str


@dataclass(frozen=True)
class Exhausted:
    cause: str  # "timeout" | "invalid"


Outcome = Union[Prompt, Chosen, Exhausted]


def enter(menu: IvrMenu) -> tuple[MenuState, Prompt]:
    return MenuState(menu.name), Prompt((menu.prompt,), menu.timeout_s)


def on_digit(menu: IvrMenu, state: MenuState, digit: str) -> tuple[MenuState, Outcome]:
    if digit in menu.options:
        return state, Chosen(digit)
    return _failed(menu, state, "invalid", menu.invalid_prompt or DEFAULT_INVALID_PROMPT)


def on_timeout(menu: IvrMenu, state: MenuState) -> tuple[MenuState, Outcome]:
    return _failed(menu, state, "timeout", DEFAULT_NO_CHOICE_PROMPT)


def _failed(menu: IvrMenu, state: MenuState, cause: str, notice: str) -> tuple[MenuState, Outcome]:
    failures = state.failures + 1
    new = MenuState(state.menu, failures)
    if failures > menu.retries:
        return new, Exhausted(cause)
    return new, Prompt((notice, menu.prompt), menu.timeout_s)
