"""Relays: a leg's audio to and from a leg of another worker, without a call slot.

A caller and her secretary are normally two legs of one worker, bridged in its conference. When
the caller's worker has no slot left, the pool places the secretary's leg on another worker and
joins the two conferences with a relay: at each end a pjmedia stream (RTP over loopback, G.711
A-law, the codec work in C, nothing per frame in Python) added to the conference and connected
both ways to the leg. A pjmedia stream is what pjsua builds for a call, minus the SIP dialog, so
it takes no call slot (PJSUA_MAX_CALLS counts dialogs).

pjsua2 has no API for a stream without a call; the pjmedia and pjsua C functions it is built on
are exported by its extension module and called here with ctypes, as pjsua itself calls them
(pjsua_aud.c: stream from SDP, started, its port added to the bridge; on close the port removed
from the bridge, the stream destroyed, the transport closed later, once the bridge has let go).

The pool's protocol: `relay_open` (this worker's end for a leg: its RTP port is reported with
`relay_ready`), `relay_connect` (the other end's port: audio flows), `relay_close`. A relay also
closes with its leg (`relay_ended`).
"""

from __future__ import annotations

import ctypes
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from callrouter.media import protocol as p

logger = logging.getLogger(__name__)

STREAM_INFO_BYTES = 64 * 1024  # more than sizeof(pjmedia_stream_info) in any 2.x build
CLOSE_AFTER_S = 0.2            # the bridge removes ports on its ticks: the transport goes after
# pjsip's select() I/O queue holds 64 sockets (PJ_IOQUEUE_MAX_HANDLES): the SIP socket, two per
# call and two per relay, those closing included, and a socket's place is free again only
# PJ_IOQUEUE_KEY_FREE_DELAY (500 ms) after it closed. A worker needs at most one relay per leg:
# past MAX_RELAYS (open, closing or closed within KEY_FREE_S) a new one is refused, never a crash.
MAX_RELAYS = 16
KEY_FREE_S = 0.6
TRANSPORT_OP_OFFSET = 40       # pjmedia_transport: char name[32]; type; *op (transport.h)
# pjmedia_transport_op's function pointers, in transport.h's order: get_info, attach, detach,
# send_rtp, send_rtcp, send_rtcp2, media_create, encode_sdp, media_start, media_stop,
# simulate_lost, destroy, attach2.
OP_MEDIA_CREATE, OP_MEDIA_START, OP_MEDIA_STOP, OP_DESTROY = 6, 8, 9, 11

SDP = ("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=relay\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n")


class RelayError(Exception):
    """A pjmedia call failed (its status code in the message)."""


class _PjStr(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_char_p), ("slen", ctypes.c_ssize_t)]


class _Pjmedia:
    """The C functions a relay uses, from the pjsua2 extension module."""

    def __init__(self) -> None:
        import pjsua2._pjsua2 as ext

        lib = ctypes.CDLL(ext.__file__)
        vp, pvp, i = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int

        def fn(name: str, restype: Any, *args: Any) -> Any:
            f = getattr(lib, name)
            f.restype, f.argtypes = restype, list(args)
            return f

        self.endpt = fn("pjsua_get_pjmedia_endpt", vp)
        self.pool_create = fn("pjsua_pool_create", vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t)
        self.pool_release = fn("pj_pool_release", None, vp)
        self.udp_create = fn("pjmedia_transport_udp_create2", i, vp, ctypes.c_char_p, ctypes.POINTER(_PjStr),
                             i, ctypes.c_uint, pvp)
        self.sdp_parse = fn("pjmedia_sdp_parse", i, vp, ctypes.c_char_p, ctypes.c_size_t, pvp)
        self.info_from_sdp = fn("pjmedia_stream_info_from_sdp", i, vp, vp, vp, vp, vp, ctypes.c_uint)
        self.stream_create = fn("pjmedia_stream_create", i, vp, vp, vp, vp, vp, pvp)
        self.stream_start = fn("pjmedia_stream_start", i, vp)
        self.stream_port = fn("pjmedia_stream_get_port", i, vp, pvp)
        self.stream_destroy = fn("pjmedia_stream_destroy", i, vp)
        self.conf_add = fn("pjsua_conf_add_port", i, vp, vp, ctypes.POINTER(i))
        self.conf_remove = fn("pjsua_conf_remove_port", i, i)
        self.conf_connect = fn("pjsua_conf_connect", i, i, i)

    @staticmethod
    def check(status: int, what: str) -> None:
        if status != 0:
            raise RelayError(f"{what}: pjmedia status {status}")

    @staticmethod
    def transport_op(tp: int, index: int, *args: Any) -> int:
        """pjmedia_transport_media_start() and the others are inline functions of transport.h
        calling `tp->op->...`: the same call, through the operation table."""
        op = ctypes.c_void_p.from_address(tp + TRANSPORT_OP_OFFSET).value
        fn = ctypes.c_void_p.from_address(op + index * ctypes.sizeof(ctypes.c_void_p)).value
        argtypes = [ctypes.c_void_p] * (1 + len(args))
        if index == OP_MEDIA_CREATE:
            argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_uint]
        elif index == OP_MEDIA_START:
            argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint]
        return ctypes.CFUNCTYPE(ctypes.c_int, *argtypes)(fn)(tp, *args)


@dataclass
class Relay:
    id: str
    leg: str
    port: int
    pool: int
    transport: int
    leg_slot: int | None = None
    stream: int | None = None
    slot: int | None = None
    keep: list[Any] = field(default_factory=list)  # C buffers pjmedia points into while the stream lives


@dataclass
class FarEnd:
    """A relay standing for the other worker's leg (id: the relay's)."""

    id: str
    media: Any


class Relays:
    """One worker's relay ends, by relay id. RTP ports are taken from the top of the worker's RTP
    range down (pjsua takes its calls' from the bottom up; a port in use is skipped either way)."""

    def __init__(self, bind: str, rtp_port: int, rtp_port_range: int, emit: Callable[[p.Event], None],
                 endpoint: Any = None, stopped: Callable[[str], None] = lambda relay_id: None) -> None:
        """`stopped(relay_id)`: a relay closed (a conversation recording of its far side ends)."""
        self._bind, self._low, self._high, self._emit = bind, rtp_port, rtp_port + rtp_port_range, emit
        self._ep, self._stopped = endpoint, stopped
        self._c: _Pjmedia | None = None
        self.active: dict[str, Relay] = {}
        self.closing: list[tuple[float, Relay]] = []
        self._freed: list[float] = []  # when closed relays' sockets may be reused

    def busy(self) -> bool:
        return bool(self.active or self.closing)

    def of_leg(self, leg_id: str) -> list[Relay]:
        return [r for r in self.active.values() if r.leg == leg_id]

    def open(self, relay_id: str, leg: Any) -> None:
        """This worker's end of `relay_id` for `leg` (a Leg with audio); reports relay_ready."""
        now = time.monotonic()
        self._freed = [t for t in self._freed if t > now]
        if len(self.active) + len(self.closing) + len(self._freed) >= MAX_RELAYS:
            raise RelayError(f"this worker already holds {MAX_RELAYS} relays")
        c = self._c = self._c or _Pjmedia()
        pool = c.pool_create(f"relay-{relay_id}".encode()[:30], 1024, 1024)
        if not pool:
            raise RelayError("no memory for a relay")
        addr = self._bind.encode()
        transport = ctypes.c_void_p()
        for port in range(self._high - 2, self._low - 1, -2):
            status = c.udp_create(c.endpt(), b"relay", ctypes.byref(_PjStr(addr, len(addr))), port, 0,
                                  ctypes.byref(transport))
            if status == 0:
                break
        else:
            c.pool_release(pool)
            raise RelayError("no free RTP port pair left for a relay")
        relay = Relay(relay_id, leg.id, port, pool, transport.value)
        self.active[relay_id] = relay
        self._emit(p.RelayReady(relay=relay_id, port=port))

    def connect(self, relay_id: str, peer_port: int, leg: Any) -> None:
        """The far end listens on `peer_port`: the stream starts and joins the leg both ways."""
        try:
            self._connect(self.active[relay_id], peer_port, leg)
        except RelayError:
            self.close(relay_id)
            raise
        logger.info("relay %s: leg %s joined to the far end at port %s", relay_id, leg.id, peer_port)

    def _connect(self, relay: Relay, peer_port: int, leg: Any) -> None:
        c = self._c
        assert c is not None
        sdps = []
        for port in (relay.port, peer_port):
            text = ctypes.create_string_buffer(SDP.format(ip=self._bind, port=port).encode())
            sdp = ctypes.c_void_p()
            c.check(c.sdp_parse(relay.pool, text, len(text.value), ctypes.byref(sdp)), "SDP")
            relay.keep.append(text)
            sdps.append(sdp)
        info = ctypes.create_string_buffer(STREAM_INFO_BYTES)
        relay.keep.append(info)
        c.check(c.info_from_sdp(info, relay.pool, c.endpt(), sdps[0], sdps[1], 0), "stream info")
        stream = ctypes.c_void_p()
        # As pjsua does for a call: the transport's media created and started (for UDP: reading
        # begins, sending is allowed), then the stream on it.
        c.check(c.transport_op(relay.transport, OP_MEDIA_CREATE, relay.pool, 0, None, 0), "transport media")
        c.check(c.transport_op(relay.transport, OP_MEDIA_START, relay.pool, sdps[0], sdps[1], 0), "transport start")
        c.check(c.stream_create(c.endpt(), None, info, relay.transport, None, ctypes.byref(stream)), "stream")
        relay.stream = stream.value
        c.check(c.stream_start(relay.stream), "stream start")
        port = ctypes.c_void_p()
        c.check(c.stream_port(relay.stream, ctypes.byref(port)), "stream port")
        slot = ctypes.c_int()
        c.check(c.conf_add(relay.pool, port, ctypes.byref(slot)), "bridge port")
        relay.slot = slot.value
        self.attach(relay, leg)

    def attach(self, relay: Relay, leg: Any) -> None:
        """Connect the relay and the leg's conference port both ways (again after a re-INVITE)."""
        if relay.slot is None or leg.media is None:
            return
        c = self._c
        assert c is not None
        relay.leg_slot = leg.media.getPortId()
        c.check(c.conf_connect(relay.leg_slot, relay.slot), "connect to the relay")
        c.check(c.conf_connect(relay.slot, relay.leg_slot), "connect from the relay")

    def far_end(self, relay_id: str) -> "FarEnd":
        """The relay's end as a leg for a conversation recording: what the other worker's leg says
        comes out of its conference port."""
        relay = self.active[relay_id]
        if relay.slot is None or self._ep is None:
            raise RelayError(f"relay {relay_id!r} is not connected yet")
        media = next((m for m in self._ep.mediaEnumPorts2() if m.getPortId() == relay.slot), None)
        if media is None:
            raise RelayError(f"relay {relay_id!r} has no conference port")
        return FarEnd(relay_id, media)

    def media_changed(self, leg: Any) -> None:
        for relay in self.of_leg(leg.id):
            if leg.media is not None and leg.media.getPortId() != relay.leg_slot:
                self.attach(relay, leg)

    def close(self, relay_id: str, reason: str = "closed", report: bool = False) -> None:
        relay = self.active.pop(relay_id, None)
        if relay is None:
            return
        c = self._c
        assert c is not None
        if relay.slot is not None:
            c.conf_remove(relay.slot)  # queued: done on the bridge's next tick
        if relay.stream is not None:
            c.stream_destroy(relay.stream)  # the bridge holds its port's reference until then
        self.closing.append((time.monotonic() + CLOSE_AFTER_S, relay))
        self._stopped(relay_id)
        if report:
            self._emit(p.RelayEnded(relay=relay_id, reason=reason))

    def leg_stopped(self, leg_id: str) -> None:
        """The leg ended (or the worker stops): its relays end with it, reported to the pool."""
        for relay in self.of_leg(leg_id):
            self.close(relay.id, "leg_ended", report=True)

    def tick(self, now: float) -> None:
        """Transports and pools of closed relays, once the bridge has let go of their streams."""
        c = self._c
        waiting = []
        for due, relay in self.closing:
            if now < due:
                waiting.append((due, relay))
                continue
            assert c is not None
            c.transport_op(relay.transport, OP_MEDIA_STOP)
            c.transport_op(relay.transport, OP_DESTROY)
            c.pool_release(relay.pool)
            relay.keep.clear()
            self._freed.append(now + KEY_FREE_S)
        self.closing = waiting

    def next_deadline(self) -> float | None:
        return min((due for due, _ in self.closing), default=None)
