"""CLI: `callrouter db upgrade|purge|verify-audit` and `callrouter users add|disable|list|grant`.

Every command but `db upgrade` needs the database at the latest migration: otherwise it stops with
one line saying so (exit code 1) before touching anything. They then open the keys kept outside the
database (callrouter.store.keys), as the service does at start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys

from callrouter.auth.sealing import KeyFileBox, SealingError
from callrouter.config import ConfigError, Settings, add_config_argument, settings_for_cli
from callrouter.store.audit import Actor, AuditLog
from callrouter.store.db import Database
from callrouter.store.keys import open_keys
from callrouter.store.retention import RetentionPurger
from callrouter.store.users import UserError, UserRepository


def register(sub) -> None:
    db = sub.add_parser("db", help="database: migrations, retention purge, audit check")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION")
    db_sub.required = True
    _cmd(db_sub, "upgrade", "apply the migrations up to the latest schema", _db_upgrade, migrated=False)
    _cmd(db_sub, "purge", "delete data past its retention (audited)", _db_purge)
    _cmd(db_sub, "verify-audit", "check the audit trail's hash chain", _db_verify_audit)

    users = sub.add_parser("users", help="console and API users")
    u_sub = users.add_subparsers(dest="users_command", metavar="ACTION")
    u_sub.required = True
    add = _cmd(u_sub, "add", "create a user (prints the TOTP secret once)", _users_add)
    add.add_argument("username")
    add.add_argument("--role", required=True,
                     choices=("administrator", "supervisor", "secretary", "practitioner"))
    add.add_argument("--name", help="display name (default: the username)")
    add.add_argument("--external", action="store_true", help="an external secretary")
    add.add_argument("--practice", action="append", default=[],
                     help="a practice covered (secretary) or belonged to (practitioner)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin instead of prompting")
    disable = _cmd(u_sub, "disable", "disable a user at once (tokens and SIP too)", _users_disable)
    disable.add_argument("username")
    sip = _cmd(u_sub, "sip-password", "set a user's softphone password (only HA1 digests kept)",
               _users_sip_password)
    sip.add_argument("username")
    sip.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin instead of prompting")
    _cmd(u_sub, "list", "list users", _users_list)
    grant = _cmd(u_sub, "grant", "grant a permission, e.g. exports:run", _users_grant)
    grant.add_argument("username")
    grant.add_argument("permission", help="MODULE:ACTION")


def _cmd(sub, name: str, help_: str, func, migrated: bool = True) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_)
    add_config_argument(parser)
    parser.set_defaults(func=lambda args: _run(func, args, migrated))
    return parser


def _run(func, args, migrated: bool = True) -> int:
    try:
        settings = settings_for_cli(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    db = Database.from_url(settings.database_url)
    try:
        problem = db.schema_problem() if migrated else None
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 1
        if migrated:
            open_keys(db, settings.secrets_key_path, settings.audit_key_path, _actor(), _now())
        return func(args, db, settings, _now())
    except (UserError, SealingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _actor() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    return Actor(f"cli:{who}"[:64], "cli")


def _users(db: Database, settings: Settings) -> UserRepository:
    return UserRepository(db, settings.auth.totp_issuer, settings.auth.sip_realm,
                          totp_box=KeyFileBox(settings.secrets_key_path))


def _db_upgrade(args, db: Database, settings: Settings, now) -> int:
    db.upgrade()
    print(f"database at revision {db.current_revision()}")
    return 0


def _db_purge(args, db: Database, settings: Settings, now) -> int:
    from callrouter.recording.vault import MediaVault, media_retention  # the audio files go with their rows

    r = settings.recording
    media = media_retention(MediaVault(r.vault_path(settings.var_dir), None, settings.controller.voicemail_dir),
                            r.keep_days, r.notes_days, r.voicemail_days)
    result = RetentionPurger(db, settings.retention, media=[media]).purge(_actor(), now)
    print(f"purged {result.call_records} call records, {result.recordings} recordings, "
          f"{result.audit} audit entries, {result.expired_tokens} expired tokens, "
          f"{result.media.get('call_recordings', 0)} call recordings, {result.media.get('voicemails', 0)} "
          f"voicemail messages")
    return 0


def _db_verify_audit(args, db: Database, settings: Settings, now) -> int:
    report = AuditLog(db).verify()
    if report.ok:
        print(f"audit chain intact ({report.checked} entries checked), head anchored by "
              f"{settings.audit_key_path}; head {report.head_seq} {report.head_hash}")
        return 0
    print(f"audit chain BROKEN: {report.error}", file=sys.stderr)
    return 1


def _read_password(args) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        print("error: passwords differ", file=sys.stderr)
        return None
    return password


def _users_sip_password(args, db: Database, settings: Settings, now) -> int:
    password = _read_password(args)
    if password is None:
        return 1
    _users(db, settings).set_sip_password(_actor(), args.username, password, now)
    print(f"SIP password of {args.username} set")
    return 0


def _users_add(args, db: Database, settings: Settings, now) -> int:
    password = _read_password(args)
    if password is None:
        return 1
    new = _users(db, settings).add(_actor(), args.username, args.name or args.username,
                                   args.role, password, now, external=args.external,
                                   practices=tuple(args.practice))
    print(f"user {new.user.username} created ({new.user.role})")
    print(f"TOTP secret (shown once): {new.totp_secret}")
    print(f"TOTP URI: {new.totp_uri}")
    return 0


def _users_disable(args, db: Database, settings: Settings, now) -> int:
    _users(db, settings).disable(_actor(), args.username, now)
    print(f"user {args.username} disabled")
    return 0


def _users_list(args, db: Database, settings: Settings, now) -> int:
    for u in _users(db, settings).list():
        state = "enabled" if u.enabled else "DISABLED"
        kind = " (external)" if u.external else ""
        print(f"{u.username}\t{u.role}{kind}\t{state}\t{','.join(u.practices) or '-'}\t"
              f"{','.join(u.grants) or '-'}")
    return 0


def _users_grant(args, db: Database, settings: Settings, now) -> int:
    module, sep, action = args.permission.partition(":")
    if not sep:
        print("error: permission must be MODULE:ACTION, e.g. exports:run", file=sys.stderr)
        return 2
    view = _users(db, settings).grant(_actor(), args.username, module, action, now)
    print(f"user {view.username} now has: {', '.join(view.grants)}")
    return 0
