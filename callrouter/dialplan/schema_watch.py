"""The dialplan's `watch` section: the forwarding watch, off unless written (docs/forwarding-watch.md).

```yaml
watch:
  forwarding: closed                 # always | closed | no_answer: how the line is forwarded
  at: ["03:10", "12:30-13:00"]       # daily windows (a time alone: a 15-minute window)
  every: 2h                          # and/or windows of that length from local midnight
  days: daily                        # mon-fri, sat-sun...
  numbers: ["+33142000001"]          # default: every number of the practice
  timeout: 30s                       # how long the call back is waited for
  retry_after: 5m                    # one retry, this much later
  max_calls_per_day: 4               # retries included
  contacts: {email: [cabinet@example.fr], sms: ["+33612345678"]}
```

A number is called and expected back on itself; `{call: +33..., returns_on: +33...}` calls one
number (the public line) and expects it back on another of the practice's numbers. Every error
names the file, the line and the key, as elsewhere in the dialplan.
"""

from __future__ import annotations

import re
from typing import Mapping

from callrouter.dialplan.context import Context
from callrouter.dialplan.fields import join
from callrouter.dialplan.yamlsrc import YMap, YNode, YScalar, YSeq
from callrouter.domain.model import MINUTES_PER_DAY, Site
from callrouter.domain.watch_spec import (
    DEFAULT_SPREAD_MIN, DEFAULT_TIMEOUT_S, FORWARDING_MODES, WatchedNumber, WatchSpec, WatchWindow,
)

KEYS = ("forwarding", "at", "every", "days", "numbers", "timeout", "retry_after", "max_calls_per_day", "contacts")
NUMBER_KEYS = ("call", "returns_on")
CONTACT_KEYS = ("email", "sms")
MIN_EVERY_S, MAX_EVERY_S = 15 * 60, 24 * 3600
MAX_CALLS = 48
MAX_CONTACTS = 10
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


def read_watch(ctx: Context, node: YNode | None, numbers: tuple[str, ...],
               sites: Mapping[str, Site]) -> WatchSpec | None:
    """The watch, or None when it is off (`watch: off`) or after an error."""
    r = ctx.reader
    if isinstance(node, YScalar) and (node.value is False or str(node.value).strip().lower() == "off"):
        return None
    m = r.mapping(node, "watch", KEYS, required=("forwarding",))
    if m is None:
        return None
    g = m.get
    forwarding = r.one_of(g("forwarding"), "watch.forwarding", FORWARDING_MODES, "always")
    days = tuple(range(7))
    if "days" in m.items:
        text = r.text(g("days"), "watch.days")
        days = (r.days(text, g("days").line, "watch.days") if text else None) or days
    windows = _at(ctx, g("at"), days) + _every(ctx, g("every"), days)
    if "at" not in m.items and "every" not in m.items:
        r.error(m.line, "watch", 'says neither "at" nor "every": give the daily times of the watch calls, '
                                 'e.g. at: ["03:10"], or every: 2h')
    watched = _numbers(ctx, g("numbers"), numbers, sites)
    timeout = r.duration(g("timeout"), "watch.timeout", DEFAULT_TIMEOUT_S[forwarding], hi=300)
    if "timeout" in m.items and timeout < 5:
        r.error(g("timeout").line, "watch.timeout", "must be at least 5s: the call needs time to come back")
    retry = r.duration(g("retry_after"), "watch.retry_after", 300.0, hi=6 * 3600)
    if "retry_after" in m.items and retry < 5:
        r.error(g("retry_after").line, "watch.retry_after", "must be at least 5s (minutes are better: a lost "
                                                             "call is ridden out by waiting a little)")
    cap = r.integer(g("max_calls_per_day"), "watch.max_calls_per_day", 4, 2, MAX_CALLS)
    emails, sms = _contacts(ctx, g("contacts"))
    if not windows or not watched:
        return None
    return WatchSpec(forwarding, watched, windows, timeout, retry, cap, emails, sms)


def _items(node: YNode | None) -> list[tuple[YNode, int | None]]:
    if isinstance(node, YSeq):
        return [(n, i) for i, n in enumerate(node.items)]
    return [] if node is None else [(node, None)]


def _at(ctx: Context, node: YNode | None, days: tuple[int, ...]) -> tuple[WatchWindow, ...]:
    r = ctx.reader
    out: list[WatchWindow] = []
    for n, i in _items(node):
        path = "watch.at" if i is None else f"watch.at[{i}]"
        value = r.text(n, path)
        if value is None:
            continue
        if "-" in value:
            span = r.time_range(n, path)
            if span is None:
                continue
            if span.crosses_midnight and span.end != 0:
                r.error(n.line, path, f'"{value}" crosses midnight: write two windows, one each side of it')
                continue
            out.append(WatchWindow(span.start, span.end or MINUTES_PER_DAY, days))
            continue
        start = r.time_of_day(value, n.line, path, allow_24=False)
        if start is not None:
            out.append(WatchWindow(start, min(MINUTES_PER_DAY, start + DEFAULT_SPREAD_MIN), days))
    if isinstance(node, YSeq) and not node.items:
        r.error(node.line, "watch.at", 'lists no time: give at least one, e.g. ["03:10"]')
    return tuple(out)


def _every(ctx: Context, node: YNode | None, days: tuple[int, ...]) -> tuple[WatchWindow, ...]:
    if node is None:
        return ()
    r = ctx.reader
    seconds = r.duration(node, "watch.every", 0.0, hi=MAX_EVERY_S)
    if not seconds:
        return ()
    if seconds < MIN_EVERY_S or seconds % 60:
        r.error(node.line, "watch.every", "must be a whole number of minutes, at least 15m (e.g. 30m, 1h, 4h)")
        return ()
    step = int(seconds // 60)
    return tuple(WatchWindow(start, min(MINUTES_PER_DAY, start + step), days)
                 for start in range(0, MINUTES_PER_DAY, step))


def _numbers(ctx: Context, node: YNode | None, numbers: tuple[str, ...],
             sites: Mapping[str, Site]) -> tuple[WatchedNumber, ...]:
    r = ctx.reader
    site_of: dict[str, str | None] = {n: None for n in numbers}
    for site in sites.values():
        site_of.update({n: site.id for n in site.numbers})
    if node is None:
        return tuple(WatchedNumber(n, n, s) for n, s in site_of.items())
    out: dict[str, WatchedNumber] = {}
    for n, i in _items(node):
        path = "watch.numbers" if i is None else f"watch.numbers[{i}]"
        if isinstance(n, YMap):
            m = r.mapping(n, path, NUMBER_KEYS, required=NUMBER_KEYS)
            call = r.phone(m.get("call"), join(path, "call")) if m is not None and "call" in m.items else None
            back_node = m.get("returns_on") if m is not None else None
            back = r.phone(back_node, join(path, "returns_on")) if back_node is not None else None
            line, back_path = (back_node.line if back_node else n.line), join(path, "returns_on")
        else:
            call = back = r.phone(n, path)
            line, back_path = n.line, path
        if call is None or back is None:
            continue
        if back not in site_of:
            r.error(line, back_path, f"{back} is not a number of this practice (numbers or a site's numbers); to call "
                                     f"a public line forwarded to one of them, write {{call: <public number>, "
                                     f"returns_on: <one of this practice's numbers>}}")
            continue
        if call in out:
            r.error(n.line, path, f"{call} is watched twice")
            continue
        out[call] = WatchedNumber(call, back, site_of[back])
    if isinstance(node, YSeq) and not node.items:
        r.error(node.line, "watch.numbers", "lists no number: leave it out to watch every number of the practice")
    return tuple(out.values())


def _contacts(ctx: Context, node: YNode | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    r = ctx.reader
    if node is None:
        return (), ()
    m = r.mapping(node, "watch.contacts", CONTACT_KEYS)
    if m is None:
        return (), ()
    emails: list[str] = []
    phones: list[str] = []
    for key, out in (("email", emails), ("sms", phones)):
        items = _items(m.get(key))
        if len(items) > MAX_CONTACTS:
            r.error(m.get(key).line, f"watch.contacts.{key}", f"lists {len(items)} contacts; at most {MAX_CONTACTS}")
            continue
        for n, i in items:
            path = f"watch.contacts.{key}" if i is None else f"watch.contacts.{key}[{i}]"
            value = r.phone(n, path) if key == "sms" else r.text(n, path)
            if value is None:
                continue
            if key == "email" and not _EMAIL.match(value):
                r.error(n.line, path, f'"{value}" is not an e-mail address (such as cabinet@example.fr)')
            elif value in out:
                r.error(n.line, path, f'"{value}" is listed twice')
            else:
                out.append(value)
    return tuple(emails), tuple(phones)
