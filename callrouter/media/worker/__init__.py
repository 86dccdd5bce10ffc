"""A media worker process: one pjsua2 Endpoint on its own loopback SIP UDP port.

The only package importing pjsua2. It executes the controller's commands (see protocol.py) and
reports events; it decides nothing. Run as::

    python -m callrouter.media.worker --name w0 --sip-port 5070 --rtp-port 20000

Commands arrive as JSON lines on stdin, events leave as JSON lines on stdout, logs go to stderr.
End of stdin (or SIGTERM) means "shut down": every call is hung up and the process exits 0.
SIGINT is ignored: the controller, not a terminal's Ctrl-C, decides when workers stop.

Threads: pjsua runs with `threadCnt = 0` and `mainThreadOnly`, so SIP callbacks run inside
`libHandleEvents` on the main thread; pjmedia keeps its own media and clock threads. Callbacks
that may come from those (end of a prompt) only append to a queue that the main loop drains.
The loop blocks in `libHandleEvents(poll_ms)` then reads stdin without blocking, so a command waits
at most `poll_ms` (20 ms) while the worker holds legs, `idle_poll_ms` (100 ms) when it holds none;
SIP traffic wakes the loop at once. Measured idle: about 0.4% of one CPU, 30 MB RSS.

Its rooms: pjsua.py (the endpoint and the pjsua2 subclasses whose callbacks only queue),
loop.py (the main loop and the event pipe), callbacks.py (queued callbacks become events),
commands.py (commands executed), legs.py (legs and their media), main.py (the command line).
"""
