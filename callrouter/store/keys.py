"""The keys kept outside the database, opened by the service at start and by every CLI command."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from callrouter.auth.sealing import KeyFileBox
from callrouter.ports import Actor
from callrouter.store.audit_anchor import open_anchor
from callrouter.store.db import Database
from callrouter.store.totp_secrets import open_secrets


def open_keys(db: Database, secrets_key: Path, audit_key: Path, actor: Actor, now: dt.datetime) -> KeyFileBox:
    """The audit key first (what follows is audited and anchored), then the TOTP secrets' box, each
    key file created at first use; the secrets still in clear sealed. Raises KeyFileError."""
    open_anchor(db, audit_key)
    return open_secrets(db, secrets_key, actor, now)
