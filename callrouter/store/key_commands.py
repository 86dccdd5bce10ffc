"""CLI: `callrouter auth status|seal-secrets|rotate-key|anchor-audit`: the keys outside the database.

    callrouter auth rotate-key --new FILE

re-seals every TOTP secret with the key in FILE (created, mode 0600, when it does not exist) in
one transaction, then installs that key at `auth.secrets_key_file`, keeping the previous one
beside it as `<file>.<key id>.retired` (the database's older backups need it). A running service
picks the new key up at its next sign-in. docs/security.md tells the whole procedure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from callrouter.auth import sealing
from callrouter.auth.sealing import KeyFileBox, SealingError, SecretBox
from callrouter.config import ConfigError, add_config_argument, settings_for_cli
from callrouter.store.audit import AuditLog, verify_chain
from callrouter.store.audit_anchor import adopt, head_problem, open_anchor
from callrouter.store.commands import _actor, _now
from callrouter.store.db import Database
from callrouter.store.keys import open_keys
from callrouter.store.models import AuditHead
from callrouter.store import totp_secrets


def register(sub) -> None:
    auth = sub.add_parser("auth", help="keys outside the database: TOTP secrets' seal, audit anchor")
    a_sub = auth.add_subparsers(dest="auth_command", metavar="ACTION")
    a_sub.required = True
    _cmd(a_sub, "status", "the key files and how the secrets are stored", _status)
    _cmd(a_sub, "seal-secrets", "seal the TOTP secrets still stored in clear (idempotent)", _seal)
    rotate = _cmd(a_sub, "rotate-key", "re-seal every TOTP secret with a new key, in one transaction", _rotate)
    rotate.add_argument("--new", required=True, metavar="FILE", type=Path,
                        help="the new key file (created, mode 0600, if it does not exist)")
    _cmd(a_sub, "anchor-audit", "check the audit chain, then anchor its current head with the audit key",
         _anchor_audit)


def _cmd(sub, name: str, help_: str, func):
    parser = sub.add_parser(name, help=help_)
    add_config_argument(parser)
    parser.set_defaults(func=lambda args: _run(func, args))
    return parser


def _run(func, args) -> int:
    try:
        settings = settings_for_cli(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    db = Database.from_url(settings.database_url)
    try:
        problem = db.schema_problem()
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 1
        return func(args, db, settings, _actor(), _now())
    except SealingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()


def _status(args, db, settings, actor, now) -> int:
    box = open_keys(db, settings.secrets_key_path, settings.audit_key_path, actor, now)
    state = totp_secrets.secrets_state(db)
    sealed = ", ".join(f"{n} with key {kid}" for kid, n in sorted(state.sealed.items())) or "none"
    print(f"TOTP secrets key file: {settings.secrets_key_path} (key {box.key_id})")
    print(f"TOTP secrets: {state.clear} in clear, sealed: {sealed}")
    report = AuditLog(db).verify()
    print(f"audit key file: {settings.audit_key_path}; chain "
          + ("intact and anchored" if report.ok else f"BROKEN: {report.error}"))
    return 0 if report.ok and not state.clear else 1


def _seal(args, db, settings, actor, now) -> int:
    open_anchor(db, settings.audit_key_path)
    before = totp_secrets.secrets_state(db).clear
    box = totp_secrets.open_secrets(db, settings.secrets_key_path, actor, now)  # seals what is in clear
    print(f"sealed {before} TOTP secret(s) with key {box.key_id}; none left in clear")
    return 0


def _rotate(args, db, settings, actor, now) -> int:
    current = open_keys(db, settings.secrets_key_path, settings.audit_key_path, actor, now)
    path: Path = settings.secrets_key_path
    new_path: Path = args.new
    new_key = sealing.read_key_file(new_path) if new_path.exists() else sealing.create_key_file(new_path)
    new = SecretBox(new_key, f"the key file {new_path}")
    if new.key_id == current.key_id:
        print(f"error: {new_path} holds the current key {current.key_id}: nothing to rotate", file=sys.stderr)
        return 1
    retired = path.with_name(f"{path.name}.{current.key_id}.retired")
    if not retired.exists():  # a copy of the current key, for the backups sealed with it
        sealing.write_key_file(retired, sealing.read_key_file(path))
    count = totp_secrets.rotate(db, current, new, actor, now)
    staged = path.with_name(f".{path.name}.{new.key_id}.new")
    staged.unlink(missing_ok=True)
    sealing.write_key_file(staged, new_key)
    os.replace(staged, path)
    print(f"re-sealed {count} TOTP secret(s) with key {new.key_id} (was {current.key_id}), in one transaction")
    print(f"{path} now holds key {new.key_id}; the previous key is in {retired}: keep it with the backups "
          "made before now, apart from them, or delete it")
    if new_path.resolve() != path.resolve():
        print(f"{new_path} is a copy of the new key: delete it once it is kept safe")
    return 0


def _anchor_audit(args, db, settings, actor, now) -> int:
    """Anchor a head that carries no MAC (written without the key, or before the key existed),
    once its hashes are checked. A head whose MAC does not match is never anchored anew here: that
    is what a rewrite looks like."""
    key = open_anchor(db, settings.audit_key_path)
    with db.transaction() as s:
        head = s.get(AuditHead, 1, with_for_update=True)
        report = verify_chain(s, anchored=False)
        if not report.ok:
            print(f"error: audit chain BROKEN: {report.error}; not anchored", file=sys.stderr)
            return 1
        if head.head_mac is not None and head_problem(s, head) is not None:
            print("error: the chain's head carries a MAC that does not match the audit key: a rewrite, or "
                  "another key file; not anchored", file=sys.stderr)
            return 1
        adopt(db, s, head, key)
    print(f"audit chain anchored at head {report.head_seq} {report.head_hash} ({report.checked} entries checked)")
    return 0
