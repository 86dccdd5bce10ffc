"""Who is registered at Kamailio: a small JSON-RPC client the controller polls.

Kamailio keeps registrations in memory (usrloc db_mode 0) and answers `ul.dump` on its loopback
RPC port (jsonrpcs over xhttp; see event_route[xhttp:request] in deploy/kamailio/kamailio.cfg).
`fetch()` blocks (urllib); `RegistrationsPoller` calls it on the reactor's thread pool every 2 s
and tells the secretary desk who is registered.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from twisted.application.internet import TimerService
from twisted.internet import threads

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


class RegistrationsObserver(Protocol):
    """Who hears which usernames are registered (the secretary desk)."""

    def registrations_changed(self, usernames: frozenset[str]) -> None: ...


class RegistrationsPoller(TimerService):
    """Tells the secretary desk which secretaries' softphones are registered at the edge, every 2 s."""

    def __init__(self, client: RegistrationsClient, desk: RegistrationsObserver, reactor: Any, interval: float = 2.0):
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
