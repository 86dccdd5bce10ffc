"""The edge's WebRTC side: SIP over secure WebSocket for the console's phone, media through rtpengine.

With `sip.wss_port` set, Kamailio listens for TLS on that port too and upgrades HTTP requests there
to WebSocket (its websocket and xhttp modules); the SIP that comes over it goes through the same
request route as UDP/TLS: the same bans, size limit, digest check against the users table and the
same registrar, so a secretary is reachable whether her phone is the browser or a softphone.

Media: the browser speaks ICE, DTLS-SRTP and rtcp-mux, the workers plain RTP/AVP with G.711. On the
legs that reach a WebSocket contact (and only those) Kamailio asks rtpengine (its rtpengine module,
ng protocol on a loopback UDP port) to rewrite each SDP: towards the browser `WEBRTC_FLAGS`, towards
the worker `PLAIN_FLAGS`. rtpengine itself is a child of the sip service (callrouter.sip.rtpengine).

The handshake's Origin is checked against `sip.wss_origins` (by default the console's own origins,
`console_origins`): a page of another site cannot make a secretary's browser open the edge's
WebSocket. A handshake without Origin (not a browser: a softphone over WSS) is let through, as any
client may write any Origin; the digest check is what keeps those out.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from callrouter.sip.settings import SipSettings

# rtpengine's ng flags for the SDP sent to a browser, and for the one sent to a worker.
# The codecs pass through: the browser offers Opus and G.711 among others, a worker takes G.711.
WEBRTC_FLAGS = ("trust-address replace-origin replace-session-connection ICE=force RTP/SAVPF "
                "rtcp-mux-require DTLS=passive SDES-off generate-mid")
PLAIN_FLAGS = ("trust-address replace-origin replace-session-connection ICE=remove RTP/AVP "
               "rtcp-mux-demux DTLS=off SDES-off")


def enabled(sip: SipSettings) -> bool:
    return sip.wss_port != 0 and sip.tls_port != 0


def console_origins(host: str, port: int, tls: bool, console_url: str) -> tuple[str, ...]:
    """The origins the console's pages have: that of `console_url` (its public address), and the
    HTTP server's own address (with localhost beside a loopback one, and both loopback names for
    a server on every address, as `make run` opens it)."""
    scheme = "https" if tls else "http"
    default = 443 if tls else 80
    hosts = {"0.0.0.0": ("127.0.0.1", "localhost"), "::": ("[::1]", "localhost"), "127.0.0.1": ("127.0.0.1", "localhost"),
             "::1": ("[::1]", "localhost")}.get(host)
    if hosts is None:
        hosts = (f"[{host}]" if ":" in host else host.lower(),)
    origins = [f"{scheme}://{h}" + ("" if port == default else f":{port}") for h in hosts]
    public = urlsplit(console_url)
    if public.scheme in ("http", "https") and public.netloc:
        origins.insert(0, f"{public.scheme}://{public.netloc.lower()}")
    return tuple(dict.fromkeys(origins))


def origins_regex(origins: tuple[str, ...]) -> str:
    """The alternatives of one extended regex matching one of the (validated) origins (anchored by
    kamailio.cfg: a `$` here would read as a variable); dots and brackets as bracket expressions,
    so that no backslash goes through Kamailio's string parsing."""
    escape = str.maketrans({".": "[.]", "[": "[[]", "]": "[]]"})
    return "|".join(o.translate(escape) for o in origins)


def generated_lines(sip: SipSettings) -> list[str]:
    """`#!define` values and the WSS socket, for the generated block of kamailio.cfg (none when off)."""
    if not enabled(sip):
        return []
    address = sip.listen_address
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    advertise = f" advertise {sip.advertised_address}:{sip.wss_port}" if sip.advertised_address else ""
    return [
        "#!define WITH_WEBSOCKET",
        f"#!define WSS_PORT {sip.wss_port}",
        "#!define WITH_RTPENGINE",
        f'#!define RTPENGINE_SOCK "udp:127.0.0.1:{sip.rtpengine_ng_port}"',
        f'#!define RTPENGINE_WEBRTC "{WEBRTC_FLAGS}"',
        f'#!define RTPENGINE_PLAIN "{PLAIN_FLAGS}"',
        f"listen=tls:{host}:{sip.wss_port}{advertise}",
    ] + ([] if not sip.wss_origins or "*" in sip.wss_origins else [
        "#!define WITH_WSS_ORIGINS",
        f'#!substdef "!WSS_ORIGINS!{origins_regex(sip.wss_origins)}!g"',
    ])
