"""The edge's WebRTC side: SIP over secure WebSocket for the console's phone, media through rtpengine.

With `sip.wss_port` set, Kamailio listens for TLS on that port too and upgrades HTTP requests there
to WebSocket (its websocket and xhttp modules); the SIP that comes over it goes through the same
request route as UDP/TLS: the same bans, size limit, digest check against the users table and the
same registrar, so a secretary is reachable whether her phone is the browser or a softphone.

Media: the browser speaks ICE, DTLS-SRTP and rtcp-mux, the workers plain RTP/AVP with G.711. On the
legs that reach a WebSocket contact (and only those) Kamailio asks rtpengine (its rtpengine module,
ng protocol on a loopback UDP port) to rewrite each SDP: towards the browser `WEBRTC_FLAGS`, towards
the worker `PLAIN_FLAGS`. rtpengine itself is a child of the sip service (callrouter.sip.rtpengine).
"""

from __future__ import annotations

import ipaddress

from callrouter.sip.settings import SipSettings

# rtpengine's ng flags for the SDP sent to a browser, and for the one sent to a worker.
# The codecs pass through: the browser offers Opus and G.711 among others, a worker takes G.711.
WEBRTC_FLAGS = ("trust-address replace-origin replace-session-connection ICE=force RTP/SAVPF "
                "rtcp-mux-require DTLS=passive SDES-off generate-mid")
PLAIN_FLAGS = ("trust-address replace-origin replace-session-connection ICE=remove RTP/AVP "
               "rtcp-mux-demux DTLS=off SDES-off")


def enabled(sip: SipSettings) -> bool:
    return sip.wss_port != 0 and sip.tls_port != 0


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
    ]
