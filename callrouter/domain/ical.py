"""A small iCalendar (RFC 5545) reader for on-call rotas: the VEVENTs, with their lines.

Enough of the format for the rota feeds practices publish (Google Calendar, Outlook, Nextcloud,
Doctolib exports): DTSTART/DTEND/DURATION with TZID, UTC or floating times, all-day events,
RRULE with FREQ=DAILY or WEEKLY (INTERVAL, BYDAY, UNTIL, COUNT, WKST), EXDATE, RECURRENCE-ID
overrides, STATUS:CANCELLED. Anything else a rota could depend on (monthly rules, BYSETPOS, RDATE)
is reported as an error rather than silently misread. Pure: text in, values and errors out.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_BYTES = 2_000_000
DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# Outlook/Exchange write Windows zone names; the ones French practices meet.
WINDOWS_ZONES = {
    "Romance Standard Time": "Europe/Paris",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "GMT Standard Time": "Europe/London",
    "UTC": "UTC",
    "Reunion Standard Time": "Indian/Reunion",
    "Mauritius Standard Time": "Indian/Mauritius",
    "SA Western Standard Time": "America/Martinique",
}
SUPPORTED_RRULE = {"FREQ", "INTERVAL", "BYDAY", "UNTIL", "COUNT", "WKST"}

_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DATETIME = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)$")
_DURATION = re.compile(r"^([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")

When = "dt.date | dt.datetime"  # a date (all-day), an aware datetime, or a naive one (floating)


@dataclass(frozen=True)
class Rule:
    freq: str  # DAILY | WEEKLY
    interval: int = 1
    days: tuple[int, ...] = ()  # BYDAY as weekday numbers (0 = Monday)
    until: "dt.date | dt.datetime | None" = None
    count: int | None = None
    week_start: int = 0


@dataclass(frozen=True)
class Event:
    line: int  # the BEGIN:VEVENT line
    uid: str | None
    summary: str
    start: "dt.date | dt.datetime"
    end: "dt.date | dt.datetime"
    rule: Rule | None = None
    exdates: tuple["dt.date | dt.datetime", ...] = ()
    recurrence_id: "dt.date | dt.datetime | None" = None
    cancelled: bool = False  # STATUS:CANCELLED: nobody should rely on it (an override still hides its instance)
    summary_line: int = 0    # the SUMMARY line (the BEGIN:VEVENT line if none)

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, dt.datetime)


@dataclass(frozen=True)
class ParseError:
    line: int
    message: str


@dataclass
class Calendar:
    events: list[Event] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)


@dataclass(frozen=True)
class _Line:
    number: int
    name: str
    params: dict[str, str]
    value: str


def parse(data: bytes | str) -> Calendar:
    """Every VEVENT of the text, and every problem with its line."""
    out = Calendar()
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            out.errors.append(ParseError(1, f"the calendar is larger than {MAX_BYTES} bytes"))
            return out
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            out.errors.append(ParseError(data[: exc.start].count(b"\n") + 1, "the calendar is not UTF-8 text"))
            return out
    lines = list(_content_lines(data, out.errors))
    if not lines or lines[0].name != "BEGIN" or lines[0].value.upper() != "VCALENDAR":
        out.errors.append(ParseError(lines[0].number if lines else 1, "not an iCalendar file (no BEGIN:VCALENDAR)"))
        return out
    stack: list[str] = []
    props: list[_Line] = []
    begin = 0
    for ln in lines:
        if ln.name == "BEGIN":
            stack.append(ln.value.upper())
            if stack[-1] == "VEVENT" and len(stack) == 2:
                props, begin = [], ln.number
            continue
        if ln.name == "END":
            if not stack or stack[-1] != ln.value.upper():
                out.errors.append(ParseError(ln.number, f"END:{ln.value} does not close "
                                                        f"{'BEGIN:' + stack[-1] if stack else 'anything'}"))
                return out
            stack.pop()
            if ln.value.upper() == "VEVENT" and len(stack) == 1:
                event = _event(begin, props, out.errors)
                if event is not None:
                    out.events.append(event)
            continue
        if len(stack) == 2 and stack[1] == "VEVENT":
            props.append(ln)
    if stack:
        out.errors.append(ParseError(lines[-1].number, f"BEGIN:{stack[-1]} is never closed"))
    return out


def _content_lines(text: str, errors: list[ParseError]):
    """Unfolded content lines (RFC 5545 3.1), each with the number of its first physical line."""
    logical: list[tuple[int, str]] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if raw[:1] in (" ", "\t") and logical:
            logical[-1] = (logical[-1][0], logical[-1][1] + raw[1:])
        elif raw.strip():
            logical.append((number, raw))
    for number, raw in logical:
        parsed = _split(raw)
        if parsed is None:
            errors.append(ParseError(number, f'"{raw[:60]}" is not a "NAME;PARAM=...:value" line'))
            continue
        name, params, value = parsed
        yield _Line(number, name, params, value)


def _split(raw: str) -> tuple[str, dict[str, str], str] | None:
    """NAME *(;PARAM=value) : value, with quoted parameter values that may hold ':' and ';'."""
    i, n = 0, len(raw)
    while i < n and raw[i] not in ";:":
        i += 1
    name = raw[:i].strip().upper()
    if not name or i == n:
        return None
    params: dict[str, str] = {}
    while raw[i] == ";":
        j = raw.find("=", i)
        if j < 0:
            return None
        key = raw[i + 1:j].strip().upper()
        k = j + 1
        values = []
        while True:
            if k < n and raw[k] == '"':
                end = raw.find('"', k + 1)
                if end < 0:
                    return None
                values.append(raw[k + 1:end])
                k = end + 1
            else:
                start = k
                while k < n and raw[k] not in ",;:":
                    k += 1
                values.append(raw[start:k])
            if k < n and raw[k] == ",":
                k += 1
                continue
            break
        params[key] = ",".join(values)
        if k >= n:
            return None
        i = k
    return name, params, raw[i + 1:]


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _zone(tzid: str) -> ZoneInfo | None:
    name = tzid.strip().strip('"').lstrip("/")
    name = WINDOWS_ZONES.get(name, name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_when(ln: _Line, value: str | None = None) -> "dt.date | dt.datetime":
    """A DATE, or a DATE-TIME: UTC (Z), in TZID's zone, or floating (naive). ValueError if bad."""
    value = (ln.value if value is None else value).strip()
    if ln.params.get("VALUE", "").upper() == "DATE" or _DATE.match(value):
        m = _DATE.match(value)
        if not m:
            raise ValueError(f'"{value}" is not a date (YYYYMMDD)')
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    m = _DATETIME.match(value)
    if not m:
        raise ValueError(f'"{value}" is not a date-time (YYYYMMDDTHHMMSS, optionally ending in Z)')
    when = dt.datetime(*(int(m[k]) for k in range(1, 7)))
    if m[7]:
        return when.replace(tzinfo=dt.timezone.utc)
    if "TZID" in ln.params:
        zone = _zone(ln.params["TZID"])
        if zone is None:
            raise ValueError(f'unknown time zone TZID={ln.params["TZID"]}; use a tz database name such as '
                             f"Europe/Paris")
        return when.replace(tzinfo=zone)
    return when


def parse_duration(value: str) -> dt.timedelta:
    m = _DURATION.match(value.strip())
    if not m or not any(m.groups()[1:]):
        raise ValueError(f'"{value}" is not a duration such as PT12H, P1D or P1W')
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups()[1:])
    delta = dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    return -delta if m[1] == "-" else delta


def parse_rule(ln: _Line) -> Rule:
    parts: dict[str, str] = {}
    for item in ln.value.split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f'"{item}" is not a KEY=value part')
        parts[key.strip().upper()] = value.strip().upper()
    unsupported = sorted(set(parts) - SUPPORTED_RRULE)
    if unsupported:
        raise ValueError(f"RRULE {', '.join(unsupported)} is not supported (only FREQ=DAILY or WEEKLY with "
                         f"INTERVAL, BYDAY, UNTIL, COUNT): split the event or expand it in the calendar")
    freq = parts.get("FREQ")
    if freq not in ("DAILY", "WEEKLY"):
        raise ValueError(f"RRULE FREQ={freq or '(missing)'} is not supported; use DAILY or WEEKLY")
    interval = _positive(parts.get("INTERVAL", "1"), "INTERVAL")
    days: list[int] = []
    if "BYDAY" in parts:
        if freq != "WEEKLY":
            raise ValueError("RRULE BYDAY is only supported with FREQ=WEEKLY")
        for code in parts["BYDAY"].split(","):
            if code not in DAY_CODES:
                raise ValueError(f'RRULE BYDAY "{code}" is not supported; use MO, TU, WE, TH, FR, SA, SU')
            days.append(DAY_CODES.index(code))
    if "UNTIL" in parts and "COUNT" in parts:
        raise ValueError("RRULE gives both UNTIL and COUNT")
    until = parse_when(_Line(ln.number, "UNTIL", {}, parts["UNTIL"])) if "UNTIL" in parts else None
    count = _positive(parts["COUNT"], "COUNT") if "COUNT" in parts else None
    wkst = parts.get("WKST", "MO")
    if wkst not in DAY_CODES:
        raise ValueError(f'RRULE WKST "{wkst}" is not a day')
    return Rule(freq, interval, tuple(sorted(set(days))), until, count, DAY_CODES.index(wkst))


def _positive(text: str, what: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f'RRULE {what}="{text}" must be a whole number of at least 1')
    return int(text)


def _event(begin: int, props: list[_Line], errors: list[ParseError]) -> Event | None:
    first: dict[str, _Line] = {}
    for ln in props:
        first.setdefault(ln.name, ln)
    if "RDATE" in first:
        errors.append(ParseError(first["RDATE"].number, "RDATE is not supported: write the extra dates as events"))
        return None
    if "DTSTART" not in first:
        errors.append(ParseError(begin, "event without DTSTART"))
        return None
    current = first["DTSTART"]
    try:
        start = parse_when(current)
        if "DTEND" in first:
            current = first["DTEND"]
            end = parse_when(current)
        elif "DURATION" in first:
            current = first["DURATION"]
            end = start + parse_duration(current.value)
        else:  # RFC 5545 3.6.1: a day for an all-day event, nothing for a timed one
            end = start + dt.timedelta(days=1) if not isinstance(start, dt.datetime) else start
        rule = None
        if "RRULE" in first:
            current = first["RRULE"]
            rule = parse_rule(current)
        exdates = []
        for ln in props:
            if ln.name == "EXDATE":
                current = ln
                exdates += [parse_when(ln, v) for v in ln.value.split(",") if v.strip()]
        rid = None
        if "RECURRENCE-ID" in first:
            current = first["RECURRENCE-ID"]
            rid = parse_when(current)
    except ValueError as exc:
        message = str(exc)
        errors.append(ParseError(current.number, message if message.startswith(current.name)
                                 else f"{current.name}: {message}"))
        return None
    except OverflowError:  # a date next to year 9999 moved past it (a day, a duration), a huge duration
        errors.append(ParseError(current.number, f"{current.name}: the date or duration is out of range"))
        return None
    if isinstance(start, dt.datetime) != isinstance(end, dt.datetime):
        errors.append(ParseError(first.get("DTEND", first["DTSTART"]).number,
                                 "DTSTART and DTEND must both be dates or both be date-times"))
        return None
    if _sortable(end) < _sortable(start):
        errors.append(ParseError(first.get("DTEND", first["DTSTART"]).number, "the event ends before it starts"))
        return None
    uid = unescape(first["UID"].value).strip() if "UID" in first else None
    summary = " ".join(unescape(first["SUMMARY"].value).split()) if "SUMMARY" in first else ""
    status = first.get("STATUS")
    cancelled = status is not None and status.value.strip().upper() == "CANCELLED"
    return Event(begin, uid, summary, start, end, rule, tuple(exdates), rid, cancelled,
                 first["SUMMARY"].number if "SUMMARY" in first else begin)


def _sortable(when) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        return dt.datetime.combine(when, dt.time())
    return when.replace(tzinfo=None) if when.tzinfo is None else when.astimezone(dt.timezone.utc).replace(tzinfo=None)
