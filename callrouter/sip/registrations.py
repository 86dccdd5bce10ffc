"""Who is registered at the edge: read from Kamailio or from the table the edges share.

With `sip.registrations: memory` (one node) Kamailio keeps registrations in memory (usrloc
db_mode 0) and answers `ul.dump` on its loopback RPC port (jsonrpcs over xhttp; see
event_route[xhttp:request] in deploy/kamailio/kamailio.cfg): `RegistrationsClient`.

With `sip.registrations: database` (several nodes) every edge writes them through to the
`location` table (db_mode 1) and keeps in memory only the contacts it received itself (`ul.dump`
lists those alone), so the controller reads the table, seeing the softphones registered at every
node's edge: `TableRegistrations`. usrloc writes `expires` in its own local
time without a zone; the nodes must share a time zone and keep their clocks in step (NTP).

`fetch()` blocks; `RegistrationsPoller` calls it on the reactor's thread pool every 2 s and tells
the secretary desk who is registered.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from sqlalchemy import DateTime, bindparam, column, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from twisted.application.internet import TimerService
from twisted.internet import threads

from callrouter.sip.settings import SipSettings

logger = logging.getLogger(__name__)


class RegistrationsUnavailable(Exception):
    """Kamailio did not answer, or answered something that is not a usrloc dump."""


@dataclass(frozen=True)
class Contact:
    address: str
    expires: int  # seconds left
    user_agent: str | None
    received: str | None  # source address when the softphone is behind NAT or on TCP/TLS
    socket: str  # Kamailio's socket the registration came through, e.g. "tls:1.2.3.4:5061"


def parse_ul_dump(result: Mapping[str, Any]) -> dict[str, tuple[Contact, ...]]:
    """{username: contacts} from the `result` of Kamailio 5.6's ul.dump."""
    registered: dict[str, tuple[Contact, ...]] = {}
    try:
        for domain in result["Domains"]:
            for aor in domain["Domain"]["AoRs"]:
                info = aor["Info"]
                contacts = tuple(_contact(c["Contact"]) for c in info["Contacts"])
                if contacts:
                    registered[info["AoR"]] = contacts
    except (KeyError, TypeError) as exc:
        raise RegistrationsUnavailable(f"unexpected ul.dump shape: {exc!r}") from exc
    return registered


def _contact(raw: Mapping[str, Any]) -> Contact:
    def opt(key: str) -> str | None:
        value = raw.get(key)
        return None if value in (None, "[not set]") else str(value)

    return Contact(address=str(raw["Address"]), expires=int(raw["Expires"]),
                   user_agent=opt("User-Agent"), received=opt("Received"),
                   socket=str(raw.get("Socket", "")))


class RegistrationsClient:
    """Asks one Kamailio for its registrations over JSON-RPC on 127.0.0.1:`rpc_port`."""

    def __init__(self, rpc_port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self._url = f"http://{host}:{rpc_port}/RPC"
        self._timeout = timeout
        self._next_id = 0

    def call(self, method: str, *params: Any) -> Any:
        self._next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params),
                           "id": self._next_id}).encode()
        request = urllib.request.Request(self._url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as reply:
                answer = json.loads(reply.read())
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise RegistrationsUnavailable(f"{method}: {exc}") from exc
        if "error" in answer:
            raise RegistrationsUnavailable(f"{method}: {answer['error']}")
        return answer.get("result")

    def fetch(self) -> dict[str, tuple[Contact, ...]]:
        """Every registered username with its contacts."""
        return parse_ul_dump(self.call("ul.dump"))

    def registered_usernames(self) -> frozenset[str]:
        return frozenset(self.fetch())


_LIVE_CONTACTS = text(
    "SELECT username, contact, expires, user_agent, received, socket FROM location "
    "WHERE expires > :now ORDER BY username, id").bindparams(bindparam("now", type_=DateTime())).columns(
        column("username"), column("contact"), column("expires", DateTime()), column("user_agent"),
        column("received"), column("socket"))


class TableRegistrations:
    """Every edge's registrations, from the `location` table they share (usrloc db_mode 1).

    `local_now` gives the time in the edges' local time zone, naive, as usrloc writes `expires`.
    """

    def __init__(self, engine: Engine, local_now: Callable[[], dt.datetime] = dt.datetime.now) -> None:
        self._engine, self._local_now = engine, local_now

    def fetch(self) -> dict[str, tuple[Contact, ...]]:
        """Every username with a contact not yet expired, with those contacts."""
        now = self._local_now().replace(microsecond=0)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(_LIVE_CONTACTS, {"now": now}).all()
        except SQLAlchemyError as exc:
            raise RegistrationsUnavailable(f"location table: {exc.__class__.__name__}") from exc
        found: dict[str, list[Contact]] = {}
        for username, contact, expires, agent, received, sock in rows:
            found.setdefault(username, []).append(Contact(
                address=contact, expires=max(0, int((expires - now).total_seconds())),
                user_agent=agent or None, received=received or None, socket=sock or ""))
        return {name: tuple(contacts) for name, contacts in found.items()}

    def registered_usernames(self) -> frozenset[str]:
        return frozenset(self.fetch())


class RegistrationsSource(Protocol):
    def fetch(self) -> dict[str, tuple[Contact, ...]]: ...

    def registered_usernames(self) -> frozenset[str]: ...


def registrations_source(sip: SipSettings, engine: Engine | None) -> RegistrationsSource:
    """Where this node learns who is registered: its edge's memory, or the shared table."""
    if sip.registrations == "database":
        if engine is None or engine.dialect.name != "postgresql":
            # refused here too, not only by the edge's config: a controller started apart would
            # otherwise read an empty table and believe nobody registered
            raise ValueError("sip.registrations: database needs PostgreSQL (the database every node "
                             "shares); with SQLite there is one node: keep them in memory")
        return TableRegistrations(engine)
    return RegistrationsClient(sip.rpc_port)


class RegistrationsObserver(Protocol):
    """Who hears which usernames are registered (the secretary desk)."""

    def registrations_changed(self, usernames: frozenset[str]) -> None: ...


class RegistrationsPoller(TimerService):
    """Tells the secretary desk which secretaries' softphones are registered at the edge, every 2 s."""

    def __init__(self, client: RegistrationsSource, desk: RegistrationsObserver, reactor: Any, interval: float = 2.0):
        self.client, self.desk, self.reactor = client, desk, reactor
        self._unavailable = False
        super().__init__(interval, self.poll)
        self.setName("registrations")

    def poll(self):
        d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self.client.registered_usernames)
        d.addCallbacks(self._got, self._failed)
        return d

    def _got(self, usernames: frozenset[str]) -> None:
        if self._unavailable:
            logger.info("edge registrations readable again")
        self._unavailable = False
        self.desk.registrations_changed(usernames)

    def _failed(self, failure) -> None:
        if not self._unavailable:  # the edge restarting: keep what we knew, say it once
            logger.warning("cannot read registrations from the edge: %s", failure.getErrorMessage())
        self._unavailable = True
