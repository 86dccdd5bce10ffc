"""The pjsua2 objects of a media worker: the endpoint it starts, and the account, call and player
subclasses whose callbacks pjsua calls.

Callbacks only post a tuple to the worker's queue (`post`); the main loop handles it later
(see loop.py). A callback never lets an exception into pjsua.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any, Callable

import pjsua2 as pj

logger = logging.getLogger(__name__)

REQUESTED_MAX_CALLS = 512  # pjsua clamps this to its compiled PJSUA_MAX_CALLS
# How long a SIP transaction of the worker waits for its final response (pjsip's `td`: timers B,
# D, F, H and J; RFC 3261's 64*T1 = 32 s). A leg hung up here keeps its pjsua call slot until its
# BYE is answered: a phone that never answers it held the slot 32 s. Every request of the worker
# goes to the edge on loopback, which answers or relays at once and runs the far side's timers
# itself, so 8 s still leaves room for a slow phone's answer relayed by the edge. Retransmissions
# (T1, T2) are pjsip's defaults. A CANCEL that gets no 487 is timed by pjsip's own 64*T1.
TRANSACTION_TIMEOUT_MS = 8000
KEEP_CODECS = ("PCMA/8000/1", "PCMU/8000/1")

Post = Callable[[tuple], None]


def _pjsua_c(symbol: str) -> Any:
    """A C function of the pjsua library statically linked into the pjsua2 extension module."""
    import pjsua2._pjsua2 as ext

    return getattr(ctypes.CDLL(ext.__file__), symbol)


def quiet_pjlib(level: int) -> None:
    """Apply the log level before libCreate, which otherwise prints its banner on every start."""
    try:
        _pjsua_c("pj_log_set_level")(ctypes.c_int(level))
    except (OSError, AttributeError, ImportError):  # pragma: no cover - other builds
        pass


def compiled_call_cap(requested: int) -> int:
    """How many calls pjsua accepted, read after libInit.

    pjsua_call_subsys_init clamps `max_calls` to PJSUA_MAX_CALLS without telling; pjsua2 has no
    getter, but the C function `pjsua_call_get_max_count()` is exported by the extension module.
    """
    try:
        fn = _pjsua_c("pjsua_call_get_max_count")
        fn.restype = ctypes.c_uint
        fn.argtypes = []
        return int(fn())
    except (OSError, AttributeError, ImportError) as exc:  # pragma: no cover - other builds
        logger.warning("cannot read pjsua's call cap (%s); assuming %s", exc, requested)
        return requested


def shorten_transactions(timeout_ms: int = TRANSACTION_TIMEOUT_MS) -> None:
    """Set pjsip's transaction timeout (`pjsip_tsx_set_timers`: 0 leaves T1, T2 and T4 alone)."""
    try:
        fn = _pjsua_c("pjsip_tsx_set_timers")
        fn.restype, fn.argtypes = None, [ctypes.c_uint] * 4
        fn(0, 0, 0, timeout_ms)
    except (OSError, AttributeError, ImportError) as exc:  # pragma: no cover - other builds
        logger.warning("cannot shorten pjsip's transaction timeout (%s): a hung-up leg may keep its slot 32 s", exc)


def calls_in_use() -> Callable[[], int]:
    """pjsua's own count of call slots in use (`pjsua_call_get_count`): a leg hung up here keeps
    its slot until its INVITE session ends (the BYE answered, the CANCEL's 487 received), after
    pjsua already reported it disconnected."""
    fn = _pjsua_c("pjsua_call_get_count")
    fn.restype, fn.argtypes = ctypes.c_uint, []
    return lambda: int(fn())


def start_endpoint(sip_port: int, bind: str, pj_log_level: int) -> tuple[pj.Endpoint, int]:
    """A started pjsua endpoint on one loopback UDP port, G.711 only; and the number of calls it
    can hold.

    One thread does all the I/O: SIP and RTP sockets share pjsip's I/O queue, polled by the main
    loop's `libHandleEvents` (`hasIoqueue = False`, no media thread: pjmedia's own would wake every
    10 ms, calls or not), so a digit's callback runs on the main thread too. No sound device and no
    auto-close timer: the conference clock is opened and closed by the worker (clock.py)."""
    quiet_pjlib(pj_log_level)
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.maxCalls = REQUESTED_MAX_CALLS
    cfg.uaConfig.userAgent = "callrouter-media"
    cfg.logConfig.level = pj_log_level
    cfg.logConfig.consoleLevel = pj_log_level
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.channelCount = 1
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.hasIoqueue = False
    cfg.medConfig.threadCnt = 0
    cfg.medConfig.sndAutoCloseTime = -1
    ep.libInit(cfg)
    cap = compiled_call_cap(REQUESTED_MAX_CALLS)
    shorten_transactions()
    tcfg = pj.TransportConfig()
    tcfg.port = sip_port
    tcfg.boundAddress = bind
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    for codec in ep.codecEnum2():
        keep = codec.codecId in KEEP_CODECS
        ep.codecSetPriority(codec.codecId, 255 - KEEP_CODECS.index(codec.codecId) if keep else 0)
    return ep, cap


def create_account(name: str, bind: str, sip_port: int, rtp_port: int, rtp_port_range: int,
                   incoming: Callable[["Account", int, str], None]) -> "Account":
    """The worker's one account (no registration): its calls' RTP ports start at `rtp_port`."""
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{name}@{bind}:{sip_port}"
    acfg.mediaConfig.transportConfig.port = rtp_port
    acfg.mediaConfig.transportConfig.boundAddress = bind
    acfg.mediaConfig.transportConfig.portRange = rtp_port_range
    account = Account(incoming)
    account.create(acfg, True)
    return account


class Player(pj.AudioMediaPlayer):
    def __init__(self, post: Post, leg: str, token: int) -> None:
        super().__init__()
        self._post, self._leg, self._token = post, leg, token

    def onEof2(self) -> None:  # may run on the media clock thread: only queue
        try:
            self._post(("eof", self._leg, self._token))
        except Exception:  # pragma: no cover - never let an exception into pjsua
            logger.exception("eof callback failed")


class Call(pj.Call):
    def __init__(self, post: Post, leg: str, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(account, call_id)
        self._post, self._leg = post, leg

    def onCallState(self, prm: Any) -> None:
        try:
            info = self.getInfo()
            self._post(("state", self._leg, info.state, info.lastStatusCode, info.lastReason))
        except Exception:
            logger.exception("call state callback failed")

    def onCallMediaState(self, prm: Any) -> None:
        try:
            self._post(("media", self._leg))
        except Exception:
            logger.exception("media state callback failed")

    def onDtmfDigit(self, prm: Any) -> None:
        try:
            method = "info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
            self._post(("digit", self._leg, str(prm.digit), method))
        except Exception:
            logger.exception("dtmf callback failed")

    def onCallTransferRequest(self, prm: Any) -> None:
        prm.statusCode = 603  # the controller decides transfers; a REFER from outside is refused

    def onCallTransferStatus(self, prm: Any) -> None:
        try:
            if prm.finalNotify:
                self._post(("xfer_done", self._leg, prm.statusCode))
            prm.cont = False
        except Exception:
            logger.exception("transfer status callback failed")


class Account(pj.Account):
    def __init__(self, incoming: Callable[["Account", int, str], None]) -> None:
        super().__init__()
        self._incoming = incoming

    def onIncomingCall(self, prm: Any) -> None:
        try:
            self._incoming(self, prm.callId, prm.rdata.wholeMsg)
        except Exception:
            logger.exception("incoming call callback failed")
