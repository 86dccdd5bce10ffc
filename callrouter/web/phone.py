"""The console's phone: what the browser needs to register at the edge as the signed-in secretary.

`GET /api/phone` (signed in, no permission beyond that: it only ever describes the caller herself).
The edge's WebSocket port, the SIP realm, her username and her HA1 digest, the one credential the
store keeps (never the SIP password, which nobody can read back): JsSIP answers the edge's digest
challenge with it, so she types no second password and her softphone's stays valid. The HA1 is
worth her SIP password at this edge (and at no other realm): it goes only to her own session, over
the console's connection, never cached (the API answers no-store). Her colleagues (enabled users
with a SIP credential) are listed for the phone's transfer menu.

No WebSocket port on this server, or no SIP credential for her: `enabled` false with the reason in
French (a 200: the console asks on every load, and that is no error); the console then shows no
phone line and her softphone is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from callrouter.ports import UserView
from callrouter.web.router import Context, Route, guarded

NO_WSS = "Le téléphone intégré n'est pas activé sur ce serveur (sip.wss_port)."
NO_CREDENTIAL = "Aucun mot de passe SIP n'est enregistré pour votre compte : demandez-le à l'administrateur."


class PhoneUsers(Protocol):
    """What the phone needs of the users (callrouter.store.users.UserRepository)."""

    def sip_credential(self, username: str) -> tuple[str, str] | None: ...
    def list(self, role: str | None = None) -> list[UserView]: ...


@dataclass(frozen=True)
class PhoneApi:
    users: PhoneUsers
    realm: str
    wss_port: int  # 0: the edge has no WebSocket socket
    ringing_timeout_s: int = 60

    def describe(self, ctx: Context) -> dict:
        if not self.wss_port:
            return {"enabled": False, "message": NO_WSS}
        me = ctx.user.username
        credential = self.users.sip_credential(me)
        if credential is None:
            return {"enabled": False, "message": NO_CREDENTIAL}
        return {"enabled": True, "username": me, "display_name": ctx.user.display_name, "realm": self.realm,
                "ha1": credential[0], "wss_port": self.wss_port,
                "colleagues": colleagues(self.users.list(), me)}


def colleagues(users: Sequence[UserView], me: str) -> list[dict]:
    """Whom she can transfer a call to: the other enabled users with a SIP credential, by name."""
    found = [u for u in users if u.username != me and u.enabled and u.has_sip_credential]
    return [{"username": u.username, "display_name": u.display_name}
            for u in sorted(found, key=lambda u: (u.display_name.lower(), u.username))]


def phone_routes(api: PhoneApi | None) -> list[Route]:
    h = guarded(api, "the console's phone is not available on this server")
    return [Route("GET", "/api/phone", h("describe"))]
