"""The permission table, table-driven: every role against every module and action."""

import pytest

from callrouter.auth.permissions import (
    EXTERNAL_NOT_PRACTITIONER, MODULES, ROLES, UserAttrs, allowed, can_grant, check_role,
    practice_scope,
)

EXPECTED = {
    # (module, action): roles allowed by default
    ("calls", "read"): {"administrator", "supervisor", "secretary", "practitioner"},
    ("calls", "write"): {"administrator", "supervisor", "secretary"},
    ("callbacks", "read"): {"administrator", "supervisor", "secretary", "practitioner"},
    ("callbacks", "write"): {"administrator", "supervisor", "secretary"},
    ("escalations", "read"): {"administrator", "supervisor", "secretary", "practitioner"},
    ("escalations", "write"): {"administrator", "supervisor", "secretary"},
    ("dialplans", "read"): {"administrator", "supervisor", "secretary", "practitioner"},
    ("dialplans", "write"): {"administrator"},
    ("users", "read"): {"administrator", "supervisor"},
    ("users", "write"): {"administrator"},
    ("exports", "run"): {"administrator", "supervisor"},
    ("audit", "read"): {"administrator", "supervisor"},
    ("secretaries", "read"): {"administrator", "supervisor", "secretary"},
    ("secretaries", "manage"): {"administrator", "supervisor"},
    ("team", "read"): {"administrator", "supervisor"},
    ("team", "write"): {"administrator", "supervisor"},
    ("practitioner", "act"): {"practitioner"},
    ("recordings", "listen"): {"supervisor"},
    ("recordings", "evaluate"): {"supervisor"},
    ("recordings", "manage"): {"administrator", "supervisor"},
}


def test_table_covers_every_module_and_action():
    assert set(EXPECTED) == {(m, a) for m, actions in MODULES.items() for a in actions}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("perm", sorted(EXPECTED))
def test_role_defaults(role, perm):
    ok, reason = allowed(role, *perm, UserAttrs())
    assert ok == (role in EXPECTED[perm]), reason
    assert reason


def test_refusal_reason_names_role_action_and_module():
    assert allowed("secretary", "users", "write", UserAttrs()) == (
        False, "role secretary may not write users")


def test_grant_adds_a_permission():
    attrs = UserAttrs(grants=frozenset({("exports", "run")}))
    assert allowed("secretary", "exports", "run", attrs)[0]
    assert not allowed("secretary", "users", "read", attrs)[0]


@pytest.mark.parametrize("role", ROLES)
def test_disabled_user_can_do_nothing(role):
    for module, actions in MODULES.items():
        for action in actions:
            assert allowed(role, module, action, UserAttrs(enabled=False)) == (
                False, "account disabled")


def test_external_secretary_never_acts_as_practitioner_even_if_granted():
    attrs = UserAttrs(external=True, grants=frozenset({("practitioner", "act")}))
    assert allowed("secretary", "practitioner", "act", attrs) == (False, EXTERNAL_NOT_PRACTITIONER)
    assert can_grant("secretary", True, "practitioner", "act") == (False, EXTERNAL_NOT_PRACTITIONER)


def test_internal_secretary_may_be_granted_practitioner_rights():
    assert can_grant("secretary", False, "practitioner", "act")[0]
    attrs = UserAttrs(grants=frozenset({("practitioner", "act")}))
    assert allowed("secretary", "practitioner", "act", attrs)[0]


@pytest.mark.parametrize("module, action, reason", [
    ("nope", "read", "unknown module 'nope'"),
    ("calls", "run", "module calls has no action 'run'"),
])
def test_unknown_permissions_are_refused(module, action, reason):
    assert allowed("administrator", module, action, UserAttrs()) == (False, reason)
    assert not can_grant("secretary", False, module, action)[0]


def test_unknown_role_is_refused():
    assert allowed("janitor", "calls", "read", UserAttrs())[0] is False


@pytest.mark.parametrize("role, external, ok", [
    ("secretary", True, True), ("secretary", False, True), ("practitioner", True, False),
    ("administrator", True, False), ("janitor", False, False),
])
def test_only_secretaries_can_be_external(role, external, ok):
    assert check_role(role, external)[0] is ok


def test_practice_scope_limits_secretaries_and_practitioners_only():
    attrs = UserAttrs(practices=frozenset({"p1"}))
    assert practice_scope("secretary", attrs) == {"p1"}
    assert practice_scope("practitioner", attrs) == {"p1"}
    assert practice_scope("supervisor", attrs) is None
    assert practice_scope("administrator", attrs) is None
