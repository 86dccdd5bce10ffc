"""Refusals of the call records and the users' store that the admin API answers with an HTTP code.

They live in the core so that the store raises them and the web maps them (404, 409, 401, 422)
without the web importing the store. The callback tasks' refusals are in callrouter.domain.tasks,
the escalations' in callrouter.domain.escalation_views.
"""

from __future__ import annotations


class UnknownCall(LookupError):
    """No call record with this id."""


class UserError(ValueError):
    """A refused user operation; the message says why."""


class UnknownUser(UserError):
    pass


class UserExists(UserError):
    pass


class AuthFailed(Exception):
    """Login refused. The message is deliberately the same whatever was wrong."""
