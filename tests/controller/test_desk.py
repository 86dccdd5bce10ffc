"""The secretary desk on its own (no call controller): the port it implements, its saved state
read when it is built, and the listeners told when a secretary may take a call."""

from __future__ import annotations

import inspect
import json

from twisted.internet.task import Clock

from callrouter.controller.desk import Desk
from callrouter.controller.settings import ControllerSettings
from callrouter.ports import SecretaryDesk

EDGE = "127.0.0.1:5060"


def params(f) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(f).parameters.values() if p.name != "self"]


def test_the_desk_has_every_method_of_the_secretary_desk_port_with_its_parameters():
    port = {n for n, _ in inspect.getmembers(SecretaryDesk, inspect.isfunction) if not n.startswith("_")}
    assert {"login", "logout", "pause", "resume", "registrations_changed", "missed", "free"} <= port
    for name in port:
        assert params(getattr(Desk, name)) == params(getattr(SecretaryDesk, name)), name


def test_the_saved_logins_and_pauses_are_read_when_the_desk_is_built(tmp_path):
    state = tmp_path / "secretaries.json"
    state.write_text(json.dumps({"alice": {"logged_in": True, "paused": "réunion", "auto_paused": False}}))
    settings = ControllerSettings(secretaries={"*": ("alice", "bob")}, secretary_domain=EDGE, state_file=state)
    desk = Desk(settings, Clock())
    assert (desk.secretary("alice").logged_in, desk.secretary("alice").paused) == (True, "réunion")
    assert not desk.secretary("bob").logged_in


def test_listeners_hear_when_a_secretary_may_take_a_call():
    clock = Clock()
    desk = Desk(ControllerSettings(secretaries={"*": ("alice",)}, secretary_domain=EDGE), clock)
    told = []
    desk.when_available(lambda: told.append(clock.seconds()))
    desk.registrations_changed(frozenset({"alice"}))  # softphone on
    desk.login("alice")
    desk.pause("alice", "pause")  # no one to tell
    desk.resume("alice")
    desk.free(desk.secretary("alice"), wrap_up=30)
    clock.advance(30)  # wrap-up over
    assert told == [0, 0, 0, 30]
    assert desk.view("alice")["state"] == "available" and desk.current_offer("alice") is None
