"""Roles and permissions, module by module, as a pure table.

`allowed()` is the single decision every API route and CLI command goes through. Field rules it
enforces whatever is stored: a disabled user can do nothing, and an external secretary never acts
as a practitioner, even if such a grant somehow exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

ROLES = ("administrator", "supervisor", "secretary", "practitioner")

# module -> the actions it has
MODULES: Mapping[str, tuple[str, ...]] = {
    "calls": ("read", "write"),
    "callbacks": ("read", "write"),
    "escalations": ("read", "write"),
    "dialplans": ("read", "write"),
    "users": ("read", "write"),
    "exports": ("run",),
    "audit": ("read",),
    "secretaries": ("read", "manage"),  # the team's live states; pause, resume, log out others
    "team": ("read", "write"),  # who covers which queue, skill levels, pause reasons (applied live)
    "practitioner": ("act",),  # act as a practitioner: validate bookings, reserved slots...
    # Call recordings (docs/recording.md): hear them, write a supervisor's evaluation, manage them
    # (on-demand requests for a secretary in training, deletion before their time).
    "recordings": ("listen", "evaluate", "manage"),
}

Permission = tuple[str, str]


def _all(*modules: str) -> frozenset[Permission]:
    return frozenset((m, a) for m in modules for a in MODULES[m])


ROLE_PERMISSIONS: Mapping[str, frozenset[Permission]] = {
    # An administrator manages recordings but hears none unless granted: access to patients' voices
    # is kept to those who evaluate the secretaries' work.
    "administrator": _all("calls", "callbacks", "escalations", "dialplans", "users", "exports",
                          "audit", "secretaries", "team") | {("recordings", "manage")},
    "supervisor": _all("calls", "callbacks", "escalations", "exports", "audit", "secretaries", "team", "recordings")
    | {("dialplans", "read"), ("users", "read")},
    "secretary": _all("calls", "callbacks", "escalations") | {("dialplans", "read"), ("secretaries", "read")},
    "practitioner": {("calls", "read"), ("callbacks", "read"), ("escalations", "read"),
                     ("dialplans", "read"), ("practitioner", "act")},
}

# Roles whose call data is limited to their practices (covered, or their own).
PRACTICE_SCOPED_ROLES = frozenset({"secretary", "practitioner"})


@dataclass(frozen=True)
class UserAttrs:
    """What, beyond the role, decides a user's rights."""

    enabled: bool = True
    external: bool = False
    grants: frozenset[Permission] = field(default_factory=frozenset)
    practices: frozenset[str] = field(default_factory=frozenset)


EXTERNAL_NOT_PRACTITIONER = "an external secretary can never act as a practitioner"


def allowed(role: str, module: str, action: str, user: UserAttrs) -> tuple[bool, str]:
    """May a user with `role` and `user` attributes do `action` on `module`? And why (not)."""
    if role not in ROLE_PERMISSIONS:
        return False, f"unknown role {role!r}"
    if module not in MODULES:
        return False, f"unknown module {module!r}"
    if action not in MODULES[module]:
        return False, f"module {module} has no action {action!r}"
    if not user.enabled:
        return False, "account disabled"
    if module == "practitioner" and user.external:
        return False, EXTERNAL_NOT_PRACTITIONER
    if (module, action) in ROLE_PERMISSIONS[role]:
        return True, f"role {role} may {action} {module}"
    if (module, action) in user.grants:
        return True, f"granted {action} on {module}"
    return False, f"role {role} may not {action} {module}"


def can_grant(role: str, external: bool, module: str, action: str) -> tuple[bool, str]:
    """May (module, action) be granted on top of `role`?

    Refuses what `allowed` would never honour."""
    if module not in MODULES or action not in MODULES[module]:
        return False, f"unknown permission {module}:{action}"
    if module == "practitioner" and external:
        return False, EXTERNAL_NOT_PRACTITIONER
    return True, "ok"


def check_role(role: str, external: bool) -> tuple[bool, str]:
    """Is this role/external combination valid? Only secretaries can be external."""
    if role not in ROLES:
        return False, f"unknown role {role!r}; expected one of {', '.join(ROLES)}"
    if external and role != "secretary":
        return False, "only a secretary can be external"
    return True, "ok"


def practice_scope(role: str, user: UserAttrs) -> frozenset[str] | None:
    """The practices whose data the user may see; None means all of them."""
    return user.practices if role in PRACTICE_SCOPED_ROLES else None


def describe_roles() -> dict[str, list[str]]:
    """The role table as data (served by GET /api/roles)."""
    return {role: sorted(f"{m}:{a}" for m, a in perms) for role, perms in ROLE_PERMISSIONS.items()}
