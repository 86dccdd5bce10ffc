"""decide(dialplan, call, now) -> Decision: the pure routing function.

The same function serves the live daemon, `callrouter simulate` and `callrouter calendar`.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable, Mapping

from callrouter.domain import calendar
from callrouter.domain.call import Call
from callrouter.domain.decision import Decision, describe_action
from callrouter.domain.ivr import TIMEOUT
from callrouter.domain.model import (
    Action,
    AnnounceAction,
    Dialplan,
    EscalateAction,
    HangupAction,
    IvrAction,
)

UNKNOWN_NUMBER_CODE = 404  # a number no dialplan has is refused, never answered (docs/dialplan.md)
GOODBYE_PROMPT = "goodbye"


def route_for(dialplan: Dialplan, state: calendar.CalendarState) -> tuple[str, Action]:
    """The route key and its action for a calendar state."""
    routes = dialplan.routes
    if state.status == calendar.OPEN:
        return "open", routes.open
    if state.status == calendar.HOLIDAY:
        return ("holiday", routes.holiday) if routes.holiday else ("closed", routes.closed)
    if state.status == calendar.CLOSURE:
        closure = state.closure
        assert closure is not None
        if closure.route is not None:
            key, action = f"closure:{closure.reason}", closure.route
        elif routes.closure is not None:
            key, action = "closure", routes.closure
        else:
            key, action = "closed", routes.closed
        if closure.announce:
            # The closure's own message replaces the route's generic opening announcement.
            rest = action.then if isinstance(action, AnnounceAction) else action
            action = AnnounceAction(closure.announce, then=rest)
        return key, action
    return "closed", routes.closed


def awaiting_menu(action: Action | None) -> IvrAction | None:
    """The IVR menu a caller is answering after this action's announcements, if any."""
    while isinstance(action, AnnounceAction):
        action = action.then
    return action if isinstance(action, IvrAction) else None


def decide(dialplan: Dialplan, call: Call, now: dt.datetime) -> Decision:
    """What to do with `call` at instant `now` (aware), and why.

    The calendar is read when the call arrived (`call.arrived_at`; `now` for a call not yet
    stamped): a caller is judged by the menu she heard. One who entered while the practice was
    open, and presses a digit after closing time, is served as an open-hours caller; her digits
    are replayed against the route in force at her arrival, never against the one of `now`.
    """
    site = dialplan.number_sites.get(call.number)
    state = calendar.state_at(dialplan.calendar_for(site), call.arrived_at or now)
    route, action = route_for(dialplan, state)
    why = [state.detail, f"route '{route}': {describe_action(action)}"]
    reason: str | None = None
    tier: str | None = None
    for digit in call.digits:
        menu_action = awaiting_menu(action)
        if menu_action is None:
            why.append(f"digit '{digit}' ignored: no menu is waiting for it")
            break
        menu = dialplan.ivr[menu_action.menu]
        if digit == TIMEOUT:
            action = menu.on_timeout or AnnounceAction(GOODBYE_PROMPT, HangupAction())
            why.append(f"menu '{menu.name}': no valid choice after {menu.retries + 1} tries: {describe_action(action)}")
            continue
        option = menu.options.get(digit)
        if option is None:
            why.append(f"'{digit}' is not an option of menu '{menu.name}': the menu is offered again")
            action = menu_action
            continue
        action = option.action
        reason = option.reason or reason
        tier = option.tier or tier
        label = f" ({option.reason})" if option.reason else ""
        why.append(f"menu '{menu.name}', {digit}{label}: {describe_action(action)}")
    if isinstance(action, EscalateAction):
        tier = action.tier
        action = escalation_action(dialplan, action.tier)
    if tier is not None:
        why.append(f"escalation tier '{tier}' starts")
    return Decision(
        practice=dialplan.practice,
        site=site,
        dialplan_version=dialplan.version,
        status=state.status,
        route=route,
        action=action,
        why=tuple(why),
        reason=reason,
        tier=tier,
    )


def escalation_action(dialplan: Dialplan, tier: str) -> Action:
    """What the caller hears when a tier starts: its announcement (hang up, dial 15), then hang-up."""
    spec = dialplan.escalation.get(tier)
    if spec is not None and spec.announce:
        return AnnounceAction(spec.announce, then=HangupAction())
    return HangupAction()


def overflow_decision(dialplan: Dialplan, call: Call, now: dt.datetime, cause: str) -> Decision:
    """Where a queued call goes when the wait or queue length passes the practice's limits."""
    base = decide(dialplan, call, now)
    overflow = dialplan.routes.overflow
    if overflow is None:
        action: Action = dialplan.routes.closed
        why = f"overflow ({cause}) with no overflow route: closed route applies"
    else:
        action = overflow.then
        why = f"overflow ({cause}): {describe_action(action)}"
    return Decision(
        practice=base.practice,
        site=base.site,
        dialplan_version=base.dialplan_version,
        status=base.status,
        route="overflow",
        action=action,
        why=(*base.why, why),
        reason=base.reason,
        tier=base.tier,
    )


class Router:
    """All loaded dialplans, indexed by number dialled; swapped whole on reload."""

    def __init__(self, dialplans: Iterable[Dialplan]):
        self.dialplans: Mapping[str, Dialplan] = {d.practice: d for d in dialplans}
        self.by_number: Mapping[str, Dialplan] = {
            number: d for d in self.dialplans.values() for number in d.number_sites
        }

    def decide(self, call: Call, now: dt.datetime) -> Decision:
        dialplan = self.by_number.get(call.number)
        if dialplan is None:
            return Decision(
                practice=None,
                site=None,
                dialplan_version=None,
                status="unknown_number",
                route="none",
                action=HangupAction(),
                why=("no practice is configured for the number dialled: refused unanswered (404)",),
                reject=UNKNOWN_NUMBER_CODE,
            )
        return decide(dialplan, call, now)
