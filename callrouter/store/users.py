"""Users, their roles, grants and practices; logins and bearer tokens.

Every change is audited in the same transaction. Secrets are never stored in clear:
- console/API password: argon2id hash;
- TOTP: the shared secret (it must be readable to check codes), shown once at creation, sealed
  with AES-GCM under a key file outside the database, bound to the user's id
  (callrouter.store.totp_secrets); a repository built without a key keeps it in clear (tests);
- bearer tokens: only their SHA-256 is stored, they expire, and all go when the user is disabled;
- SIP: softphones register with digest auth at Kamailio, which needs either the clear password or
  HA1 = md5(username:realm:password). We store only HA1 and HA1B
  (md5(username@realm:realm:password)), the columns Kamailio's auth_db reads with calculate_ha1=0,
  so the SIP password itself is never stored. Disabling a user sets both to NULL: no digest can
  match any more, at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from callrouter.auth import passwords, totp
from callrouter.auth.sealing import Sealer
from callrouter.auth.permissions import can_grant, check_role
from callrouter.domain.errors import AuthFailed, UnknownUser, UserError, UserExists
from callrouter.ports import Actor, NewUser, UserView
from callrouter.store.audit import append
from callrouter.store.db import Database
from callrouter.store.models import ApiToken, AuditEntry, Grant, User, UserPractice
from callrouter.store.totp_secrets import open_secret, seal_secret

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
PRACTICE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# After MAX_FAILURES failed logins within LOCKOUT_WINDOW, a name is refused until the window slides.
MAX_FAILURES = 5
LOCKOUT_WINDOW = dt.timedelta(minutes=15)


def sip_digests(username: str, realm: str, password: str) -> tuple[str, str]:
    ha1 = hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()
    ha1b = hashlib.md5(f"{username}@{realm}:{realm}:{password}".encode()).hexdigest()
    return ha1, ha1b


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserRepository:
    def __init__(self, db: Database, totp_issuer: str = "callrouter",
                 sip_realm: str = "callrouter", totp_box: Sealer | None = None) -> None:
        self._db = db
        self._box = totp_box
        self._issuer = totp_issuer
        self._realm = sip_realm

    # --- administration (audited) -------------------------------------------------------------

    def add(self, actor: Actor, username: str, display_name: str, role: str, password: str,
            now: dt.datetime, external: bool = False, practices: tuple[str, ...] = (),
            sip_password: str | None = None) -> NewUser:
        if not USERNAME_RE.fullmatch(username):
            raise UserError("username must be 2-64 characters: lower-case letters, digits, . _ -")
        ok, reason = check_role(role, external)
        if not ok:
            raise UserError(reason)
        _check_practices(practices)
        try:
            passwords.check_strength(password)
            if sip_password is not None:
                passwords.check_strength(sip_password)
        except passwords.WeakPassword as exc:
            raise UserError(str(exc)) from exc
        secret = totp.new_secret()
        ha1 = ha1b = None
        if sip_password:
            ha1, ha1b = sip_digests(username, self._realm, sip_password)
        try:
            with self._db.transaction() as s:
                if s.scalar(select(User.id).where(User.username == username)) is not None:
                    raise UserExists(f"user {username} already exists")
                user = User(username=username, display_name=display_name, role=role,
                            external=external, enabled=True,
                            password_hash=passwords.hash_password(password),
                            totp_secret=secret if self._box is None else "",
                            sip_ha1=ha1, sip_ha1b=ha1b, created_at=now,
                            practices=[UserPractice(practice=p) for p in sorted(set(practices))])
                s.add(user)
                s.flush()
                if self._box is not None:  # sealed once the id it is bound to is known
                    user.totp_secret = seal_secret(self._box, user.id, secret)
                view = _view(user)
                append(s, actor, "user.create", f"user:{username}", now, after=_audit_state(view))
        except IntegrityError as exc:  # a concurrent creation of the same name
            raise UserExists(f"user {username} already exists") from exc
        return NewUser(view, secret, totp.provisioning_uri(secret, username, self._issuer))

    def disable(self, actor: Actor, username: str, now: dt.datetime) -> UserView:
        """Disable at once: tokens deleted, SIP digests cleared, every permission refused."""
        with self._db.transaction() as s:
            user = _get(s, username)
            _keep_an_administrator(s, user, leaving=user.enabled)
            before = _audit_state(_view(user))
            user.enabled = False
            user.disabled_at = user.disabled_at or now
            user.sip_ha1 = user.sip_ha1b = None
            revoked = s.execute(delete(ApiToken).where(ApiToken.user_id == user.id)).rowcount
            s.flush()
            view = _view(user)
            append(s, actor, "user.disable", f"user:{username}", now, before=before,
                   after=_audit_state(view), details={"tokens_revoked": revoked})
            return view

    def grant(self, actor: Actor, username: str, module: str, action: str,
              now: dt.datetime) -> UserView:
        with self._db.transaction() as s:
            user = _get(s, username)
            ok, reason = can_grant(user.role, user.external, module, action)
            if not ok:
                raise UserError(reason)
            before = _audit_state(_view(user))
            if (module, action) not in {(g.module, g.action) for g in user.grants}:
                user.grants.append(Grant(module=module, action=action))
            s.flush()
            view = _view(user)
            append(s, actor, "user.grant", f"user:{username}", now, before=before,
                   after=_audit_state(view))
            return view

    def set_role(self, actor: Actor, username: str, role: str, external: bool,
                 now: dt.datetime) -> UserView:
        ok, reason = check_role(role, external)
        if not ok:
            raise UserError(reason)
        with self._db.transaction() as s:
            user = _get(s, username)
            for g in user.grants:
                ok, reason = can_grant(role, external, g.module, g.action)
                if not ok:
                    raise UserError(f"{reason}: revoke {g.module}:{g.action} first")
            _keep_an_administrator(s, user, leaving=role != "administrator")
            before = _audit_state(_view(user))
            user.role, user.external = role, external
            s.flush()
            view = _view(user)
            append(s, actor, "user.role", f"user:{username}", now, before=before,
                   after=_audit_state(view))
            return view

    def revoke(self, actor: Actor, username: str, module: str, action: str,
               now: dt.datetime) -> UserView:
        with self._db.transaction() as s:
            user = _get(s, username)
            before = _audit_state(_view(user))
            user.grants = [g for g in user.grants if (g.module, g.action) != (module, action)]
            s.flush()
            view = _view(user)
            append(s, actor, "user.revoke", f"user:{username}", now, before=before,
                   after=_audit_state(view))
            return view

    def set_practices(self, actor: Actor, username: str, practices: tuple[str, ...],
                      now: dt.datetime) -> UserView:
        _check_practices(practices)
        with self._db.transaction() as s:
            user = _get(s, username)
            before = _audit_state(_view(user))
            user.practices = [UserPractice(practice=p) for p in sorted(set(practices))]
            s.flush()
            view = _view(user)
            append(s, actor, "user.practices", f"user:{username}", now, before=before,
                   after=_audit_state(view))
            return view

    def set_sip_password(self, actor: Actor, username: str, sip_password: str,
                         now: dt.datetime) -> UserView:
        try:
            passwords.check_strength(sip_password)
        except passwords.WeakPassword as exc:
            raise UserError(str(exc)) from exc
        with self._db.transaction() as s:
            user = _get(s, username)
            if not user.enabled:
                raise UserError(f"user {username} is disabled")
            user.sip_ha1, user.sip_ha1b = sip_digests(username, self._realm, sip_password)
            append(s, actor, "user.sip_password", f"user:{username}", now)
            return _view(user)

    # --- reads ---------------------------------------------------------------------------------

    def get(self, username: str) -> UserView:
        with self._db.transaction() as s:
            return _view(_get(s, username))

    def list(self, role: str | None = None) -> list[UserView]:
        with self._db.transaction() as s:
            stmt = select(User).options(selectinload(User.grants), selectinload(User.practices))
            if role is not None:
                stmt = stmt.where(User.role == role)
            return [_view(u) for u in s.scalars(stmt.order_by(User.username))]

    def sip_credential(self, username: str) -> tuple[str, str] | None:
        """(HA1, HA1B) for Kamailio, or None when the user has none or is disabled."""
        with self._db.transaction() as s:
            user = _get(s, username)
            if not user.enabled or user.sip_ha1 is None:
                return None
            return user.sip_ha1, user.sip_ha1b

    # --- login and tokens ----------------------------------------------------------------------

    def login(self, username: str, password: str, totp_code: str, now: dt.datetime,
              source: str, ttl: dt.timedelta) -> tuple[str, dt.datetime]:
        """Password + TOTP -> a bearer token and its expiry. Failures are audited, then raised."""
        with self._db.transaction() as s:
            user = s.scalar(select(User).where(User.username == username))
            if _recent_failures(s, username, now) >= MAX_FAILURES:
                failure = "locked: too many failed attempts"
            else:
                failure = _login_failure(user, password, totp_code, now, self._box)
            if failure is None:
                step = totp.matching_step(open_secret(self._box, user), totp_code, now, user.totp_last_step)
                user.totp_last_step = step
                token = secrets.token_urlsafe(32)
                expires = now + ttl
                s.add(ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=now,
                               expires_at=expires, source=source[:64]))
                append(s, Actor(username, source), "auth.login", f"user:{username}", now)
                return token, expires
            append(s, Actor(username[:64], source), "auth.login_failed", f"user:{username[:64]}",
                   now, details={"reason": failure})
        raise AuthFailed("invalid username, password or code")

    def totp_enrolment(self, username: str, password: str, now: dt.datetime) -> str | None:
        """The TOTP provisioning URI of a user who has never signed in with a code (her second
        factor is not enrolled yet), given her password; None for anyone else, a wrong password
        or a name locked out. Only offered after a failed login, which the lockout counts."""
        with self._db.transaction() as s:
            user = s.scalar(select(User).where(User.username == username))
            if _recent_failures(s, username, now) >= MAX_FAILURES:
                return None
            if user is None:
                passwords.verify_password(passwords.DUMMY_HASH, password)
                return None
            if not (user.enabled and user.totp_last_step is None
                    and passwords.verify_password(user.password_hash, password)):
                return None
            secret = open_secret(self._box, user)
            return None if secret is None else totp.provisioning_uri(secret, username, self._issuer)

    def authenticate(self, token: str, now: dt.datetime) -> UserView | None:
        """The enabled user owning an unexpired token, else None."""
        with self._db.transaction() as s:
            row = s.execute(select(User).join(ApiToken, ApiToken.user_id == User.id)
                            .where(ApiToken.token_hash == hash_token(token),
                                   ApiToken.expires_at > now, User.enabled.is_(True))).scalar()
            return None if row is None else _view(row)

    def authenticate_token_id(self, token_id: int, now: dt.datetime) -> UserView | None:
        """The enabled user owning the unexpired token with this row id, else None (a console
        session stands for a token it knows by row id: callrouter.store.sessions)."""
        with self._db.transaction() as s:
            row = s.execute(select(User).join(ApiToken, ApiToken.user_id == User.id)
                            .where(ApiToken.id == token_id, ApiToken.expires_at > now,
                                   User.enabled.is_(True))).scalar()
            return None if row is None else _view(row)

    def logout(self, token: str) -> None:
        with self._db.transaction() as s:
            s.execute(delete(ApiToken).where(ApiToken.token_hash == hash_token(token)))

    def purge_expired_tokens(self, now: dt.datetime) -> int:
        with self._db.transaction() as s:
            return s.execute(delete(ApiToken).where(ApiToken.expires_at <= now)).rowcount


def _recent_failures(s: Session, username: str, now: dt.datetime) -> int:
    """Failed logins for this name within the lockout window (read from the audit trail)."""
    return s.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "auth.login_failed", AuditEntry.target == f"user:{username[:64]}",
        AuditEntry.at > now - LOCKOUT_WINDOW, AuditEntry.at <= now))


def _login_failure(user: User | None, password: str, code: str, now: dt.datetime,
                   box: Sealer | None) -> str | None:
    if user is None:
        passwords.verify_password(passwords.DUMMY_HASH, password)
        return "unknown user"
    if not passwords.verify_password(user.password_hash, password):
        return "wrong password"
    if not user.enabled:
        return "user disabled"
    secret = open_secret(box, user)
    if secret is None:
        return "TOTP secret unreadable"
    if totp.matching_step(secret, code, now, user.totp_last_step) is None:
        return "wrong or reused TOTP code"
    return None


def _check_practices(practices: tuple[str, ...]) -> None:
    for p in practices:
        if not isinstance(p, str) or not PRACTICE_RE.fullmatch(p):
            raise UserError(f"invalid practice identifier {p!r}")


def _get(s: Session, username: str) -> User:
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise UnknownUser(f"no user {username}")
    return user


def _view(u: User) -> UserView:
    return UserView(
        id=u.id, username=u.username, display_name=u.display_name, role=u.role,
        external=u.external, enabled=u.enabled,
        practices=tuple(sorted(p.practice for p in u.practices)),
        grants=tuple(sorted(f"{g.module}:{g.action}" for g in u.grants)),
        has_sip_credential=u.sip_ha1 is not None, created_at=u.created_at,
        disabled_at=u.disabled_at)


def _audit_state(view: UserView) -> dict:
    """What the audit keeps of a user: no secret, no hash."""
    data = view.to_json()
    data.pop("created_at")
    return data


LAST_ADMINISTRATOR = "the last enabled administrator cannot be disabled or given another role: make another administrator first"


def _keep_an_administrator(s: Session, user: User, leaving: bool) -> None:
    """Refuse a change that would leave no enabled administrator (nobody could manage users again)."""
    if not leaving or user.role != "administrator" or not user.enabled:
        return
    others = s.scalar(select(func.count(User.id)).where(User.role == "administrator", User.enabled.is_(True),
                                                       User.id != user.id))
    if not others:
        raise UserError(LAST_ADMINISTRATOR)
