"""The worker's command line: its ports, then the loop until stdin ends."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import pjsua2 as pj

from callrouter.media.worker.loop import Worker

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="callrouter.media.worker",
                                     description="A media worker process: one pjsua2 Endpoint on its own "
                                                 "loopback SIP UDP port.")
    parser.add_argument("--name", default="w0", help="worker name, prefix of the leg ids it makes")
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--rtp-port", type=int, default=20000, help="first RTP port tried")
    parser.add_argument("--rtp-port-range", type=int, default=200, help="how many RTP ports it may use")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--pj-log-level", type=int, default=1)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Keep the protocol channel to ourselves: whatever pjsua prints on fd 1 lands on stderr.
    events = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s worker[{args.name}]: %(message)s")
    try:
        worker = Worker(args.name, args.sip_port, args.rtp_port, events, pj_log_level=args.pj_log_level,
                        bind=args.bind, rtp_port_range=args.rtp_port_range)
    except pj.Error as exc:
        logger.error("cannot start: %s", exc.info())
        return 2
    # The controller stops workers by closing their stdin. Ctrl-C in a terminal reaches the whole
    # process group: leave it to the controller; SIGTERM asks for the same orderly stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run(sys.stdin.fileno())
    return 0
