"""A media worker process: one pjsua2 Endpoint on its own loopback SIP UDP port.

The only package importing pjsua2. It executes the controller's commands (see protocol.py) and
reports events; it decides nothing. Run as::

    python -m callrouter.media.worker --name w0 --sip-port 5070 --rtp-port 20000

Commands arrive as JSON lines on stdin, events leave as JSON lines on stdout, logs go to stderr.
End of stdin (or SIGTERM) means "shut down": every call is hung up and the process exits 0.
SIGINT is ignored: the controller, not a terminal's Ctrl-C, decides when workers stop.

Threads: pjsua runs with `threadCnt = 0`, `mainThreadOnly` and its media on the SIP I/O queue, so
SIP and RTP are read, and their callbacks run, inside `libHandleEvents` on the main thread. The
main loop sleeps there until something happens: a packet, a command (read by a thread of its own),
a callback posted from the conference clock's thread (the end of a prompt), a signal, or the next
deadline of a leg (wake.py). A command is executed as it arrives; an idle worker has no timer and
its conference clock is stopped (clock.py).

Its rooms: pjsua.py (the endpoint and the pjsua2 subclasses whose callbacks only queue),
loop.py (the main loop and the event pipe), wake.py (what wakes the loop), clock.py (the
conference clock), callbacks.py (queued callbacks become events), commands.py (commands executed),
legs.py (legs and their media), call_recording.py (conversations recorded), main.py (the command
line).
"""
