"""TOTP (RFC 6238) second factor, with replay protection: a code is accepted once."""

from __future__ import annotations

import datetime as dt

import pyotp

STEP_SECONDS = 30
VALID_WINDOW = 1  # accept the previous and next 30 s step (clock drift on phones)


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def code_at(secret: str, now: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(now)


def matching_step(secret: str, code: str, now: dt.datetime, last_step: int | None) -> int | None:
    """The time step `code` is valid for (within the window), or None.

    Steps up to `last_step` (the last accepted) are refused: a code works once."""
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def sealing_context(user_id: int) -> str:
    """What binds a user's sealed TOTP secret to her row (callrouter.auth.sealing): a sealed
    secret copied onto another user's row does not open there."""
    return f"callrouter totp secret of user {user_id}"
