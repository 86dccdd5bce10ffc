"""The dialplan's on-call rota (weekly pattern, exceptions, public holidays, iCalendar feed) and its
escalation tiers (docs/dialplan.md: on_call, escalation)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from callrouter.dialplan.context import Context, prompt_ref
from callrouter.dialplan.errors import DialplanError
from callrouter.dialplan.fields import DIGITS, describe, join
from callrouter.dialplan.rotafeed import NOBODY, shifts_from_ics
from callrouter.dialplan.schema_calendar import read_period
from callrouter.dialplan.yamlsrc import YMap, YNode, YScalar, YSeq
from callrouter.domain import ical
from callrouter.domain.model import (
    ESCALATION_CHANNELS,
    WEEKDAYS,
    CalendarSpec,
    EscalationStep,
    EscalationTier,
    HolidayCover,
    HolidayEntry,
    OnCallRota,
    Practitioner,
    RotaEntry,
    RotaException,
    RotaFeed,
)

SPECIAL_TARGETS = ("on_call", "backup")


def read_on_call(ctx: Context, node: YNode | None, practice: str | None, cal: CalendarSpec,
                 practitioners: dict[str, Practitioner]) -> OnCallRota | None:
    """The rota; its public holidays are the practice's (main calendar: country and subdivision)."""
    r = ctx.reader
    m = r.mapping(node, "on_call", ("weekly", "holidays", "exceptions", "backup", "until", "ical"))
    if m is None:
        return None
    weekly = []
    for i, item in enumerate(r.sequence(m.get("weekly"), "on_call.weekly")):
        path = f"on_call.weekly[{i}]"
        e = r.mapping(item, path, ("days", "hours", "who"), required=("days", "hours", "who"))
        if e is None:
            continue
        days_text = r.text(e.get("days"), join(path, "days"))
        days = r.days(days_text, e.get("days").line, join(path, "days")) if days_text else None
        hours = r.time_range(e.get("hours"), join(path, "hours"))
        who = r.text(e.get("who"), join(path, "who"))
        ctx.ref("practitioner", who, e.get("who"), join(path, "who"))
        if days and hours and who:
            weekly.append(RotaEntry(days, hours, who))
    exceptions = []
    for i, item in enumerate(r.sequence(m.get("exceptions"), "on_call.exceptions")):
        path = f"on_call.exceptions[{i}]"
        e = r.mapping(item, path, ("from", "to", "date", "hours", "who"), required=("who",))
        if e is None:
            continue
        period = read_period(r, e, path)
        who = r.text(e.get("who"), join(path, "who"), required=False)
        if who is not None and who != "nobody":
            ctx.ref("practitioner", who, e.get("who"), join(path, "who"))
        if period:
            exceptions.append(RotaException(period, None if who in (None, "nobody") else who))
    backup = r.text(m.get("backup"), "on_call.backup", required=False)
    ctx.ref("practitioner", backup, m.get("backup"), "on_call.backup")
    until = None
    if "until" in m.items:
        value = r.date_or_datetime(m.get("until"), "on_call.until")
        until = value.date() if isinstance(value, dt.datetime) else value
    feed, shifts = (_rota_feed(ctx, m.get("ical"), practice, cal.timezone, practitioners)
                    if "ical" in m.items else (None, ()))
    holidays = (_holiday_cover(ctx, m.get("holidays"), "on_call.holidays", m.key_lines["holidays"])
                if "holidays" in m.items else HolidayCover())
    return OnCallRota(tuple(weekly), tuple(exceptions), backup, until, shifts, feed, holidays,
                      (cal.country, cal.subdivision))


USUAL = "usual"


def _holiday_cover(ctx: Context, node: YNode | None, path: str, line: int) -> HolidayCover:
    """on_call.holidays: a day whose pattern applies (sun, the default), `usual` (the day the
    holiday falls on), or the holiday's own entries [{hours, who}]."""
    r = ctx.reader
    if isinstance(node, YSeq):
        entries = []
        for i, item in enumerate(node.items):
            epath = f"{path}[{i}]"
            e = r.mapping(item, epath, ("hours", "who"), required=("hours", "who"))
            if e is None:
                continue
            hours = r.time_range(e.get("hours"), join(epath, "hours"))
            who = r.text(e.get("who"), join(epath, "who"))
            ctx.ref("practitioner", who, e.get("who"), join(epath, "who"))
            if hours and who:
                entries.append(HolidayEntry(hours, who))
        if not node.items:
            r.error(node.line, path, "give at least one entry ({hours, who}), or a day such as sun, or usual: "
                                     "an empty list would leave every public holiday without anyone on call")
        return HolidayCover(like=None, entries=tuple(entries))
    if isinstance(node, YScalar) and isinstance(node.value, str):
        value = r.one_of(node, path, (*WEEKDAYS, USUAL), WEEKDAYS[6])
        return HolidayCover(like=None if value == USUAL else WEEKDAYS.index(value))
    r.error(node.line if node is not None else line, path,
            f"expected a day (sun), usual, or a list of {{hours, who}} entries, got "
            f"{describe(node) if node is not None else 'nothing'}")
    return HolidayCover()


def _rota_feed(ctx: Context, node: YNode | None, practice: str | None, timezone: str,
               practitioners: dict[str, Practitioner]):
    """on_call.ical: {file: rota.ics | url: https://..., map: {name: id | nobody}, refresh: 15m}."""
    r = ctx.reader
    path = "on_call.ical"
    m = r.mapping(node, path, ("file", "url", "map", "refresh"))
    if m is None:
        return None, ()
    if ("file" in m.items) == ("url" in m.items):
        r.error(m.line, path, 'give the rota feed as either "file" (next to this dialplan) or "url", not both')
        return None, ()
    names: dict[str, str | None] = {}
    for name, wnode, wpath in r.named(m.get("map"), join(path, "map"), line=m.line):
        who = r.text(wnode, wpath)
        if who is not None and who != NOBODY:
            ctx.ref("practitioner", who, wnode, wpath)
        names[name] = None if who in (None, NOBODY) else who
    refresh = r.duration(m.get("refresh"), join(path, "refresh"), 900.0, hi=86400)
    if "refresh" in m.items and refresh < 60:
        r.error(m.get("refresh").line, join(path, "refresh"), "refresh at most every minute (e.g. 15m)")
    url = file = None
    data: tuple[bytes, str] | None = None
    if "url" in m.items:
        url = r.text(m.get("url"), join(path, "url"))
        if url is not None and not url.startswith(("https://", "http://")):
            r.error(m.get("url").line, join(path, "url"), f'"{url}" is not an http(s):// address')
            url = None
        if url is not None and practice is not None and ctx.feed_reader is not None:
            data = ctx.feed_reader(practice, url)
    else:
        file = r.text(m.get("file"), join(path, "file"))
        if file is not None:
            target = Path(r.file).parent / file
            try:
                data = read_feed_file(target), str(target)
            except OSError as exc:
                r.error(m.get("file").line, join(path, "file"), f"cannot read {target}: {exc.strerror or exc}")
            except ValueError as exc:
                r.error(m.get("file").line, join(path, "file"), f"cannot read {target}: {exc}")
    feed = RotaFeed(url, file, names, refresh) if (url or file) else None
    if data is None:
        return feed, ()
    content, origin = data
    shifts, problems = shifts_from_ics(content, timezone, names, practitioners)
    for p in problems:
        ctx.reader.errors.append(DialplanError(origin, p.line, path, f"{p.message} (rota feed of {r.file})"))
    ctx.feed_content = content
    return feed, shifts


def read_feed_file(target: Path) -> bytes:
    """A rota feed kept as a file: a regular file, read at most one byte past the calendar's limit
    (the parser then says it is too large); a device or a FIFO (/dev/zero) would never end."""
    if not target.is_file():
        raise ValueError("not a regular file")
    with target.open("rb") as f:
        return f.read(ical.MAX_BYTES + 1)


def read_escalation(ctx: Context, node: YNode | None) -> dict[str, EscalationTier]:
    r = ctx.reader
    out: dict[str, EscalationTier] = {}
    if node is None:
        return out
    m = r.mapping(node, "escalation", ("tiers",), required=("tiers",))
    if m is None:
        return out
    for tname, tnode, path in r.named(m.get("tiers"), "escalation.tiers", line=m.line):
        t = r.mapping(tnode, path, ("announce", "steps", "repeat"), required=("steps",))
        if t is None:
            continue
        announce = prompt_ref(ctx, t.get("announce"), join(path, "announce")) if "announce" in t.items else None
        steps = []
        for i, snode in enumerate(r.sequence(t.get("steps"), join(path, "steps"))):
            spath = f"{path}.steps[{i}]"
            s = r.mapping(snode, spath, (*ESCALATION_CHANNELS, "wait", "ack_digit"))
            if s is None:
                continue
            channels = [c for c in ESCALATION_CHANNELS if c in s.items]
            if len(channels) != 1:
                r.error(s.line, spath, f"a step uses exactly one channel: {', '.join(ESCALATION_CHANNELS)}")
                continue
            target = r.text(s.get(channels[0]), join(spath, channels[0]))
            if target and target not in SPECIAL_TARGETS:
                ctx.ref("practitioner", target, s.get(channels[0]), join(spath, channels[0]))
            ack = r.one_of(s.get("ack_digit"), join(spath, "ack_digit"), DIGITS, "1")
            if target:
                steps.append(EscalationStep(channels[0], target, r.duration(s.get("wait"), join(spath, "wait"), 0.0, hi=86400), ack))
        if not steps and "steps" in t.items:
            r.error(t.line, path, "a tier needs at least one step")
        out[tname] = EscalationTier(tname, tuple(steps), announce, r.integer(t.get("repeat"), join(path, "repeat"), 0, 0, 10))
    return out


def check_tiers(ctx: Context, root: YMap, tiers: dict[str, EscalationTier]) -> None:
    vital = tiers.get("vital")
    if vital is not None and not vital.announce:
        line = root.get("escalation").line if root.get("escalation") else root.line
        ctx.reader.error(line, "escalation.tiers.vital", 'the vital tier must tell the caller to hang up and dial 15: '
                                                          'give it "announce" (e.g. call_15)')
